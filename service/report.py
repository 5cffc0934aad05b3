"""`mecasermin-cds report`: how clinicians answer each card type, from stored feedback.

Acceptance and override rates per card type, and the most frequent override reasons — the
numbers that tell a reviewer which card is being ignored.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

from service.settings import Settings
from service.storage import Database
from service.store import Store


@dataclass
class CardTypeStats:
    card_type: str
    issued: int = 0
    accepted: int = 0
    overridden: int = 0
    top_override_reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return self.accepted + self.overridden

    def rate(self, count: int) -> float | None:
        return round(count / self.answered, 3) if self.answered else None


def feedback_report(store: Store, top: int = 5) -> list[CardTypeStats]:
    stats: dict[str, CardTypeStats] = {}
    for card_type, issued in store.issued_counts():
        stats[card_type] = CardTypeStats(card_type, issued=issued)
    rows = store.outcome_counts()
    for card_type, outcome, count in rows:
        entry = stats.setdefault(card_type, CardTypeStats(card_type))
        if outcome == "accepted":
            entry.accepted += count
        else:
            entry.overridden += count
    reasons = store.override_reasons()
    for card_type, reason, count in reasons:
        entry = stats[card_type]
        if len(entry.top_override_reasons) < top:
            entry.top_override_reasons.append((reason, count))
    return sorted(stats.values(), key=lambda s: s.card_type)


def render_text(stats: list[CardTypeStats]) -> str:
    if not stats:
        return "No cards issued and no feedback stored yet."
    lines = [f"{'card type':<18}{'issued':>8}{'answered':>10}{'accepted':>10}{'overridden':>12}"]
    for s in stats:
        accepted = _percent(s.rate(s.accepted))
        overridden = _percent(s.rate(s.overridden))
        lines.append(f"{s.card_type:<18}{s.issued:>8}{s.answered:>10}{accepted:>10}{overridden:>12}")
        for reason, count in s.top_override_reasons:
            lines.append(f"    override: {reason} ({count})")
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    database = Database(settings.database_url)
    database.migrate()
    store = Store(database, settings.audit_hash_key)
    stats = feedback_report(store, top=args.top)
    if args.format == "json":
        print(json.dumps([{**s.__dict__, "answered": s.answered, "acceptance_rate": s.rate(s.accepted),
                           "override_rate": s.rate(s.overridden)} for s in stats], indent=2))
    else:
        print(render_text(stats))
    return 0


def add_parser(commands) -> None:
    parser = commands.add_parser("report", help="acceptance and override rates per card type, from stored feedback")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--top", type=int, default=5, help="override reasons listed per card type")
    parser.set_defaults(handler=_run)
