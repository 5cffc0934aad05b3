"""Label checks applied under every policy (thresholds and codes from label.yaml).

Contraindications are critical findings with their evidence: hypersensitivity to mecasermin or
benzyl alcohol, closed epiphyses, malignancy (active or history, coded), age under 2, intravenous route.
Warnings: a possible malignancy named only in a Condition's text (label.yaml text patterns; negated
mentions, family history and screening do not count), in-situ neoplasm, advanced bone age (confirm
open epiphyses), conflicting epiphysis records, an unusual route. Every finding except the monitoring
points carries a short `title` for card summaries. Interactions and concurrent somatropin come from label.yaml, plus one consolidated
monitoring note. When FHIR queries failed, a warning says which checks are incomplete.
"""
from __future__ import annotations

from service.policy.codesets import describe
from service.policy.compare import format_against, format_age, format_number
from service.policy.context import Context, diagnosis_evidence, measurement_evidence, medication_evidence
from service.policy.decision import Evidence, LabelFinding

CRITICAL, WARNING, INFO = "critical", "warning", "info"


def _allergy_findings(ctx: Context) -> list[LabelFinding]:
    rules = ctx.label
    findings = []
    for substance in rules.hypersensitivity_substances:
        allergies = [a for a in ctx.record.allergies
                     if a.substance == substance and (a.verification_status or "") not in rules.ignore_verification]
        if allergies:
            name = substance.replace("-", " ")
            evidence = tuple(Evidence(kind="allergy", value=(a.text or "").strip() or f"{name} (coded)", unit=None,
                                      date=a.recorded, reference=a.reference,
                                      display=(a.text or "").strip() or name,
                                      note=f"criticality {a.criticality or 'not stated'}, "
                                           f"verification {a.verification_status or 'not stated'}")
                             for a in allergies)
            what = "mecasermin" if substance == "mecasermin" else f"{name}, a preservative in the vial,"
            first = allergies[0]
            details = []
            text = (first.text or "").strip()
            if text and text.lower() != name.lower():
                details.append(f"recorded as '{text}'")
            if first.recorded:
                details.append(f"on {first.recorded.isoformat()}")
            details.append(first.reference)
            findings.append(LabelFinding(
                f"hypersensitivity-{substance}", CRITICAL, "contraindication",
                f"Contraindicated: recorded hypersensitivity to {what} ({', '.join(details)}).", evidence,
                title=f"Allergy to {name}"))
    return findings


def _epiphysis_findings(ctx: Context) -> list[LabelFinding]:
    records = sorted(ctx.record.epiphyses, key=lambda e: e.date.toordinal() if e.date else 0, reverse=True)
    closed = [e for e in records if e.status == "closed"]
    if not closed:
        return []
    evidence = tuple(Evidence(kind="epiphyses", value=e.status, unit=None, date=e.date, reference=e.reference,
                              display=e.text) for e in records)
    latest_closed = closed[0]
    later_open = [e for e in records if e.status == "open" and e.date and latest_closed.date and e.date > latest_closed.date]
    when = f" on {latest_closed.date.isoformat()}" if latest_closed.date else ""
    if later_open:
        return [LabelFinding("epiphyses-conflicting", WARNING, "contraindication",
                             f"Closed epiphyses were recorded{when} ('{latest_closed.text}') but a later record says open; "
                             f"confirm the growth plates are open before treating.", evidence,
                             title="Epiphyses possibly closed")]
    return [LabelFinding("closed-epiphyses", CRITICAL, "contraindication",
                         f"Contraindicated: closed epiphyses recorded{when} ('{latest_closed.text}').", evidence,
                         title="Closed epiphyses")]


def _neoplasm_findings(ctx: Context) -> list[LabelFinding]:
    rules = ctx.label
    findings = []
    pool = [d for d in ctx.record.diagnoses if d.active or rules.malignancy_history] + \
        list(ctx.record.order.reasons if ctx.record.order else ())
    malignant = [d for d in pool if rules.malignancy.code_match(d)]
    if malignant:
        active = [d for d in malignant if d.active and not (d.code or "").upper().startswith("Z85")
                  and (d.code or "") != "266987004"]
        which = "active malignancy" if active else "history of malignancy"
        findings.append(LabelFinding(
            "malignancy", CRITICAL, "contraindication",
            f"Contraindicated: {which} on file ({describe(malignant[0])}); mecasermin is not used with malignant "
            f"neoplasia or a history of it.", tuple(diagnosis_evidence(d) for d in malignant),
            title="Active malignancy" if active else "History of malignancy"))
    in_situ = [d for d in ctx.record.diagnoses if rules.in_situ_neoplasm.code_match(d)]
    # A malignancy named only in words (an uncoded Condition, a SNOMED concept other than the two listed,
    # free text): a warning to confirm, unless the same resource is already coded as malignant or in situ.
    coded = {d.reference for d in malignant} | {d.reference for d in in_situ}
    worded = [d for d in pool if d.reference not in coded and d.verification_status not in ("refuted", "entered-in-error")
              and rules.malignancy.text_match(d) is not None]
    if worded:
        first = worded[0]
        findings.append(LabelFinding(
            "possible-malignancy", WARNING, "contraindication",
            f"Possible malignancy on file — confirm before prescribing: '{first.display}' ({first.reference}) names "
            f"a malignancy but is not coded as one (ICD-10-CM C00–C96/Z85). Malignant neoplasia, active or past, "
            f"contraindicates mecasermin.", tuple(diagnosis_evidence(d) for d in worded),
            title="Possible malignancy"))
    if in_situ:
        findings.append(LabelFinding(
            "in-situ-neoplasm", WARNING, "warning",
            f"In-situ neoplasm on file ({describe(in_situ[0])}): review with oncology before starting; the label "
            f"contraindicates malignant neoplasia.", tuple(diagnosis_evidence(d) for d in in_situ),
            title="In-situ neoplasm"))
    return findings


