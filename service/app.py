"""The Flask application factory: settings are read once here and passed down."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Callable

from flask import Flask

from service.api import cors, errors, health, hooks, openapi, request_log
from service.fhir.client import FhirClient
from service.logs import configure_logging
from service.policy import PolicySet, load_policies
from service import metrics, smart
from service.api import dtr
from service.api.json_provider import AnswerJSONProvider
from service.dtr.snapshots import ChartSnapshots
from service.security.client_auth import ClientAuthenticator
from service.security.replay import DatabaseReplayCache, ReplayCache
from service.settings import Settings
from service.storage import Database
from service.deferred_audit import DeferredAuditWriter
from service.store import Store

log = logging.getLogger(__name__)


@dataclass
class Dependencies:
    """What request handlers need, built once per process."""

    settings: Settings
    policies: PolicySet
    store: Store
    fhir_client: FhirClient
    authenticator: ClientAuthenticator
    deferred_audit: DeferredAuditWriter
    today: Callable[[], date] = date.today
    snapshots: ChartSnapshots | None = None     # DTR: the charts CRD answers were decided on


def create_app(settings: Settings | None = None, today: Callable[[], date] | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    database = Database(settings.database_url, pool_size=settings.threads + 2)
    database.migrate()   # a no-op when `serve` migrated before forking
    replay = (ReplayCache(settings.jti_limit_per_issuer) if settings.auth_mode == "off"
              else DatabaseReplayCache(database, settings.jti_limit_per_issuer))
    store = Store(database, settings.audit_hash_key, settings.audit_retention_days)
    deps = Dependencies(
        settings=settings,
        policies=load_policies(settings.policy_dir, default_policy=settings.default_policy),
        store=store,
        fhir_client=FhirClient(settings),
        authenticator=ClientAuthenticator(settings, replay_cache=replay),
        deferred_audit=DeferredAuditWriter(store),
        today=today or date.today,
        snapshots=ChartSnapshots(database, settings.dtr_snapshot_lifetime),
    )
    app = Flask(__name__)
    app.json = AnswerJSONProvider(app)      # the same JSON values as Flask writes, by orjson (docstring there)
    # Flask rejects larger bodies with 413 before a handler reads them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["mecasermin"] = deps
    errors.register(app)
    request_log.register(app)
    metrics.register(app)
    cors.register(app, settings.cors_origins)
    app.register_blueprint(hooks.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(smart.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(dtr.blueprint)
    if settings.auth_mode == "off":
        log.warning("CDS client authentication is OFF (CDS_AUTH_MODE=off): development use only")
    log.info("service ready", extra={"policies": len(deps.policies.policies), "auth_mode": settings.auth_mode})
    return app
