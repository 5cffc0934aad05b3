"""Where the service sends secrets: the SMART token endpoint only on the FHIR server's own origin (or a
configured authorization server), and no proxy or .netrc from the environment for JWKS fetches."""
from __future__ import annotations

import http.server
import threading

import pytest

from service.security.jwks import JwksCache
from service.settings import Settings, SettingsError
from service.smart.discovery import parse_capability_statement, parse_smart_configuration

ISS = "https://fhir.example-health.org/r4"
ALLOW = (ISS,)


def smart_document(authorize: str, token: str) -> dict:
    return {"authorization_endpoint": authorize, "token_endpoint": token, "capabilities": ["launch-ehr"]}


@pytest.mark.parametrize("token", [
    "https://attacker.example/token",                       # any https host
    "https://fhir.example-health.org.attacker.example/token",
    "https://fhir.example-health.org:8443/token",           # another port is another origin
    "https://auth.example-health.org/token",                # a sibling host, not configured
])
def test_a_token_endpoint_off_the_iss_origin_is_refused(token):
    document = smart_document("https://fhir.example-health.org/oauth2/authorize", token)
    assert parse_smart_configuration(document, ALLOW, iss=ISS) is None
    statement = {"resourceType": "CapabilityStatement", "rest": [{"security": {"extension": [{
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [{"url": "authorize", "valueUri": "https://fhir.example-health.org/oauth2/authorize"},
                      {"url": "token", "valueUri": token}]}]}}]}
    assert parse_capability_statement(statement, ALLOW, iss=ISS) is None


def test_an_authorize_endpoint_off_the_iss_origin_is_refused():
    document = smart_document("https://phish.example/authorize", "https://fhir.example-health.org/oauth2/token")
    assert parse_smart_configuration(document, ALLOW, iss=ISS) is None


def test_same_origin_endpoints_are_used():
    document = smart_document("https://FHIR.example-health.org:443/oauth2/authorize",
                              "https://fhir.example-health.org/oauth2/token?aud=x")
    config = parse_smart_configuration(document, ALLOW, iss=ISS)
    assert config is not None and config.token_endpoint.endswith("/oauth2/token?aud=x")


def test_a_configured_authorization_server_is_used():
    servers = ("https://authorization.example-health.org",)
    document = smart_document("https://authorization.example-health.org/tenants/1/authorize",
                              "https://authorization.example-health.org/tenants/1/token")
    assert parse_smart_configuration(document, ALLOW, iss=ISS) is None
    assert parse_smart_configuration(document, ALLOW, iss=ISS, auth_servers=servers) is not None


def test_authorization_servers_setting_is_checked_at_start_up():
    with pytest.raises(SettingsError, match="CDS_SMART_AUTH_SERVERS"):
        Settings.from_env({"CDS_SMART_AUTH_SERVERS": "https://*.example.org"})
    assert Settings.from_env({"CDS_SMART_AUTH_SERVERS": "https://auth.example.org, https://b.example.org:*"}) \
        .smart_auth_servers == ("https://auth.example.org", "https://b.example.org:*")


class _Proxy(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):                                      # noqa: N802 (http.server's name)
        _Proxy.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"keys": []}')

    def log_message(self, *args):
        pass


def test_jwks_fetch_ignores_proxy_variables_and_netrc(monkeypatch, tmp_path):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        address = f"http://127.0.0.1:{proxy.server_address[1]}"
        monkeypatch.setenv("HTTPS_PROXY", address)
        monkeypatch.setenv("HTTP_PROXY", address)
        monkeypatch.delenv("NO_PROXY", raising=False)
        netrc = tmp_path / "netrc"
        netrc.write_text("machine keys.partner-ehr.example.invalid login user password secret\n")
        monkeypatch.setenv("NETRC", str(netrc))
        cache = JwksCache()
        cache.key("http://keys.partner-ehr.example.invalid/jwks.json", "kid-1")
        assert _Proxy.seen == [], "the JWKS request went through the environment's proxy"
        assert cache._session.trust_env is False, ".netrc credentials would be sent too"
    finally:
        proxy.shutdown()
