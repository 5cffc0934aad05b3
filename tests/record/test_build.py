"""build_record as a whole: bundles, a full chart, purity and robustness against any input."""
from __future__ import annotations

import copy
import json
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.record import build_record, peak_gh, resources_from_bundle, to_jsonable
from tests.record import builders as b
from tests.record.conftest import TODAY


def laron_chart() -> list[dict]:
    """A 6-year-old boy with Laron syndrome, as an EHR would return his chart."""
    return [
        b.patient(),
        b.height("ht-2023", "2023-03-02", 95.3), b.height("ht-2024", "2024-03-01", 99.6),
        b.weight("wt-2024", "2024-03-01", 15.8),
        b.igf1("igf-1", "2024-01-05", 18, low=52, high=297),
        b.gh("gh-arg", "2024-01-20", 14.6, code="40301-4"),
        b.gh("gh-base", "2024-01-20", 3.2, code="12253-1"),
        b.bone_age("ba-1", "2024-02-01", 4.0, method="Greulich and Pyle"),
        b.diagnostic_report("dr-ba", "2024-02-01", "Bone age 4 years 0 months (G&P). Open epiphyses."),
        b.laron_condition(),
        b.coverage("cov-1", "Premera Blue Cross"),
        b.medication_request("mr-pred", "prednisolone 15 MG/5ML Oral Solution", status="completed"),
        b.allergy("al-pcn", code=b.concept(b.SNOMED, "91936005", "Allergy to penicillin")),
    ]


def test_full_chart(build):
    order = b.mecasermin_order(dose=(0.64, "mg"))
    record = build_record(laron_chart() + [order], order, TODAY)
    assert record.patient.age_years == 6.0 and record.patient.sex == "male"
    assert record.heights[0].sds < -3 and record.igf1[0].sds < -3
    assert peak_gh(record).value == 14.6 and record.bone_ages[0].value == 4.0
    assert record.epiphyses[0].status == "open"
    assert record.growth_velocity.cm_per_year == pytest.approx(4.30, abs=0.005)   # unrounded: 4.3029…
    assert record.order.mg_per_kg == pytest.approx(0.0405, abs=0.0001) and record.order.per_day == 2 and record.order.route == "subcutaneous"
    assert record.coverage.payer_names == ("Premera Blue Cross",)
    assert [m.category for m in record.medications] == ["systemic-corticosteroid"]
    assert not record.reauthorization and record.skipped == () and record.notes == ()
    json.dumps(to_jsonable(record))


def test_bundle_flattening():
    resources = laron_chart()
    nested = b.bundle(resources[0], bundle_type=None)
    nested["entry"].append({"resource": b.bundle(*resources[1:])})
    nested["entry"] += [{"fullUrl": "urn:uuid:1"}, {"resource": "text"}, "junk", {"resource": {"no": "type"}}]
    assert resources_from_bundle(nested) == resources
    assert resources_from_bundle(resources[0]) == [resources[0]]
    assert resources_from_bundle({"resourceType": "Bundle"}) == []
    assert resources_from_bundle([1, 2]) == [] and resources_from_bundle(None) == []


def test_self_nesting_bundle_stops():
    bundle = {"resourceType": "Bundle", "entry": []}
    bundle["entry"].append({"resource": bundle})
    assert resources_from_bundle(bundle) == []


def test_input_is_not_modified_and_output_is_repeatable():
    resources = laron_chart()
    order = b.mecasermin_order()
    before = copy.deepcopy((resources, order))
    first = build_record(resources, order, TODAY)
    assert (resources, order) == before
    assert build_record(resources, order, TODAY) == first


def test_not_resources_are_skipped():
    record = build_record([None, "Observation", 5, {"id": "x"}, b.patient()], None, TODAY)
    assert record.patient is not None
    assert [s.reference for s in record.skipped] == ["item 0", "item 1", "item 2", "item 3"]
    assert record.notes == ("4 resources or values not used; see skipped",)


def test_resource_without_id_is_named_by_position():
    resource = b.igf1("x", "2024-01-05", 25, status="entered-in-error")
    del resource["id"]
    record = build_record([b.patient(), resource], None, TODAY)
    assert record.skipped[0].reference == "Observation/(no id, item 1)"


def test_empty_input():
    record = build_record([], None, date(2024, 1, 1))
    assert record.patient is None and record.order is None and record.growth_velocity.cm_per_year is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
_FIELDS = ["status", "code", "valueQuantity", "valueString", "effectiveDateTime", "effectivePeriod", "issued",
           "referenceRange", "component", "clinicalStatus", "verificationStatus", "reasonCode", "reasonReference",
           "dosageInstruction", "medicationCodeableConcept", "medicationReference", "payor", "class", "type",
           "birthDate", "gender", "extension", "conclusion", "note", "reaction", "dispenseRequest", "contained", "id"]
_TYPES = ["Patient", "Observation", "Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
          "Coverage", "DiagnosticReport", "Medication", "Organization"]


@st.composite
def _resource(draw):
    resource = {"resourceType": draw(st.sampled_from(_TYPES))}
    for field in draw(st.lists(st.sampled_from(_FIELDS), max_size=6, unique=True)):
        resource[field] = draw(_JSON)
    if draw(st.booleans()):    # sometimes a real code, so the deeper readers run on junk values
        resource["code"] = {"coding": [{"system": b.LOINC, "code": draw(st.sampled_from(
            ["8302-2", "29463-7", "2484-4", "2963-7", "85151-9", "73561-3", "8303-0"]))}]}
    return resource


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resources=st.lists(_resource(), max_size=6), order=st.none() | _resource())
def test_build_record_never_raises(resources, order):
    record = build_record([b.patient()] + resources, order if isinstance(order, dict) else None, TODAY)
    json.dumps(to_jsonable(record), allow_nan=True)


def test_a_reader_failure_skips_only_that_resource(monkeypatch):
    """The guard around each resource: an unexpected error in a reader costs one resource."""
    from service.record import observations

    real = observations.read_observation

    def flaky(resource, reference, ctx, out):
        if resource.get("id") == "boom":
            raise KeyError("valueQuantity")
        return real(resource, reference, ctx, out)

    monkeypatch.setattr(observations, "read_observation", flaky)
    record = build_record([b.patient(), b.height("boom", "2024-03-01", 104.0), b.height("ok", "2024-03-01", 104.0)],
                          None, TODAY)
    assert [h.reference for h in record.heights] == ["Observation/ok"]
    assert [(s.reference, s.reason) for s in record.skipped] == [("Observation/boom", "malformed Observation, not read (KeyError)")]
