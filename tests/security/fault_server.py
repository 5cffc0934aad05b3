"""A real HTTP server on 127.0.0.1 that plays a misbehaving FHIR server.

The first path segment picks the behaviour, so `http://127.0.0.1:<port>/<mode>` is a FHIR base
URL whose every request misbehaves the same way; `/ok` answers like a small, healthy R4 server.
"""
from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.fixtures import patient_resource

FIFTY_MB = 50 * 1024 * 1024

MODES = (
    "ok", "hang", "hang-after-headers", "drip", "http-500", "http-503", "retry-after", "retry-after-long",
    "html", "truncated", "short-body", "huge", "huge-chunked", "gzip-bomb", "drop", "reset", "garbage-status",
    "wrong-type", "outcome", "outcome-404", "redirect", "next-loop", "next-offsite", "not-utf8", "deep-json",
    "null-json", "array-json", "slow-ok",
)


def _bundle(resources=(), base="", next_url=None) -> dict:
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
              "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def _outcome(code="exception", text="Internal error while searching") -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


class _Server(ThreadingHTTPServer):
    request_queue_size = 64     # a call fetches all its searches at once, as FHIR servers allow


class FaultServer:
    def __init__(self, other_origin: str = "http://127.0.0.1:9"):
        self.other_origin = other_origin        # where redirects and foreign next links point
        self.release = threading.Event()        # set on stop: hung handlers return
        self.calls: list[tuple[str, str, str | None]] = []   # (mode, path, Authorization)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):     # keep test output quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (ConnectionResetError, BrokenPipeError, socket.timeout):
                    pass                          # the client gave up first: that is the point

            def do_GET(self):
                parts = urlsplit(self.path)
                mode, _, rest = parts.path.lstrip("/").partition("/")
                with server._lock:
                    server.calls.append((mode, self.path, self.headers.get("Authorization")))
                try:
                    getattr(server, "_" + mode.replace("-", "_"), server._unknown)(self, rest, parts.query)
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fault-server", daemon=True)

    def start(self) -> "FaultServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, mode: str) -> str:
        return f"{self.base}/{mode}"

    def calls_for(self, mode: str) -> list[tuple[str, str, str | None]]:
        with self._lock:
            return [c for c in self.calls if c[0] == mode]

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _send(h, status: int, body: bytes, content_type="application/fhir+json", **headers) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(body)

    def _json(self, h, status: int, document, **headers) -> None:
        self._send(h, status, json.dumps(document).encode(), **headers)

    def _healthy_answer(self, h, mode: str, rest: str) -> dict:
        if rest.startswith("Patient/"):
            return patient_resource(patient_id=rest.split("/", 1)[1])
        return _bundle(base=f"{self.base}/{mode}")

    # ------------------------------------------------------------------ behaviours

    def _unknown(self, h, rest, query):
        self._json(h, 404, _outcome("not-found", "unknown mode"))

    def _ok(self, h, rest, query):
        self._json(h, 200, self._healthy_answer(h, "ok", rest))

    def _slow_ok(self, h, rest, query):
        time.sleep(0.3)
        self._json(h, 200, self._healthy_answer(h, "slow-ok", rest))

    def _hang(self, h, rest, query):
        self.release.wait(60)

    def _hang_after_headers(self, h, rest, query):
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b'{"resourceType": "Bundle", "entry": [')
        h.wfile.flush()
        self.release.wait(60)

    def _drip(self, h, rest, query):
        # A byte every 0.2 s: never idle long enough for a read timeout, never finished either.
        body = json.dumps(_bundle()).encode() + b" " * 200_000
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for i in range(len(body)):
            if self.release.wait(0.2):
                return
            h.wfile.write(body[i:i + 1])
            h.wfile.flush()

    def _http_500(self, h, rest, query):
        self._json(h, 500, _outcome())

    def _http_503(self, h, rest, query):
        self._send(h, 503, b"<html><body>Service Unavailable</body></html>", "text/html")

    def _retry_after(self, h, rest, query):
        self._json(h, 429, _outcome("throttled", "Too many requests"), Retry_After="1")

    def _retry_after_long(self, h, rest, query):
        self._json(h, 429, _outcome("throttled", "Too many requests"), Retry_After="3600")

    def _html(self, h, rest, query):
        self._send(h, 200, b"<!DOCTYPE html><html><head><title>Login</title></head><body>Sign in</body></html>",
                   "text/html; charset=utf-8")

    def _truncated(self, h, rest, query):
        full = json.dumps(self._healthy_answer(h, "truncated", rest)).encode()
        self._send(h, 200, full[: len(full) // 2])

    def _short_body(self, h, rest, query):
        # Content-Length promises more than is sent, then the connection closes.
        full = json.dumps(self._healthy_answer(h, "short-body", rest)).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.send_header("Content-Length", str(len(full) + 5000))
        h.end_headers()
        h.wfile.write(full[: len(full) // 2])
        h.wfile.flush()
        h.close_connection = True

    def _huge(self, h, rest, query):
        head = b'{"resourceType": "Bundle", "type": "searchset", "entry": [], "padding": "'
        tail = b'"}'
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.send_header("Content-Length", str(len(head) + FIFTY_MB + len(tail)))
        h.end_headers()
        h.wfile.write(head)
        block = b"x" * (1024 * 1024)
        for _ in range(50):
            if self.release.is_set():
                return
            h.wfile.write(block)
        h.wfile.write(tail)

    def _huge_chunked(self, h, rest, query):
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        block = b"x" * (1024 * 1024)
        chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
        h.wfile.write(b'1\r\n[\r\n')
        for _ in range(50):
            if self.release.is_set():
                return
            h.wfile.write(chunk)
        h.wfile.write(b"0\r\n\r\n")

    _bomb: bytes | None = None

    def _gzip_bomb(self, h, rest, query):
        # About 50 KB on the wire, 50 MB once inflated.
        with self._lock:
            if FaultServer._bomb is None:
                FaultServer._bomb = gzip.compress(
                    b'{"resourceType":"Bundle","type":"searchset","x":"' + b"0" * FIFTY_MB + b'"}', 6)
        self._send(h, 200, FaultServer._bomb, Content_Encoding="gzip")

    def _drop(self, h, rest, query):
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self, h, rest, query):
        h.close_connection = True
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    def _garbage_status(self, h, rest, query):
        h.close_connection = True
        h.wfile.write(b"HTTP/1.1 TWO HUNDRED OK\r\nX: y\r\n\r\n{}")

    def _wrong_type(self, h, rest, query):
        wrong = {"resourceType": "Observation", "id": "o1", "status": "final",
                 "code": {"text": "Body height"}, "subject": {"reference": "Patient/p1"}}
        if rest.startswith("Patient/"):
            self._json(h, 200, wrong)
        else:
            # A search answered with a bare resource, and a Bundle full of the wrong things.
            self._json(h, 200, patient_resource() if "Condition" in rest else
                       _bundle([wrong, {"resourceType": "Binary", "id": "b1", "contentType": "text/plain"}],
                               f"{self.base}/wrong-type"))

    def _outcome(self, h, rest, query):
        self._json(h, 200, _outcome("processing", "Search not supported"))

    def _outcome_404(self, h, rest, query):
        self._json(h, 404, _outcome("not-found", "Resource Patient/p1 is not known"))

    def _redirect(self, h, rest, query):
        self._send(h, 302, b"", Location=f"{self.other_origin}/stolen/{rest}")

    def _next_loop(self, h, rest, query):
        url = f"{self.base}/next-loop/{rest}" + (f"?{query}" if query else "")
        if rest.startswith("Patient/"):
            self._json(h, 200, patient_resource())
        else:
            self._json(h, 200, _bundle(base=f"{self.base}/next-loop", next_url=url))

    def _next_offsite(self, h, rest, query):
        if rest.startswith("Patient/"):
            self._json(h, 200, patient_resource())
        else:
            self._json(h, 200, _bundle(base=f"{self.base}/next-offsite",
                                       next_url=f"{self.other_origin}/stolen/Observation?page=2"))

    def _not_utf8(self, h, rest, query):
        self._send(h, 200, b'{"resourceType": "Patient", "id": "p1", "name": [{"family": "\xff\xfe"}]}')

    def _deep_json(self, h, rest, query):
        self._send(h, 200, b"[" * 200_000 + b"]" * 200_000)

    def _null_json(self, h, rest, query):
        self._send(h, 200, b"null")

    def _array_json(self, h, rest, query):
        self._send(h, 200, b'[{"resourceType": "Patient", "id": "p1"}]')
