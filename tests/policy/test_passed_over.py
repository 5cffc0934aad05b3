"""Values a criterion passes over: the newest few are shown with why, and only those are made into evidence."""
from __future__ import annotations

from datetime import date, timedelta

from service.policy.decision import Evidence
from service.policy.judging import MAX_SKIPPED, Later, relevant
from tests.policy.charts import laron_boy


def test_only_the_values_shown_are_made_into_evidence():
    made: list[str] = []

    def later(day: date | None, name: str) -> Later:
        def make() -> Evidence:
            made.append(name)
            return Evidence(kind="height", value=100.0, unit="cm", date=day, reference=f"Observation/{name}")
        return Later(day, make)

    start = date(2024, 1, 1)
    passed = [later(start + timedelta(days=30 * n), f"h{n}") for n in range(40)] + [later(None, "undated")]
    passed.insert(7, Evidence(kind="weight", value=15.0, unit="kg", date=date(2030, 1, 1), reference="Observation/w"))

    shown = relevant(passed, None)

    assert [e.reference for e in shown] == ["Observation/w", "Observation/h39", "Observation/h38"]
    assert made == ["h39", "h38"] and len(shown) == MAX_SKIPPED


def test_a_long_chart_shows_the_newest_heights_it_could_not_use_and_why(policies):
    """Sixty heights from infancy (under the CDC table) and four newer ones in a unit no one can read: the
    height criterion judges the newest usable height and shows the three newest it passed over since."""
    chart = laron_boy()
    for n in range(60):
        chart.height(f"infant-{n}", (date(2018, 10, 1) + timedelta(days=10 * n)).isoformat(), 55.0 + n * 0.3)
    for n, day in enumerate(("2025-01-20", "2025-02-03", "2025-02-17", "2025-03-01")):
        chart.height(f"hand-{n}", day, 3.3, unit="ft")
    decision = chart.decide(policies)

    height = decision.criterion("height")
    assert height.status == "met" and height.evidence[0].reference == "Observation/ht-2025-01"
    assert [e.reference for e in height.evidence[1:]] == ["Observation/hand-3", "Observation/hand-2",
                                                         "Observation/hand-1"]
    assert all("'ft' not recognised" in e.note for e in height.evidence[1:])


def test_values_of_one_day_are_shown_in_their_order_on_file():
    day = date(2024, 6, 1)
    passed = [Evidence(kind="height", value=100.0 + n, unit="cm", date=day if n != 2 else None,
                       reference=f"Observation/h{n}") for n in range(6)]
    assert [e.reference for e in relevant(passed, None)] == ["Observation/h0", "Observation/h1", "Observation/h3"]
    assert [e.reference for e in relevant(passed, None)] == [
        e.reference for e in sorted(passed, key=lambda e: e.date.toordinal() if e.date else 0, reverse=True)[:3]]
