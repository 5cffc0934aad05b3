"""The OpenAPI document describes every CDS service discovery offers, and the 412 answer."""
import json
from pathlib import Path

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "service" / "openapi.json").read_text())


def test_every_discovered_service_is_described(client):
    services = client.get("/cds-services").get_json()["services"]
    assert len(services) == 4
    for service in services:
        operation = DOCUMENT["paths"][f"/cds-services/{service['id']}"]["post"]
        assert service["id"] in DOCUMENT["info"]["description"]
        assert operation["summary"].startswith(service["hook"]), service["id"]
        assert operation["description"] and operation["description"] != DOCUMENT["info"]["description"]
        assert "patient-unavailable" in operation["responses"]["412"]["description"]
    assert "two order hooks" not in DOCUMENT["info"]["description"]


def test_the_412_answer_is_what_the_service_sends(client):
    body = {"hookInstance": "8c4b1f5e-3f0e-4a43-9c1e-7d3f4c1f2a10", "hook": "patient-view",
            "context": {"userId": "Practitioner/p1", "patientId": "p1"}, "prefetch": {}}
    response = client.post("/cds-services/mecasermin-screen", json=body)
    assert response.status_code == 412
    assert response.get_json()["error"] == "patient-unavailable"
    assert "no fhirServer was given" in response.get_json()["message"]
