from __future__ import annotations

from datetime import date

import pytest

from service.record import build_record
from tests.record import builders as b

TODAY = date(2024, 3, 14)      # the default patient's 6th birthday


@pytest.fixture
def build():
    """build_record with the default patient added unless the test passes its own."""
    def _build(*resources, order=None, today=TODAY, with_patient=True, **kwargs):
        items = list(resources)
        if with_patient and not any(isinstance(r, dict) and r.get("resourceType") == "Patient" for r in items):
            items.insert(0, b.patient())
        return build_record(items, order, today, **kwargs)
    return _build
