"""Reading the diagnoses: what is being treated, and does it establish the indication?

Rules (docs/clinical-rules.md, "Codes and exclusions"):
- The order's reasonCode/reasonReference says what is treated. Reasons that are non-specific
  (R62.52, E34.30, …) or unrecognised say nothing, and the recorded active Conditions are read instead.
- E34.321 / SNOMED 38196001 (or the policy's text patterns) qualify. SNOMED 71003000 qualifies only
  when neutralising anti-GH antibodies are documented (text on any diagnosis; a negated mention such
  as "anti-GH antibodies not detected" or "no neutralizing antibodies" does not count); otherwise unknown.
- A `conditional` rule with `applies_when_text` (E23.0, which the manufacturer's coding sheet lists for
  GH gene deletion) applies only when a diagnosis names the gene deletion: then the antibodies decide
  (met / unknown); without that wording the code is read as usual (E23.0: GH deficiency, an exclusion).
- A conditional rule with `qualifies: false` (a source silent on GH gene deletion) leaves the diagnosis
  unknown even when documented.
- A diagnosis read by a conditional rule (met or unknown) is never also read as an exclusion.
- Legacy E34.3 alone leaves the diagnosis unknown and suggests E34.321; E34.30, R62.52 and the
  other non-specific codes do not establish it either.
- A qualifying code recorded as provisional, differential or unconfirmed leaves the diagnosis unknown.
- When the order's reasons are recognised excluded indications and none qualifies, the diagnosis
  criterion is not met (the exclusion gives the determination).
"""
from __future__ import annotations

from typing import Any, Mapping

from service.policy.codesets import CodeSet, describe, matches_beside, normalise_icd10, text_matches
from service.policy.context import Context, diagnosis_evidence
from service.policy.decision import MET, NOT_MET, UNKNOWN, Criterion, Reason
from service.record.model import Diagnosis
from service.record.frozen import frozen

TENTATIVE = frozenset({"provisional", "differential", "unconfirmed"})

@frozen
class DiagnosisReading:
    reasons: tuple[Diagnosis, ...]               # on the order
    conditions: tuple[Diagnosis, ...]            # active Conditions
    qualifying: tuple[Diagnosis, ...]            # establish the indication (incl. 71003000 with antibodies)
    antibody_text: Diagnosis | None              # the diagnosis documenting neutralising antibodies
    conditional_unmet: tuple[tuple[Diagnosis, Reason], ...]   # 71003000/E23.0 left unknown, with why
    legacy: tuple[tuple[Diagnosis, str], ...]    # E34.3, with its note
    nonspecific: tuple[Diagnosis, ...]
    unconfirmed: tuple[Diagnosis, ...]           # qualifying codes recorded as provisional/differential/unconfirmed
    excluded_reasons: tuple[Diagnosis, ...]      # order reasons matching an exclusion of the policy
    claimed: frozenset[str]                      # references of resources the criterion itself recognised

    def read_as_indication(self, d: Diagnosis) -> bool:
        """Qualifying, or read by a conditional rule (E23.0 documented as GH gene deletion): never an exclusion."""
        return any(d is q for q in self.qualifying) or any(d is c for c, _ in self.conditional_unmet)

    def uses_text(self, d: Diagnosis) -> bool:
        """Exclusion text patterns are not applied to resources the diagnosis criterion recognised."""
        return d.reference not in self.claimed

    @property
    def qualifying_in_reasons(self) -> tuple[Diagnosis, ...]:
        return tuple(d for d in self.qualifying if d.source == "order-reason")

    @property
    def specific_reasons(self) -> bool:
        """The order states what is treated (a qualifying or an excluded diagnosis)."""
        return bool(self.qualifying_in_reasons or self.excluded_reasons)

    @property
    def possibly_qualifying(self) -> bool:
        """A diagnosis that may be the qualifying one once documented (legacy E34.3, 71003000)."""
        return bool(self.legacy or self.conditional_unmet or self.unconfirmed)


def _unique(diagnoses) -> tuple[Diagnosis, ...]:
    seen, out = set(), []
    for d in diagnoses:
        key = (d.reference, d.system, d.code, d.display, d.source)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return tuple(out)


def diagnosis_spec(policy_criteria) -> Mapping[str, Any] | None:
    return next((c for c in policy_criteria if c["type"] == "diagnosis"), None)


def _applies(rule: Mapping[str, Any], diagnoses) -> bool:
    """A conditional rule with `applies_when_text` applies only when some diagnosis has that wording."""
    wanted = rule.get("applies_when_text")
    return not wanted or any(text_matches(wanted, d.display) for d in diagnoses)


