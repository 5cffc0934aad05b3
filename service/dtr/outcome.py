"""DTR errors as FHIR OperationOutcomes: the status, the problem, and where it is (a FHIRPath)."""
from __future__ import annotations


class DtrError(Exception):
    """A request the DTR operations cannot answer: 400 (not the resource asked for), 404, 413, 415 or
    422 (well-formed but not usable). `expression` points at the element, e.g. `Parameters.parameter[0]`."""

    def __init__(self, status: int, message: str, expression: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.status, self.message, self.expression, self.code = status, message, expression, code

    def outcome(self) -> dict:
        return operation_outcome(self.message, self.expression, self.code)


def operation_outcome(message: str, expression: str | None = None, code: str = "invalid",
                      severity: str = "error") -> dict:
    issue = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
