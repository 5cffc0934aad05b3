"""Policies and label rules as typed, immutable values (built by `service.policy.loader`).

Criteria stay as read-only mappings of the validated file data (each criterion type reads its own
fields); metadata, payer matching, exclusions and label limits get typed fields.
"""
from __future__ import annotations

import re
from dataclasses import field
from datetime import date
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from service.policy.codesets import CodeSet
from service.policy.decision import LabelRef, PolicyRef, PolicyVersion
from service.record.categories import MedicationCategories
from service.record.exact import exact
from service.record.frozen import frozen, replace
from service.record.model import CoverageFacts


class UnknownPolicy(KeyError):
    """A policy id that no loaded file defines."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown policy"


def freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (the record builder reads JSON shapes)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@frozen
class PayerMatch:
    identifiers: tuple[str, ...]
    name_patterns: tuple[str, ...]
    exclude_name_patterns: tuple[str, ...]
    exclude_programmes: tuple[str, ...]
    example_names: tuple[str, ...] = ()   # payer names the patterns are meant to match (the overlap check's witnesses)

    def claims_name(self, name: str) -> bool:
        """A payer named `name` would be matched by name (a name pattern, and no exclusion by name)."""
        return any(re.search(p, name, re.IGNORECASE) for p in self.name_patterns) and \
            not any(re.search(p, name, re.IGNORECASE) for p in self.exclude_name_patterns)

    def shares_identifier(self, other: "PayerMatch") -> str | None:
        """An identifier both could match ('system|value' and 'value' match when the values agree)."""
        for mine in self.identifiers:
            for theirs in other.identifiers:
                if mine == theirs or ("|" not in mine or "|" not in theirs) and \
                        mine.rsplit("|", 1)[-1] == theirs.rsplit("|", 1)[-1]:
                    return mine if "|" in mine else theirs
        return None

    def match(self, coverage: CoverageFacts) -> tuple[bool, str]:
        """(matched, detail): which payer name/identifier matched, or why an apparent match is excluded."""
        hit = None
        for wanted in self.identifiers:
            for have in coverage.payer_identifiers:
                if have == wanted or ("|" not in wanted and have.rsplit("|", 1)[-1] == wanted):
                    hit = f"payer identifier {have}"
        for pattern in self.name_patterns:
            for name in coverage.payer_names:
                if hit is None and re.search(pattern, name, re.IGNORECASE):
                    hit = f"payer {name}"
        if hit is None:
            return False, ""
        programme = coverage.government_programme
        if programme and programme.lower() in {p.lower() for p in self.exclude_programmes}:
            return False, f"{hit} matched, but the policy does not apply to {programme} plans"
        for pattern in self.exclude_name_patterns:
            for name in coverage.payer_names + coverage.plan_names:
                if re.search(pattern, name, re.IGNORECASE):
                    return False, f"{hit} matched, but the policy does not apply to plan {name}"
        return True, hit


@frozen
class ExclusionRule:
    id: str
    kind: str
    role: str
    title: str
    match: tuple[CodeSet, ...]
    note: str | None


@frozen
class Policy:
    id: str
    title: str
    kind: str
    verified: bool
    verification_note: str | None
    source_title: str
    source_url: str
    source_note: str | None
    last_review_date: date | None
    effective_date: date | None
    approval_initial_months: int | None
    approval_reauthorization_months: int | None
    benefit_notes: tuple[str, ...]
    hcpcs: str | None
    recommended_icd10: str | None
    payer: PayerMatch
    initial: tuple[Mapping[str, Any], ...]
    carry_over: tuple[str, ...]
    reauthorization: tuple[Mapping[str, Any], ...]
    exclusions: tuple[ExclusionRule, ...]
    path: str
    hcpcs_note: str | None = None     # e.g. the source does not confirm the code
    hcpcs_display: str | None = None  # e.g. "Injection, mecasermin, 1 mg"
    version: PolicyVersion | None = None   # the dated version of the file these rules are
    digest: str | None = None              # sha256 of the file's bytes
    # DTR questions by the criterion or exclusion id they settle (file `questions`, read by service/dtr)
    questions: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_data(cls, data: Mapping, path: Path, version: PolicyVersion | None = None,
                  digest: str | None = None) -> "Policy":
        """One version's rules from a validated document (the file's top level with the version's sections)."""
        frozen = freeze(data)
        payer = data["payer_match"]
        exclude = payer.get("exclude") or {}
        coding = data.get("coding") or {}
        return cls(
            id=data["id"], title=data["title"], kind=data["kind"], verified=data["verified"],
            verification_note=data.get("verification_note"),
            source_title=data["source"]["title"], source_url=data["source"]["url"],
            source_note=data["source"].get("note"),
            last_review_date=_date(data["last_review_date"]), effective_date=_date(data["effective_date"]),
            approval_initial_months=data["approval_months"]["initial"],
            approval_reauthorization_months=data["approval_months"]["reauthorization"],
            benefit_notes=tuple(data["benefit_notes"]),
            hcpcs=coding.get("hcpcs"), recommended_icd10=coding.get("recommended_icd10"),
            payer=PayerMatch(tuple(payer["identifiers"]), tuple(payer["name_patterns"]),
                             tuple(exclude.get("name_patterns", ())), tuple(exclude.get("government_programmes", ())),
                             tuple(payer.get("example_names", ()))),
            initial=frozen["criteria"]["initial"],
            carry_over=frozen["criteria"]["reauthorization"]["carry_over"],
            reauthorization=frozen["criteria"]["reauthorization"]["criteria"],
            exclusions=tuple(ExclusionRule(e["id"], e["kind"], e["role"], e["title"],
                                           tuple(CodeSet.from_data(m) for m in e["match"]), e.get("note"))
                             for e in data["exclusions"]),
            path=str(path), hcpcs_note=coding.get("hcpcs_note"), hcpcs_display=coding.get("hcpcs_display"),
            version=version, digest=digest, questions=frozen.get("questions") or MappingProxyType({}),
        )

    @property
    def reads_prescriber(self) -> bool:
        """Does a criterion (or a criterion of an OR group) ask who prescribes?"""
        return any(c["type"] == "prescriber_specialty" or any(
            sub["type"] == "prescriber_specialty" for sub in c.get("criteria", ()))
            for c in self.initial + self.reauthorization)

    def ref(self) -> PolicyRef:
        return PolicyRef(self.id, self.title, self.kind, self.source_title, self.source_url, self.verified,
                         self.verification_note, self.last_review_date, self.effective_date, self.version, self.digest)


