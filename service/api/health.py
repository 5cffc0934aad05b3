"""Liveness and readiness: the policies loaded and the database answers."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    deps = current_app.extensions["mecasermin"]
    database_ok = deps.store.ping()
    body = {"status": "ok" if database_ok else "degraded", "policies": len(deps.policies.policies), "database": database_ok}
    return jsonify(body), 200 if database_ok else 503
