"""The tests that settle an unknown criterion (a criterion's `missing_test`, Decision.missing_tests)
and the weight the dose check needs: the one table of their ids, what each is ordered as, and how to
obtain it. The policy schema's `missing_test` enum must list the same ids (checked in tests)."""
from __future__ import annotations

from service.record.frozen import frozen


LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"


@frozen
class TestToOrder:
    name: str                 # a few words, for checklists and headlines ("bone age")
    order_title: str          # the suggestion's label
    code: dict                # the ServiceRequest.code (R4 CodeableConcept)
    category: tuple[str, str]  # SNOMED CT (code, display) of the ServiceRequest.category
    how_to: tuple[str, str] | None = None   # (heading, how to obtain it), for the SMART app


TESTS: dict[str, TestToOrder] = {
    "igf1": TestToOrder(
        "IGF-1", "Order serum IGF-1 (baseline)",
        {"coding": [{"system": LOINC, "code": "2484-4",
                     "display": "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma"}]},
        ("108252007", "Laboratory procedure"),
        ("Serum IGF-1",
         "Order a serum IGF-1 (LOINC 2484-4) before treatment starts, from a laboratory that reports an age- and "
         "sex-specific reference range or the SDS itself (LOINC 73561-3), so the SDS can be read.")),
    "gh-stimulation": TestToOrder(
        "GH stimulation", "Order a growth hormone stimulation test",
        {"coding": [{"system": CPT, "code": "80428", "display": "Growth hormone stimulation panel"}],
         "text": "Growth hormone stimulation test (e.g. arginine or clonidine)"},
        ("108252007", "Laboratory procedure"),
        ("GH stimulation test",
         "Arrange a growth hormone stimulation test (for example arginine, clonidine or glucagon) and record "
         "every timed GH result; the peak shows whether GH secretion is normal or elevated.")),
    "bone-age": TestToOrder(
        "bone age", "Order a bone age X-ray (left hand and wrist)",
        {"coding": [{"system": LOINC, "code": "85151-9", "display": "XR Bone age"},
                    {"system": CPT, "code": "77072", "display": "Bone age studies"}]},
        ("363679005", "Imaging"),
        ("Bone age",
         "Order a left hand and wrist radiograph for bone age (LOINC 85151-9), read by a standard method such as "
         "Greulich and Pyle, and record the reading in years.")),
    "height": TestToOrder(
        "height", "Measure standing height (stadiometer)",
        {"coding": [{"system": LOINC, "code": "8302-2", "display": "Body height"}]},
        ("225398001", "Assessment"),
        ("Height measurement",
         "Measure standing height on a wall-mounted stadiometer and record it as LOINC 8302-2 with the date. "
         "The policy looks at a recent measurement; an older one is shown but does not count.")),
    "weight": TestToOrder(
        "weight", "Measure body weight",
        {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        ("225398001", "Assessment")),
}

# The ids a policy criterion may name as its missing test (the weight is the dose check's, not a criterion's).
CRITERION_TESTS = tuple(test for test in TESTS if test != "weight")
