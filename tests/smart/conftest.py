"""Fixtures for the SMART app: a fake EHR on loopback and the service built against it."""
from __future__ import annotations

from datetime import date
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from service.app import create_app
from service.settings import Settings
from tests.smart.fake_ehr import FakeEhr

TODAY = date(2026, 11, 21)


@pytest.fixture
def ehr():
    fake = FakeEhr().start()
    yield fake
    fake.stop()


@pytest.fixture
def make_app(tmp_path):
    def make(**overrides):
        values = {"database_url": f"sqlite:///{tmp_path}/smart.sqlite3", "log_level": "DEBUG",
                  "public_base_url": "http://cds.test", **overrides}
        return create_app(Settings.from_env({}, **values), today=lambda: TODAY)
    return make


class Flow:
    """Drives the browser's part of the launch: the app, the authorization server, back to the app."""

    def __init__(self, client, ehr: FakeEhr):
        self.client, self.ehr = client, ehr

    def launch(self, **params):
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self.client.get("/smart/launch" + (f"?{query}" if query else ""))

    def authorize(self, launch_response):
        """Follow the app's redirect to the fake authorization server; return its redirect back."""
        assert launch_response.status_code == 302, launch_response.get_data(as_text=True)
        location = launch_response.headers["Location"]
        assert location.startswith(self.ehr.base + "/auth/authorize?")
        answer = requests.get(location, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def callback(self, redirect_back: str):
        parts = urlsplit(redirect_back)
        assert parts.path == "/smart/callback"
        return self.client.get(f"{parts.path}?{parts.query}")

    def sign_in(self, **params):
        response = self.callback(self.authorize(self.launch(**params)))
        assert response.status_code == 303, response.get_data(as_text=True)
        assert response.headers["Location"].endswith("/smart/app")
        return response


@pytest.fixture
def flow_for():
    return Flow
