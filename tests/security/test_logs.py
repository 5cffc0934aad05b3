"""JSON log lines with request context, token redaction and the keyed patient hash."""
from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from service.logs import (
    REDACTED, JsonFormatter, RedactionFilter, configure_logging, current_log_context, log_context,
    patient_hash, redact, reset_log_context, set_log_context,
)

JWT = ("eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImVoci0xIn0"
       ".eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlLm9yZyIsImF1ZCI6Imh0dHBzOi8vY2RzIn0"
       ".MEUCIQDx5Xyq3m2p0fM1ZkQ9bq0pY4tQ2m8sT5r6l7n8o9p0qAIgR2wQ")
OPAQUE = "2YotnFZFEjr1zCsicMWpAA9x8Lk3QmXe"


@pytest.fixture
def stream():
    buffer = io.StringIO()
    handler = configure_logging("DEBUG", stream=buffer)
    yield buffer
    logging.getLogger().removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_one_json_object_per_line_with_context(stream):
    log = logging.getLogger("service.api.hooks")
    with log_context(request_id="req-7f3a", hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"):
        log.info("hook answered in %d ms", 212, extra={"service": "mecasermin-order-select", "cards": 2})
    log.warning("outside any request")
    first, second = lines(stream)
    assert first["level"] == "INFO" and first["logger"] == "service.api.hooks"
    assert first["message"] == "hook answered in 212 ms"
    assert first["request_id"] == "req-7f3a"
    assert first["hook_instance"] == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    assert first["service"] == "mecasermin-order-select" and first["cards"] == 2
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert "request_id" not in second and second["level"] == "WARNING"


def test_multiline_messages_and_exceptions_stay_on_one_line(stream):
    log = logging.getLogger("service.fhir.client")
    try:
        raise RuntimeError("FHIR read failed\nwith a second line")
    except RuntimeError:
        log.exception("fetch\nfailed")
    (entry,) = lines(stream)
    assert entry["message"] == "fetch\nfailed"
    assert "RuntimeError: FHIR read failed" in entry["exception"]


def test_unserialisable_extras_are_rendered_as_text(stream):
    logging.getLogger("x").info("odd", extra={"when": object(), "items": {1, 2}})
    (entry,) = lines(stream)
    assert entry["when"].startswith("<object") and sorted(entry["items"]) == [1, 2]


def test_tokens_are_redacted_everywhere(stream):
    log = logging.getLogger("service.api.hooks")
    with log_context(request_id="r1"):
        log.info("Authorization: Bearer %s", JWT)
        log.info("got %s", {"fhirAuthorization": {"access_token": OPAQUE, "token_type": "Bearer"}})
        log.info("plain", extra={"authorization": "Bearer " + OPAQUE, "detail": "token=" + OPAQUE,
                                 "nested": {"headers": ["Bearer " + OPAQUE, JWT]}})
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            log.exception("failure with access_token=%s", OPAQUE)
    output = stream.getvalue()
    assert JWT not in output and OPAQUE not in output
    assert JWT.split(".")[1] not in output
    assert output.count(REDACTED) >= 6
    assert all(entry["request_id"] == "r1" for entry in lines(stream))


def test_redaction_filter_rewrites_the_record_for_any_handler():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "token %s in %s", (JWT, "header"), None)
    record.access_token = OPAQUE
    RedactionFilter().filter(record)
    assert record.getMessage() == f"token {REDACTED} in header"
    assert record.access_token == REDACTED


def test_redact_keeps_ordinary_text():
    text = "Patient weighs 21.4 kg; IGF-1 34 ng/mL (LOINC 2484-4) on 2025-03-02"
    assert redact(text) == text
    assert redact("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.") == REDACTED
    assert redact("bearer abcdefgh12345678") == "bearer " + REDACTED


def test_formatter_redacts_even_without_the_filter():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "sent %s", (JWT,), None)
    assert JWT not in JsonFormatter().format(record)


def test_context_is_per_thread_and_restored():
    seen: dict[str, dict] = {}

    def worker(name: str) -> None:
        with log_context(request_id=name):
            seen[name] = current_log_context()

    threads = [threading.Thread(target=worker, args=(f"req-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: v["request_id"] for k, v in seen.items()} == {f"req-{i}": f"req-{i}" for i in range(4)}
    assert current_log_context() == {}
    token = set_log_context(request_id="a", hook_instance="b")
    inner = set_log_context(request_id="c")
    assert current_log_context() == {"request_id": "c", "hook_instance": "b"}
    reset_log_context(inner)
    reset_log_context(token)
    assert current_log_context() == {}


def test_configure_logging_is_idempotent_and_checks_the_level():
    root = logging.getLogger()
    before = len(root.handlers)
    first = configure_logging("info", stream=io.StringIO())
    second = configure_logging("WARNING", stream=io.StringIO())
    try:
        assert len(root.handlers) == before + 1 and first not in root.handlers
        assert root.level == logging.WARNING
        assert logging.getLogger("urllib3").level >= logging.WARNING
        with pytest.raises(ValueError, match="log level"):
            configure_logging("verbose")
    finally:
        root.removeHandler(second)


def test_urllib3_request_lines_are_not_logged_at_debug():
    configure_logging("DEBUG", stream=io.StringIO())
    try:
        assert logging.getLogger("urllib3").getEffectiveLevel() == logging.WARNING
    finally:
        configure_logging("INFO", stream=io.StringIO())
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_cds_json", False):
                logging.getLogger().removeHandler(handler)


def test_patient_hash_is_keyed_stable_and_does_not_contain_the_id():
    key = b"k" * 32
    h = patient_hash("smart-1288992", key)
    assert h == patient_hash("smart-1288992", key)
    assert len(h) == 32 and int(h, 16) >= 0
    assert "1288992" not in h
    assert h != patient_hash("smart-1288993", key)
    assert h != patient_hash("smart-1288992", b"another key")
    assert patient_hash("smart-1288992", "k" * 32) == h
    with pytest.raises(ValueError):
        patient_hash("smart-1288992", b"")
