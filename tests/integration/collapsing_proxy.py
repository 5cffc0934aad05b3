"""A FHIR proxy that collapses `//` anywhere in the request URL, query included, the way
smart-on-fhir/smart-launcher-v2 does: `code=http://loinc.org|8302-2` reaches the server as
`code=http:/loinc.org|8302-2`. Only percent-encoded search values survive it unchanged.

It forwards GETs to one upstream base and rewrites that base to its own in the answers (the
`next` links, `fullUrl`s), as a proxy in front of a FHIR server does.
"""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_SLASHES = re.compile(r"/{2,}")


class _Server(ThreadingHTTPServer):
    request_queue_size = 64
    daemon_threads = True


class CollapsingProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.forwarded: list[str] = []          # the paths as the upstream received them
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                collapsed = _SLASHES.sub("/", self.path)
                proxy.forwarded.append(collapsed)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                answer = requests.get(proxy.upstream + collapsed.removeprefix("/fhir"), headers=headers, timeout=10)
                body = answer.content.replace(proxy.upstream.encode(), proxy.base.encode())
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/fhir+json"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}/fhir"
        self._thread = threading.Thread(target=self._server.serve_forever, name="collapsing-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
