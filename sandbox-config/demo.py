"""`make demo`: every demo patient through order-select and order-sign, end to end, in the terminal.

Starts the demo FHIR R4 server (fhir-server/, loaded with sandbox-config/patients) and the CDS
service (gunicorn, through the `mecasermin-cds serve` console script) on free loopback ports, then
plays the EHR: for each patient it sends order-select and order-sign for the chart's draft
mecasermin order with `fhirServer` and a `fhirAuthorization` bearer token but no prefetch, so the
service reads the chart from the FHIR server itself. It prints each answer's cards (indicator,
summary, the coverage checklist) and the coverage determination (from the service's audit log, with
the Da Vinci CRD `covered` code of the systemAction), and stops both servers when done, on an
error, or on Ctrl-C.

    .venv/bin/python sandbox-config/demo.py [--patient demo-laron-icd10 ...] [--today YYYY-MM-DD]
                                            [--expected FILE] [--no-color]

"today" is this machine's date unless --today pins it; both servers get it (`server.mjs --today`,
`mecasermin-cds serve --today`). The demo charts are date-relative: the FHIR server moves their
dates so that their anchor day becomes today, and the demo takes each chart's Patient and draft
order from that server, so the outcomes never depend on the date. Every outcome (determination of
each hook, CRD `covered` code, critical cards, the patient-view screening card) is checked against
patients/expected.json, and the exit status is 1 on any difference.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
PATIENTS = ROOT / "sandbox-config" / "patients"
NODE = ROOT / "fhir-server" / "node_modules" / ".bin" / "node"
FHIR_SERVER = ROOT / "fhir-server" / "server.mjs"
EXPECTED = PATIENTS / "expected.json"
START_TIMEOUT_S = 60
DUMMY_TOKEN = "demo-token-the-demo-fhir-server-does-not-check"
CRD_EXTENSION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
SERVICES = {"order-select": "mecasermin-order-select", "order-sign": "mecasermin-order-sign"}
SCREEN = "mecasermin-screen"


class DemoError(RuntimeError):
    """Something the demo needs did not start or answer."""


# --------------------------------------------------------------------------- the demo charts

@dataclass(frozen=True)
class Chart:
    """One demo patient: the Patient and the draft mecasermin order of its transaction Bundle."""

    patient: dict
    order: dict

    @property
    def patient_id(self) -> str:
        return self.patient["id"]

    @property
    def user_id(self) -> str:
        requester = (self.order.get("requester") or {}).get("reference", "")
        return requester if requester.startswith(("Practitioner/", "PractitionerRole/")) else \
            "Practitioner/demo-pediatric-endocrinologist"


def load_chart(path: Path) -> Chart:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    resources = [entry["resource"] for entry in bundle.get("entry", [])]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    drafts = [r for r in resources if r.get("resourceType") == "MedicationRequest" and r.get("status") == "draft"
              and "mecasermin" in json.dumps(r.get("medicationCodeableConcept", {})).lower()]
    if len(patients) != 1 or len(drafts) != 1:
        raise DemoError(f"{path.name}: expected one Patient and one draft mecasermin MedicationRequest")
    return Chart(patients[0], drafts[0])


def load_charts(only: list[str] | None = None) -> list[Chart]:
    """The demo charts as the Bundle files hold them (dated as of their anchor day)."""
    charts = [load_chart(path) for path in sorted(PATIENTS.glob("demo-*.json"))]
    if only:
        unknown = set(only) - {c.patient_id for c in charts}
        if unknown:
            raise DemoError(f"no demo patient {', '.join(sorted(unknown))}")
        charts = [c for c in charts if c.patient_id in only]
    return charts


def chart_from_server(session: requests.Session, fhir_base: str, chart: Chart) -> Chart:
    """The chart's Patient and draft order as the FHIR server holds them: dated to its today."""
    def read(reference: str) -> dict:
        answer = session.get(f"{fhir_base}/{reference}", headers={"Accept": "application/fhir+json"}, timeout=10)
        if answer.status_code != 200:
            raise DemoError(f"the FHIR server answered {reference} with HTTP {answer.status_code}")
        return answer.json()
    return Chart(read(f"Patient/{chart.patient_id}"), read(f"MedicationRequest/{chart.order['id']}"))


