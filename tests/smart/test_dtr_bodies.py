"""/smart/dtr/next reads its body as the CDS services read theirs: a body too deep, too big, not JSON,
not UTF-8 or holding NaN gets a specific JSON error, never the HTML error page or a 500."""
from __future__ import annotations

import pytest

from tests.smart.test_dtr import _csrf, _signed_in, _without_bone_age


@pytest.fixture
def signed_in(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for, max_body_bytes=64_000)
    return client, {"X-CSRF-Token": _csrf(client)}


@pytest.mark.parametrize("body,status,words", [
    ('{"a":' * 3000 + "null" + "}" * 3000, 400, "nests deeper"),
    ("[" * 100_000 + "]" * 100_000, 413, "larger than the limit"),
    ('{"questionnaireResponse": "' + "x" * 70_000 + '"}', 413, "larger than the limit"),
    ('{"questionnaireResponse": {"resourceType": "QuestionnaireResponse", "id": NaN}}', 400, "NaN"),
    ('{"questionnaireResponse": {', 400, "not valid JSON"),
    (b'{"questionnaireResponse": "\xff"}', 400, "not UTF-8"),
])
def test_a_bad_body_gets_a_specific_json_error(signed_in, body, status, words):
    client, headers = signed_in
    answer = client.post("/smart/dtr/next", data=body, content_type="application/json", headers=headers)
    assert answer.status_code == status, answer.data[:200]
    assert answer.mimetype == "application/json"
    assert words in answer.get_json()["error"]


def test_a_deep_body_within_the_size_limit_is_refused_before_parsing(signed_in):
    client, headers = signed_in
    deep = "[" * 20_000 + "]" * 20_000
    answer = client.post("/smart/dtr/next", data=deep, content_type="application/json", headers=headers)
    assert answer.status_code == 400 and "nests deeper" in answer.get_json()["error"]
