"""The chart a CRD answer was decided on, kept for the DTR questionnaire that follows it.

A DTR client that is not this service's SMART app knows the CRD answer only by its
`coverage-assertion-id`, which it passes back as `context`: the service keeps the chart (the
resources, the draft order, the policy chosen, and the hook's `context.userId`, the prescriber when
the order names none) sealed by that id (service/storage/sealed.py: the row
is named by an HMAC of the id and encrypted under a key derived from it), for
`CDS_DTR_SNAPSHOT_LIFETIME` seconds. The id itself is never stored or logged: only its holder — the
EHR that received the CRD answer — can open the row. A package asked for without `context` is
kept the same way under a fresh random key, which the QuestionnaireResponse carries for the next
steps (docs/dtr.md).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Callable

from service.storage import Database
from service.storage.sealed import SealedRows
from service.storage.tables import dtr_snapshot

MAX_KEY = 200


@dataclass(frozen=True)
class Snapshot:
    resources: list
    order: dict
    policy_id: str | None
    user: str | None = None          # the hook's context.userId


class ChartSnapshots:
    def __init__(self, database: Database, lifetime: float, clock: Callable[[], float] = time.time):
        self.lifetime, self.clock = lifetime, clock
        self.rows = SealedRows(database, dtr_snapshot, b"mecasermin-dtr/snapshot", clock)

    @property
    def enabled(self) -> bool:
        return self.lifetime > 0

    def keep(self, key: str, resources: list, order: dict, policy_id: str | None, user: str | None = None) -> None:
        if self.enabled:
            self.rows.save(key, {"resources": resources, "order": order, "policy": policy_id, "user": user},
                           self.clock() + self.lifetime)

    def keep_new(self, resources: list, order: dict, policy_id: str | None) -> str | None:
        """Keep under a fresh random key and return it (None when snapshots are off)."""
        if not self.enabled:
            return None
        key = secrets.token_urlsafe(32)
        self.keep(key, resources, order, policy_id)
        return key

    def recall(self, key: str) -> Snapshot | None:
        if not key or len(key) > MAX_KEY:
            return None
        found = self.rows.load(key)
        if found is None:
            return None
        data, _ = found
        user = data.get("user")
        return Snapshot(data["resources"], data["order"], data.get("policy"), user if isinstance(user, str) else None)
