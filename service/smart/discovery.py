"""Where to send the user to sign in: SMART discovery for an `iss`.

`{iss}/.well-known/smart-configuration` is read first; when it is missing or names no endpoints,
the CapabilityStatement at `{iss}/metadata` and its `oauth-uris` extension are the fallback.
Both are read with the service's FHIR client (timeouts, size cap, no redirects, no proxy), and
only after the `iss` has passed the FHIR allowlist: an unknown `iss` gets no request at all.

The endpoints a discovery document names are checked too: an `https` URL, or an `http` one only
when it passes the same allowlist (a development server on loopback); and on the `iss`'s own origin
or an authorization server named in `CDS_SMART_AUTH_SERVERS`. The token endpoint receives the
authorization code, the PKCE verifier and the client secret: a document (or whoever altered it)
must not be able to send them to any https host.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from service.fhir.client import Deadline, FhirClient
from service.security.fhir_allowlist import fhir_server_allowed
from service.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_V2_SCOPE = re.compile(r"^(patient|user|system)/[A-Za-z*]+\.(?=[cruds]+$)c?r?u?d?s?$")


class DiscoveryError(Exception):
    """The authorization server of an `iss` could not be found; the message says why."""


class IssNotAllowed(DiscoveryError):
    """The `iss` is not on the FHIR allowlist, so nothing was fetched."""


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    source: str                                  # "smart-configuration" | "metadata"
    scopes_supported: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    code_challenge_methods: tuple[str, ...] = ()

    @property
    def supports_v2_scopes(self) -> bool:
        """SMART v2 scope syntax (`patient/*.rs`) is used only when the server shows it supports it."""
        if "permission-v2" in self.capabilities:
            return True
        return any(_V2_SCOPE.match(scope) for scope in self.scopes_supported)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def endpoint_allowed(url: Any, allowlist: Iterable[str]) -> bool:
    """An absolute https URL with a host and no user info, or an allowlisted http URL."""
    if not isinstance(url, str) or len(url) > 2048 or any(not ("\x21" <= c <= "\x7e") for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.fragment or "@" in parts.netloc or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme == "http":
        # The allowlist parser refuses queries, so compare the URL without one.
        return fhir_server_allowed(f"{parts.scheme}://{parts.netloc}{parts.path}", allowlist)
    return False


def same_origin(url: str, other: str) -> bool:
    """Same scheme, host and port (the scheme's default when none is written)."""
    try:
        a, b = urlsplit(url), urlsplit(other)
        return (a.scheme.lower(), a.hostname, a.port or _DEFAULT_PORTS.get(a.scheme.lower())) == \
               (b.scheme.lower(), b.hostname, b.port or _DEFAULT_PORTS.get(b.scheme.lower()))
    except ValueError:
        return False


def endpoint_trusted(url: Any, iss: str, allowlist: Iterable[str], auth_servers: Iterable[str]) -> bool:
    """An allowed endpoint (`endpoint_allowed`) on the `iss`'s origin or on a configured authorization server."""
    if not endpoint_allowed(url, allowlist):
        return False
    parts = urlsplit(url)
    return same_origin(url, iss) or fhir_server_allowed(f"{parts.scheme}://{parts.netloc}{parts.path}", auth_servers)


def parse_smart_configuration(body: Any, allowlist: Iterable[str], *, iss: str,
                              auth_servers: Iterable[str] = ()) -> SmartConfiguration | None:
    """The endpoints of a `.well-known/smart-configuration` document, or None when unusable."""
    if not isinstance(body, Mapping):
        return None
    authorize, token = body.get("authorization_endpoint"), body.get("token_endpoint")
    if not all(endpoint_trusted(url, iss, allowlist, auth_servers) for url in (authorize, token)):
        return None
    return SmartConfiguration(
        authorization_endpoint=authorize, token_endpoint=token, source="smart-configuration",
        scopes_supported=_strings(body.get("scopes_supported")),
        capabilities=_strings(body.get("capabilities")),
        code_challenge_methods=_strings(body.get("code_challenge_methods_supported")))


def parse_capability_statement(body: Any, allowlist: Iterable[str], *, iss: str,
                               auth_servers: Iterable[str] = ()) -> SmartConfiguration | None:
    """The `oauth-uris` extension of a CapabilityStatement's REST security, or None."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "CapabilityStatement":
        return None
    for rest in body.get("rest") or ():
        security = rest.get("security") if isinstance(rest, Mapping) else None
        if not isinstance(security, Mapping):
            continue
        for extension in security.get("extension") or ():
            if not isinstance(extension, Mapping) or extension.get("url") != OAUTH_URIS:
                continue
            uris = {e.get("url"): e.get("valueUri") for e in extension.get("extension") or ()
                    if isinstance(e, Mapping)}
            authorize, token = uris.get("authorize"), uris.get("token")
            if all(endpoint_trusted(url, iss, allowlist, auth_servers) for url in (authorize, token)):
                # The CapabilityStatement way predates SMART v2: v1 scopes only.
                return SmartConfiguration(authorization_endpoint=authorize, token_endpoint=token, source="metadata")
    return None


def discover(iss: str, settings: Settings, client: FhirClient) -> SmartConfiguration:
    """Find the authorization and token endpoints of `iss`; raise DiscoveryError saying why not."""
    if not fhir_server_allowed(iss, settings.fhir_allowlist):
        raise IssNotAllowed("the FHIR server is not on this service's allowlist")
    found = client.fetch_all(iss, None, {"smart": ".well-known/smart-configuration"},
                             Deadline(settings.fhir_deadline))["smart"]
    config = parse_smart_configuration(found.body, settings.fhir_allowlist, iss=iss,
                                       auth_servers=settings.smart_auth_servers)
    if config is not None:
        return config
    first = found.error or ("it names no usable authorization and token endpoints (https, on the FHIR server's "
                            "origin or in CDS_SMART_AUTH_SERVERS)")
    metadata = client.fetch_all(iss, None, {"metadata": "metadata"}, Deadline(settings.fhir_deadline))["metadata"]
    config = parse_capability_statement(metadata.body, settings.fhir_allowlist, iss=iss,
                                        auth_servers=settings.smart_auth_servers)
    if config is not None:
        return config
    second = metadata.error or "it has no usable SMART oauth-uris extension"
    raise DiscoveryError(f".well-known/smart-configuration: {first}; metadata: {second}")
