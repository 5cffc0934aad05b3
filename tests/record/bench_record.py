"""`python -m tests.record.bench_record`: time build_record on a 300-resource chart.

Prints the median and p95 over many runs. A script, not a timed test: shared machines are noisy.
The chart is the Laron patient padded with two years of fortnightly heights, weights, vitals
panels, problem-list entries and medication history, as a long-followed child's chart looks.
"""
from __future__ import annotations

import os
import statistics
import time
from datetime import date, timedelta

from service.record import build_record
from tests.record import builders as b
from tests.record.conftest import TODAY
from tests.record.test_build import laron_chart

RUNS = int(os.environ.get("BENCH_RUNS", "500"))


def big_chart(total: int = 300) -> list[dict]:
    resources = laron_chart()
    start = date(2022, 3, 1)
    n = 0
    while len(resources) < total:
        day = (start + timedelta(days=14 * (n // 5))).isoformat()
        kind = n % 5
        if kind == 0:
            resources.append(b.height(f"hx{n}", day, 90.0 + n * 0.02))
        elif kind == 1:
            resources.append(b.weight(f"wx{n}", day, 13.0 + n * 0.005))
        elif kind == 2:
            resources.append(b.observation(f"bp{n}", day, "85354-9", "Blood pressure panel", category="vital-signs"))
        elif kind == 3:
            resources.append(b.condition(f"cx{n}", icd10=("J06.9", "Acute upper respiratory infection, unspecified"),
                                         clinical="resolved"))
        else:
            resources.append(b.medication_request(f"mx{n}", "amoxicillin 400 MG/5ML Oral Suspension", status="completed"))
        n += 1
    return resources


def main() -> None:
    resources = big_chart()
    order = b.mecasermin_order()
    build_record(resources, order, TODAY)          # warm-up: reads the LMS table once
    wall, cpu = [], []
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        build_record(resources, order, TODAY)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    # CPU time is shown too: on a busy shared machine the wall clock mostly measures waiting.
    for name, timings in (("wall", sorted(wall)), ("cpu", sorted(cpu))):
        print(f"build_record, {len(resources)} resources, {RUNS} runs, {name}: "
              f"median {statistics.median(timings):.2f} ms, p95 {timings[int(RUNS * 0.95) - 1]:.2f} ms, "
              f"max {timings[-1]:.2f} ms")


if __name__ == "__main__":
    main()
