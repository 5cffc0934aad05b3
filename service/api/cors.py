"""CORS for browser clients such as the public CDS Hooks sandbox, preflight included."""
from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Authorization, Content-Type"
ALLOWED_METHODS = "GET, POST, OPTIONS"


def register(app: Flask, origins: tuple[str, ...]) -> None:
    allow_any = "*" in origins

    @app.before_request
    def preflight():
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return Response(status=204)
        return None

    @app.after_request
    def add_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin:
            return response
        if allow_any:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        else:
            return response
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Max-Age"] = "600"
        return response
