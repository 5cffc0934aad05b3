"""`make bench` prints figures only: a heading and one line per measure, no log lines."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = re.compile(r"^.{28} runs= +\d+  median= +[\d.]+ ms  p95= +[\d.]+ ms  max= +[\d.]+ ms$")


def test_bench_prints_only_its_figures():
    result = subprocess.run([sys.executable, "-m", "tests.bench.bench_service"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "BENCH_RUNS": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    heading, *lines = result.stdout.splitlines()
    assert heading.startswith("mecasermin order-select, 300 resources")
    assert len(lines) == 5 and all(FIGURES.match(line) for line in lines), result.stdout
    assert result.stderr == ""
