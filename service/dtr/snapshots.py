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

order-select resends the same chart on every edit of an order. Sealing it again for each answer
would encrypt and write the whole chart on every call, so each worker remembers the ids it sealed,
by the digest of the decision's inputs (the chart, the order, the day, the policies, the user): an
answer worked out from the same inputs again reuses the id — its row holds that very chart — as long
as three quarters of the row's lifetime remain. A DTR client given a reused id so still has most of
the lifetime to open it, and a repeated call writes nothing.

A CRD answer's chart is written in the transaction of the answer's audit row (`seal_answer`, then
service/api/hooks.py): one commit for both, before the answer is sent. The id is remembered for reuse
only once that commit is done (`SealedChart.remember`).
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable

from service.storage import Database
from service.storage.database import Prepared
from service.storage.sealed import SealedRows
from service.storage.tables import dtr_snapshot

MAX_KEY = 200
REMEMBERED = 10_000                  # sealed ids a worker remembers for reuse (≈ 1 MB)
REUSE_WHILE_LEFT = 0.75              # of the row's lifetime


@dataclass(frozen=True)
class Snapshot:
    resources: list
    order: dict
    policy_id: str | None
    user: str | None = None          # the hook's context.userId


@dataclass(frozen=True)
class SealedChart:
    """A CRD answer's chart sealed under its assertion id, not yet written: `statements` write it
    (`Database.execute_prepared`), and once they are committed `remember` lets a repeat reuse the id."""
    statements: list[tuple[Prepared, list[dict]]]
    remember: Callable[[], None]


class ChartSnapshots:
    def __init__(self, database: Database, lifetime: float, clock: Callable[[], float] = time.time):
        self.lifetime, self.clock = lifetime, clock
        self.rows = SealedRows(database, dtr_snapshot, b"mecasermin-dtr/snapshot", clock)
        self._sealed: OrderedDict[bytes, tuple[str, float]] = OrderedDict()   # inputs digest → (id, expires_at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.lifetime > 0

    def keep(self, key: str, resources: list, order: dict, policy_id: str | None, user: str | None = None) -> None:
        if self.enabled:
            self.rows.save(key, _kept(resources, order, policy_id, user), self.clock() + self.lifetime)

    def assertion_id(self, inputs: bytes | None) -> tuple[str, bool]:
        """A coverage-assertion-id for a CRD answer decided from `inputs` (a digest; None: unnamed),
        and whether its chart still has to be kept under it (`keep_answer`)."""
        if inputs is not None and self.enabled:
            with self._lock:
                known = self._sealed.get(inputs)
            if known is not None and known[1] - self.clock() >= REUSE_WHILE_LEFT * self.lifetime:
                return known[0], False
        return str(uuid.uuid4()), self.enabled

    def seal_answer(self, inputs: bytes | None, assertion_id: str, resources: list, order: dict,
                    policy_id: str | None, user: str | None) -> SealedChart:
        """The chart of a CRD answer sealed under its assertion id, to be remembered for a repeat of
        `inputs` once written (raises TypeError or ValueError when it cannot be encoded)."""
        expires_at = self.clock() + self.lifetime
        statements: list = []
        self.rows.save(assertion_id, _kept(resources, order, policy_id, user), expires_at, into=statements)
        return SealedChart(statements, partial(self._remember, inputs, assertion_id, expires_at))

    def keep_answer(self, inputs: bytes | None, assertion_id: str, resources: list, order: dict,
                    policy_id: str | None, user: str | None) -> None:
        """Keep the chart of a CRD answer under its assertion id (its own transaction), remembered for a
        repeat of `inputs`."""
        sealed = self.seal_answer(inputs, assertion_id, resources, order, policy_id, user)
        self.rows.database.execute_prepared(sealed.statements)
        sealed.remember()

    def _remember(self, inputs: bytes | None, assertion_id: str, expires_at: float) -> None:
        if inputs is not None:
            with self._lock:
                self._sealed[inputs] = (assertion_id, expires_at)
                self._sealed.move_to_end(inputs)
                while len(self._sealed) > REMEMBERED:
                    self._sealed.popitem(last=False)

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


def _kept(resources: list, order: dict, policy_id: str | None, user: str | None) -> dict:
    # What is None is left out (`recall` reads it as absent): a text with no `null` in it is written
    # by the fast encoder (service/storage/sealed.py).
    data = {"resources": resources, "order": order, "policy": policy_id, "user": user}
    return {name: value for name, value in data.items() if value is not None}
