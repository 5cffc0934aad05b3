"""Shared fixtures: an app built with test settings, and a client that checks every CDS response.

Every service-call response that the suite produces is validated against the project's response
schema and the CDS Hooks JSON rules (no null, "", [] or {} except an empty `cards` list).
"""
from __future__ import annotations

from datetime import date

import pytest

from service.app import create_app
from service.settings import Settings
from service.validation import violations

TODAY = date(2026, 11, 21)


def empty_values(value, path="$"):
    """Paths of null / "" / [] / {} values, which CDS Hooks forbids."""
    found = []
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += empty_values(item, f"{path}[{index}]")
    return found


def assert_valid_cds_response(body):
    problems = violations("cds-response.schema.json", body)
    assert not problems, problems
    for key, value in body.items():
        if key != "cards" or value:   # `{"cards": []}` is the one legal empty value
            assert not empty_values(value, f"$.{key}"), empty_values(value, f"$.{key}")


class CheckingClient:
    """Flask test client whose service-call responses are always schema-checked."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def post(self, url, *args, **kwargs):
        response = self.client.post(url, *args, **kwargs)
        is_service_call = url.startswith("/cds-services/") and not url.endswith("/feedback")
        if is_service_call and response.status_code == 200:
            assert_valid_cds_response(response.get_json())
        return response


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/cds.sqlite3")


@pytest.fixture
def app(settings):
    return create_app(settings, today=lambda: TODAY)


@pytest.fixture
def client(app):
    return CheckingClient(app.test_client())


@pytest.fixture
def store(app):
    return app.extensions["mecasermin"].store
