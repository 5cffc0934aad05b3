"""The SMART on FHIR app (issue 8): launched from the EHR or standalone, it shows the same
Decision the CDS service computes — criteria checklist, growth chart, labs, label findings —
and drafts the prior-authorization letter (HTML, FHIR DocumentReference, optional write-back).

`blueprint` (defined in `smart.blueprint`) is registered by `service.app.create_app`; its routes are
in `launch_views` (launch, OAuth callback, sign-out) and `views` (app, packet, packet.json, write-back).
"""
from service.smart import dtr_views, launch_views, views  # importing them registers their routes
from service.smart.blueprint import blueprint

__all__ = ["blueprint", "dtr_views", "launch_views", "views"]
