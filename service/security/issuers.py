"""Whom the service trusts to call it: the trusted-issuers file, the sandbox profile, the auth settings.

An issuer is trusted only by configuration (`CDS_TRUSTED_ISSUERS_FILE`, plus the public CDS Hooks
sandbox when `CDS_TRUST_SANDBOX` is on for development). Everything here runs at start-up and
raises `SettingsError`, so a misconfiguration stops the service instead of weakening it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from service.security.jwks import VerificationKey, parse_jwks
from service.settings import SettingsError

# Logged under the name these records had before the module was split, so log filters keep working.
log = logging.getLogger("service.security.client_auth")

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_JWKS_FILE = Path(__file__).resolve().parent / "sandbox_jwks.json"


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    jku: tuple[str, ...]
    keys: Mapping[str, VerificationKey]   # static keys by kid


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _check_jku_url(url: Any, where: str) -> str:
    if not isinstance(url, str) or not url or url != url.strip() or any(c.isspace() for c in url):
        raise SettingsError(f"{where}: jku entries must be URLs without whitespace")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise SettingsError(f"{where}: jku {url!r} must not carry user info or a fragment")
    if not parts.hostname or not (parts.scheme == "https" or _is_loopback_http(url)):
        raise SettingsError(f"{where}: jku {url!r} must be https (plain http only on loopback)")
    return url


def load_trusted_issuers(path: str | Path | None, trust_sandbox: bool = False) -> dict[str, TrustedIssuer]:
    """Read the trusted-issuers file: a JSON list of `{"iss", "jku": [urls], "jwks": {JWKS}}`."""
    issuers: dict[str, TrustedIssuer] = {}
    if path:
        where = str(path)
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {where}: cannot read ({exc.strerror})") from None
        except ValueError as exc:
            raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {where}: not JSON ({exc})") from None
        if not isinstance(document, list):
            raise SettingsError(f"CDS_TRUSTED_ISSUERS_FILE {where}: expected a JSON list of issuers")
        for index, entry in enumerate(document):
            here = f"CDS_TRUSTED_ISSUERS_FILE {where} [{index}]"
            if not isinstance(entry, Mapping):
                raise SettingsError(f"{here}: expected an object")
            unknown = set(entry) - {"iss", "jku", "jwks"}
            if unknown:
                raise SettingsError(f"{here}: unknown field(s) {sorted(unknown)}")
            iss = entry.get("iss")
            if not isinstance(iss, str) or not iss.strip() or iss != iss.strip():
                raise SettingsError(f"{here}: `iss` must be a non-empty string")
            jku = entry.get("jku", [])
            if isinstance(jku, str):
                jku = [jku]
            if not isinstance(jku, list):
                raise SettingsError(f"{here}: `jku` must be a list of URLs")
            allowed = tuple(_check_jku_url(url, here) for url in jku)
            keys: dict[str, VerificationKey] = {}
            if "jwks" in entry:
                try:
                    keys = parse_jwks(entry["jwks"], f"{here} jwks")
                except ValueError as exc:
                    raise SettingsError(str(exc)) from None
            if not allowed and not keys:
                raise SettingsError(f"{here}: give `jku` URLs, a static `jwks`, or both")
            if iss in issuers:
                raise SettingsError(f"{here}: issuer {iss!r} is listed twice")
            issuers[iss] = TrustedIssuer(iss=iss, jku=allowed, keys=keys)
    if trust_sandbox and SANDBOX_ISSUER not in issuers:
        sandbox_keys = parse_jwks(json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8")), "sandbox JWKS")
        issuers[SANDBOX_ISSUER] = TrustedIssuer(iss=SANDBOX_ISSUER, jku=(SANDBOX_JKU,), keys=sandbox_keys)
    return issuers


def check_auth_settings(settings: Any) -> list:
    """The trusted issuers, after checking that the auth settings can work; raises SettingsError.

    Cheap and side-effect free, so `mecasermin-cds serve` runs it before forking workers."""
    mode = settings.auth_mode
    if mode not in ("required", "optional", "off"):
        raise SettingsError(f"CDS_AUTH_MODE must be required, optional or off, not {mode!r}")
    issuers = load_trusted_issuers(settings.trusted_issuers_file, settings.trust_sandbox)
    if mode == "required" and not issuers:
        raise SettingsError(
            "CDS_AUTH_MODE=required needs CDS_TRUSTED_ISSUERS_FILE (or CDS_TRUST_SANDBOX for development)")
    if mode != "off" and not getattr(settings, "public_base_url", ""):
        # Without it the caller's Host header decides the URL that `aud` is compared with, so a
        # token minted for another service could be replayed here under that service's name.
        message = ("CDS_PUBLIC_BASE_URL is empty: the JWT `aud` is compared with a URL built from the "
                   "request's Host header")
        if mode == "required":
            raise SettingsError(f"CDS_AUTH_MODE=required needs CDS_PUBLIC_BASE_URL ({message})")
        log.warning(message)
    return issuers
