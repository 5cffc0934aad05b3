"""Settings: one immutable object, read once from `CDS_*` environment variables.

Each setting is declared once below with its variable, default and meaning; the README's
settings table lists the same variables (a test keeps the two in step). Every default lets
`make run` work on a laptop with no other service running.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

PACKAGE_DIR = Path(__file__).resolve().parent
# A CSP source expression for frame-ancestors: a keyword, or scheme://host[:port] (host may start with *.).
# No IPv6 literal: Chromium ignores one in frame-ancestors.
_FRAME_SOURCE = re.compile(r"^(?:'self'|'none'|https?://(?:\*\.)?[A-Za-z0-9.\-]{1,253}(?::(?:\d{1,5}|\*))?)$")


class SettingsError(ValueError):
    """A `CDS_*` variable holds a value that cannot be used."""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _setting(env: str, default: Any, parse: Callable[[str], Any], doc: str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    port: int = _setting("CDS_PORT", 8080, int, "TCP port `make run` and the Docker image listen on.")
    workers: int = _setting("CDS_WORKERS", 2, int, "gunicorn worker processes.")
    worker_class: str = _setting(
        "CDS_WORKER_CLASS", "gthread", str,
        "gunicorn worker class: `gthread` (threads, so one slow FHIR server does not idle a worker) or `sync`.")
    threads: int = _setting("CDS_THREADS", 8, int, "Threads per gunicorn worker (with `gthread`).")
    worker_timeout: int = _setting(
        "CDS_WORKER_TIMEOUT", 30, int, "gunicorn worker timeout in seconds (a hung worker is restarted).")
    public_base_url: str = _setting(
        "CDS_PUBLIC_BASE_URL", "", str,
        "Public base URL of the service (e.g. behind a proxy). Empty: taken from each request.")
    cors_origins: tuple[str, ...] = _setting(
        "CDS_CORS_ORIGINS", ("*",), _csv, "Comma-separated origins allowed by CORS; `*` allows any.")
    fhir_connect_timeout: float = _setting(
        "CDS_FHIR_CONNECT_TIMEOUT", 1.0, float, "Seconds to connect to the EHR's FHIR server.")
    fhir_read_timeout: float = _setting(
        "CDS_FHIR_READ_TIMEOUT", 2.0, float, "Seconds to wait for each FHIR response.")
    fhir_deadline: float = _setting(
        "CDS_FHIR_DEADLINE", 3.0, float,
        "Seconds for all FHIR fetching of one hook call; what has not arrived by then is a technical gap.")
    fhir_retries: int = _setting(
        "CDS_FHIR_RETRIES", 2, int, "Retries of a FHIR request answered 429/502/503/504 (with back-off).")
    fhir_max_pages: int = _setting(
        "CDS_FHIR_MAX_PAGES", 5, int, "Most pages read per FHIR search: the first plus its `Bundle.link[next]` pages.")
    fhir_max_response_bytes: int = _setting(
        "CDS_FHIR_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, int,
        "Largest FHIR response body read; a larger one is a technical gap.")
    fhir_max_call_bytes: int = _setting(
        "CDS_FHIR_MAX_CALL_BYTES", 20 * 1024 * 1024, int,
        "Most FHIR response bytes read in one hook call, all fetches together; what is left unread is a technical gap.")
    fhir_allowlist: tuple[str, ...] = _setting(
        "CDS_FHIR_ALLOWLIST", ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"), _csv,
        "Comma-separated FHIR base URLs the service may call (`*` matches a port or path segment). "
        "Any other `fhirServer` gets no request: prefetch alone is used. The default (any local port) is refused "
        "with `CDS_AUTH_MODE=required`.")
    max_body_bytes: int = _setting(
        "CDS_MAX_BODY_BYTES", 5 * 1024 * 1024, int, "Largest request body accepted (413 above).")
    max_json_depth: int = _setting("CDS_MAX_JSON_DEPTH", 64, int, "Deepest JSON nesting accepted (400 above).")
    max_resources: int = _setting(
        "CDS_MAX_RESOURCES", 5000, int, "Most FHIR resources in one hook call: prefetch plus draftOrders (413 above), then fetched ones "
        "(what is left unread is a technical gap).")
    policy_dir: str = _setting(
        "CDS_POLICY_DIR", str(PACKAGE_DIR / "policy" / "policies"), str,
        "Folder of payer policy files (YAML/JSON), validated at start-up.")
    default_policy: str = _setting(
        "CDS_DEFAULT_POLICY", "fda-label", str, "Policy id used when no Coverage payer matches a policy.")
    rxnorm_codes: tuple[str, ...] = _setting(
        "CDS_RXNORM_CODES", (), _csv,
        "RxNorm codes that also identify mecasermin. The RXCUIs could not be verified offline, so the list is "
        "empty by default; text, NDC and HCPCS matching always apply.")
    database_url: str = _setting(
        "CDS_DATABASE_URL", "sqlite:///var/mecasermin-cds.sqlite3", str,
        "Where feedback, audit, issued cards, jti replay and SMART sessions are stored: `sqlite:///relative/path` "
        "or `sqlite:////absolute/path` (one host), or `postgresql://user:password@host:5432/db` (shared by replicas).")
    audit_retention_days: int = _setting(
        "CDS_AUDIT_RETENTION_DAYS", 0, int, "Days audit rows are kept before they are deleted; 0 keeps them.")
    jti_limit_per_issuer: int = _setting(
        "CDS_JTI_LIMIT_PER_ISSUER", 500_000, int,
        "Live token ids remembered per CDS client issuer for replay checks; an issuer above it has its excess "
        "tokens refused, other issuers are unaffected.")
    audit_hash_key: str = _setting(
        "CDS_AUDIT_HASH_KEY", "", str,
        "Secret key for the keyed hash of patient ids in the audit log. Empty: a random key kept in the database.")
    monitoring_card_hooks: tuple[str, ...] = _setting(
        "CDS_MONITORING_CARD_HOOKS", ("order-sign",), _csv,
        "Hooks that show the monitoring card (label warnings and interactions).")
    auth_mode: str = _setting(
        "CDS_AUTH_MODE", "off", str,
        "CDS client JWT check: `required`, `optional` (checked when sent) or `off` (development only).")
    trusted_issuers_file: str = _setting(
        "CDS_TRUSTED_ISSUERS_FILE", "", str, "JSON file of trusted CDS clients: issuer, allowed jku URLs, static JWKS.")
    trust_sandbox: bool = _setting(
        "CDS_TRUST_SANDBOX", False, _bool,
        "Development only: trust the public CDS Hooks sandbox's JWTs (its private key is public).")
    log_level: str = _setting("CDS_LOG_LEVEL", "INFO", str, "Log level: DEBUG, INFO, WARNING or ERROR.")
    smart_client_id: str = _setting(
        "CDS_SMART_CLIENT_ID", "mecasermin-cds", str, "OAuth client id of the SMART app, as registered with the EHR.")
    smart_client_secret: str = _setting(
        "CDS_SMART_CLIENT_SECRET", "", str,
        "SMART client secret: set, the app is a confidential client (`client_secret_basic`); empty, a public "
        "client (PKCE only).")
    smart_redirect_url: str = _setting(
        "CDS_SMART_REDIRECT_URL", "", str,
        "Registered SMART redirect URI. Empty: `{CDS_PUBLIC_BASE_URL}/smart/callback`, or the request's base URL.")
    smart_default_iss: str = _setting(
        "CDS_SMART_DEFAULT_ISS", "", str,
        "FHIR base URL for a standalone launch without `iss` (must pass `CDS_FHIR_ALLOWLIST`). Empty: the app asks.")
    smart_auth_servers: tuple[str, ...] = _setting(
        "CDS_SMART_AUTH_SERVERS", (), _csv,
        "Comma-separated authorization servers (base URLs, patterns as in `CDS_FHIR_ALLOWLIST`) a SMART `iss` may "
        "name for sign-in and tokens besides its own origin. Empty: only the `iss`'s own origin.")
    smart_session_lifetime: int = _setting(
        "CDS_SMART_SESSION_LIFETIME", 3600, int,
        "Seconds a SMART session lasts after sign-in (never longer than the access token).")
    smart_launch_timeout: int = _setting(
        "CDS_SMART_LAUNCH_TIMEOUT", 600, int,
        "Seconds allowed between a SMART launch and the authorization server's redirect back.")
    smart_request_write: bool = _setting(
        "CDS_SMART_REQUEST_WRITE", False, _bool,
        "Also ask for `patient/DocumentReference.c` and `patient/QuestionnaireResponse.c` (v1 `.write`) so the "
        "prior-authorization letter and its DTR questionnaire can be written back to the EHR.")
    dtr_snapshot_lifetime: int = _setting(
        "CDS_DTR_SNAPSHOT_LIFETIME", 86400, int,
        "Seconds the chart a CRD answer was decided on is kept (encrypted) for its DTR questionnaire (docs/dtr.md); "
        "0 keeps none, and DTR then works only from the resources the client sends.")
    smart_renderer_dir: str = _setting(
        "CDS_SMART_RENDERER_DIR", str(PACKAGE_DIR / "smart" / "web" / "node_modules" / "lforms" / "dist" / "lforms"), str,
        "Folder of LHC-Forms' prebuilt files (lforms `dist/lforms`) the DTR page loads; `make run` installs them "
        "with `npm ci` in service/smart/web.")
    smart_frame_ancestors: tuple[str, ...] = _setting(
        "CDS_SMART_FRAME_ANCESTORS", ("'self'", "http://127.0.0.1:*", "http://localhost:*"), _csv,
        "Comma-separated origins allowed to show the SMART app in a frame (CSP `frame-ancestors`), e.g. the "
        "EHR's `https://ehr.example.org`; `'none'` forbids framing.")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read every `CDS_*` variable; `overrides` (by field name) win, for tests."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise SettingsError(f"{f.metadata['env']}: {exc}") from None
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.auth_mode not in ("required", "optional", "off"):
            raise SettingsError(f"CDS_AUTH_MODE must be required, optional or off, not {self.auth_mode!r}")
        if self.fhir_deadline <= 0 or self.fhir_connect_timeout <= 0 or self.fhir_read_timeout <= 0:
            raise SettingsError("FHIR timeouts and deadline must be positive")
        if self.smart_session_lifetime <= 0 or self.smart_launch_timeout <= 0:
            raise SettingsError("CDS_SMART_SESSION_LIFETIME and CDS_SMART_LAUNCH_TIMEOUT must be positive")
        if self.dtr_snapshot_lifetime < 0:
            raise SettingsError("CDS_DTR_SNAPSHOT_LIFETIME must be zero or more")
        if self.worker_class not in ("gthread", "sync"):
            raise SettingsError(f"CDS_WORKER_CLASS must be gthread or sync, not {self.worker_class!r}")
        if self.threads < 1 or self.workers < 1 or self.audit_retention_days < 0 or self.jti_limit_per_issuer < 1:
            raise SettingsError("CDS_WORKERS, CDS_THREADS and CDS_JTI_LIMIT_PER_ISSUER must be positive, "
                                "CDS_AUDIT_RETENTION_DAYS zero or more")
        from service.storage import DatabaseUrlError, database_url

        try:
            database_url(self.database_url)
        except DatabaseUrlError as exc:
            raise SettingsError(str(exc)) from None
        from service.security.fhir_allowlist import any_local_port, check_allowlist   # here: security imports settings

        try:   # a typo would otherwise silently stop every FHIR fetch
            check_allowlist(self.fhir_allowlist)
        except ValueError as exc:
            raise SettingsError(f"CDS_FHIR_ALLOWLIST: {exc}") from None
        for source in self.smart_frame_ancestors:
            if not _FRAME_SOURCE.match(source):
                raise SettingsError(f"CDS_SMART_FRAME_ANCESTORS: {source!r} is not 'self', 'none' or an origin "
                                    "such as https://ehr.example.org")
        if "'none'" in self.smart_frame_ancestors and len(self.smart_frame_ancestors) > 1:
            raise SettingsError("CDS_SMART_FRAME_ANCESTORS: 'none' cannot be combined with other sources")
        try:
            check_allowlist(self.smart_auth_servers)
        except ValueError as exc:
            raise SettingsError(f"CDS_SMART_AUTH_SERVERS: {exc}") from None
        if self.auth_mode == "required" and not self.audit_hash_key:
            # Kept beside the hashes, a generated key would let whoever holds the database file
            # recover patient ids by trying likely ones.
            raise SettingsError("CDS_AUTH_MODE=required (production) needs CDS_AUDIT_HASH_KEY, kept outside the database")
        local = [entry for entry in self.fhir_allowlist if any_local_port(entry)]
        if self.auth_mode == "required" and local:
            raise SettingsError(f"CDS_AUTH_MODE=required (production) needs CDS_FHIR_ALLOWLIST set to the EHR's FHIR "
                                f"base URLs: {local[0]} would let the EHR's access token go to any local port")



def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, in declaration order."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default)
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