@frozen
class PolicyFile:
    """One policy file: who it matches, its dated versions (each a `Policy`), and its example cases.

    Versions do not overlap (the loader checks); a day between, before or after them has none in force."""

    id: str
    title: str
    kind: str
    payer: PayerMatch
    path: str
    digest: str                               # sha256 of the file's bytes (hex)
    versions: tuple[Policy, ...]              # oldest first
    examples: tuple[Mapping[str, Any], ...]   # `policy check` runs them; the service never does

    def in_force(self, day: date) -> Policy | None:
        return next((v for v in self.versions if v.version.covers(day)), None)

    def version(self, name: str) -> Policy | None:
        return next((v for v in self.versions if v.version.name == name), None)

    @property
    def spans(self) -> tuple[PolicyVersion, ...]:
        return tuple(v.version for v in self.versions)

    @property
    def source_urls(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.source_url for v in self.versions))

    def ref(self) -> PolicyRef:
        """The file named without a version (none is in force): the latest version's metadata."""
        latest = self.versions[-1]
        return replace(latest.ref(), version=None)


@frozen
class DosingRules:
    start_low: float
    start_high: float
    titration_step: float
    maximum: float
    doses_per_day: int
    weight_max_age_days: int
    concentration_mg_per_ml: float
    measurable_step_ml: float
    vial_ml: float | None = None     # one vial's volume (4 mL), for quantity limits in vials

    @property
    def step_mg(self) -> Fraction:
        """The smallest measurable dose step in mg (0.01 mL × 10 mg/mL = 0.1 mg), exactly."""
        return exact(self.measurable_step_ml) * exact(self.concentration_mg_per_ml)

    @property
    def daily_maximum(self) -> Fraction:
        """The label maximum per day: the per-dose maximum at the labelled frequency (0.12 × 2 = 0.24)."""
        return exact(self.maximum) * self.doses_per_day


@frozen
class InteractionRule:
    id: str
    medication_category: str
    severity: str
    category: str
    message: str
    title: str | None = None


