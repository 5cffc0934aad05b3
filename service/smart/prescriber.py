"""Who signs the letter: name, NPI and practice contact, read from the EHR.

The signed-in user (`fhirUser` from the id_token) comes first when it is a Practitioner or a
PractitionerRole; otherwise the order's `requester`. The Practitioner gives the name, the
qualification and the NPI; a PractitionerRole (the one named, or the first active one found
for the practitioner) gives the practice's phone, fax and e-mail (the address is the Practitioner's work address). What the EHR does not
hold is listed in `missing`, so the letter page can ask for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from service.fhir.client import Deadline

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
PRACTITIONER_TYPES = ("Practitioner", "PractitionerRole")


@dataclass(frozen=True)
class Prescriber:
    name: str | None = None
    qualification: str | None = None       # "MD", "DO", "NP"...
    npi: str | None = None
    phone: str | None = None
    fax: str | None = None
    email: str | None = None
    address: str | None = None
    organization: str | None = None
    reference: str | None = None           # "Practitioner/abc", for DocumentReference.author
    source: str | None = None              # "signed-in user" | "order's requester"
    problems: tuple[str, ...] = field(default=())   # reads that failed, in words

    @property
    def missing(self) -> tuple[str, ...]:
        """The fields a payer needs that the EHR did not give (the page asks for these)."""
        wanted = {"name": self.name, "npi": self.npi, "phone": self.phone}
        return tuple(key for key, value in wanted.items() if not value)

    def filled_with(self, entered: Mapping[str, str]) -> "Prescriber":
        """The same prescriber with what the user typed filling the gaps (never replacing EHR data)."""
        values = {key: getattr(self, key) or entered.get(key) or None
                  for key in ("name", "qualification", "npi", "phone", "fax", "email", "address")}
        return Prescriber(**values, organization=self.organization, reference=self.reference,
                          source=self.source, problems=self.problems)


def npi_valid(value: str) -> bool:
    """Ten digits whose last is the Luhn check digit over "80840" + the first nine (CMS NPI standard)."""
    if len(value) != 10 or not value.isdigit():
        return False
    digits = [int(d) for d in "80840" + value[:9]]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(value[9])


def read_prescriber(deps, iss: str, access_token: str, fhir_user: str | None,
                    order: Mapping[str, Any] | None) -> Prescriber:
    """The prescriber as the EHR records them; an empty Prescriber when nobody is named."""
    reference, source = _who(fhir_user, order)
    if reference is None:
        return Prescriber()
    fetch = _Fetcher(deps, iss, access_token)
    role = None
    if reference.startswith("PractitionerRole/"):
        role = fetch.resource(reference, "the signed-in user's PractitionerRole")
        practitioner_ref = _reference(role.get("practitioner")) if role else None
    else:
        practitioner_ref = reference
    practitioner = fetch.resource(practitioner_ref, "the Practitioner") if practitioner_ref else None
    if role is None and practitioner_ref:
        role = fetch.first_role(practitioner_ref)
    name, qualification = _name(practitioner)
    contact = _telecom(role) | {k: v for k, v in _telecom(practitioner).items() if k not in _telecom(role)}
    return Prescriber(
        name=name, qualification=qualification, npi=_npi(practitioner) or _npi(role),
        phone=contact.get("phone"), fax=contact.get("fax"), email=contact.get("email"),
        address=_address(practitioner),
        organization=_display(role.get("organization")) if role else None,
        reference=practitioner_ref or reference, source=source, problems=tuple(fetch.problems))


def _who(fhir_user: str | None, order: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if fhir_user and fhir_user.split("/")[0] in PRACTITIONER_TYPES:
        return fhir_user, "signed-in user"
    requester = _reference((order or {}).get("requester"))
    if requester and requester.split("/")[0] in PRACTITIONER_TYPES:
        return requester, "order's requester"
    return None, None


class _Fetcher:
    def __init__(self, deps, iss: str, access_token: str):
        self.deps, self.iss, self.token = deps, iss, access_token
        self.problems: list[str] = []

    def _get(self, query: str) -> Any:
        result = self.deps.fhir_client.fetch_all(self.iss, self.token, {"q": query},
                                                 Deadline(self.deps.settings.fhir_deadline))["q"]
        return result.body if not result.error else result.error

    def resource(self, reference: str, what: str) -> dict | None:
        body = self._get(reference)
        kind, _, rid = reference.partition("/")
        if isinstance(body, dict) and body.get("resourceType") == kind and body.get("id") == rid:
            return body
        self.problems.append(f"{what} could not be read ({body if isinstance(body, str) else 'another resource'})")
        return None

    def first_role(self, practitioner_ref: str) -> dict | None:
        body = self._get(f"PractitionerRole?practitioner={practitioner_ref}&_count=10")
        if not isinstance(body, dict):
            self.problems.append(f"the practitioner's roles could not be searched ({body})")
            return None
        roles = [e.get("resource") for e in body.get("entry") or () if isinstance(e, Mapping)]
        roles = [r for r in roles if isinstance(r, dict) and r.get("resourceType") == "PractitionerRole"
                 and r.get("active") is not False]
        return next((r for r in roles if _telecom(r)), roles[0] if roles else None)


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        parts = value["reference"].rstrip("/").split("/")
        if len(parts) >= 2:
            return f"{parts[-2]}/{parts[-1]}"
    return None


def _display(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("display"), str) and value["display"].strip():
        return value["display"].strip()
    return None


def _name(practitioner: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if not practitioner:
        return None, None
    names = [n for n in practitioner.get("name") or () if isinstance(n, Mapping)]
    names.sort(key=lambda n: {"official": 0, "usual": 1}.get(n.get("use"), 2))
    name = None
    for entry in names:
        given = " ".join(g for g in entry.get("given") or () if isinstance(g, str))
        family = entry.get("family") if isinstance(entry.get("family"), str) else ""
        prefix = " ".join(p for p in entry.get("prefix") or () if isinstance(p, str))
        built = " ".join(part for part in (prefix, given, family) if part)
        text = entry.get("text") if isinstance(entry.get("text"), str) else None
        name = built or (text.strip() if text and text.strip() else None)
        if name:
            suffix = [s for s in entry.get("suffix") or () if isinstance(s, str)]
            if suffix and not text:
                name = f"{name}, {', '.join(suffix)}"
            break
    qualifications = []
    for q in practitioner.get("qualification") or ():
        code = q.get("code") if isinstance(q, Mapping) else None
        if isinstance(code, Mapping):
            words = code.get("text") or next((c.get("code") for c in code.get("coding") or ()
                                              if isinstance(c, Mapping) and c.get("code")), None)
            if isinstance(words, str) and words not in (name or ""):
                qualifications.append(words)
    return name, ", ".join(qualifications) or None


def _npi(resource: Mapping[str, Any] | None) -> str | None:
    for identifier in (resource or {}).get("identifier") or ():
        if isinstance(identifier, Mapping) and identifier.get("system") == NPI_SYSTEM:
            value = identifier.get("value")
            if isinstance(value, str) and npi_valid(value.strip()):
                return value.strip()
    return None


def _telecom(resource: Mapping[str, Any] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for point in (resource or {}).get("telecom") or ():
        if not isinstance(point, Mapping) or not isinstance(point.get("value"), str):
            continue
        period = point.get("period")
        if point.get("use") in ("home", "old", "mobile") or (isinstance(period, Mapping) and period.get("end")):
            continue
        system = point.get("system")
        if system in ("phone", "fax", "email") and system not in found:
            found[system] = point["value"].strip()
    return found


def _address(resource: Mapping[str, Any] | None) -> str | None:
    for address in (resource or {}).get("address") or ():
        if not isinstance(address, Mapping) or address.get("use") in ("home", "old"):
            continue
        if isinstance(address.get("text"), str) and address["text"].strip():
            return address["text"].strip()
        lines = [line for line in address.get("line") or () if isinstance(line, str)]
        city = " ".join(p for p in (address.get("city"), address.get("state"), address.get("postalCode"))
                        if isinstance(p, str))
        text = ", ".join(part for part in (*lines, city) if part)
        if text:
            return text
    return None