def load_expected(path: Path = EXPECTED) -> dict[str, dict]:
    """patients/expected.json: {patient id: {determination, crd_covered, contraindication, dose_critical,
    screening}}, the outcomes every demo run is checked against."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot read the expected outcomes {path}: {exc}") from None


def fhir_authorization(chart: Chart) -> dict:
    return {"access_token": DUMMY_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
            "subject": "mecasermin-cds-demo", "patient": chart.patient_id}


def hook_request(chart: Chart, hook: str, fhir_base: str | None = None, prefetch: dict | None = None) -> dict:
    """A CDS Hooks 2.0.1 order-select / order-sign request for the chart's draft order.

    With `fhir_base`: `fhirServer` and a `fhirAuthorization` (bearer token, patient scope) so the
    service can fetch; with `prefetch`: the prefetched data. Either, both or neither.
    """
    context: dict[str, Any] = {"userId": chart.user_id, "patientId": chart.patient_id}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{chart.order['id']}"]
    context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": chart.order}]}
    body: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": hook}
    if fhir_base:
        body["fhirServer"] = fhir_base
        body["fhirAuthorization"] = fhir_authorization(chart)
    body["context"] = context
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def screen_request(chart: Chart, fhir_base: str) -> dict:
    """A patient-view request for the chart, the service fetching what it needs."""
    return {"hookInstance": str(uuid.uuid4()), "hook": "patient-view", "fhirServer": fhir_base,
            "fhirAuthorization": fhir_authorization(chart),
            "context": {"userId": chart.user_id, "patientId": chart.patient_id}}


# --------------------------------------------------------------------------- the two servers

def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedProcess:
    """A child process in its own session, its stderr in a temporary file; stop() ends its group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None):
        self.name = name
        self.stderr = tempfile.TemporaryFile()
        # --exit-on-stdin-eof (FHIR server) and a pipe on stdin: if this process dies, so does the child.
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env=env, cwd=ROOT, start_new_session=True)

    def stderr_tail(self, limit: int = 2000) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-limit:]

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()
        self.stderr.close()


