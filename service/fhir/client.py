"""The FHIR client: concurrent GETs against the EHR's FHIR server, all inside one deadline.

Thin by design: it returns JSON or a named technical failure, never raises to the caller.
- One pooled `requests.Session` per process; connect/read timeouts on every call.
- The deadline is a total time per request, not per socket read: a watchdog shuts the socket
  of a request still running at its deadline, so a server dripping one byte a second cannot
  hold a worker thread (or the pool) past it.
- Retries 429/502/503/504 with back-off (honouring Retry-After) while the deadline allows.
- Follows `Bundle.link[next]` up to a page cap, only on the same origin as the base URL,
  and never follows redirects: the bearer token must not leave the allowlisted server.
- Bodies are read in chunks up to a size cap, so a 50 MB answer cannot exhaust memory; a
  `Budget` also counts bytes and resources across every fetch of one hook call, and a search
  stopped at a limit says what it left unread.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from service.metrics import timed_fetch
from service.settings import Settings

RETRY_STATUSES = frozenset({429, 502, 503, 504})
ACCEPT = "application/fhir+json, application/json;q=0.9"


@dataclass(frozen=True)
class FetchResult:
    key: str
    body: Any = None              # the parsed JSON (resource or Bundle); None on failure
    pages: tuple = ()             # further Bundle pages, in order
    error: str | None = None      # why it failed ("timeout", "HTTP 500", "not JSON", ...)
    unread: str | None = None     # the search was cut short: what was left unread, and why


class Deadline:
    """Time alone: no byte or resource limit of its own (each response is still size-capped)."""

    def __init__(self, seconds: float):
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def take_bytes(self, count: int) -> str | None:
        """Count bytes read; the reason to stop reading when they pass the limit, else None."""
        return None

    def take_resources(self, count: int) -> str | None:
        """Count a page's resources; the reason to leave it unread (nothing counted) when they
        would pass the limit, else None."""
        return None


class Budget(Deadline):
    """What one hook call may still spend on FHIR: its deadline, and the bytes and resources it
    may read, counted across all its fetches together (the prefetch's resources come first)."""

    def __init__(self, seconds: float, max_bytes: int, max_resources: int, resources_used: int = 0):
        super().__init__(seconds)
        self.max_bytes, self.max_resources = max_bytes, max_resources
        self.bytes_used, self.resources_used = 0, resources_used
        self._lock = threading.Lock()

    def take_bytes(self, count: int) -> str | None:
        with self._lock:
            self.bytes_used += count
            over = self.bytes_used > self.max_bytes
        return f"the call's limit of {self.max_bytes} bytes was reached" if over else None

    def take_resources(self, count: int) -> str | None:
        with self._lock:
            if self.resources_used + count > self.max_resources:
                return f"the call's limit of {self.max_resources} resources was reached"
            self.resources_used += count
        return None


class _SocketWatchdog:
    """Shuts down the socket of a request still running at its deadline.

    Socket timeouts bound each read, not a request: a server sending a header byte a second
    never trips them. Shutting the socket down wakes the blocked read at once, so the worker
    thread is free again and the abandoned request never holds the pool.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: dict[int, tuple[float, socket.socket]] = {}   # thread id → (expires, socket)
        self._thread: threading.Thread | None = None

    def watch(self, sock: Any) -> None:
        expires = getattr(_request_deadline, "expires", None)
        if expires is None or not isinstance(sock, socket.socket):
            return
        with self._changed:
            self._watched[threading.get_ident()] = (expires, sock)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fhir-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def release(self) -> None:
        with self._changed:
            self._watched.pop(threading.get_ident(), None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                for owner, (expires, sock) in list(self._watched.items()):
                    if expires <= now:
                        del self._watched[owner]
                        try:        # under the lock: the owner cannot have handed the socket back yet
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                soonest = min((expires for expires, _ in self._watched.values()), default=None)
                self._changed.wait(None if soonest is None else max(0.0, soonest - now))


_watchdog = _SocketWatchdog()
_request_deadline = threading.local()     # the deadline of the request this thread is making


class _WatchedConnection:
    """A urllib3 connection whose socket is watched from its creation (connect, TLS handshake)
    and again when a pooled connection is reused (while the response headers arrive)."""

    def _new_conn(self):
        sock = super()._new_conn()
        _watchdog.watch(sock)
        return sock

    def getresponse(self, *args, **kwargs):
        _watchdog.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class FhirClient:
    # Every prefetch key of one call at once (14, the prescriber's two included), with room to spare.
    def __init__(self, settings: Settings, max_workers: int = 16):
        self.settings = settings
        self.session = requests.Session()
        adapter = _WatchedAdapter(pool_connections=16, pool_maxsize=max_workers * 2, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False     # no proxy or .netrc credentials from the environment
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fhir")

    def fetch_all(self, base_url: str, token: str | None, queries: Mapping[str, str],
                  deadline: Deadline) -> dict[str, FetchResult]:
        """Fetch every query concurrently; whatever has not finished by the deadline is a timeout."""
        futures: dict[Future, str] = {
            self.executor.submit(self._fetch_key, base_url, token, key, query, deadline): key
            for key, query in queries.items()
        }
        results: dict[str, FetchResult] = {}
        pending = set(futures)
        while pending and deadline.remaining() > 0:
            done, pending = wait(pending, timeout=deadline.remaining(), return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future]] = future.result()
        for future in pending:
            future.cancel()
            results[futures[future]] = FetchResult(futures[future], error="deadline exceeded")
        return results

    @timed_fetch
    def _fetch_key(self, base_url: str, token: str | None, key: str, query: str, deadline: Deadline) -> FetchResult:
        try:
            body = self._get_json(urljoin(base_url.rstrip("/") + "/", query), token, deadline)
            over = deadline.take_resources(_entry_count(body))
            if over:
                raise FetchError(f"{over}; this search was left unread")
            pages, unread = self._next_pages(body, base_url, token, deadline)
            total = body.get("total") if isinstance(body, dict) else None
            read = sum(_match_count(b) for b in [body, *pages])
            if unread and isinstance(total, int) and total > read:
                unread += f" ({total - read} of {total} matches unread)"
            return FetchResult(key, body=body, pages=tuple(pages), unread=unread)
        except FetchError as exc:
            return FetchResult(key, error=str(exc))
        except Exception as exc:  # an edge must never raise: any surprise is a technical gap
            return FetchResult(key, error=f"unexpected failure ({type(exc).__name__})")

    def _next_pages(self, body: Any, base_url: str, token: str | None, deadline: Deadline) -> tuple[list, str | None]:
        """The pages after `body` while the page cap and the call's limits allow, and what was left
        unread when they did not (None: the search was read to its end)."""
        pages: list = []
        next_url = _next_link(body)
        while next_url:
            if not _under_base(next_url, base_url):
                return pages, "its next page is not on the FHIR server's base URL and was not read"
            if len(pages) + 1 >= self.settings.fhir_max_pages:
                return pages, f"pages after the first {self.settings.fhir_max_pages} were left unread"
            page = self._get_json(next_url, token, deadline)
            over = deadline.take_resources(_entry_count(page))
            if over:
                return pages, f"{over}; pages after the first {len(pages) + 1} were left unread"
            pages.append(page)
            next_url = _next_link(page)
        return pages, None

    def _get_json(self, url: str, token: str | None, deadline: Deadline) -> Any:
        headers = {"Accept": ACCEPT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        attempt = 0
        while True:
            _request_deadline.expires = deadline.expires
            try:
                response = self._get(url, headers, deadline)
            except FetchError:
                _watchdog.release()
                raise
            try:
                if response.status_code in RETRY_STATUSES and attempt < self.settings.fhir_retries:
                    delay = _retry_delay(response, attempt)
                    if delay < deadline.remaining():
                        attempt += 1
                        time.sleep(delay)
                        continue
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code}")
                return json.loads(self._read_capped(response, deadline))
            except (ValueError, UnicodeDecodeError):
                raise FetchError("response is not JSON") from None
            finally:
                _watchdog.release()
                response.close()

    def _get(self, url: str, headers: dict, deadline: Deadline) -> requests.Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise FetchError("deadline exceeded")
        timeout = (min(self.settings.fhir_connect_timeout, remaining), min(self.settings.fhir_read_timeout, remaining))
        try:
            return self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
        except requests.Timeout:
            raise FetchError("timeout") from None
        except requests.RequestException as exc:
            if deadline.remaining() <= 0:      # the watchdog shut the socket
                raise FetchError("deadline exceeded") from None
            raise FetchError(f"connection failed ({type(exc).__name__})") from None

    def _read_capped(self, response: requests.Response, deadline: Deadline) -> bytes:
        # `read1` returns whatever one socket read brings (each bounded by the read timeout), so
        # the deadline is checked between reads: a server dripping a byte at a time cannot hold
        # a worker thread past the deadline (`iter_content` would block until 64 KB arrived).
        cap = self.settings.fhir_max_response_bytes
        chunks, size = [], 0
        try:
            while True:
                if deadline.remaining() <= 0:
                    raise FetchError("deadline exceeded")
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise FetchError(f"response larger than {cap} bytes")
                over = deadline.take_bytes(len(chunk))
                if over:
                    raise FetchError(f"{over}; the rest of this response was left unread")
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
                raise FetchError("timeout") from None
            if deadline.remaining() <= 0:      # the watchdog shut the socket
                raise FetchError("deadline exceeded") from None
            raise FetchError(f"connection failed ({type(exc).__name__})") from None
        return b"".join(chunks)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.session.close()


class FetchError(Exception):
    pass


def _retry_delay(response: requests.Response, attempt: int) -> float:
    header = response.headers.get("Retry-After", "")
    if header.isdigit():
        return float(header)
    return 0.1 * (2 ** attempt)


def _entries(body: Any) -> list:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle" or not isinstance(body.get("entry"), list):
        return []
    return body["entry"]


def _entry_count(body: Any) -> int:
    return len(_entries(body)) if isinstance(body, dict) and body.get("resourceType") == "Bundle" else 1


def _match_count(body: Any) -> int:
    """Entries that are search matches (not `_include`d resources nor outcomes)."""
    return sum(1 for e in _entries(body) if not (isinstance(e, dict) and isinstance(e.get("search"), dict)
                                                 and e["search"].get("mode") in ("include", "outcome")))


def incomplete_search(body: Any) -> str | None:
    """Why a searchset Bundle does not hold every match (a `next` link, `total` above its
    matches), or None when it is complete as far as it says."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle" or body.get("type") not in (None, "searchset"):
        return None
    total, matches = body.get("total"), _match_count(body)
    if isinstance(total, int) and not isinstance(total, bool) and total > matches:
        return f"it holds {matches} of {total} matches"
    if _next_link(body):
        return "it has a next page"
    return None


def _next_link(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return None
    for link in body.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _under_base(url: str, base_url: str) -> bool:
    """A next link is followed only below the allowlisted base: the bearer token goes nowhere else.

    Paths are compared decoded ("%2e%2e" is ".."), and a path a server could resolve elsewhere is
    refused: dot segments, "name;params" segments (Tomcat/Jetty read "..;" as ".."), backslashes,
    encoded slashes or a second layer of escapes."""
    a, b = urlsplit(url), urlsplit(base_url)
    path, base_path = unquote(a.path), unquote(b.path).rstrip("/") + "/"
    dot_or_params = any((segment and not segment.strip(".")) or ";" in segment for segment in path.split("/"))
    below = path.startswith(base_path) or path == base_path[:-1]      # HAPI pages: "[base]?_getpages=…"
    return ((a.scheme, a.netloc) == (b.scheme, b.netloc) and below and not dot_or_params
            and "\\" not in path and "%" not in path and "%2f" not in a.path.lower()
            and not a.username and not a.password)