def _age_findings(ctx: Context) -> list[LabelFinding]:
    patient = ctx.record.patient
    minimum = ctx.label.minimum_age_years
    if patient is None or patient.age_years is None:
        return [LabelFinding("age-unknown", WARNING, "contraindication",
                             f"The patient's age is not on file; the label is for children {format_number(minimum)} years and older.",
                             title="Age not on file")]
    if patient.age_years < minimum:
        shown = format_age(patient.age_years, birth_date=patient.birth_date, today=ctx.today)
        evidence = (Evidence(kind="age", value=round(patient.age_years, 4), unit="years", date=ctx.today,
                             reference=patient.reference, display=shown),)
        return [LabelFinding("age-under-minimum", CRITICAL, "contraindication",
                             f"Not for children under {format_number(minimum)} years (age {shown}): not established, "
                             f"and the benzyl alcohol preservative can cause gasping syndrome in neonates and infants.",
                             evidence, title=f"Under {format_number(minimum)} years old")]
    return []


def _route_findings(ctx: Context) -> list[LabelFinding]:
    order = ctx.record.order
    if order is None or order.route is None:
        return []
    evidence = (Evidence(kind="order", value=order.route_text or order.route, unit=None, date=None, reference=order.reference),)
    if order.route in ctx.label.routes_contraindicated:
        return [LabelFinding("intravenous-route", CRITICAL, "contraindication",
                             f"Contraindicated route: {order.route_text or order.route}. Mecasermin is given subcutaneously only.",
                             evidence, title="Intravenous route")]
    if order.route not in ctx.label.routes_allowed:
        return [LabelFinding("route-not-subcutaneous", WARNING, "dose",
                             f"Route '{order.route_text or order.route}' is not subcutaneous; the label allows subcutaneous use only.",
                             evidence, title="Route not subcutaneous")]
    return []


def _bone_age_findings(ctx: Context, closed_found: bool) -> list[LabelFinding]:
    if closed_found:
        return []
    usable = sorted((b for b in ctx.record.bone_ages if b.usable and b.value is not None and b.date is not None),
                    key=lambda b: b.date, reverse=True)
    if not usable:
        return []
    latest = usable[0]
    sex = ctx.sex
    limits = ctx.label.advanced_bone_age
    limit = limits.get(sex) if sex in limits else min(limits.values())
    if latest.value < limit:
        return []
    who = sex if sex in limits else "sex not recorded; the lower limit is used"
    return [LabelFinding("advanced-bone-age", WARNING, "warning",
                         f"Bone age {format_against(latest.value, '>=', limit, 1)} y on {latest.date.isoformat()} ({who}) is at or above "
                         f"{format_number(limit)} y: confirm the epiphyses are open before treating.",
                         (measurement_evidence(latest),), title="Advanced bone age")]


def _medication_findings(ctx: Context) -> list[LabelFinding]:
    findings = []
    for rule in ctx.label.interactions:
        meds = ctx.active_medications(rule.medication_category)
        if meds:
            findings.append(LabelFinding(rule.id, rule.severity, rule.category,
                                         f"{rule.message} ({', '.join(m.text for m in meds)})",
                                         tuple(medication_evidence(m) for m in meds), title=rule.title))
    return findings


_CHECK_SOURCES = {
    "AllergyIntolerance": "hypersensitivity",
    "Condition": "malignancy and closed epiphyses",
    "Observation": "bone age and closed epiphyses",
    "DiagnosticReport": "closed epiphyses",
    "MedicationRequest": "interactions and concurrent growth hormone",
    "MedicationStatement": "interactions and concurrent growth hormone",
    "MedicationDispense": "interactions and concurrent growth hormone",
    "MedicationAdministration": "interactions and concurrent growth hormone",
    "Patient": "age",
}


def _gap_findings(ctx: Context) -> list[LabelFinding]:
    gaps = ctx.gaps_for(*_CHECK_SOURCES)
    if not gaps:
        return []
    affected = sorted({_CHECK_SOURCES[t] for t in _CHECK_SOURCES if ctx.gaps_for(t)})
    return [LabelFinding("label-checks-incomplete", WARNING, "warning",
                         f"Some records could not be fetched ({'; '.join(gaps)}): the checks for {', '.join(affected)} "
                         f"are incomplete.", title="Label checks incomplete")]


def label_findings(ctx: Context) -> tuple[LabelFinding, ...]:
    findings = _allergy_findings(ctx)
    epiphyses = _epiphysis_findings(ctx)
    findings += epiphyses
    findings += _neoplasm_findings(ctx)
    findings += _age_findings(ctx)
    findings += _route_findings(ctx)
    findings += _bone_age_findings(ctx, any(f.id == "closed-epiphyses" for f in epiphyses))
    findings += _medication_findings(ctx)
    findings += _gap_findings(ctx)
    # One finding per point, so that cards and the app can list them.
    findings += [LabelFinding(f"monitoring-{n}", INFO, "monitoring", item)
                 for n, item in enumerate(ctx.label.monitoring, start=1)]
    return tuple(findings)
