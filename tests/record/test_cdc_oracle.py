"""Oracle: height SDS against the published CDC 2000 stature-for-age percentiles.

The CDC file the service ships (data/cdc_statage.csv, CDC "statage.csv", public domain) publishes,
beside L, M and S, the heights of the 3rd, 5th, 10th, 25th, 50th, 75th, 90th, 95th and 97th
percentiles at every age it tabulates: 24 and 240 months and each half month between (24.5, 25.5,
… 239.5), for boys and girls. The SDS the service computes for each published percentile height,
at that age, must be that percentile's z (P3 → −1.881, P97 → +1.881) within 0.01 SD: 436 ages ×
9 percentiles = 3,924 checks. At the whole months between (25, 26, … 239), which the CDC does not
tabulate, the check uses the published heights interpolated linearly between the neighbouring ages.
"""
from __future__ import annotations

import csv
import io
from importlib import resources
from statistics import NormalDist

import pytest

from service.record.growth import height_sds

PERCENTILES = {"P3": 3, "P5": 5, "P10": 10, "P25": 25, "P50": 50, "P75": 75, "P90": 90, "P95": 95, "P97": 97}
Z = {column: NormalDist().inv_cdf(p / 100) for column, p in PERCENTILES.items()}
TOLERANCE = 0.01


def _rows() -> list[dict[str, str]]:
    text = resources.files("service.record.data").joinpath("cdc_statage.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#")))))


ROWS = _rows()
SEXES = {"1": "male", "2": "female"}


def _worst(points) -> tuple[float, str]:
    """The largest |ΔSDS| over (sex, months, column, height) points, and where it is."""
    worst, where = 0.0, ""
    for sex, months, column, height in points:
        sds, _, reason = height_sds(height, sex, months / 12)
        assert reason is None, (sex, months, column, reason)
        delta = abs(sds - Z[column])
        if delta > worst:
            worst, where = delta, f"{sex} {months} mo {column} {height:.2f} cm: SDS {sds:+.4f} vs {Z[column]:+.4f}"
    return worst, where


def test_the_file_publishes_every_percentile_column_at_every_age():
    assert len(ROWS) == 436 and all(ROWS[0].get(column) for column in PERCENTILES)
    for code in SEXES:
        ages = [float(r["Agemos"]) for r in ROWS if r["Sex"] == code]
        assert ages[0] == 24.0 and ages[-1] == 240.0
        assert all(a % 1 == 0.5 for a in ages[1:-1])


@pytest.mark.parametrize("code", sorted(SEXES), ids=lambda c: SEXES[c])
def test_sds_of_each_published_percentile_height_is_its_z(code):
    points = [(SEXES[code], float(r["Agemos"]), column, float(r[column]))
              for r in ROWS if r["Sex"] == code for column in PERCENTILES]
    assert len(points) == 218 * 9
    worst, where = _worst(points)
    assert worst <= TOLERANCE, where


@pytest.mark.parametrize("code", sorted(SEXES), ids=lambda c: SEXES[c])
def test_sds_at_whole_months_between_published_ages(code):
    rows = [r for r in ROWS if r["Sex"] == code]
    points = []
    for before, after in zip(rows, rows[1:]):
        a0, a1 = float(before["Agemos"]), float(after["Agemos"])
        for month in range(int(a0) + 1, int(a1) + (a1 % 1 != 0)):
            if a0 < month < a1:
                f = (month - a0) / (a1 - a0)
                points += [(SEXES[code], float(month), column,
                            float(before[column]) + f * (float(after[column]) - float(before[column])))
                           for column in PERCENTILES]
    assert len(points) == 215 * 9          # 25 … 239 months
    worst, where = _worst(points)
    assert worst <= TOLERANCE, where
