"""The evaluator's answer: frozen dataclasses that cards, the SMART app, the CLI and the audit log render.

Every criterion is met / not_met / unknown with the evidence it used (or the reason it is unknown).
Decide, then word: the evaluator fills the structured fields only — codes and values (`Reason`,
`Limit`) — and leaves every text field (marked "words" below) None; `service.wording.word(decision)`
fills them from the structured fields alone, once, at the edge (pipeline, SMART app, command line).
`Decision.to_jsonable()` gives plain JSON types (dates as ISO strings).
"""
from __future__ import annotations

from dataclasses import field
from datetime import date
from typing import Any, Mapping

from service.record.frozen import frozen
from service.record.model import to_jsonable

# Criterion.status
MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
# Decision.determination
MEETS = "meets-criteria"
DOES_NOT_MEET = "does-not-meet"
DOCUMENTATION_NEEDED = "documentation-needed"
# Decision.sub_reason when determination is does-not-meet
CRITERIA_NOT_MET = "criteria-not-met"
NOT_MEDICALLY_NECESSARY = "not-medically-necessary"
INVESTIGATIONAL = "investigational"
NOT_COVERED = "not-covered"          # the source says "not covered" without naming a category
# The version named (audit row, `policy check`, an example's expect.version) when none is in force
NO_VERSION_IN_FORCE = "none in force"
# Criterion.missing_test: the test that would settle an unknown criterion
# (the ids: service.policy.tests_to_order.CRITERION_TESTS)


@frozen
class Evidence:
    """One fact a criterion or finding used, with where it came from."""

    kind: str                        # height | height_sds | height_centile | igf1 | igf1_sds | gh | bone_age |
    #                                  growth_velocity | weight | age | diagnosis | medication | allergy |
    #                                  epiphyses | order | coverage
    value: float | str | None
    unit: str | None
    date: date | None
    reference: str
    original_value: float | str | None = None
    original_unit: str | None = None
    comparator: str | None = None
    code: str | None = None
    display: str | None = None
    sds: float | None = None         # height or IGF-1 SDS, unrounded (the value compared)
    centile: float | None = None     # height centile (0–100)
    note: str | None = None          # e.g. why the value was not used
    # The compared figure as shown beside its limit, with the decimals that keep it on the side the
    # decision puts it ("-2.2549", not "-2.25", for "below -2.25"); set on the value a criterion judged.
    value_text: str | None = None
    sds_text: str | None = None
    notes: tuple["Reason", ...] = ()  # structured notes; service.wording.word adds their words to `note`


