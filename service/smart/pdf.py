"""The letter as a PDF, for fax or upload to a payer portal: WeasyPrint renders the same HTML the
DocumentReference carries (the growth chart is inline SVG), so the three forms never differ.

WeasyPrint (BSD licence) needs Pango at run time (Debian: libpango-1.0-0, libpangoft2-1.0-0) and a
font (fonts-dejavu-core). It is imported here only, on first use, so the rest of the service starts
without it. The HTML fetches nothing: any URL it names is refused rather than requested.
"""
from __future__ import annotations

from weasyprint import HTML


def _no_fetch(url: str, *args, **kwargs):
    raise ValueError("the letter loads no external resource")


def letter_pdf(html: str) -> bytes:
    return HTML(string=html, url_fetcher=_no_fetch).write_pdf()
