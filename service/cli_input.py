"""Reading the command line's inputs: JSON files, the draft order in a Bundle, dates.

Shared by `mecasermin-cds record` and `mecasermin-cds evaluate`; every problem is an InputError
whose message names the file and what is wrong, printed as one line (no traceback).
"""
from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from service.record import resources_from_bundle
from service.trigger import order_is_mecasermin


class InputError(Exception):
    """A file given on the command line cannot be used."""


def read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def chart_resources(bundle: Any, path: str) -> list[dict]:
    """The resources of one patient's chart: a decision needs the Patient (age and sex decide the
    criteria), so a Bundle without one, or with several, is refused rather than judged."""
    resources = resources_from_bundle(bundle)
    if not resources:
        raise InputError(f"{path}: no FHIR resources found")
    patients = {r.get("id") for r in resources if r.get("resourceType") == "Patient"}
    if not patients:
        raise InputError(f"{path}: no Patient resource (the chart must hold the patient: birth date and sex)")
    if len(patients) > 1:
        raise InputError(f"{path}: {len(patients)} Patient resources; give one patient's chart")
    return resources


def draft_order(resources: list[dict]) -> dict | None:
    """The first draft mecasermin MedicationRequest among the resources, if any."""
    medications = {f"Medication/{r['id']}": r for r in resources
                   if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}
    for resource in resources:
        if (resource.get("resourceType") == "MedicationRequest" and resource.get("status") == "draft"
                and order_is_mecasermin(resource, medications)):
            return resource
    return None


def iso_date(text: str) -> date:
    """argparse type for YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None
