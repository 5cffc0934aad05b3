"""Observation codes the evaluation reads: used to build the prefetch query and to drop
irrelevant Observations (vitals, other labs) before the costly R4 validation."""
from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

# (system, code) pairs, from the clinical spec §2.
OBSERVATION_CODES: tuple[tuple[str, str], ...] = (
    (LOINC, "8302-2"),        # body height
    (LOINC, "8303-0"),        # body height percentile
    (SNOMED, "1153604005"),   # height-for-age z-score
    (SNOMED, "1153605006"),   # height-for-age percentile
    (LOINC, "29463-7"),       # body weight
    (LOINC, "2484-4"),        # IGF-1 mass/volume
    (LOINC, "73561-3"),       # IGF-1 z-score
    (LOINC, "2963-7"), (LOINC, "14146-5"), (LOINC, "40301-4"), (LOINC, "47760-4"), (LOINC, "48128-3"),
    (LOINC, "40302-2"), (LOINC, "46408-1"), (LOINC, "40298-2"), (LOINC, "56571-3"),  # GH (stimulated)
    (LOINC, "12253-1"),       # GH baseline
    (LOINC, "85151-9"),       # bone age
    (LOINC, "85150-1"),       # bone age method
)
_RELEVANT = frozenset(code for _, code in OBSERVATION_CODES)


def prefetch_observation_codes() -> list[str]:
    return [f"{system}|{code}" for system, code in OBSERVATION_CODES]


def observation_is_relevant(resource: dict[str, Any]) -> bool:
    codings = (resource.get("code") or {}).get("coding") if isinstance(resource.get("code"), dict) else None
    if not isinstance(codings, list):
        return False
    return any(isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"] in _RELEVANT for c in codings)
