"""The FHIR client: concurrent GETs against the EHR's FHIR server, all inside one deadline.

Thin by design: it returns JSON or a named technical failure, never raises to the caller.
- One pooled `requests.Session` per process; connect/read timeouts on every call.
- Retries 429/502/503/504 with back-off (honouring Retry-After) while the deadline allows.
- Follows `Bundle.link[next]` up to a page cap, only on the same origin as the base URL,
  and never follows redirects: the bearer token must not leave the allowlisted server.
- Bodies are read in chunks up to a size cap, so a 50 MB answer cannot exhaust memory.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

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


class Deadline:
    def __init__(self, seconds: float):
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())


class FhirClient:
    def __init__(self, settings: Settings, max_workers: int = 8):
        self.settings = settings
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=max_workers * 2, max_retries=0)
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
            url = urljoin(base_url.rstrip("/") + "/", query)
            body = self._get_json(url, token, deadline)
            pages = []
            next_url = _next_link(body)
            while next_url and len(pages) + 1 < self.settings.fhir_max_pages:
                if not _under_base(next_url, base_url):
                    break
                page = self._get_json(next_url, token, deadline)
                pages.append(page)
                next_url = _next_link(page)
            return FetchResult(key, body=body, pages=tuple(pages))
        except FetchError as exc:
            return FetchResult(key, error=str(exc))
        except Exception as exc:  # an edge must never raise: any surprise is a technical gap
            return FetchResult(key, error=f"unexpected failure ({type(exc).__name__})")

    def _get_json(self, url: str, token: str | None, deadline: Deadline) -> Any:
        headers = {"Accept": ACCEPT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        attempt = 0
        while True:
            response = self._get(url, headers, deadline)
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
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
                raise FetchError("timeout") from None
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


def _next_link(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return None
    for link in body.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _under_base(url: str, base_url: str) -> bool:
    """A next link is followed only below the allowlisted base: the bearer token goes nowhere else."""
    a, b = urlsplit(url), urlsplit(base_url)
    base_path = b.path.rstrip("/") + "/"
    return ((a.scheme, a.netloc) == (b.scheme, b.netloc) and a.path.startswith(base_path)
            and "/../" not in a.path + "/" and not a.username and not a.password)
