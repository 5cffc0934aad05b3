"""Shared fixtures: the app built with test settings, a misbehaving FHIR server, schema checks."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from service.app import create_app
from service.settings import Settings
from service.validation import validator
from tests.conftest import empty_values
from tests.security.fault_server import FaultServer

TODAY = date(2026, 11, 21)
SELECT = "/cds-services/mecasermin-order-select"
SIGN = "/cds-services/mecasermin-order-sign"


@pytest.fixture
def make_app(tmp_path):
    """Build the app like production does, with `Settings` overrides by field name."""
    def build(**overrides):
        overrides.setdefault("database_url", f"sqlite:///{tmp_path}/cds.sqlite3")
        settings = Settings.from_env({}, **overrides)
        return create_app(settings, today=lambda: TODAY)
    return build


@pytest.fixture(scope="module")
def fault_server():
    """A misbehaving FHIR server; `.other` is a second origin its redirects and next links point to."""
    other = FaultServer().start()
    server = FaultServer(other_origin=other.base).start()
    server.other = other
    yield server
    server.stop()
    other.stop()


def response_problems(body) -> list[str]:
    """Violations of the project's CDS Hooks response schema and of the no-empty-values rule."""
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator("cds-response.schema.json").iter_errors(body)]
    if isinstance(body, dict):
        for key, value in body.items():
            if key != "cards" or value:     # `{"cards": []}` is the one legal empty value
                problems += [f"{path}: empty value" for path in empty_values(value, f"$.{key}")]
    return problems


def assert_error_body(response) -> dict:
    """Every non-200 answer is a JSON object with an `error` code and a `message`."""
    assert response.mimetype == "application/json", response.data[:200]
    body = json.loads(response.data)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    return body


_OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "service" / "openapi.json").read_text())


def openapi_validator(schema_name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _OPENAPI["components"]}
    return Draft202012Validator(schema, format_checker=FormatChecker())
