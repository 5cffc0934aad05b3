"""`mecasermin-cds report`: acceptance and override rates per card type from stored feedback."""
import json

import pytest

from service.cli import main
from service.report import feedback_report, render_text
from service.storage import Database
from service.store import Store
from tests.fixtures import mecasermin_order, order_sign_request

SIGN = "/cds-services/mecasermin-order-sign"


def feedback_item(card, outcome, reason=None):
    item = {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-21T11:00:00Z"}
    if reason:
        item["overrideReason"] = {"reason": {"system": "urn:x", "code": reason[0], "display": reason[1]}}
    return item


def issue_cards(client, times=2):
    cards = []
    for _ in range(times):
        body = order_sign_request(order=mecasermin_order(dose_mg=3.0))
        cards += client.post(SIGN, json=body).get_json()["cards"]
    return {topic: [c["uuid"] for c in cards if c["source"]["topic"]["code"] == topic]
            for topic in ("coverage-info", "off-guideline", "guideline")}


def test_rates_and_top_override_reasons_per_card_type(client, store):
    uuids = issue_cards(client)
    dose, coverage = uuids["off-guideline"], uuids["coverage-info"]
    client.post(f"{SIGN}/feedback", json={"feedback": [
        feedback_item(dose[0], "accepted"),
        feedback_item(dose[1], "overridden", ("titration-plan", "Dose is part of a documented titration plan")),
        feedback_item(coverage[0], "overridden", ("pa-in-progress", "Prior authorization already in progress")),
        feedback_item(coverage[1], "overridden", ("pa-in-progress", "Prior authorization already in progress")),
    ]})
    stats = {s.card_type: s for s in feedback_report(store)}
    assert (stats["dose"].issued, stats["dose"].accepted, stats["dose"].overridden) == (2, 1, 1)
    assert stats["dose"].rate(stats["dose"].accepted) == 0.5
    assert stats["coverage"].top_override_reasons == [("Prior authorization already in progress", 2)]
    assert stats["monitoring"].answered == 0 and stats["monitoring"].rate(0) is None
    text = render_text(list(stats.values()))
    assert "override: Prior authorization already in progress (2)" in text


def test_report_command_prints_json(client, store, settings, monkeypatch, capsys):
    issue_cards(client, times=1)
    monkeypatch.setenv("CDS_DATABASE_URL", settings.database_url)
    assert main(["report", "--format", "json"]) == 0
    rows = {row["card_type"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["coverage"]["issued"] == 1 and rows["coverage"]["acceptance_rate"] is None


def test_report_on_an_empty_database(tmp_path, monkeypatch, capsys):
    database = Database(f"sqlite:///{tmp_path}/empty.db")     # what the service creates at start-up
    database.migrate()
    Store(database)
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    assert main(["report"]) == 0
    assert "No cards issued" in capsys.readouterr().out


def test_report_outside_the_service_folder_creates_no_database(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CDS_DATABASE_URL", raising=False)
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert f"no database at {tmp_path / 'var' / 'mecasermin-cds.sqlite3'}" in err and "CDS_DATABASE_URL" in err
    assert list(tmp_path.iterdir()) == []


def test_report_help_and_a_negative_top(capsys):
    with pytest.raises(SystemExit) as shown:
        main(["report", "--help"])
    assert shown.value.code == 0
    help_text = capsys.readouterr().out
    assert "acceptance and override rates" in help_text.lower() and "--top N" in help_text and "--format" in help_text
    with pytest.raises(SystemExit) as refused:
        main(["report", "--top", "-1"])
    assert refused.value.code == 2
    assert "--top: must be 0 or more, not -1" in capsys.readouterr().err
