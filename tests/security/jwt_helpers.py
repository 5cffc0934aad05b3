"""Keys, JWKS documents and tokens shaped like a CDS client's, for the security tests."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "https://cds.example.org/cds-services/mecasermin-order-select"
EHR_ISS = "https://ehr.example-health.org"
EHR_JKU = "https://ehr.example-health.org/.well-known/jwks.json"
PARTNER_ISS = "https://partner-ehr.example.net"
PARTNER_JKU = "https://keys.partner-ehr.example.net/cds/jwks.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ec_key(curve: ec.EllipticCurve = ec.SECP384R1()) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_jwk(private_key: Any, kid: str, alg: str | None = None, **extra: Any) -> dict:
    """The public JWK of `private_key` (never its private parts)."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    else:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    data["kid"] = kid
    data["use"] = "sig"
    if alg:
        data["alg"] = alg
    data.update(extra)
    return data


def claims(**overrides: Any) -> dict:
    now = int(time.time())
    values = {
        "iss": EHR_ISS,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "tenant": "2ddd6c3a-8e9a-44c6-a305-52111ad302a2",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(private_key: Any, alg: str, kid: str | None, payload: dict, **header: Any) -> str:
    headers = dict(header)
    if kid is not None:
        headers["kid"] = kid
    return jwt.encode(payload, private_key, algorithm=alg, headers=headers)


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    """A compact JWS with any header, e.g. alg none."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(signature)}"


def hmac_signed(secret: bytes, header: dict, payload: dict) -> str:
    """An HS256 token, as an attacker would make it with a public key as the HMAC secret."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    digest = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(digest)}"