@frozen
class Reason:
    """Why a criterion, exclusion, finding or dose came out as it did: a code and the values behind it
    (the compared value exactly, the limit, dates, counts, the names of what matched, text the policy
    or label file gives). Never a sentence: service.wording words each code."""

    code: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.facts[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.facts.get(key, default)


@frozen
class Limit:
    """One limit a criterion applies, as the policy file states it (bone age: one per sex)."""

    op: str | None
    threshold: float | None          # None: the policy does not know the plan's limit
    unit: str | None = None
    sex: str | None = None


@frozen
class Criterion:
    id: str
    title: str
    status: str                      # met | not_met | unknown
    evidence: tuple[Evidence, ...]
    why: Reason                      # the outcome as a code with its values (service.wording.criteria words it)
    limits: tuple[Limit, ...] = ()   # the rule: the policy's limits (none for a diagnosis)
    rule_text: str | None = None     # the policy's own wording of the rule (its threshold_text), passed through
    missing_test: str | None = None  # igf1 | gh-stimulation | bone-age | height, when a test would settle it
    basis: str = "current"           # current | baseline (pre-treatment values at re-authorization)
    type: str | None = None          # the policy's criterion type (diagnosis, height_sds, igf1_sds, gh_peak, …)
    # Why, in short: no-value | limit-unknown | undecidable (a bound or a partial date that cannot decide)
    # | None (decided on the value)
    reason: str | None = None
    caveat: Reason | None = None     # a remark that applies (the policy's note on a value that does not meet it)
    # words (service.wording.word)
    threshold: str | None = None     # the rule, e.g. "height SDS ≤ −3.0 (< 0.1st centile)"
    explanation: str | None = None   # one line
    documentation_needed: str | None = None   # when unknown: what would settle it
    note: str | None = None          # the caveat, on a value that does not meet the criterion
    parts: tuple["Criterion", ...] = ()   # an OR group's (any_of) own criteria, each decided


@frozen
class PolicyVersion:
    """One dated version of a policy file (`versions:`), or the file's only version when it has none."""

    name: str                        # "2025-09"; an undeclared version is named by its effective date
    effective_from: date | None      # inclusive; None: in force since before any date on file
    effective_to: date | None        # inclusive; None: open-ended
    declared: bool = True            # False: the file has no `versions` list

    def covers(self, day: date) -> bool:
        return (self.effective_from is None or self.effective_from <= day) and \
            (self.effective_to is None or day <= self.effective_to)


@frozen
class VersionChoice:
    """The day a policy version was chosen for, and why that day."""

    on: date                         # the order's date, or the evaluation day
    basis: str                       # order-date | evaluation-day
    order_date_text: str | None      # the order's authoredOn as written, when present but not a full date
    on_file: tuple[PolicyVersion, ...]


@frozen
class PolicyRef:
    id: str
    title: str
    kind: str                        # payer | label
    source_title: str
    source_url: str
    verified: bool
    verification_note: str | None
    last_review_date: date | None
    effective_date: date | None
    version: PolicyVersion | None = None   # the version applied; None when none is in force on `choice.on`
    digest: str | None = None              # sha256 of the policy file's bytes (hex)
    version_choice: VersionChoice | None = None


@frozen
class LabelRef:
    """The label facts the wording needs, as label.yaml states them (never repeated in the cards)."""

    source_title: str
    source_url: str
    start_range_mg_per_kg: tuple[float, float]
    maximum_mg_per_kg: float
    doses_per_day: int
    concentration_mg_per_ml: float
    support: tuple[tuple[str, str], ...] = ()   # label.yaml `support`: dispensing, manufacturer programme


@frozen
class PolicyChoice:
    reason: str                      # coverage-payer | default | requested
    detail: str
    coverage_reference: str | None = None
    payer: str | None = None


@frozen
class Exclusion:
    id: str
    kind: str                        # not-medically-necessary | investigational | not-covered
    title: str
    effect: str                      # does-not-meet | documentation-needed
    basis: str                       # order-reason | sole-diagnosis | recorded | medication
    matched: str                     # the diagnosis or medication that matched
    evidence: tuple[Evidence, ...]
    why: Reason                      # service.wording.exclusions words it
    explanation: str | None = None   # words


@frozen
class LabelFinding:
    id: str
    severity: str                    # critical | warning | info
    category: str                    # contraindication | warning | dose | interaction | monitoring
    why: Reason                      # service.wording.findings words it
    evidence: tuple[Evidence, ...] = ()
    title: str | None = None         # words: a few for card summaries, e.g. "Allergy to benzyl alcohol"
    message: str | None = None       # words


@frozen
class ProposedDose:
    dose_mg: float                   # rounded down to a measurable step (0.01 mL = 0.1 mg)
    volume_ml: float                 # at the label concentration
    mg_per_kg: float                 # what the proposed dose gives (unrounded)
    cap: str                         # what it keeps to: start-range-top | maximum | ordered (the ordered mg/kg)
    concentration_mg_per_ml: float   # the label's (10 mg/mL)
    per_day: int                     # the label's doses per day (2)
    mg_per_kg_text: str              # mg/kg as shown beside the limit it keeps
    rule: str | None = None          # words: "top of the label starting range 0.04–0.08 mg/kg per dose, …"


@frozen
class DoseFinding:
    status: str                      # ok | above-maximum | above-daily-maximum | above-start-range | below-range |
    #                                  unknown (the most serious limit crossed wins)
    why: Reason                      # the outcome with its values (service.wording.dose words it)
    setting: str                     # new-start | continuing
    dose_mg: float | None
    original_value: float | None
    original_unit: str | None
    per_day: int | None
    frequency_text: str | None
    route: str | None
    mg_per_kg: float | None
    weight_kg: float | None
    weight_reference: str | None
    weight_date: date | None
    proposed: ProposedDose | None = None
    order_reference: str | None = None
    mg_per_kg_text: str | None = None          # per dose, with the decimals that agree with the verdict
    mg_per_kg_per_day_text: str | None = None  # per day at the ordered frequency, likewise
    # words (service.wording.word)
    message: str | None = None
    allowed: str | None = None       # the range that applies
    limit: str | None = None         # the limit `status` says was crossed ("0.12 mg/kg per dose maximum")


@frozen
class Decision:
    policy: PolicyRef
    policy_choice: PolicyChoice
    authorization: str               # initial | re-authorization
    treatment_start: date | None     # first mecasermin date (re-authorization baseline cut-off)
    criteria: tuple[Criterion, ...]
    exclusions: tuple[Exclusion, ...]
    label_findings: tuple[LabelFinding, ...]
    dose: DoseFinding | None
    determination: str               # meets-criteria | does-not-meet | documentation-needed
    sub_reason: str | None           # criteria-not-met | not-medically-necessary | investigational | not-covered
    # Why documentation is needed / why it does not meet: criterion <id>, exclusion <id>, legacy-order-code,
    # policy-unverified, records-unavailable, no-version-in-force (service.wording.summary words them, one line each)
    grounds: tuple[Reason, ...]
    approval_months: int | None      # the length that would apply (initial or re-authorization)
    recommended_icd10: str | None
    coding: Reason | None            # coding advice: legacy-code (the policy's note) | code-as (the code)
    hcpcs: str | None
    benefit_notes: tuple[str, ...]
    missing_tests: tuple[str, ...]   # tests that would settle unknown criteria, in criterion order
    technical: bool
    technical_gaps: tuple[str, ...]
    evaluated_on: date
    hcpcs_note: str | None = None    # e.g. the source does not confirm the HCPCS code
    hcpcs_display: str | None = None  # the code's descriptor, as the policy file gives it
    label: LabelRef | None = None    # the label facts (label.yaml) the cards and letter word
    # words (service.wording.word)
    summary: str | None = None
    reasons: tuple[str, ...] = ()    # the grounds, one line each
    coding_note: str | None = None

    def criterion(self, criterion_id: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        raise KeyError(criterion_id)

    def findings(self, *, severity: str | None = None, category: str | None = None) -> tuple[LabelFinding, ...]:
        return tuple(f for f in self.label_findings
                     if (severity is None or f.severity == severity) and (category is None or f.category == category))

    def to_jsonable(self) -> dict[str, Any]:
        return to_jsonable(self)
