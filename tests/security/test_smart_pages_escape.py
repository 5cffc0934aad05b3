"""The SMART pages quote chart text as text: Jinja's autoescaping covers every chart string the
checklist, the letter and the growth chart's labels show."""
from __future__ import annotations

import re

import pytest

from tests.fixtures import condition, coverage, fhir_bundle
from tests.smart.conftest import Flow
from tests.smart.conftest import ehr, make_app  # noqa: F401  (pytest fixtures)

MARKUP = "<img src=x onerror=alert(1)><svg onload=alert(2)><script>alert(3)</script>"


@pytest.fixture
def hostile_ehr(ehr):  # noqa: F811
    ehr.prefetch["conditions"] = fhir_bundle([
        condition("c1", "E34.321", "Primary IGF-1 deficiency " + MARKUP),
        condition("c2", "local-3", "carcinoma " + MARKUP, system="http://hospital.example.org/cs")])
    ehr.prefetch["coverage"] = fhir_bundle([coverage(payer="Acme Health " + MARKUP)])
    return ehr


def test_no_chart_markup_reaches_the_smart_pages(hostile_ehr, make_app):  # noqa: F811
    client = make_app().test_client()
    Flow(client, hostile_ehr).sign_in(iss=hostile_ehr.iss, launch="launch-1")
    pages = [client.get(path).get_data(as_text=True) for path in ("/smart/app", "/smart/packet")]
    pages = [page for page in pages if page]
    assert pages
    quoted = 0
    for page in pages:
        assert not re.search(r"<img\b|<svg onload|<script>alert", page), page[:500]
        quoted += page.count("&lt;img src=x onerror=alert(1)&gt;")
    assert quoted >= 1, "the chart's words are shown, escaped"
