"""A Da Vinci DTR payer service for the payer policies (docs/dtr.md): the adaptive questionnaire that
asks only what the chart leaves unknown, and whose answers the evaluation reads as attested facts."""
from service.dtr.adaptive import Answered, DtrError, answered_decision, next_question, questionnaire_package

__all__ = ["Answered", "DtrError", "answered_decision", "next_question", "questionnaire_package"]
