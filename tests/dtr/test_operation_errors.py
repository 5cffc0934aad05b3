"""Every failure under the DTR operations' path is an OperationOutcome, also the routing errors Flask
raises before the DTR blueprint runs (a GET: 405; an unknown operation: 404); the CDS routes keep the
house's JSON errors."""
from __future__ import annotations

import pytest

from tests.dtr.test_operations import NEXT, PACKAGE, SIGN


@pytest.mark.parametrize("method,path,status", [("get", PACKAGE, 405), ("put", NEXT, 405),
                                                ("post", "/dtr/Questionnaire/$populate", 404)])
def test_routing_errors_under_the_dtr_path_are_operation_outcomes(client, method, path, status):
    response = getattr(client, method)(path, json={"resourceType": "Parameters"})
    assert response.status_code == status
    assert response.mimetype == "application/fhir+json"
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["code"] == ("not-supported" if status == 405 else "not-found")


def test_a_cds_route_keeps_the_house_json_errors(client):
    response = client.get(SIGN)
    assert response.status_code == 405 and response.get_json()["error"] == "method-not-allowed"
