"""Words and numbers as the SMART app's pages show them (Jinja filters and lookup tables)."""
from __future__ import annotations

from datetime import date
from typing import Any

from service.policy.decision import DOCUMENTATION_NEEDED, DOES_NOT_MEET, MEETS, MET, NOT_MET, UNKNOWN

STATUS_LABELS = {MET: "Met", NOT_MET: "Not met", UNKNOWN: "Unknown"}
STATUS_MARKS = {MET: "\u2713", NOT_MET: "\u2717", UNKNOWN: "?"}

DETERMINATION_LABELS = {
    MEETS: "Meets the policy's criteria",
    DOES_NOT_MEET: "Does not meet the policy's criteria",
    DOCUMENTATION_NEEDED: "More documentation needed",
}

# How to obtain what an unknown criterion lacks (Decision.missing_tests). The limits themselves
# are the policy's and appear in the checklist next to each criterion.
HOW_TO_GET = {
    "height": (
        "Height measurement",
        "Measure standing height on a wall-mounted stadiometer and record it as LOINC 8302-2 with the date. "
        "The policy looks at a recent measurement; an older one is shown but does not count."),
    "igf1": (
        "Serum IGF-1",
        "Order a serum IGF-1 (LOINC 2484-4) before treatment starts, from a laboratory that reports an age- and "
        "sex-specific reference range or the SDS itself (LOINC 73561-3), so the SDS can be read."),
    "gh-stimulation": (
        "GH stimulation test",
        "Arrange a growth hormone stimulation test (for example arginine, clonidine or glucagon) and record "
        "every timed GH result; the peak shows whether GH secretion is normal or elevated."),
    "bone-age": (
        "Bone age",
        "Order a left hand and wrist radiograph for bone age (LOINC 85151-9), read by a standard method such as "
        "Greulich and Pyle, and record the reading in years."),
}

SEVERITY_LABELS = {"critical": "Critical", "warning": "Warning", "info": "Information"}


def fmt_date(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return "date not recorded" if value is None else str(value)


def fmt_number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
        return text.replace("-", "\u2212") if text.startswith("-") else text
    return str(value)


def fmt_sds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}".replace("-", "\u2212")


def fmt_centile(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}"


FILTERS = {"fmt_date": fmt_date, "fmt_number": fmt_number, "fmt_sds": fmt_sds, "fmt_centile": fmt_centile}
