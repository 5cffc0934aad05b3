"""The OpenAPI document is served, valid, and in step with the app's routes and schemas."""
from __future__ import annotations

import json
import re
from pathlib import Path

from jsonschema import Draft202012Validator

from service.api.services import SERVICES
from tests.fixtures import order_select_request, order_sign_request
from tests.security.conftest import SELECT, SIGN, openapi_validator

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "service" / "openapi.json").read_text())
DOCUMENTED_BLUEPRINTS = ("cds", "health", "openapi", "dtr")


def test_served_document_is_the_file(make_app):
    response = make_app(log_level="WARNING").test_client().get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == DOCUMENT
    assert DOCUMENT["openapi"].startswith("3.1")


def test_every_cds_route_is_documented(make_app):
    app = make_app(log_level="WARNING")
    documented = {re.sub(r"\{[^}]+\}", "<>", path) for path in DOCUMENT["paths"]}
    for service_id in SERVICES:
        documented.add(f"/cds-services/{service_id}".replace(service_id, "<>"))
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in DOCUMENTED_BLUEPRINTS:
            assert re.sub(r"<[^>]+>", "<>", rule.rule) in documented, rule.rule
    for service_id, service in SERVICES.items():
        assert f"/cds-services/{service_id}" in DOCUMENT["paths"], service_id


def test_component_schemas_are_valid_json_schema():
    for name, schema in DOCUMENT["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_realistic_requests_fit_the_documented_request_schemas():
    for schema_name, body in (("OrderSelectRequest", order_select_request(prefetch=None)),
                              ("OrderSignRequest", order_sign_request(prefetch=None))):
        errors = [e.message for e in openapi_validator(schema_name).iter_errors(body)]
        assert errors == [], (schema_name, errors)


def test_real_responses_fit_the_documented_response_schemas(make_app):
    client = make_app(log_level="WARNING").test_client()
    for path, body in ((SELECT, order_select_request()), (SIGN, order_sign_request())):
        answer = client.post(path, json=body).get_json()
        assert answer["cards"]
        assert [e.message for e in openapi_validator("CdsResponse").iter_errors(answer)] == []
    discovery = client.get("/cds-services").get_json()
    assert [e.message for e in openapi_validator("Discovery").iter_errors(discovery)] == []
    error = client.post(SELECT, data=b"{", content_type="application/json").get_json()
    assert [e.message for e in openapi_validator("Error").iter_errors(error)] == []
