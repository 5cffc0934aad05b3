"""`mecasermin-cds record BUNDLE.json [--order ORDER.json] [--today YYYY-MM-DD]`: print the
patient record that the service would build from a FHIR Bundle, as JSON. For checking what
the service reads from a chart without running a hook call."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from ..trigger import order_is_mecasermin
from .build import build_record
from .model import to_jsonable
from .resources import resources_from_bundle


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "record", help="print the patient record built from a FHIR Bundle (JSON)",
        description=__doc__)
    parser.add_argument("bundle", metavar="BUNDLE.json", help="a FHIR R4 Bundle (or a single resource)")
    parser.add_argument("--order", metavar="ORDER.json",
                        help="the draft MedicationRequest under review (default: the first mecasermin draft "
                             "MedicationRequest in the bundle)")
    parser.add_argument("--today", metavar="YYYY-MM-DD", type=_iso_date,
                        help="the date to compute ages and staleness against (default: the system date)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        bundle = _read_json(args.bundle)
        order = _read_json(args.order) if args.order else None
    except _InputError as exc:
        print(f"mecasermin-cds record: {exc}", file=sys.stderr)
        return 2
    resources = resources_from_bundle(bundle)
    if not resources:
        print(f"mecasermin-cds record: {args.bundle}: no FHIR resources found", file=sys.stderr)
        return 2
    if order is None:
        order = _draft_order(resources)
    elif not isinstance(order, dict) or order.get("resourceType") != "MedicationRequest":
        print(f"mecasermin-cds record: {args.order}: not a MedicationRequest", file=sys.stderr)
        return 2
    # The edge of the program: the only place the clock is read, and only when --today is absent.
    today = args.today or date.today()
    record = build_record(resources, order, today)
    json.dump(to_jsonable(record), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


class _InputError(Exception):
    pass


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise _InputError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise _InputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def _draft_order(resources: list[dict]) -> dict | None:
    medications = {f"Medication/{r['id']}": r for r in resources
                   if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}
    for resource in resources:
        if (resource.get("resourceType") == "MedicationRequest" and resource.get("status") == "draft"
                and order_is_mecasermin(resource, medications)):
            return resource
    return None


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None
