"""How the drug is dispensed and what the manufacturer's programme offers, worded from label.yaml's
`support` for the SMART app and the letter (billing and access detail is not card material:
cards/DESIGN.md)."""
from __future__ import annotations


def support_lines(decision, record) -> list[str]:
    support = dict(decision.label.support) if decision.label else {}
    if not support:
        return []
    lines = [support["dispensing"]]
    programme = record.coverage.government_programme if record.coverage else None
    if programme:
        lines.append(f"Manufacturer support ({support['programme_url']}) "
                     + support["government_note"].format(programme=programme) + ".")
    else:
        lines.append(f"Manufacturer support ({support['programme_url']}) offers {support['programme_offer']}.")
    return lines
