"""`make smart-demo`: the SMART app launched from the demo EHR, in a browser, in one command.

Starts the demo FHIR server with its SMART authorization server (`server.mjs --smart`: discovery,
sign-in page, PKCE S256 codes, bearer tokens checked on every FHIR request) and the service
(gunicorn) on loopback, then opens the demo EHR's launch of the app for one patient. In the
browser: the EHR's sign-in page (pick the practitioner), then the app on that patient's chart,
with the draft mecasermin order as its launch context. `/ehr` on the FHIR server's port lists
every demo patient; `{service}/smart/launch?iss={fhir base}` is a standalone launch (the sign-in
page then asks for the patient too). Both servers run until Ctrl-C.

    .venv/bin/python sandbox-config/smart_demo.py [--patient demo-laron-icd10] [--port 8080]
                                                   [--fhir-port 8090] [--no-browser] [--today YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import webbrowser
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))     # demo.py beside it, also when a test imports this
from demo import DemoError, ManagedProcess, free_port, load_charts, start_fhir_server, start_service  # noqa: E402

CLIENT_ID = "mecasermin-cds"        # the service's default CDS_SMART_CLIENT_ID


@dataclass(frozen=True)
class SmartDemo:
    fhir_base: str                  # the FHIR server (iss), e.g. http://127.0.0.1:8090/fhir
    service_base: str               # the service, e.g. http://127.0.0.1:8080
    processes: tuple[ManagedProcess, ...]

    @property
    def ehr(self) -> str:
        return self.fhir_base.removesuffix("/fhir") + "/ehr"

    def ehr_launch(self, patient_id: str) -> str:
        return f"{self.ehr}/launch?patient={patient_id}"

    def standalone_launch(self) -> str:
        return f"{self.service_base}/smart/launch?iss={self.fhir_base}"


def start(stack: ExitStack, today: date, port: int = 0, fhir_port: int = 0) -> SmartDemo:
    """Both servers, stopped when `stack` closes; 0 picks a free port."""
    port = port or free_port()
    service_base = f"http://127.0.0.1:{port}"
    fhir, fhir_base = start_fhir_server(today, port=fhir_port, extra=[
        "--smart", "--smart-client-id", CLIENT_ID, "--smart-redirect-uri", f"{service_base}/smart/callback",
        "--smart-launch-url", f"{service_base}/smart/launch"])
    stack.callback(fhir.stop)
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mecasermin-smart-demo-")))
    origin = fhir_base.removesuffix("/fhir")
    # The service calls exactly the FHIR server and its two OAuth endpoints (plain http on loopback).
    allowlist = ",".join([fhir_base, f"{origin}/auth/authorize", f"{origin}/auth/token"])
    service, started_base = start_service(workdir / "smart-demo.sqlite3", fhir_base, port=port, today=today,
                                          extra_env={"CDS_FHIR_ALLOWLIST": allowlist, "CDS_SMART_CLIENT_ID": CLIENT_ID,
                                                     "CDS_SMART_DEFAULT_ISS": fhir_base})
    stack.callback(service.stop)
    assert started_base == service_base
    return SmartDemo(fhir_base, service_base, (fhir, service))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patient", default="demo-laron-icd10", help="the demo patient the app opens on")
    parser.add_argument("--port", type=int, default=8080, help="the service's port (default 8080)")
    parser.add_argument("--fhir-port", type=int, default=8090, help="the FHIR server's port (default 8090)")
    parser.add_argument("--today", metavar="YYYY-MM-DD", type=date.fromisoformat,
                        help="the demo's date (default: this machine's date)")
    parser.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        load_charts([args.patient])                 # an unknown patient id fails before anything starts
        with ExitStack() as stack:
            demo = start(stack, args.today or date.today(), port=args.port, fhir_port=args.fhir_port)
            url = demo.ehr_launch(args.patient)
            print(f"SMART demo: FHIR server and authorization server {demo.fhir_base}, service {demo.service_base}")
            print(f"   open the app on {args.patient}:  {url}")
            print(f"   every demo patient:           {demo.ehr}")
            print(f"   standalone launch:            {demo.standalone_launch()}")
            print("   Ctrl-C stops both servers.")
            if not args.no_browser and not webbrowser.open(url):
                print("   (no browser could be opened here: open the address above)")
            while all(process.process.poll() is None for process in demo.processes):
                time.sleep(0.5)
            print("a server stopped unexpectedly", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopped both servers.", file=sys.stderr)
        return 0
    except DemoError as exc:
        print(f"smart demo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
