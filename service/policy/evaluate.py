"""`evaluate(record, policies, today)` — a pure function from a patient record to a `Decision`.

Steps: choose the policy file (requested id, else the active Coverage's payer, else the default) and
its version in force on the order's date (authoredOn; the evaluation day when the order has none) —
with no version in force on that day, documentation is needed and nothing else of the policy is read; read
the diagnoses; evaluate the policy's criteria (initial, or re-authorization: carried-over criteria on
baseline values plus the response criteria); find exclusions; run the label checks and the dose
check; then determine:

1. an exclusion with effect does-not-meet        → does-not-meet (investigational before not-medically-necessary)
2. a criterion not met                           → does-not-meet / criteria-not-met
3. a criterion unknown, an exclusion needing documentation, a legacy code, an unverified policy,
   or failed FHIR queries                        → documentation-needed
4. otherwise                                     → meets-criteria

Label findings (contraindications, dose) are reported beside the determination and do not change it:
the determination answers the coverage question, the findings the safety question.

The Decision holds codes and values only (its grounds, each criterion's and finding's `why`);
service.wording.word puts it into words.
"""
from __future__ import annotations

from datetime import date

from service.fhir.prefetch import PRESCRIBER_TYPES
from service.policy import criteria as measurement
from service.fhir.refusals import Refused, describe
from service.policy.context import COVERAGE, SCOPES, Context, gap_resource_types, treatment_start
from service.policy.decision import (CRITERIA_NOT_MET, DOCUMENTATION_NEEDED, DOES_NOT_MEET, INVESTIGATIONAL, MEETS,
                                     NOT_COVERED, NOT_MEDICALLY_NECESSARY, NOT_MET, UNKNOWN, Criterion, Decision,
                                     LabelFinding, PolicyChoice, Reason, VersionChoice)
from service.policy.diagnoses import DiagnosisReading, diagnosis_spec, evaluate_diagnosis, read_diagnoses
from service.policy.dose_limits import dose_limit
from service.policy.dosing import check_dose
from service.policy.groups import any_of
from service.policy.exclusions import find_exclusions
from service.policy.label import label_findings
from service.policy.prescriber import prescriber_specialty
from service.policy.rules import Policy, PolicyFile, PolicySet
from service.record.frozen import replace
from service.record.model import PatientRecord


def choose_policy(record: PatientRecord, policies: PolicySet, policy_id: str | None, default_policy: str,
                  gaps: tuple[str, ...], payer_refused: tuple[str, ...] = ()) -> tuple[PolicyFile, PolicyChoice]:
    """`payer_refused`: refused Coverage and payor Organization resources, worded."""
    if policy_id:
        return policies.get(policy_id), PolicyChoice("requested", f"policy {policy_id} was requested explicitly")
    coverage = record.coverage
    coverage_gap = [g for g in gaps if gap_resource_types((g,)) & {"Coverage", "*"}] + list(payer_refused)
    suffix = f"; coverage could not be fetched or read ({'; '.join(coverage_gap)})" if coverage_gap else ""
    if coverage is not None and (coverage.status or "active") == "active":
        payer = ", ".join(coverage.payer_names) or ", ".join(coverage.payer_identifiers) or None
        policy, detail = policies.for_coverage(coverage)
        if policy is not None:
            return policy, PolicyChoice("coverage-payer", f"{detail} on {coverage.reference}{suffix}",
                                        coverage.reference, payer)
        why = detail or f"no policy file matches payer {payer or '(not named)'}"
        return policies.get(default_policy), PolicyChoice(
            "default", f"{why}; the default policy {default_policy} applies{suffix}", coverage.reference, payer)
    if coverage is not None:
        detail = f"{coverage.reference} is {coverage.status}, not active; the default policy {default_policy} applies"
        return policies.get(default_policy), PolicyChoice("default", detail + suffix, coverage.reference)
    return policies.get(default_policy), PolicyChoice(
        "default", f"no active coverage on file; the default policy {default_policy} applies{suffix}")


