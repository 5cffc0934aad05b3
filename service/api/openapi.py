"""GET /openapi.json: the service's OpenAPI 3.1 document (service/openapi.json), for clients and fuzzing."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.json"

blueprint = Blueprint("openapi", __name__)


@lru_cache(maxsize=1)
def document() -> dict:
    return json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return Response(json.dumps(document()), mimetype="application/json")
