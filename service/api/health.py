"""Probes. `/livez`: the process answers (no I/O, so a busy database never restarts a pod).
`/readyz`: the policies are loaded and the database answers a read-only query within a second
(no write lock); a 503 takes the replica out of the load balancer until it recovers.
`/healthz` is the same check as `/readyz`, kept for existing monitors.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/livez")
def livez():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
@blueprint.get("/healthz")
def readyz():
    deps = current_app.extensions["mecasermin"]
    policies = len(deps.policies.policies)
    database_ok = deps.store.ping()
    ready = database_ok and policies > 0
    body = {"status": "ok" if ready else "degraded", "policies": policies, "database": database_ok}
    return jsonify(body), 200 if ready else 503
