"""The policy files' `questions`: each settles a criterion or exclusion of its own file, with its own
items; a file that breaks that does not load (the service never starts with a question it cannot use)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.policy.loader import DEFAULT_POLICY_DIR, PolicyError, load_policy_file
from tests.dtr.flow import POLICIES

PREMERA = Path(DEFAULT_POLICY_DIR) / "premera-mecasermin.yaml"


def _rules():
    """Every set of rules loaded: each policy (or, with dated versions, each version of each file)."""
    for policy in POLICIES.policies:
        yield from getattr(policy, "versions", (policy,))


def test_every_shipped_payer_policy_has_questions_for_its_criteria():
    for policy in _rules():
        targets = {c["id"] for c in policy.initial + policy.reauthorization} | {e.id for e in policy.exclusions}
        assert policy.questions and set(policy.questions) <= targets, policy.id


def _broken(tmp_path, change) -> Path:
    data = yaml.safe_load(PREMERA.read_text())
    change(data["questions"])
    path = tmp_path / PREMERA.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize("change, problem", [
    (lambda q: q.update({"shoe-size": q["height"]}), "$.questions.shoe-size: no criterion or exclusion 'shoe-size'"),
    (lambda q: q["height"]["record"]["observation"].update(value="weight"), "record.observation.value: no item 'weight'"),
    (lambda q: q["gh-deficiency"]["record"]["refute"].update(equals="maybe"), "not an option of item 'status'"),
    (lambda q: q["height"]["items"][0].update(type="slider"), "$.questions.height.items[0].type"),
    (lambda q: q["height"].pop("record"), "$.questions.height.record"),
])
def test_a_question_that_cannot_be_used_stops_the_file_loading(tmp_path, change, problem):
    with pytest.raises(PolicyError) as caught:
        load_policy_file(_broken(tmp_path, change))
    assert problem in str(caught.value)