def gaps_that_matter(policy: Policy | None, policy_file: PolicyFile, gaps: tuple[str, ...]) -> tuple[str, ...]:
    """The gaps, less those of the prescriber (Practitioner, PractitionerRole) under a policy with no
    prescriber clause: only such a clause reads them (docs/gathering.md, "The prescriber")."""
    if policy.reads_prescriber if policy is not None else any(v.reads_prescriber for v in policy_file.versions):
        return gaps
    return tuple(g for g in gaps if not gap_resource_types((g,)) <= PRESCRIBER_TYPES)


def choose_version(policy_file: PolicyFile, record: PatientRecord, today: date) -> tuple[Policy | None, VersionChoice]:
    """The version in force on the order's date (its authoredOn), else on the evaluation day; None when no
    version is in force on that day (never another version instead)."""
    order = record.order
    authored = order.authored_on if order is not None else None
    on = authored or today
    choice = VersionChoice(on, "order-date" if authored else "evaluation-day",
                           order.authored_on_text if order is not None else None, policy_file.spans)
    return policy_file.in_force(on), choice


def _technical(criterion: Criterion, ctx: Context, resource_types: tuple[str, ...]) -> Criterion:
    """Unknown when a query that could have held its data failed; what is on file is kept as the inner reason."""
    gaps = ctx.gaps_for(*resource_types)
    if not gaps:
        return criterion
    return replace(criterion, status=UNKNOWN, missing_test=None, reason=None,
                   why=Reason("records-unavailable", {"gaps": gaps, "on_file": criterion.why}))


EVALUATORS = {**measurement.EVALUATORS, "prescriber_specialty": prescriber_specialty, "dose_limit": dose_limit}
RESOURCE_TYPES = {**measurement.RESOURCE_TYPES, "prescriber_specialty": tuple(PRESCRIBER_TYPES),
                  "dose_limit": ("Observation",)}
# Read as of today even when carried over to a re-authorization (no pre-treatment value to read).
CURRENT_ONLY = frozenset({"diagnosis", "age", "prescriber_specialty", "dose_limit", "velocity_gain"})


def _criterion(spec, ctx: Context, reading: DiagnosisReading, carried: bool) -> Criterion:
    """One criterion of the policy, on current values, or on baseline ones when carried over."""
    if spec["type"] == "any_of":
        return any_of(spec, tuple(_criterion(sub, ctx, reading, carried) for sub in spec["criteria"]))
    if spec["type"] == "diagnosis":
        own = reading if spec is diagnosis_spec(ctx.policy.initial) else read_diagnoses(ctx, spec)
        criterion = evaluate_diagnosis(spec, ctx, own)
    else:
        basis = "baseline" if carried and spec["type"] not in CURRENT_ONLY else "current"
        criterion = _technical(EVALUATORS[spec["type"]](spec, ctx, basis), ctx, RESOURCE_TYPES[spec["type"]])
    return replace(criterion, type=spec["type"])


def _evaluate_criteria(ctx: Context, reading: DiagnosisReading) -> tuple[Criterion, ...]:
    policy = ctx.policy
    if ctx.reauthorization:
        plan = [(c, True) for c in policy.initial if c["id"] in policy.carry_over]
        plan += [(c, False) for c in policy.reauthorization]
    else:
        plan = [(c, False) for c in policy.initial]
    return tuple(_criterion(spec, ctx, reading, carried) for spec, carried in plan)