def start_fhir_server(today: date, data: Path = PATIENTS, extra: list[str] | None = None,
                      port: int = 0) -> tuple[ManagedProcess, str]:
    """The demo FHIR server on a loopback port (0: a free one), its date-relative charts dated to
    `today`; returns it and its base URL."""
    if not NODE.exists():
        raise DemoError(f"{NODE.relative_to(ROOT)} is missing: run `make fhir-server/node_modules` (or `make demo`)")
    server = ManagedProcess("FHIR server", [str(NODE), str(FHIR_SERVER), "--host", "127.0.0.1", "--port", str(port),
                                            "--data", str(data), "--today", today.isoformat(),
                                            "--exit-on-stdin-eof", *(extra or [])])
    line: list[str] = []
    try:
        reader = threading.Thread(target=lambda: line.append(server.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or not line[0].startswith("listening http://"):
            raise DemoError(f"the FHIR server did not start: {line[0] if line else 'no output'}\n{server.stderr_tail()}")
    except BaseException:       # Ctrl-C while waiting included: never leave it running
        server.stop()
        raise
    return server, line[0].split(" ", 1)[1].strip()


def start_service(database: Path, fhir_base: str, port: int | None = None, workers: int = 2,
                  extra_env: dict[str, str] | None = None, today: date | None = None) -> tuple[ManagedProcess, str]:
    """The service under gunicorn (`mecasermin-cds serve`); returns it and its base URL."""
    port = port or free_port()
    console_script = Path(sys.executable).parent / "mecasermin-cds"
    if not console_script.exists():
        raise DemoError(f"{console_script} is missing: run `make demo` (it installs the project into .venv)")
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDS_")}
    env.update({
        "CDS_DATABASE_URL": f"sqlite:///{database}",       # an absolute path gives sqlite:////…
        "CDS_FHIR_ALLOWLIST": fhir_base,                   # exactly the demo FHIR server
        "CDS_AUTH_MODE": "off",
        "CDS_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    })
    args = [str(console_script), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if today is not None:
        args += ["--today", today.isoformat()]
    service = ManagedProcess("CDS service", args, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and service.process.poll() is None:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return service, base
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise DemoError(f"the CDS service did not start on port {port}:\n{service.stderr_tail()}")
    except BaseException:       # Ctrl-C while waiting included: never leave it running
        service.stop()
        raise


# --------------------------------------------------------------------------- reading an answer

def determination(database: Path, hook_instance: str) -> str | None:
    """The coverage determination the service wrote to its audit log for this call."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute("SELECT determination FROM audit WHERE hook_instance = ? ORDER BY id DESC LIMIT 1",
                         (hook_instance,)).fetchone()
    return row[0] if row else None


def crd_covered(response: dict) -> str | None:
    """The CRD `covered` code of the coverage-information systemAction (None without a Coverage)."""
    for action in response.get("systemActions", []):
        for info in action.get("resource", {}).get("extension", []):
            if info.get("url") == CRD_EXTENSION:
                for part in info.get("extension", []):
                    if part.get("url") == "covered":
                        return part.get("valueCode")
    return None


def topic(card: dict) -> str:
    return (card.get("source", {}).get("topic") or {}).get("code", "")


CHECKLIST_MARKS = ("\u2713", "\u2717", "?")


def checklist(card: dict) -> list[str]:
    """The coverage card's checklist rows ("✓ Height SDS: 111.6 cm … on 2026-…"), as the card shows them."""
    return [line[2:] for line in card.get("detail", "").splitlines()
            if line.startswith("- ") and line[2:3] in CHECKLIST_MARKS]


# --------------------------------------------------------------------------- printing

class Style:
    def __init__(self, color: bool):
        self.color = color

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def indicator(self, indicator: str) -> str:
        return self(f"[{indicator.upper()}]".ljust(11), {"critical": "1;31", "warning": "33", "info": "36"}[indicator])


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def describe_order(order: dict) -> str:
    dosage = (order.get("dosageInstruction") or [{}])[0]
    return shorten(dosage.get("text") or order["medicationCodeableConcept"].get("text", ""), 90)


def print_answer(style: Style, hook: str, response: dict, elapsed_ms: float, found: str | None,
                 show_checklist: bool) -> None:
    covered = crd_covered(response)
    crd = f"CRD covered: {covered}" if covered else "no CRD systemAction (no Coverage on file)"
    print(f"   {style(hook, '1')} — {elapsed_ms:.0f} ms — determination {style(found or 'none', '1')}; {crd}")
    for card in response["cards"]:
        print(f"     {style.indicator(card['indicator'])}{card['summary']}  ({topic(card)})")
        if show_checklist and topic(card) == "coverage-info":
            for row in checklist(card):
                print(f"                  {shorten(row, 150)}")


@dataclass
class Outcome:
    patient_id: str
    determinations: dict[str, str | None]
    covered: str | None
    critical: list[str]
    screening: bool


def post(session: requests.Session, service_base: str, service_id: str, body: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    answer = session.post(f"{service_base}/cds-services/{service_id}", json=body, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise DemoError(f"{service_id} for {body['context']['patientId']}: HTTP {answer.status_code} {answer.text[:500]}")
    return answer.json(), elapsed


def save_cards(directory: Path, patient_id: str, hook: str, response: dict) -> None:
    """Each card of the answer as its own JSON file, `<patient>.<hook>.<n>.json`: what the CDS Hooks
    sandbox's Card Demo view (its pencil button) renders when pasted, for the cards its Rx View cannot reach."""
    for n, card in enumerate(response["cards"], start=1):
        (directory / f"{patient_id}.{hook}.{n}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n",
                                                              encoding="utf-8")


def run(charts: list[Chart], fhir_base: str, service_base: str, database: Path, style: Style,
        cards_dir: Path | None = None) -> list[Outcome]:
    outcomes = []
    session = requests.Session()
    for chart in charts:
        chart = chart_from_server(session, fhir_base, chart)
        patient = chart.patient
        print()
        print(style(f"━━ {chart.patient_id}", "1;34") + f" — {patient.get('gender', '?')}, born {patient.get('birthDate')}"
              f" — draft order: {describe_order(chart.order)}")
        found: dict[str, str | None] = {}
        covered, critical = None, []
        for hook in ("order-select", "order-sign"):
            body = hook_request(chart, hook, fhir_base=fhir_base)
            response, elapsed = post(session, service_base, SERVICES[hook], body)
            if cards_dir:
                save_cards(cards_dir, chart.patient_id, hook, response)
            found[hook] = determination(database, body["hookInstance"])
            print_answer(style, hook, response, elapsed, found[hook], show_checklist=hook == "order-select")
            covered = crd_covered(response) or covered
            critical = sorted(set(critical) | {topic(c) for c in response["cards"] if c["indicator"] == "critical"})
        screen, elapsed = post(session, service_base, SCREEN, screen_request(chart, fhir_base))
        if cards_dir:
            save_cards(cards_dir, chart.patient_id, "patient-view", screen)
        print(f"   {style('patient-view', '1')} — {elapsed:.0f} ms — screening: "
              + (" / ".join(card["summary"] for card in screen["cards"]) or "no card"))
        outcomes.append(Outcome(chart.patient_id, found, covered, critical, bool(screen["cards"])))
    return outcomes


def expected_critical(want: dict) -> set[str]:
    return ({"contraindication"} if want.get("contraindication") else set()) | \
        ({"off-guideline"} if want.get("dose_critical") else set())


def differences(outcome: Outcome, want: dict | None) -> list[str]:
    """Each way the outcome differs from what patients/expected.json says (empty: it agrees)."""
    if want is None:
        return ["no expected outcome in patients/expected.json"]
    found = [f"{hook}: determination {got or 'none'}, expected {want['determination']}"
             for hook, got in outcome.determinations.items() if got != want["determination"]]
    if outcome.covered != want["crd_covered"]:
        found.append(f"CRD covered {outcome.covered or 'none'}, expected {want['crd_covered'] or 'none'}")
    extra, missing = set(outcome.critical) - expected_critical(want), expected_critical(want) - set(outcome.critical)
    found += [f"unexpected critical card ({name})" for name in sorted(extra)]
    found += [f"missing critical card ({name})" for name in sorted(missing)]
    if outcome.screening != want["screening"]:
        found.append("screening card shown, expected none" if outcome.screening else "no screening card, expected one")
    return found


def print_summary(style: Style, outcomes: list[Outcome], expected: dict[str, dict], source: Path) -> int:
    """The summary table, each outcome checked; returns how many patients differ."""
    print()
    shown = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
    print(style("Summary", "1") + f"  (checked against {shown})")
    print(f"   {'patient':<26}{'determination':<22}{'CRD covered':<14}{'critical cards':<32}{'screen':<8}expected")
    differing = 0
    for outcome in outcomes:
        want = expected.get(outcome.patient_id)
        problems = differences(outcome, want)
        differing += bool(problems)
        mark = style(" ✗", "1;31") if problems else style(" ✓", "32")
        got = outcome.determinations.get("order-sign")
        print(f"   {outcome.patient_id:<26}{got or 'none':<22}{outcome.covered or '—':<14}"
              f"{', '.join(outcome.critical) or '—':<32}{'card' if outcome.screening else '—':<8}"
              f"{(want or {}).get('determination', '?')}{mark}")
        for problem in problems:
            print(style(f"      ✗ {problem}", "31"))
    return differing


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patient", action="append", help="only this demo patient id (repeatable)")
    parser.add_argument("--today", metavar="YYYY-MM-DD", type=date.fromisoformat,
                        help="the service's evaluation date (default: this machine's date)")
    parser.add_argument("--expected", metavar="FILE", type=Path, default=EXPECTED,
                        help="the expected outcomes (default sandbox-config/patients/expected.json)")
    parser.add_argument("--no-color", action="store_true", help="plain text even on a terminal")
    parser.add_argument("--cards", metavar="DIR", type=Path,
                        help="also write every card as DIR/<patient>.<hook>.<n>.json (for the sandbox's Card Demo)")
    args = parser.parse_args(argv)
    style = Style(sys.stdout.isatty() and not args.no_color and os.environ.get("NO_COLOR") is None)
    # SIGTERM ends the demo like Ctrl-C does: through the clean-up that stops both servers.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    today = args.today or date.today()
    try:
        charts = load_charts(args.patient)
        expected = load_expected(args.expected)
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mecasermin-demo-")))
            fhir, fhir_base = start_fhir_server(today)
            stack.callback(fhir.stop)
            database = workdir / "demo.sqlite3"
            service, service_base = start_service(database, fhir_base, today=today)
            stack.callback(service.stop)
            print(style("mecasermin-cds demo", "1") + f" — {len(charts)} patient{'s' if len(charts) != 1 else ''}, "
                  f"today {today}")
            print(f"   FHIR server  {fhir_base} (the demo Bundles of sandbox-config/patients, dated to today)")
            print(f"   CDS service  {service_base}/cds-services (gunicorn), audit log in {database}")
            print("   Each request carries fhirServer and a dummy bearer token, no prefetch: the service reads the chart.")
            if args.cards:
                args.cards.mkdir(parents=True, exist_ok=True)
            outcomes = run(charts, fhir_base, service_base, database, style, args.cards)
            differing = print_summary(style, outcomes, expected, args.expected)
        print(f"\n{len(outcomes) * 3} hook calls; demo finished in {time.perf_counter() - started:.1f} s "
              "(both servers stopped).")
        if differing:
            print(f"{differing} patient{'s differ' if differing != 1 else ' differs'} from the expected outcomes",
                  file=sys.stderr)
        return 1 if differing else 0
    except KeyboardInterrupt:
        print("\ninterrupted: both servers stopped.", file=sys.stderr)
        return 130
    except (DemoError, requests.RequestException) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
