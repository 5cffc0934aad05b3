"""`make bench` prints figures only: a heading and one line per measure, each service, floor and
ratio, no log lines; and the warm-up before gunicorn forks loads what a first call would."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

from service.warm import warm_up

ROOT = Path(__file__).resolve().parents[2]
FIGURES = re.compile(r"^.{40} service= +[\d.]+ (ms|req/s) +floor= +[\d.]+ (ms|req/s) +ratio= +[\d.]+x$")
MEASURES = ("mecasermin, repeated chart p50", "mecasermin, first-seen chart p50", "amoxicillin, same prefetch p50",
            "5,000 Observations, first-seen p50", "HTTP 2 workers, repeated chart", "HTTP 2 workers, CPU per request",
            "HTTP 2 workers, 200 req/s p99",
            "first call after start")


def test_bench_prints_only_its_figures():
    result = subprocess.run([sys.executable, "-m", "tests.bench.bench_service"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "BENCH_RUNS": "3", "BENCH_SECONDS": "0.5"})
    assert result.returncode == 0, result.stderr[-2000:]
    heading, *lines = result.stdout.splitlines()
    assert heading.startswith("mecasermin order-select, 300 resources")
    assert [line[:40].strip() for line in lines] == list(MEASURES), result.stdout
    assert all(FIGURES.match(line) for line in lines), result.stdout
    assert result.stderr == ""


def test_warm_up_loads_the_element_models_a_first_validation_would_import():
    assert warm_up() > 30
    observation = get_fhir_model_class("Observation")
    # A nested element type (Quantity inside Observation.valueQuantity) is loaded, not left to the first call.
    assert sys.modules.get("fhir.resources.R4B.quantity") is not None
    assert observation.model_validate({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                       "valueQuantity": {"value": 1}})
