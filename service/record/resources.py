"""The flat list of resources: flattening Bundles, naming resources, resolving references."""
from __future__ import annotations

from typing import Any, Iterable, Mapping


def resources_from_bundle(bundle: Any) -> list[dict]:
    """Every resource in a Bundle (`entry[].resource`), Bundles nested in entries flattened too.
    A single non-Bundle resource gives a one-item list; anything else an empty list. Entries
    without a resource (search outcomes, deleted entries) carry nothing to read and are dropped."""
    out: list[dict] = []
    _flatten(bundle, out, depth=0)
    return out


def _flatten(item: Any, out: list[dict], depth: int) -> None:
    if not isinstance(item, dict) or depth > 8:      # depth: a malicious self-nesting cannot recurse forever
        return
    if item.get("resourceType") != "Bundle":
        if isinstance(item.get("resourceType"), str):
            out.append(item)
        return
    entries = item.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            _flatten(entry.get("resource"), out, depth + 1)


def reference_of(resource: Mapping, position: int | None = None) -> str:
    """ "Observation/abc"; a resource without an id is named by its place in the input list."""
    rtype = resource.get("resourceType") if isinstance(resource.get("resourceType"), str) else "Resource"
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return f"{rtype}/{rid}"
    return f"{rtype}/(no id, item {position})" if position is not None else f"{rtype}/(no id)"


class ResourceIndex:
    """Resources by "Type/id", for `reasonReference`, `medicationReference` and `payor`."""

    def __init__(self, resources: Iterable[Any]):
        self._by_ref: dict[str, Mapping] = {}
        self._by_type: dict[str, dict[str, Mapping]] = {}
        for resource in resources:
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                self._by_ref.setdefault(f"{resource.get('resourceType')}/{resource['id']}", resource)

    def of_type(self, rtype: str) -> dict[str, Mapping]:
        if rtype not in self._by_type:
            prefix = rtype + "/"
            self._by_type[rtype] = {ref: r for ref, r in self._by_ref.items() if ref.startswith(prefix)}
        return self._by_type[rtype]

    def resolve(self, reference: Any, container: Mapping | None = None) -> Mapping | None:
        """A Reference (dict) or reference string → the resource, or None. "#id" looks in the
        container's `contained`; absolute URLs match on their last two segments ("…/Type/id")."""
        if isinstance(reference, dict):
            reference = reference.get("reference")
        if not isinstance(reference, str) or not reference:
            return None
        if reference.startswith("#"):
            contained = container.get("contained") if isinstance(container, dict) else None
            for item in contained if isinstance(contained, list) else ():
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item
            return None
        found = self._by_ref.get(reference)
        if found is not None:
            return found
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        return self._by_ref.get("/".join(parts[-2:])) if len(parts) >= 2 else None
