"""`mecasermin-cds evaluate BUNDLE.json [--order ORDER.json] [--policy ID] [--today DATE] [--format json|text]`

Evaluate a FHIR Bundle (a patient's chart) against the coverage policies and the label, and print
the Decision: JSON, or a readable checklist. Policies are read from CDS_POLICY_DIR (or --policies).
Problems with the input or the policy files print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any, Mapping

from service.policy.evaluate import evaluate
from service.wording import word
from service.policy.loader import PolicyError, UnknownPolicy, load_policies
from service.wording.cli_text import render_text
from service.record import build_record
from service.settings import Settings, SettingsError
from service.cli_input import InputError, chart_resources, draft_order, iso_date, read_json

PROG = "mecasermin-cds evaluate"




def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("evaluate", help="evaluate a FHIR Bundle against the coverage policies and the label",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", metavar="BUNDLE.json", help="a FHIR R4 Bundle (or a single resource)")
    parser.add_argument("--order", metavar="ORDER.json",
                        help="the draft mecasermin MedicationRequest (default: the first mecasermin draft in the bundle)")
    parser.add_argument("--policy", metavar="ID", help="evaluate under this policy id instead of the coverage's")
    parser.add_argument("--today", metavar="YYYY-MM-DD", type=iso_date, help="evaluation date (default: the system date)")
    parser.add_argument("--format", choices=("json", "text"), default="json", help="output format (default json)")
    parser.add_argument("--policies", metavar="DIR", help="policy folder (default: CDS_POLICY_DIR)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        policies = load_policies(args.policies or settings.policy_dir, default_policy=settings.default_policy)
        bundle = read_json(args.bundle)
        resources = chart_resources(bundle, args.bundle)
        order = read_json(args.order) if args.order else draft_order(resources)
        if args.order and (not isinstance(order, Mapping) or order.get("resourceType") != "MedicationRequest"):
            raise InputError(f"{args.order}: not a MedicationRequest")
        today = args.today or date.today()   # the command line is an edge: the clock is read only here
        record = build_record(resources, order, today, rxnorm_codes=settings.rxnorm_codes,
                              mg_per_ml=policies.label.dosing.concentration_mg_per_ml,
                              categories=policies.label.medication_categories)
        decision = word(evaluate(record, policies, today, policy_id=args.policy, default_policy=settings.default_policy))
    except (InputError, PolicyError, SettingsError, UnknownPolicy) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.format == "text":
        sys.stdout.write(render_text(decision))
    else:
        json.dump(decision.to_jsonable(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the subcommand alone (as `python -m service.policy.command`)."""
    parser = argparse.ArgumentParser(prog="mecasermin-cds")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)








if __name__ == "__main__":
    sys.exit(main())
