"""`mecasermin-cds policy check FILE [--policies DIR]` — for policy authors (docs/policies.md).

Validates FILE with the loader the service starts with (among the other files of the policy folder,
so an overlapping payer match is refused as the service would refuse it), then runs the example cases
the file carries (`examples:`): each chart is evaluated under FILE's policy on the case's `today`, the
order dated `order_date` when given, and the outcome is compared with `expect`. Prints one row per
case (case, version applied, expected, got, result).

Exit status: 0 every case passed; 1 a case failed, or the file has no cases; 2 the file (or the
policy folder) is invalid — one line naming the file and the field.
"""
from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any, Mapping

from service.cli_input import InputError, chart_resources, draft_order
from service.policy.decision import NO_VERSION_IN_FORCE, Decision
from service.policy.evaluate import evaluate
from service.policy.loader import PolicyError, UnknownPolicy, load_policy_file, policy_paths, policy_set_of
from service.policy.rules import PolicyFile, PolicySet, thaw
from service.record import build_record
from service.settings import Settings, SettingsError
from service.wording.policy import span_text
from service.record.frozen import frozen

PROG = "mecasermin-cds policy check"


@frozen
class CaseResult:
    name: str
    version: str          # the version applied, or "none in force"; "-" when the case could not run
    expected: str
    got: str
    passed: bool


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    policy = subparsers.add_parser("policy", help="tools for policy authors",
                                   description="Tools for policy authors (docs/policies.md).")
    commands = policy.add_subparsers(dest="policy_command", required=True)
    check = commands.add_parser("check", help="validate a policy file and run its example cases",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("file", metavar="FILE", help="a policy file (.yaml, .yml or .json)")
    check.add_argument("--policies", metavar="DIR",
                       help="the policy folder FILE joins (default: CDS_POLICY_DIR): the other payers and the default policy")
    check.set_defaults(handler=run)
    return policy


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        policy_file, policies = load_with_folder(Path(args.file), Path(args.policies or settings.policy_dir),
                                                 settings.default_policy)
    except (PolicyError, SettingsError, UnknownPolicy) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print(f"{Path(args.file).name}: valid · {len(policy_file.versions)} version(s): "
          f"{'; '.join(span_text(v) for v in policy_file.spans)} · sha256 {policy_file.digest}")
    if not policy_file.examples:
        print(f"{Path(args.file).name}: no example cases to run: add `examples:` (docs/policies.md)")
        return 1
    results = [run_example(example, policy_file, policies, settings) for example in policy_file.examples]
    sys.stdout.write(table(results))
    failed = sum(not r.passed for r in results)
    print(f"{len(results)} case(s): {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def load_with_folder(path: Path, folder: Path, default_policy: str) -> tuple[PolicyFile, PolicySet]:
    """FILE, validated, in the set the service would load: the folder's other files, FILE in place of
    the folder's file of the same id."""
    policy_file = load_policy_file(path)
    others = [load_policy_file(p) for p in policy_paths(folder) if p.resolve() != path.resolve()]
    files = sorted([f for f in others if f.id != policy_file.id] + [policy_file], key=lambda f: f.id)
    return policy_file, policy_set_of(files, folder, default_policy=default_policy)


def run_example(example: Mapping, policy_file: PolicyFile, policies: PolicySet, settings: Settings) -> CaseResult:
    expect = example["expect"]
    expected = _outcome(expect["determination"], expect.get("sub_reason"), expect.get("version"),
                        expect.get("criteria") or {})
    try:
        decision = decide(example, policy_file, policies, settings)
    except InputError as exc:
        return CaseResult(example["name"], "-", expected, f"error: {exc}", False)
    version = decision.policy.version.name if decision.policy.version else NO_VERSION_IN_FORCE
    statuses = {c.id: c.status for c in decision.criteria}
    checked = {cid: statuses.get(cid, "absent") for cid in expect.get("criteria") or {}}
    got = _outcome(decision.determination, decision.sub_reason if "sub_reason" in expect else None,
                   version if "version" in expect else None, checked)
    passed = (decision.determination == expect["determination"]
              and ("sub_reason" not in expect or decision.sub_reason == expect["sub_reason"])
              and ("version" not in expect or version == expect["version"])
              and checked == dict(expect.get("criteria") or {}))
    return CaseResult(example["name"], version, expected, got, passed)


def decide(example: Mapping, policy_file: PolicyFile, policies: PolicySet, settings: Settings) -> Decision:
    """The example's chart evaluated under the file's policy, as `mecasermin-cds evaluate --policy` would."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in thaw(example["chart"])]}
    resources = chart_resources(bundle, f"example {example['name']!r}")
    order = draft_order(resources)
    if order is None:
        raise InputError(f"example {example['name']!r}: no draft mecasermin MedicationRequest in the chart")
    if example.get("order_date"):
        order["authoredOn"] = example["order_date"]
    today = date.fromisoformat(example["today"])
    record = build_record(resources, order, today, rxnorm_codes=settings.rxnorm_codes,
                          mg_per_ml=policies.label.dosing.concentration_mg_per_ml,
                          categories=policies.label.medication_categories)
    return evaluate(record, policies, today, policy_id=policy_file.id, default_policy=settings.default_policy)


def _outcome(determination: str, sub_reason: str | None, version: str | None, criteria: Mapping[str, str]) -> str:
    parts = [determination + (f" ({sub_reason})" if sub_reason else "")]
    if version is not None:
        parts.append(f"version {version}")
    parts += [f"{cid}={status}" for cid, status in criteria.items()]
    return "; ".join(parts)


def table(results: list[CaseResult]) -> str:
    rows = [("case", "version applied", "expected", "got", "result")]
    rows += [(r.name, r.version, r.expected, r.got, "pass" if r.passed else "FAIL") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"

