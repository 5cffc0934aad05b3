"""The one exception every client-authentication failure raises.

It lives apart from `client_auth` because the token checks and the replay caches both raise it,
and the replay caches must not import the authenticator that uses them.
"""
from __future__ import annotations


class AuthenticationFailed(Exception):
    """The client's JWT is missing, malformed, untrusted or invalid.

    `reason` is a fixed code (e.g. `untrusted-issuer`) for logs; it never carries token data.
    The HTTP answer to any of them is the same bare 401.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
