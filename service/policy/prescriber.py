"""The prescriber-specialty clause ("prescribed by or in consultation with a pediatric endocrinologist").

The criterion (`type: prescriber_specialty`) lists the specialties that count: NUCC provider-taxonomy
codes (`nucc`, e.g. 2080P0205X Pediatric Endocrinology), SNOMED CT codes (`snomed`) and wording
(`text`, regular expressions over a role's own text and displays). It reads the prescriber's current
roles and qualifications (service/record/prescriber.py):

- a current role or qualification naming a listed specialty → met;
- one that would name it but whose partial period date spans today → unknown;
- current roles that can be read and name none of them → not met, or — with `consultation: true`
  ("or in consultation with") — unknown: the consultation is documented outside the order;
- no current role that can be read (none on file, only ended or inactive ones, or codes of no known
  system without words) → unknown, with the reason.
"""
from __future__ import annotations

from service.policy.codesets import text_matches
from service.policy.context import Context
from service.policy.decision import MET, NOT_MET, UNKNOWN, Criterion, Evidence, Reason
from service.policy.judging import criterion
from service.record.model import PrescriberRole

READABLE_SYSTEMS = ("nucc", "snomed")


def specialties(role: PrescriberRole) -> str:
    """A role's specialties as the chart codes them ("2080P0205X Pediatric Endocrinology"), else its text."""
    coded = [f"{code} {display}" if display else code for system, code, display in role.codes
             if system in READABLE_SYSTEMS]
    return "; ".join(coded) or role.text or ""


def _evidence(role: PrescriberRole, not_current: bool = False) -> Evidence:
    notes = ((Reason("role-status", {"status": role.status, "note": role.note}),)
             if role.status != "current" or not_current else ())
    return Evidence(kind="prescriber", value=specialties(role) or None, unit=None, date=None,
                    reference=role.reference, display=role.text or None, notes=notes)


def _match(spec, role: PrescriberRole) -> dict | None:
    """What names a listed specialty: the code, or the words (a role with text only)."""
    for system, code, display in role.codes:
        if system in READABLE_SYSTEMS and code in spec.get(system, ()):
            return {"code": code, "display": display}
    found = text_matches(spec.get("text", ()), role.text)
    return {"words": found} if found else None


def _readable(role: PrescriberRole) -> bool:
    return bool(role.text) or any(system in READABLE_SYSTEMS for system, _, _ in role.codes)


def prescriber_specialty(spec, ctx: Context, basis: str) -> Criterion:
    wanted = {"nucc": tuple(spec.get("nucc", ())), "snomed": tuple(spec.get("snomed", ()))}

    def result(status, evidence, code, reason=None, **facts) -> Criterion:
        return criterion(spec, "current", status, evidence, Reason(code, {"wanted": wanted, **facts}), reason=reason)

    facts = ctx.record.prescriber
    if facts is None:
        return result(UNKNOWN, (), "no-order", "no-value")
    if not facts.roles:
        return result(UNKNOWN, (), "prescriber-unreadable", "no-value", record_reason=facts.reason)
    who = facts.reference
    matched = [(r, m) for r in facts.roles if (m := _match(spec, r))]
    current = [(r, m) for r, m in matched if r.status == "current"]
    if current:
        role, match = current[0]
        return result(MET, [_evidence(r) for r, _ in current], "prescriber-met", prescriber=who,
                      role=role.reference, match=match)
    uncertain = [(r, m) for r, m in matched if r.status == "uncertain"]
    if uncertain:
        role, match = uncertain[0]
        return result(UNKNOWN, [_evidence(r) for r, _ in uncertain], "prescriber-uncertain", "undecidable",
                      role=role.reference, match=match, period=role.note)
    readable = [r for r in facts.roles if r.status == "current" and _readable(r)]
    set_aside = [_evidence(r, True) for r, _ in matched] + [
        _evidence(r) for r in facts.roles if r.status != "current" and all(r is not m for m, _ in matched)]
    if not readable:
        return result(UNKNOWN, set_aside[:3], "prescriber-no-current-role", "no-value", prescriber=who,
                      matched_not_current=bool(matched))
    evidence = ([_evidence(r) for r in readable] + set_aside)[:4]
    said = tuple((r.reference, specialties(r)) for r in readable)
    if spec.get("consultation"):
        return result(UNKNOWN, evidence, "consultation-not-documented", "consultation-not-documented",
                      prescriber=who, said=said)
    return result(NOT_MET, evidence, "prescriber-not-listed", prescriber=who, said=said)
