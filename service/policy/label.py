"""Label checks applied under every policy (thresholds and codes from label.yaml).

Contraindications are critical findings with their evidence: hypersensitivity to mecasermin or an
inactive ingredient, closed epiphyses, malignancy (active or history, coded or named), intravenous route.
Age under 2 is critical too, worded as the label words it: the indication starts at 2 years, and benzyl
alcohol is a warning for infants (category "indication", not "contraindication").
Warnings: a malignancy only mentioned (provisional, or hedged wording; negated mentions, family history
and screening never count), an unconfirmed hypersensitivity, in-situ neoplasm, advanced bone age (confirm
open epiphyses), conflicting epiphysis records, an unusual route. Every finding except the monitoring
points carries a short `title` for card summaries. Interactions and concurrent somatropin come from label.yaml, plus one consolidated
monitoring note. When FHIR queries failed, a warning says which checks are incomplete.
"""
from __future__ import annotations

from service.policy.codesets import abbreviation_matches, any_pattern, describe
from service.policy.context import LABEL_CHECKS, SCOPES, Context, diagnosis_evidence, measurement_evidence, medication_evidence
from service.policy.decision import Evidence, LabelFinding, Reason
from service.record.allergies import substance_name

CRITICAL, WARNING, INFO = "critical", "warning", "info"


def _allergy_findings(ctx: Context) -> list[LabelFinding]:
    """Hypersensitivity to mecasermin or an inactive ingredient: critical when confirmed (or not stated),
    a warning to confirm when recorded as unconfirmed. A past severe reaction counts whatever its clinical
    status (the reader keeps it); refuted and entered-in-error records never count."""
    rules = ctx.label
    findings = []
    for substance in rules.hypersensitivity_substances:
        allergies = [a for a in ctx.record.allergies
                     if a.substance == substance and (a.verification_status or "") not in rules.ignore_verification]
        if not allergies:
            continue
        name = substance_name(substance)
        evidence = tuple(Evidence(kind="allergy", value=(a.text or "").strip() or None, unit=None,
                                  date=a.recorded, reference=a.reference, display=(a.text or "").strip() or name,
                                  notes=(Reason("allergy-status", {"criticality": a.criticality,
                                                                   "clinical_status": a.clinical_status,
                                                                   "verification": a.verification_status,
                                                                   "substance": name}),))
                         for a in allergies)
        confirmed = [a for a in allergies if a.verification_status != "unconfirmed"]
        first = (confirmed or allergies)[0]
        text = (first.text or "").strip()
        facts = {"substance": substance, "name": name,
                 "recorded_as": text if text and text.lower() != name.lower() else None,
                 "now": first.clinical_status if first.clinical_status in ("resolved", "inactive") else None,
                 "date": first.recorded, "reference": first.reference}
        if confirmed:
            findings.append(LabelFinding("hypersensitivity-" + substance, CRITICAL, "contraindication",
                                         Reason("hypersensitivity", facts), evidence))
        else:
            findings.append(LabelFinding("possible-hypersensitivity-" + substance, WARNING, "contraindication",
                                         Reason("possible-hypersensitivity", facts), evidence))
    return findings


def _epiphysis_findings(ctx: Context) -> list[LabelFinding]:
    records = sorted(ctx.record.epiphyses, key=lambda e: e.date.toordinal() if e.date else 0, reverse=True)
    closed = [e for e in records if e.status == "closed"]
    # "unclear": one report says both open and closed, or says closure is possible — confirm, never proof.
    unclear = [e for e in records if e.status == "unclear"]
    if not closed and not unclear:
        return []
    evidence = tuple(Evidence(kind="epiphyses", value=e.status, unit=None, date=e.date, reference=e.reference,
                              display=e.text) for e in records)
    latest = (closed or unclear)[0]
    later_open = [e for e in records if e.status == "open" and e.date and latest.date and e.date > latest.date]
    facts = {"date": latest.date, "text": latest.text}
    if closed and later_open:
        return [LabelFinding("epiphyses-conflicting", WARNING, "contraindication",
                             Reason("closed-then-open", facts), evidence)]
    if closed:
        return [LabelFinding("closed-epiphyses", CRITICAL, "contraindication", Reason("closed-epiphyses", facts),
                             evidence)]
    if later_open:
        return []
    return [LabelFinding("epiphyses-conflicting", WARNING, "contraindication", Reason("epiphyses-unclear", facts),
                         evidence)]


_TENTATIVE = frozenset({"provisional", "differential", "unconfirmed"})
_IGNORED = frozenset({"refuted", "entered-in-error"})


def _malignancy_words(rules, d) -> str | None:
    """The words of a diagnosis's own display or text that name a malignancy, or None."""
    cs = rules.malignancy
    return cs.text_match(d) or abbreviation_matches(rules.malignancy_abbreviations, d.display, cs.exclude_text)


def _is_history(rules, d) -> bool:
    return (not d.active or (d.code or "").upper().startswith("Z85") or (d.code or "") == "266987004"
            or any_pattern(rules.malignancy_history_text, d.display))


