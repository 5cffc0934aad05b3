"""The SMART on FHIR app (issue 8): launched from the EHR or standalone, it shows the same
Decision the CDS service computes — criteria checklist, growth chart, labs, label findings —
and drafts the prior-authorization letter (HTML, FHIR DocumentReference, optional write-back).

`blueprint` is registered by `service.app.create_app`; routes are listed in `views`.
"""
from service.smart.views import blueprint

__all__ = ["blueprint"]
