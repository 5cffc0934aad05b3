"""The DTR questionnaire's own words (service/dtr): group titles and answer labels. The questions
themselves are the policy file's (`questions`); criteria and evidence are worded as everywhere else."""
from __future__ import annotations

ON_FILE_TITLE = "Already in the chart"
ON_FILE_HELP = ("What the chart settles, criterion by criterion, with the evidence the decision used. "
                "These answers come from the record and cannot be changed here.")
DETERMINATION_TITLE = "Determination"
RESULT_TEXT = "Result under the plan's criteria"
SUMMARY_TEXT = "Summary"
REASONS_TEXT = "Why"
EVIDENCE_TEXT = "Evidence"
SOURCE_TEXT = "Source"
ON_FILE_NOW = "In the chart now"
STATUS_WORDS = {"met": "Met", "not_met": "Not met", "unknown": "Unknown"}
EXCLUSION_WORDS = "Recorded"
DETERMINATION_WORDS = {"meets-criteria": "Meets the criteria", "documentation-needed": "Documentation needed",
                       "does-not-meet": "Does not meet the criteria"}


def questionnaire_title(policy_title: str) -> str:
    return f"Mecasermin prior authorization — {policy_title}"


def questionnaire_description(policy_title: str) -> str:
    return (f"Documentation for prior authorization of mecasermin (Increlex) under {policy_title}. "
            "Asks only what the chart does not already show, one step at a time.")
