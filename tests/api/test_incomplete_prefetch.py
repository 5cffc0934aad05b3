"""An incomplete prefetch that no FHIR server may complete is never decided as if it were whole:
a Condition search with `total` 3, two entries and a `next` link (the leukaemia history is on the
page never sent) leaves the label checks incomplete and the coverage undetermined."""
import pytest

from tests.fixtures import condition, fhir_bundle, order_select_request

SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
            "order-sign": "/cds-services/mecasermin-order-sign"}


@pytest.mark.parametrize("hook", SERVICES)
def test_incomplete_condition_prefetch_without_a_server(client, store, hook):
    body = order_select_request(hook=hook)
    page = fhir_bundle([condition("c1", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"),
                        condition("c2", "R62.52", "Short stature (child)")])
    page["total"] = 3
    page["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/Condition?patient=p1&page=2"}]
    body["prefetch"]["conditions"] = page
    result = client.post(SERVICES[hook], json=body).get_json()
    cards = {c["source"]["topic"]["code"]: c for c in result["cards"]}
    assert cards["coverage-info"]["indicator"] == "warning"
    safety = cards["contraindication"]
    assert safety["indicator"] == "warning" and "incomplete" in safety["detail"]
    assert "it holds 2 of 3 matches" in safety["detail"]
    covered = [p["valueCode"] for a in result["systemActions"] for e in a["resource"]["extension"]
               for p in e["extension"] if p["url"] == "covered"]
    assert covered == ["indeterminate"]
    (row,) = store.query("SELECT determination FROM audit")
    assert row[0] == "documentation-needed"
