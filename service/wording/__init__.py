"""The one wording layer: decisions (service.policy) are turned into words here and only here, for the
cards, the SMART app and its letter, the command line, the CRD answer and the audit row.

`word(decision)` (word.py) fills every text field of a Decision from its codes and values, once, at the
edge. One module per idea: `numbers` (every number, unit and centile), `evidence` (one piece of
evidence), `criteria` and `diagnosis` (a criterion's rule, explanation and what would settle it),
`exclusions`, `findings` (the label's findings), `dose`, `summary` (summary line, grounds, coding note),
`decision` (the verdict and checklist names), `support` (dispensing and manufacturer support)."""
from service.wording.word import word

__all__ = ["word"]
