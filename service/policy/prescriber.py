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
from service.policy.decision import MET, NOT_MET, UNKNOWN, Criterion, Evidence
from service.record.model import PrescriberRole

READABLE_SYSTEMS = ("nucc", "snomed")


def _specialties(role: PrescriberRole) -> str:
    coded = [f"{code} {display}" if display else code for system, code, display in role.codes
             if system in READABLE_SYSTEMS]
    return "; ".join(coded) or role.text or "no specialty stated"


def _evidence(role: PrescriberRole, note: str | None = None) -> Evidence:
    notes = "; ".join(n for n in (role.note, note) if n) or None
    return Evidence(kind="prescriber", value=_specialties(role), unit=None, date=None, reference=role.reference,
                    display=role.text or None, note=notes)


def _match(spec, role: PrescriberRole) -> str | None:
    """What names a listed specialty: the code, or the words (a role with text only)."""
    for system, code, display in role.codes:
        if code in spec.get(system if system in READABLE_SYSTEMS else "", ()):
            return f"{code}{f' {display}' if display else ''}"
    found = text_matches(spec.get("text", ()), role.text)
    return f"\u201c{found}\u201d (read from the role's words)" if found else None


def _readable(role: PrescriberRole) -> bool:
    return bool(role.text) or any(system in READABLE_SYSTEMS for system, _, _ in role.codes)


def prescriber_specialty(spec, ctx: Context, basis: str) -> Criterion:
    wanted = spec.get("threshold_text") or "prescriber's specialty: " + ", ".join(
        [f"NUCC {c}" for c in spec.get("nucc", ())] + [f"SNOMED CT {c}" for c in spec.get("snomed", ())])

    def result(status, evidence, explanation, documentation=None, reason=None) -> Criterion:
        return Criterion(spec["id"], spec["title"], status, wanted, tuple(evidence), explanation, documentation,
                         None, "current", reason=reason)

    needed = ("The prescriber's specialty: a current PractitionerRole with a NUCC provider-taxonomy specialty, "
              "or a note of the consultation with the specialist.")
    facts = ctx.record.prescriber
    if facts is None:
        return result(UNKNOWN, (), "There is no order, so there is no prescriber to read.", needed, "no-value")
    if not facts.roles:
        return result(UNKNOWN, (), f"The prescriber's specialty cannot be read: {facts.reason}.", needed, "no-value")
    matched = [(r, why) for r in facts.roles if (why := _match(spec, r))]
    current = [(r, why) for r, why in matched if r.status == "current"]
    if current:
        role, why = current[0]
        return result(MET, [_evidence(r) for r, _ in current],
                      f"The prescriber ({facts.reference}) holds {why} in {role.reference}.")
    uncertain = [(r, why) for r, why in matched if r.status == "uncertain"]
    if uncertain:
        role, why = uncertain[0]
        return result(UNKNOWN, [_evidence(r) for r, _ in uncertain],
                      f"{role.reference} names {why}, but its period {role.note}.",
                      "The role's full period dates.", "undecidable")
    readable = [r for r in facts.roles if r.status == "current" and _readable(r)]
    set_aside = [_evidence(r, "not current") for r, _ in matched] + [
        _evidence(r) for r in facts.roles if r.status != "current" and all(r is not m for m, _ in matched)]
    if not readable:
        why = ("only roles that are not current name a listed specialty" if matched else
               "no current role or qualification states a specialty this policy can read")
        return result(UNKNOWN, set_aside[:3], f"The prescriber's specialty cannot be read ({facts.reference}): {why}.",
                      needed, "no-value")
    evidence = [_evidence(r) for r in readable] + set_aside
    said = "; ".join(f"{r.reference}: {_specialties(r)}" for r in readable)
    if spec.get("consultation"):
        return result(UNKNOWN, evidence[:4],
                      f"The prescriber ({facts.reference}) is not recorded with a listed specialty ({said}); the "
                      f"policy also accepts a prescription in consultation with such a specialist.",
                      "A note of the consultation with the specialist the policy names.", "consultation-not-documented")
    return result(NOT_MET, evidence[:4],
                  f"The prescriber ({facts.reference}) is not recorded with a listed specialty ({said}).")