@frozen
class LabelRules:
    source_title: str
    source_url: str
    hypersensitivity_substances: tuple[str, ...]
    ignore_verification: tuple[str, ...]
    malignancy: CodeSet
    malignancy_history: bool
    malignancy_abbreviations: tuple[str, ...]   # case-sensitive, read in a Condition's own wording
    malignancy_hedges: tuple[str, ...]          # wording that only mentions a malignancy → warning
    malignancy_history_text: tuple[str, ...]    # wording that makes it a history
    minimum_age_years: float
    routes_allowed: tuple[str, ...]
    routes_contraindicated: tuple[str, ...]
    in_situ_neoplasm: CodeSet
    advanced_bone_age: Mapping[str, float]
    dosing: DosingRules
    interactions: tuple[InteractionRule, ...]
    monitoring: tuple[str, ...]
    path: str
    support: Mapping[str, str] | None = None   # dispensing and manufacturer programme (label.yaml)
    medication_categories: MedicationCategories = MedicationCategories(())

    @classmethod
    def from_data(cls, data: Mapping, path: Path) -> "LabelRules":
        contra, warn, dose = data["contraindications"], data["warnings"], data["dosing"]
        return cls(
            source_title=data["source"]["title"], source_url=data["source"]["url"],
            hypersensitivity_substances=tuple(contra["hypersensitivity"]["substances"]),
            ignore_verification=tuple(contra["hypersensitivity"]["ignore_verification"]),
            malignancy=CodeSet.from_data(contra["malignancy"]["match"]),
            malignancy_history=contra["malignancy"]["include_history"],
            malignancy_abbreviations=tuple(contra["malignancy"].get("abbreviations", ())),
            malignancy_hedges=tuple(contra["malignancy"].get("hedge_text", ())),
            malignancy_history_text=tuple(contra["malignancy"].get("history_text", ())),
            minimum_age_years=contra["minimum_age_years"],
            routes_allowed=tuple(contra["route"]["allowed"]),
            routes_contraindicated=tuple(contra["route"]["contraindicated"]),
            in_situ_neoplasm=CodeSet.from_data(warn["in_situ_neoplasm"]["match"]),
            advanced_bone_age=MappingProxyType(dict(warn["advanced_bone_age"])),
            dosing=DosingRules(dose["start_range_mg_per_kg"][0], dose["start_range_mg_per_kg"][1],
                               dose["titration_step_mg_per_kg"], dose["maximum_mg_per_kg"], dose["doses_per_day"],
                               dose["weight_max_age_days"], dose["concentration_mg_per_ml"], dose["measurable_step_ml"],
                               dose.get("vial_ml")),
            interactions=tuple(InteractionRule(**i) for i in data["interactions"]),
            monitoring=tuple(data["monitoring"]),
            path=str(path),
            support=MappingProxyType(dict(data.get("support") or {})),
            medication_categories=MedicationCategories.from_data(data["medication_categories"]),
        )

    def ref(self) -> LabelRef:
        d = self.dosing
        return LabelRef(self.source_title, self.source_url, (d.start_low, d.start_high), d.maximum, d.doses_per_day,
                        d.concentration_mg_per_ml, tuple(sorted((self.support or {}).items())))


@frozen
class PolicySet:
    policies: tuple[PolicyFile, ...]
    label: LabelRules
    folder: str

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.policies)

    def get(self, policy_id: str) -> PolicyFile:
        for policy in self.policies:
            if policy.id == policy_id:
                return policy
        raise UnknownPolicy(f"no policy {policy_id!r}; loaded: {', '.join(self.ids)}")

    def applied(self, ref: PolicyRef) -> Policy | None:
        """The rules a decision applied (its policy file's version), or None when no version was in force."""
        return self.get(ref.id).version(ref.version.name) if ref.version is not None else None

    def for_coverage(self, coverage: CoverageFacts) -> tuple[PolicyFile | None, str]:
        """The payer policy matching the coverage, or None with the reason.

        The loader refuses files whose payer matches could overlap (docs/policies.md), but a Coverage may
        still carry one file's identifier and another file's payer name, or a name no example foresaw.
        Then an identifier match outranks a name match, and the detail names every other file that
        matched: the choice is never silent."""
        notes, matches = [], []
        for policy in self.policies:
            if policy.kind != "payer":
                continue
            matched, detail = policy.payer.match(coverage)
            if matched:
                matches.append((policy, detail))
            elif detail:
                notes.append(f"{policy.id}: {detail}")
        if not matches:
            return None, "; ".join(notes)
        matches.sort(key=lambda m: not m[1].startswith("payer identifier"))   # stable: then by id
        (policy, detail), others = matches[0], matches[1:]
        if others:
            also = ", ".join(f"{other.id} ({why})" for other, why in others)
            detail += f"; also matched by {also}: the policy files overlap for this payer"
        return policy, detail