def read_diagnoses(ctx: Context, spec: Mapping[str, Any] | None = None) -> DiagnosisReading:
    """The diagnoses on file read against the policy's diagnosis criterion, or against `spec` (another
    diagnosis criterion, such as one alternative of an OR group)."""
    record = ctx.record
    spec = spec or diagnosis_spec(ctx.policy.initial) or {}
    reasons = _unique([d for d in record.diagnoses if d.source == "order-reason"]
                      + list(record.order.reasons if record.order else ()))
    conditions = _unique(d for d in record.diagnoses if d.source != "order-reason" and d.active)
    everything = reasons + conditions
    qualifying_set = CodeSet.from_data(spec.get("qualifying"))
    nonspecific_set = CodeSet.from_data(spec.get("nonspecific"))
    legacy_codes = {normalise_icd10(item["icd10"]): item["note"] for item in spec.get("legacy", ())}

    qualifying, conditional_unmet, legacy, nonspecific, unconfirmed, claimed = [], [], [], [], [], set()
    antibody_text = None
    for d in everything:
        if qualifying_set.code_match(d):
            (unconfirmed if d.verification_status in TENTATIVE else qualifying).append(d)
            claimed.add(d.reference)
            continue
        rule = next((r for r in spec.get("conditional", ()) if CodeSet.from_data(r["match"]).code_match(d)
                     and _applies(r, record.diagnoses + reasons)), None)
        code = normalise_icd10(d.code) if d.system == "icd10cm" else None
        if rule is not None:
            claimed.add(d.reference)
            documented = next((o for o in record.diagnoses + reasons if text_matches(rule["requires_text"], o.display)), None)
            if documented is not None and rule.get("qualifies", True):
                qualifying.append(d)
                antibody_text = documented
            else:
                code = "antibodies-documented" if documented is not None else "no-antibodies"
                conditional_unmet.append((d, Reason(code, {"rule_note": rule["explanation"]})))
        elif code in legacy_codes:
            legacy.append((d, legacy_codes[code]))
            claimed.add(d.reference)
        elif nonspecific_set.code_match(d):
            nonspecific.append(d)
        elif qualifying_set.text_match(d):
            (unconfirmed if d.verification_status in TENTATIVE else qualifying).append(d)
            claimed.add(d.reference)

    excluded_reasons = tuple(
        d for d in reasons
        if not any(d is q for q in qualifying) and not any(d is c for c, _ in conditional_unmet)
        and any(matches_beside(rule.match, d, everything, use_text=d.reference not in claimed)
                for rule in ctx.policy.exclusions if rule.role != "combination"))
    return DiagnosisReading(reasons, conditions, tuple(qualifying), antibody_text, tuple(conditional_unmet),
                            tuple(legacy), tuple(nonspecific), tuple(unconfirmed), excluded_reasons, frozenset(claimed))


def evaluate_diagnosis(spec: Mapping[str, Any], ctx: Context, reading: DiagnosisReading) -> Criterion:
    """Met, not met or unknown, with a code (service.wording.diagnosis words it)."""
    recommended = spec["recommended_icd10"]

    def result(status, evidence, why_code, **facts):
        why = Reason(why_code, facts)
        gaps = ctx.gaps_for("Condition")
        met_by_order = status == MET and any(d.source == "order-reason" for d in reading.qualifying)
        if gaps and not met_by_order:
            status, why = UNKNOWN, Reason("conditions-unavailable", {"gaps": gaps, "on_file": why})
        return Criterion(spec["id"], spec["title"], status, tuple(evidence), why, (),
                         spec.get("threshold_text") or spec["title"], type="diagnosis")

    if reading.excluded_reasons and not reading.qualifying_in_reasons:
        return result(NOT_MET, [diagnosis_evidence(d) for d in reading.excluded_reasons], "order-excluded",
                      names=tuple(describe(d) for d in reading.excluded_reasons))
    if reading.qualifying:
        evidence = [diagnosis_evidence(d) for d in reading.qualifying]
        if reading.antibody_text is not None:
            evidence.append(diagnosis_evidence(reading.antibody_text, Reason("documents-antibodies")))
        first = reading.qualifying_in_reasons[0] if reading.qualifying_in_reasons else reading.qualifying[0]
        return result(MET, evidence, "qualifying", name=describe(first))
    if reading.unconfirmed:
        d = reading.unconfirmed[0]
        return result(UNKNOWN, [diagnosis_evidence(d, Reason("verification-status", {"status": d.verification_status}))
                                for d in reading.unconfirmed],
                      "unconfirmed", name=describe(d), verification_status=d.verification_status)
    if reading.legacy:
        d, note = reading.legacy[0]
        return result(UNKNOWN, [diagnosis_evidence(d) for d, _ in reading.legacy], "legacy-code",
                      code=d.code, note=note, recommended=recommended)
    if reading.conditional_unmet:
        d, why = reading.conditional_unmet[0]
        return result(UNKNOWN, [diagnosis_evidence(d) for d, _ in reading.conditional_unmet], "conditional",
                      name=describe(d), condition=why)
    if reading.nonspecific:
        return result(UNKNOWN, [diagnosis_evidence(d) for d in reading.nonspecific], "nonspecific",
                      names=tuple(describe(d) for d in reading.nonspecific), recommended=recommended)
    return result(UNKNOWN, [diagnosis_evidence(d) for d in reading.reasons],
                  "unrecognised-order-reason" if reading.reasons else "no-diagnosis",
                  names=tuple(describe(d) for d in reading.reasons), recommended=recommended)
