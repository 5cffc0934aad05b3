"""`mecasermin-cds record BUNDLE.json [--order ORDER.json] [--today YYYY-MM-DD]`: print the
patient record that the service would build from a FHIR Bundle, as JSON. For checking what
the service reads from a chart without running a hook call."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from .build import build_record
from .model import to_jsonable
from .resources import resources_from_bundle
from service.cli_input import InputError, draft_order, iso_date, read_json


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "record", help="print the patient record built from a FHIR Bundle (JSON)",
        description=__doc__)
    parser.add_argument("bundle", metavar="BUNDLE.json", help="a FHIR R4 Bundle (or a single resource)")
    parser.add_argument("--order", metavar="ORDER.json",
                        help="the draft MedicationRequest under review (default: the first mecasermin draft "
                             "MedicationRequest in the bundle)")
    parser.add_argument("--today", metavar="YYYY-MM-DD", type=iso_date,
                        help="the date to compute ages and staleness against (default: the system date)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        bundle = read_json(args.bundle)
        order = read_json(args.order) if args.order else None
    except InputError as exc:
        print(f"mecasermin-cds record: {exc}", file=sys.stderr)
        return 2
    resources = resources_from_bundle(bundle)
    if not resources:
        print(f"mecasermin-cds record: {args.bundle}: no FHIR resources found", file=sys.stderr)
        return 2
    if order is None:
        order = draft_order(resources)
    elif not isinstance(order, dict) or order.get("resourceType") != "MedicationRequest":
        print(f"mecasermin-cds record: {args.order}: not a MedicationRequest", file=sys.stderr)
        return 2
    # The edge of the program: the only place the clock is read, and only when --today is absent.
    today = args.today or date.today()
    record = build_record(resources, order, today)
    json.dump(to_jsonable(record), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0







