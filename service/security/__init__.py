"""Security at the service's edges: who may call us (`client_auth`) and whom we may call (`fhir_allowlist`)."""
from service.security.auth_errors import AuthenticationFailed
from service.security.client_auth import ClientAuthenticator
from service.security.fhir_allowlist import fhir_server_allowed

__all__ = ["AuthenticationFailed", "ClientAuthenticator", "fhir_server_allowed"]
