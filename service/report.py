"""`mecasermin-cds report [--format text|json] [--top N]`: how clinicians answer each card type.

Acceptance and override rates per card type, and the most frequent override reasons — the
numbers that tell a reviewer which card is being ignored — read from the database the service
stores feedback in (CDS_DATABASE_URL; by default var/mecasermin-cds.sqlite3 under the folder the
service runs in). A database that does not exist is an error, never created empty.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from service.settings import Settings
from service.storage import Database, database_url
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
    url = database_url(settings.database_url)
    path = Path(url.database) if url.get_backend_name() == "sqlite" else None
    if path is not None and not path.is_file():
        print(f"mecasermin-cds report: no database at {path.resolve()} (CDS_DATABASE_URL={settings.database_url}); "
              "run it in the folder the service runs in, or set CDS_DATABASE_URL to the service's database",
              file=sys.stderr)
        return 2
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


def _count(text: str) -> int:
    """argparse type for --top: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_parser(commands) -> None:
    parser = commands.add_parser("report", help="acceptance and override rates per card type, from stored feedback",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="a table (text, the default) or JSON, one object per card type")
    parser.add_argument("--top", type=_count, default=5, metavar="N",
                        help="override reasons listed per card type, most frequent first (default 5; 0: none)")
    parser.set_defaults(handler=_run)
