"""One slow FHIR server cannot starve the calls after it (issue: a server dripping one header byte
at a time never hit the read timeout; after six such calls, calls to a healthy server all ended at
the deadline with "record incomplete")."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from service.settings import Settings
from tests.fhir.test_completeness_and_limits import HeaderDripServer
from tests.fixtures import laron_prefetch, order_select_request

DEADLINE = 0.8
SEARCH_KEYS = {"Condition": "conditions", "Observation": "observations", "MedicationRequest": "medications",
               "MedicationStatement": "medicationstatements", "MedicationDispense": "medicationdispenses",
               "MedicationAdministration": "medicationadministrations", "AllergyIntolerance": "allergies",
               "Coverage": "coverage", "DiagnosticReport": "reports"}


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/cds.sqlite3", fhir_deadline=DEADLINE,
                             fhir_retries=0)


class HealthyServer:
    """Answers the Laron chart of tests/fixtures at once."""

    def __init__(self):
        chart = laron_prefetch()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = urlsplit(self.path).path.removeprefix("/fhir/")
                body = chart["patient"] if path == "Patient/p1" else chart[SEARCH_KEYS[path]]
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 64
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch_request(server_url):
    body = order_select_request(prefetch=None)
    body["fhirServer"] = server_url
    return body


def test_six_calls_to_a_dripping_server_leave_the_next_call_whole(client, app):
    drip, healthy = HeaderDripServer(), HealthyServer()
    try:
        for _ in range(6):
            started = time.monotonic()
            response = client.post("/cds-services/mecasermin-order-select", json=fetch_request(drip.url))
            assert response.status_code == 200 and time.monotonic() - started < DEADLINE + 0.5
            assert "could not be read from the FHIR server" in response.get_data(as_text=True)
        started = time.monotonic()
        result = client.post("/cds-services/mecasermin-order-select", json=fetch_request(healthy.url)).get_json()
        assert time.monotonic() - started < DEADLINE
        (coverage,) = [c for c in result["cards"] if c["source"]["topic"]["code"] == "coverage-info"]
        assert coverage["indicator"] == "info" and "could not be fetched" not in coverage["detail"]
    finally:
        drip.close()
        healthy.close()
        app.extensions["mecasermin"].fhir_client.close()