def _determine(policy: Policy, criteria, exclusions, reading: DiagnosisReading,
               gaps) -> tuple[str, str | None, tuple[Reason, ...]]:
    """The determination, its sub-reason and its grounds (the criteria and exclusions that decide it,
    and what else leaves it open), in the order they are worded."""
    blocking = [e for e in exclusions if e.effect == DOES_NOT_MEET]
    failed = tuple(Reason("criterion", {"id": c.id}) for c in criteria if c.status == NOT_MET)
    if blocking:
        kinds = {e.kind for e in blocking}
        sub = next(k for k in (INVESTIGATIONAL, NOT_COVERED, NOT_MEDICALLY_NECESSARY) if k in kinds)
        return DOES_NOT_MEET, sub, tuple(Reason("exclusion", {"id": e.id}) for e in blocking) + failed
    if failed:
        return DOES_NOT_MEET, CRITERIA_NOT_MET, failed
    grounds = [Reason("criterion", {"id": c.id}) for c in criteria if c.status == UNKNOWN]
    grounds += [Reason("exclusion", {"id": e.id}) for e in exclusions if e.effect == DOCUMENTATION_NEEDED]
    legacy_on_order = [d for d, _ in reading.legacy if d.source == "order-reason"]
    if legacy_on_order and reading.qualifying:
        grounds.append(Reason("legacy-order-code", {"code": legacy_on_order[0].code, "note": reading.legacy[0][1]}))
    if not policy.verified:
        grounds.append(Reason("policy-unverified", {"note": policy.verification_note}))
    if gaps:
        grounds.append(Reason("records-unavailable", {"gaps": tuple(gaps)}))
    if grounds:
        return DOCUMENTATION_NEEDED, None, tuple(grounds)
    return MEETS, None, ()


def coding_supported(reading: DiagnosisReading, exclusions) -> bool:
    """Coding help ("use E34.321") only where the record supports that diagnosis: a qualifying or possibly
    qualifying diagnosis is on file and no documented cause or indication excludes the use."""
    if not (reading.qualifying or reading.possibly_qualifying):
        return False
    return not any(e.effect == DOES_NOT_MEET and e.basis != "medication" for e in exclusions)


def _coding(reading: DiagnosisReading, recommended: str | None) -> Reason | None:
    """Coding advice: the policy's note on a legacy code on file, or the code to use when only another
    system's code (SNOMED CT) or another ICD-10-CM code names the qualifying diagnosis."""
    if recommended is None:
        return None
    if reading.legacy:
        return Reason("legacy-code", {"note": reading.legacy[0][1]})
    if reading.qualifying and not any(
            d.system == "icd10cm" and (d.code or "").upper() == recommended for d in reading.qualifying):
        return Reason("code-as", {"code": recommended})
    return None


def _label_limitations(ctx: Context, policies: PolicySet, default_policy: str, exclusions,
                       kind: str) -> tuple[LabelFinding, ...]:
    """The label's limitations of use (not for secondary IGF-1 deficiency: GH deficiency, malnutrition,
    hypothyroidism, chronic pharmacologic corticosteroids) apply under every plan. Under a payer policy
    that does not name the cause itself, they are reported as the label's own findings (warnings)."""
    if kind == "label" or default_policy not in policies.ids:
        return ()
    label_file = policies.get(default_policy)
    label_policy = label_file.in_force(ctx.today)
    if label_file.kind != "label" or label_policy is None:
        return ()
    label_ctx = replace(ctx, policy=label_policy)
    named = {e.id for e in exclusions}
    return tuple(
        LabelFinding("label-limitation-" + e.id, "warning", "indication",
                     Reason("label-limitation", {"matched": e.matched}), e.evidence)
        for e in find_exclusions(label_ctx, read_diagnoses(label_ctx)) if e.id not in named)