def _neoplasm_findings(ctx: Context) -> list[LabelFinding]:
    """Malignancy, active or past: coded (ICD-10-CM C00–C96/Z85, the curated SNOMED CT list) or named in
    the Condition's own wording. Confirmed → critical; only mentioned (a provisional, differential or
    unconfirmed record, or hedged wording: "possible", "?", "in situ") → a warning to confirm."""
    rules = ctx.label
    findings = []
    pool = [d for d in ctx.record.diagnoses if d.active or rules.malignancy_history] + \
        list(ctx.record.order.reasons if ctx.record.order else ())
    pool = [d for d in pool if d.verification_status not in _IGNORED]
    in_situ = [d for d in ctx.record.diagnoses if rules.in_situ_neoplasm.code_match(d)]
    in_situ_refs = {d.reference for d in in_situ}
    named = []          # (diagnosis, the words that named it, or None when coded)
    for d in pool:
        if rules.malignancy.code_match(d):
            named.append((d, None))
        elif d.reference not in in_situ_refs:
            words = _malignancy_words(rules, d)
            if words is not None:
                named.append((d, words))
    hedged_refs = {d.reference for d in pool if any_pattern(rules.malignancy_hedges, d.display)}
    confirmed = [(d, w) for d, w in named if d.verification_status not in _TENTATIVE and d.reference not in hedged_refs]
    confirmed_refs = {d.reference for d, _ in confirmed}
    mentioned = [(d, w) for d, w in named if d.reference not in confirmed_refs]
    if confirmed:
        # A record is a history when any of its codings or its text says so ("history of", Z85, remission).
        history_refs = {d.reference for d in pool if _is_history(rules, d)}
        active = [d for d, _ in confirmed if d.reference not in history_refs]
        first, words = confirmed[0]
        findings.append(LabelFinding(
            "malignancy", CRITICAL, "contraindication",
            Reason("malignancy", {"active": bool(active), "coded": words is None, "name": describe(first),
                                  "display": first.display, "reference": first.reference}),
            tuple(diagnosis_evidence(d) for d, _ in confirmed)))
    if mentioned:
        first, _ = mentioned[0]
        status = first.verification_status if first.verification_status in _TENTATIVE else None
        findings.append(LabelFinding(
            "possible-malignancy", WARNING, "contraindication",
            Reason("possible-malignancy", {"name": first.display or describe(first), "reference": first.reference,
                                           "verification_status": status}),
            tuple(diagnosis_evidence(d) for d, _ in mentioned)))
    if in_situ:
        findings.append(LabelFinding(
            "in-situ-neoplasm", WARNING, "warning", Reason("in-situ-neoplasm", {"name": describe(in_situ[0])}),
            tuple(diagnosis_evidence(d) for d in in_situ)))
    return findings


def _age_findings(ctx: Context) -> list[LabelFinding]:
    patient = ctx.record.patient
    minimum = ctx.label.minimum_age_years
    if patient is None or patient.age_range is None:
        return [LabelFinding("age-unknown", WARNING, "indication", Reason("no-birth-date", {"minimum": minimum}))]
    youngest, oldest = patient.age_range
    if youngest >= minimum:
        return []
    if oldest >= minimum:
        # A partial birth date ("2024-06") that allows both sides of the limit decides nothing.
        return [LabelFinding("age-unknown", WARNING, "indication",
                             Reason("age-uncertain", {"minimum": minimum, "birth_date_text": patient.birth_date_text}))]
    age = {"youngest": youngest, "oldest": oldest, "birth_date": patient.birth_date,
           "birth_date_text": patient.birth_date_text, "today": ctx.today, "minimum": minimum}
    evidence = (Evidence(kind="age", value=oldest, unit="years", date=ctx.today, reference=patient.reference,
                         notes=(Reason("under-age", age),)),)
    # The label words this as an indication limit and a warning, not as a contraindication.
    return [LabelFinding("age-under-minimum", CRITICAL, "indication", Reason("age-under-minimum", age), evidence)]


def _route_findings(ctx: Context) -> list[LabelFinding]:
    order = ctx.record.order
    if order is None or order.route is None:
        return []
    route = order.route_text or order.route
    evidence = (Evidence(kind="order", value=route, unit=None, date=None, reference=order.reference),)
    if order.route in ctx.label.routes_contraindicated:
        return [LabelFinding("intravenous-route", CRITICAL, "contraindication",
                             Reason("intravenous-route", {"route": route}), evidence)]
    if order.route not in ctx.label.routes_allowed:
        return [LabelFinding("route-not-subcutaneous", WARNING, "dose",
                             Reason("route-not-subcutaneous", {"route": route}), evidence)]
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
    return [LabelFinding("advanced-bone-age", WARNING, "warning",
                         Reason("advanced-bone-age", {"value": latest.value, "date": latest.date, "limit": limit,
                                                      "sex": sex if sex in limits else None}),
                         (measurement_evidence(latest),))]


def _medication_findings(ctx: Context) -> list[LabelFinding]:
    findings = []
    for rule in ctx.label.interactions:
        meds = ctx.active_medications(rule.medication_category)
        if meds:
            findings.append(LabelFinding(rule.id, rule.severity, rule.category,
                                         Reason("interaction", {"message": rule.message, "title": rule.title,
                                                                "medications": tuple(m.text for m in meds)}),
                                         tuple(medication_evidence(m) for m in meds)))
    return findings


def _gap_findings(ctx: Context) -> list[LabelFinding]:
    """The label checks a failed query or a refused resource leaves incomplete (their scopes: `SCOPES`)."""
    gaps = ctx.gaps_for(*(scope for check in LABEL_CHECKS for scope in SCOPES[check]))
    if not gaps:
        return []
    incomplete = tuple(check for check in LABEL_CHECKS if ctx.gaps_for(*SCOPES[check]))
    return [LabelFinding("label-checks-incomplete", WARNING, "warning",
                         Reason("checks-incomplete", {"gaps": gaps, "checks": incomplete}))]


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
    findings += [LabelFinding(f"monitoring-{n}", INFO, "monitoring", Reason("monitoring", {"text": item}))
                 for n, item in enumerate(ctx.label.monitoring, start=1)]
    return tuple(findings)
