"""Which FHIR servers the service may call (`CDS_FHIR_ALLOWLIST`).

A request's `fhirServer` is chosen by whoever sends the request, so calling it blindly would let
any caller make the service send requests (with a bearer token) to internal addresses. Only URLs
matching an allowlist entry are called.

Allowlist entries are base URLs, `scheme://host[:port][/path]`:

- scheme and host must match exactly (case-insensitively); no wildcard in either;
- the port may be `*` (any port, including the scheme's default);
- an entry without a path allows every path on that origin (`http://127.0.0.1:*`);
- an entry with a path allows exactly that path (a trailing `/` does not matter), where a
  segment `*` matches exactly one non-empty path segment (`https://ehr.example.org/fhir/*/r4`).

A URL is refused outright — whatever the allowlist — when it is not plain printable ASCII, is not
http(s), carries user info (`@`), a query, a fragment, percent-escapes, backslashes, path segments
that are empty, only dots (`.`, `..`, `...`) or hold `;` (path parameters: `..;` is `..` on
Tomcat and Jetty), or a host that a resolver could read as a shortened or numeric IP address.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.S)
_AUTHORITY = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}|\*))?$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# No ";": Tomcat and Jetty drop "name;params" to "name", so "..;" would be ".." there.
_SEGMENT = re.compile(r"^[A-Za-z0-9\-._~!$&'()+,=:]+$")


@dataclass(frozen=True)
class _Base:
    scheme: str
    host: str
    port: int | None                # None: any port (patterns only)
    segments: tuple[str, ...] | None  # None: any path (patterns only)


def _host(raw: str) -> str:
    if raw.startswith("["):
        address = ipaddress.ip_address(raw[1:-1])    # ValueError when not an address
        if not isinstance(address, ipaddress.IPv6Address):
            raise ValueError("only IPv6 addresses go in brackets")
        return f"[{address.compressed}]"
    host = raw.lower()
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a host name")
    last = labels[-1]
    if last.isdigit() or last.startswith("0x"):
        # Something like 127.1, 2130706433 or 0x7f.1: only a dotted quad is accepted.
        if len(labels) != 4 or not all(label.isdigit() for label in labels):
            raise ValueError("ambiguous numeric host")
        ipaddress.IPv4Address(host)                  # rejects 256, leading zeros, …
    return host


def _parse(text: str, pattern: bool) -> _Base:
    if not isinstance(text, str) or not text or len(text) > MAX_URL_LENGTH:
        raise ValueError("not a URL")
    if any(not ("\x21" <= c <= "\x7e") for c in text):
        raise ValueError("whitespace, control or non-ASCII character")
    if any(c in text for c in "@\\?#%"):
        raise ValueError("user info, backslash, query, fragment or escape")
    if not pattern and "*" in text:
        raise ValueError("`*` in a URL")
    match = _SCHEME.match(text)
    if not match:
        raise ValueError("no scheme")
    scheme = match["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not http or https")
    rest = match["rest"]
    authority, slash, path = rest.partition("/")
    found = _AUTHORITY.match(authority)
    if not found:
        raise ValueError("bad host or port")
    host = _host(found["host"])
    port_text = found["port"]
    if port_text == "*":
        port = None
    elif port_text is None:
        port = _DEFAULT_PORTS[scheme]
    else:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError("port out of range")
    if path.endswith("/"):
        path = path[:-1]
    if not path:
        segments: tuple[str, ...] | None = None if pattern else ()
    else:
        segments = tuple(path.split("/"))
        for segment in segments:
            # Only dots ("..", "..."): a dot segment, or read as one by some servers.
            if not segment.strip(".") or not (_SEGMENT.match(segment) or (pattern and segment == "*")):
                raise ValueError("bad path segment")
    return _Base(scheme=scheme, host=host, port=port, segments=segments)


@functools.lru_cache(maxsize=256)
def parse_pattern(pattern: str) -> _Base:
    """Parse one allowlist entry; ValueError when it is not a valid entry."""
    try:
        return _parse(pattern, pattern=True)
    except ValueError as exc:
        raise ValueError(f"allowlist entry {pattern!r}: {exc}") from None


def any_local_port(pattern: str) -> bool:
    """Does the entry allow every port of this machine (a loopback or unspecified address, port `*`)?
    With it, a caller's `fhirServer` can aim the EHR's bearer token at any local service."""
    base = parse_pattern(pattern)
    if base.port is not None:
        return False
    if base.host == "localhost" or base.host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(base.host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def check_allowlist(allowlist: Iterable[str]) -> None:
    """Raise ValueError naming the first entry that is not a valid allowlist pattern."""
    for pattern in allowlist:
        parse_pattern(pattern)


def _matches(url: _Base, pattern: _Base) -> bool:
    if url.scheme != pattern.scheme or url.host != pattern.host:
        return False
    if pattern.port is not None and url.port != pattern.port:
        return False
    if pattern.segments is None:
        return True
    if url.segments is None or len(url.segments) != len(pattern.segments):
        return False
    return all(p == "*" or p == u for u, p in zip(url.segments, pattern.segments))


def fhir_server_allowed(url: str, allowlist: Iterable[str]) -> bool:
    """May the service send requests to the FHIR base `url`? Invalid entries allow nothing."""
    try:
        parsed = _parse(url, pattern=False)
    except (ValueError, TypeError):
        return False
    for pattern in allowlist:
        try:
            compiled = parse_pattern(pattern)
        except (ValueError, TypeError):
            continue
        if _matches(parsed, compiled):
            return True
    return False
