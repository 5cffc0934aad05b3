from urllib.parse import parse_qs, urlsplit

import pytest

from service.fhir.prefetch import fill, templates

CONTEXT = {"patientId": "p-123", "userId": "Practitioner/dr-7", "encounterId": "enc-1"}


def test_templates_only_use_legal_tokens():
    for template in templates().values():
        # CDS Hooks 2.0.1 prefetch tokens: context fields and the user's id by its resource type.
        stripped = template.replace("{{context.patientId}}", "")
        stripped = stripped.replace("{{context.userId}}", "").replace("{{userPractitionerId}}", "")
        assert "{{" not in stripped


def test_observation_query_filters_by_spec_codes_newest_first_and_capped():
    query = fill(templates()["observations"], CONTEXT)
    params = parse_qs(urlsplit(query).query)
    codes = params["code"][0].split(",")
    assert "http://loinc.org|8302-2" in codes and "http://loinc.org|2484-4" in codes
    assert "http://loinc.org|85151-9" in codes and "http://loinc.org|29463-7" in codes
    assert params["_sort"] == ["-date"] and int(params["_count"][0]) <= 200
    assert params["patient"] == ["p-123"]


def test_active_coverage_only():
    assert fill(templates()["coverage"], CONTEXT) == "Coverage?patient=p-123&status=active"


def test_medication_searches_include_the_medication_where_us_core_supports_it():
    assert fill(templates()["medications"], CONTEXT) == (
        "MedicationRequest?patient=p-123&_include=MedicationRequest:medication&_count=100")
    assert "_include=MedicationDispense:medication" in templates()["medicationdispenses"]
    assert "_include" not in templates()["medicationstatements"] + templates()["medicationadministrations"]


def test_values_are_url_encoded():
    assert fill("Patient/{{context.patientId}}", {"patientId": "a b&c"}) == "Patient/a%20b%26c"


@pytest.mark.parametrize("template,expected", [
    ("Practitioner/{{userPractitionerId}}", "Practitioner/dr-7"),
    ("PractitionerRole/{{userPractitionerRoleId}}", None),
    ("Encounter/{{context.encounterId}}", "Encounter/enc-1"),
    ("Encounter/{{context.missing}}", None),
])
def test_user_and_context_tokens(template, expected):
    assert fill(template, CONTEXT, CONTEXT["userId"]) == expected


def test_prefetch_asks_for_every_code_the_record_reads():
    from service.record.observations import KIND_BY_CODE
    query = fill(templates()["observations"], CONTEXT)
    codes = parse_qs(urlsplit(query).query)["code"][0].split(",")
    assert {c.split("|")[1] for c in codes} == {code for _, code in KIND_BY_CODE}


@pytest.mark.parametrize("resource,kept", [
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "8308-9"}]}}, True),
    ({"code": {"coding": [{"system": "urn:oid:1.2.3", "code": "GHSTIM"}]},
      "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "40301-4"}]}}]}, True),
    ({"code": {"coding": [{"system": "urn:oid:1.2.3", "code": "XR-HAND"}]},
      "category": [{"coding": [{"code": "imaging"}]}]}, True),
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
      "category": [{"coding": [{"code": "vital-signs"}]}]}, False),
    # Shapes servers get wrong: read as far as they can be, never an error.
    ({"code": {"coding": {"system": "http://loinc.org", "code": "8308-9"}}}, False),
    ({"code": [{"coding": [{"code": "8308-9"}]}]}, False),
    ({"code": {"coding": [None, 5, {"code": ["8308-9"]}, {"code": {"x": 1}}, {"code": "8308-9"}]}}, True),
    ({"code": {"coding": [{"code": "XR-HAND"}]}, "category": {"coding": [{"code": "imaging"}]}}, True),
    ({"code": {"coding": [{"code": "XR-HAND"}]}, "category": [None, {"coding": None}, {"coding": [{"code": "imaging"}]}]}, True),
    ({"code": None, "category": "imaging", "component": {"code": {"coding": [{"code": "40301-4"}]}}}, False),
    ({"component": [None, {"code": {"coding": [{"code": ["40301-4"]}]}}, {"code": {"coding": [{"code": "40301-4"}]}}]}, True),
])
def test_observation_prefilter(resource, kept):
    from service.fhir.observation_codes import observation_is_relevant
    assert observation_is_relevant({"resourceType": "Observation", **resource}) is kept