def _ordered(findings):
    """Critical first, then warnings, then information; the monitoring note last."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    return tuple(sorted(findings, key=lambda f: (f.category == "monitoring", rank[f.severity])))


def _no_version_in_force(ctx: Context, policy_file: PolicyFile, choice: PolicyChoice, version_choice: VersionChoice,
                         policies: PolicySet, default_policy: str) -> Decision:
    """No version of the chosen policy is in force on the order's date: its criteria are not read (another
    version's would be a guess), documentation is needed, and the label's findings and dose still apply."""
    ref = replace(policy_file.ref(), version_choice=version_choice)
    findings = label_findings(ctx) + _label_limitations(ctx, policies, default_policy, (), policy_file.kind)
    dose, dose_findings = check_dose(ctx)
    authorization = "re-authorization" if ctx.reauthorization else "initial"
    gaps = _coverage_gaps(ctx)
    grounds = (Reason("no-version-in-force"),) + ((Reason("records-unavailable", {"gaps": tuple(gaps)}),)
                                                   if gaps else ())
    return Decision(
        policy=ref, policy_choice=choice, authorization=authorization,
        treatment_start=ctx.treatment_start if ctx.reauthorization else None, criteria=(), exclusions=(),
        label_findings=_ordered(findings + dose_findings), dose=dose, determination=DOCUMENTATION_NEEDED,
        sub_reason=None, grounds=grounds, approval_months=None,
        recommended_icd10=None, coding=None, hcpcs=None, benefit_notes=(), missing_tests=(),
        technical=bool(gaps), technical_gaps=gaps, evaluated_on=ctx.today, label=ctx.label.ref())


def _coverage_gaps(ctx: Context) -> tuple[str, ...]:
    """The failed queries (all of them, as their scope cannot always be told) and the refused resources
    the coverage decision could have read (`COVERAGE` and the criteria's scopes): they leave it open
    and make the answer technical. A resource only a safety check reads (an allergy, a weight) does not."""
    kinds = _criterion_types(ctx.policy.initial + ctx.policy.reauthorization) if ctx.policy is not None else ()
    return ctx.gaps + ctx.refused_for(*COVERAGE, *(scope for kind in kinds for scope in SCOPES.get(kind, ())))


def _criterion_types(specs):
    """The types of the criteria, and of those a group (any_of) holds."""
    for spec in specs:
        yield spec["type"]
        yield from _criterion_types(spec.get("criteria") or ())


def evaluate(record: PatientRecord, policies: PolicySet, today: date, *, policy_id: str | None = None,
             default_policy: str = "fda-label", technical_gaps: tuple[str, ...] = (),
             refused: tuple[Refused, ...] = ()) -> Decision:
    """Evaluate one patient record against one policy (see module docstring). Pure: no I/O, no clock.
    `refused`: the resources of the chart not read (service/fhir/refusals.py), each with its scope."""
    fetch_gaps = tuple(technical_gaps)
    payer_refused = describe(r for r in refused if set(r.scopes) & set(SCOPES["policy-choice"]))
    policy_file, choice = choose_policy(record, policies, policy_id, default_policy, fetch_gaps, payer_refused)
    policy, version_choice = choose_version(policy_file, record, today)
    fetch_gaps = gaps_that_matter(policy, policy_file, fetch_gaps)
    reauthorization = record.reauthorization
    ctx = Context(record, today, policy, policies.label, reauthorization, treatment_start(record),
                  fetch_gaps, gap_resource_types(fetch_gaps), tuple(refused))
    gaps = _coverage_gaps(ctx)
    if policy is None:
        return _no_version_in_force(ctx, policy_file, choice, version_choice, policies, default_policy)
    reading = read_diagnoses(ctx)
    criteria = _evaluate_criteria(ctx, reading)
    exclusions = find_exclusions(ctx, reading)
    findings = label_findings(ctx) + _label_limitations(ctx, policies, default_policy, exclusions, policy.kind)
    dose, dose_findings = check_dose(ctx)
    determination, sub_reason, grounds = _determine(policy, criteria, exclusions, reading, gaps)
    authorization = "re-authorization" if reauthorization else "initial"
    months = policy.approval_reauthorization_months if reauthorization else policy.approval_initial_months
    recommended = policy.recommended_icd10 if coding_supported(reading, exclusions) else None
    missing = []
    for c in criteria:
        if c.status == UNKNOWN and c.missing_test and c.missing_test not in missing:
            missing.append(c.missing_test)
    return Decision(
        policy=replace(policy.ref(), version_choice=version_choice), policy_choice=choice,
        authorization=authorization,
        treatment_start=ctx.treatment_start if reauthorization else None,
        criteria=criteria, exclusions=exclusions,
        label_findings=_ordered(findings + dose_findings),
        dose=dose, determination=determination, sub_reason=sub_reason, grounds=grounds,
        approval_months=months, recommended_icd10=recommended, coding=_coding(reading, recommended),
        hcpcs=policy.hcpcs, hcpcs_note=policy.hcpcs_note, hcpcs_display=policy.hcpcs_display, label=ctx.label.ref(),
        benefit_notes=policy.benefit_notes, missing_tests=tuple(missing),
        technical=bool(gaps), technical_gaps=gaps, evaluated_on=today,
    )
