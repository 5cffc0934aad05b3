"""The patient record: FHIR R4 resources → clinical facts with their evidence (issue 3).

    build_record(resources, order, today, *, rxnorm_codes=()) -> PatientRecord
    resources_from_bundle(bundle) -> list[dict]
    peak_gh(record) -> GhResult | None

Code helpers shared with the policy evaluator live in `service.record.codes`
(`icd10_in`, `icd10_normalise`, `has_code`, …).
"""
from .build import build_record
from .model import PatientRecord, to_jsonable
from .queries import latest, peak_gh, usable
from .resources import resources_from_bundle

__all__ = ["build_record", "resources_from_bundle", "peak_gh", "latest", "usable", "PatientRecord", "to_jsonable"]
