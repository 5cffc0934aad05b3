"""Which `fhirServer` URLs the service may call."""
from __future__ import annotations

import pytest

from service.security.fhir_allowlist import check_allowlist, fhir_server_allowed
from service.settings import Settings

LOOPBACK = Settings().fhir_allowlist
EHR = ("https://fhir.example-health.org/r4", "https://ehr.example.org/fhir/*/R4", "https://api.example.net:*/fhir")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/fhir",
    "http://127.0.0.1:8080",
    "http://127.0.0.1/",
    "http://localhost:52301/baseR4",
    "http://LOCALHOST:52301/baseR4/",
    "HTTP://127.0.0.1:9/fhir/r4",
    "http://[::1]:8080/fhir",
    "http://[0:0:0:0:0:0:0:1]:8080/fhir",
])
def test_default_allows_loopback(url):
    assert fhir_server_allowed(url, LOOPBACK)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1.evil.com/fhir",
    "http://127.0.0.1.nip.io:8080/fhir",
    "http://127.0.0.1@evil.com/fhir",
    "http://evil.com@127.0.0.1/fhir",
    "http://user:pass@127.0.0.1:8080/fhir",
    "http://evil.com#@127.0.0.1",
    "http://evil.com?@127.0.0.1",
    "http://evil.com\\@127.0.0.1",
    "http://127.0.0.1%2eevil.com/fhir",
    "http://localhost.:8080/fhir",
    "http://localhost..:8080/fhir",
    "http://2130706433:8080/fhir",
    "http://0x7f000001/fhir",
    "http://0x7f.0.0.1/fhir",
    "http://127.1:8080/fhir",
    "http://0177.0.0.1/fhir",
    "http://127.000.000.001/fhir",
    "http://[::ffff:127.0.0.1]:8080/fhir",
    "http://[127.0.0.1]/fhir",
    "https://127.0.0.1:8080/fhir",        # scheme must match exactly
    "ftp://127.0.0.1/fhir",
    "file:///etc/passwd",
    "gopher://127.0.0.1:8080/_",
    "javascript:alert(1)",
    "//127.0.0.1:8080/fhir",
    "127.0.0.1:8080/fhir",
    " http://127.0.0.1:8080/fhir",
    "http://127.0.0.1:8080/fhir ",
    "http://127.0.0.1:8080/fh ir",
    "http://127.0.0.1:8080/fhir\n",
    "http://127.0.0.1:8080/fhir\r\nHost: evil.com",
    "http://127.0.0.1:8080/fhir\t",
    "http://127.0.0.1\x00.evil.com/",
    "http://١٢٧.0.0.1/fhir",
    "http://127.0.0.1:8080/../admin",
    "http://127.0.0.1:8080/fhir/./x",
    "http://127.0.0.1:8080//fhir",
    "http://127.0.0.1:8080/%2e%2e/admin",
    "http://127.0.0.1:99999/fhir",
    "http://127.0.0.1:0/fhir",
    "http://127.0.0.1:80:80/fhir",
    "http://127.0.0.1:+80/fhir",
    "http://127.0.0.1:*/fhir",
    "http://127.0.0.1:8080/fhir?x=1",
    "",
    "http://",
    "http:///fhir",
    "http://:8080/fhir",
    "http://10.0.0.5:8080/fhir",
    "http://169.254.169.254/latest/meta-data",
    "https://fhir.example-health.org/r4",
])
def test_default_refuses_everything_else(url):
    assert not fhir_server_allowed(url, LOOPBACK)


@pytest.mark.parametrize("url, allowed", [
    ("https://fhir.example-health.org/r4", True),
    ("https://fhir.example-health.org/r4/", True),
    ("https://FHIR.Example-Health.org/r4", True),
    ("https://fhir.example-health.org:443/r4", True),
    ("https://fhir.example-health.org:8443/r4", False),      # no `*` port: only the default
    ("https://fhir.example-health.org/R4", False),           # paths are case-sensitive
    ("https://fhir.example-health.org/r4/Patient", False),   # an exact base, not a prefix
    ("https://fhir.example-health.org/r4x", False),
    ("https://fhir.example-health.org", False),
    ("http://fhir.example-health.org/r4", False),
    ("https://sub.fhir.example-health.org/r4", False),
    ("https://fhir.example-health.org.evil.net/r4", False),
    ("https://ehr.example.org/fhir/tenant-42/R4", True),     # `*` is one segment
    ("https://ehr.example.org/fhir/R4", False),
    ("https://ehr.example.org/fhir/a/b/R4", False),
    ("https://ehr.example.org/fhir/../R4", False),
    ("https://api.example.net:9443/fhir", True),
    ("https://api.example.net/fhir", True),
    ("https://api.example.net:9443/fhir2", False),
])
def test_exact_bases_and_patterns(url, allowed):
    assert fhir_server_allowed(url, EHR) is allowed


def test_empty_allowlist_allows_nothing():
    assert not fhir_server_allowed("http://127.0.0.1:8080/fhir", ())


@pytest.mark.parametrize("value", [None, 42, b"http://127.0.0.1/fhir", ["http://127.0.0.1/fhir"]])
def test_non_strings_are_refused(value):
    assert not fhir_server_allowed(value, LOOPBACK)


@pytest.mark.parametrize("pattern", [
    "http://*.example.org/fhir", "http://*/fhir", "*", "http://127.0.0.1:8*", "ftp://127.0.0.1",
    "http://user@127.0.0.1", "http://127.0.0.1/fhir?x", "http://127.0.0.1/a/**", "127.0.0.1",
])
def test_invalid_patterns_are_reported_and_allow_nothing(pattern):
    with pytest.raises(ValueError, match="allowlist entry"):
        check_allowlist([pattern])
    assert not fhir_server_allowed("http://127.0.0.1:8080/fhir", [pattern])
    assert not fhir_server_allowed("http://a.example.org/fhir", [pattern])


def test_valid_patterns_pass_the_check():
    check_allowlist(LOOPBACK + EHR)
