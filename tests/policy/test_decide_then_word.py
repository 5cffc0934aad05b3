"""Decide, then word (docs/architecture.md): service/policy returns codes and values and writes no
sentence; service.wording.word words them, from the structured fields alone, for every surface.

Two checks: (1) no module of service/policy builds an English sentence (an f-string whose literal
parts hold words), outside a short list of non-decision text; (2) on every demo chart and on
re-authorization, technical-gap and dose variants, `evaluate` leaves every text field empty and `word`
fills each one, so the text any surface shows comes from the codes and values alone."""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from service.cli_input import draft_order
from service.policy import evaluate
from service.policy.decision import (Criterion, Decision, DoseFinding, Evidence, Exclusion, LabelFinding, ProposedDose,
                                     Reason)
from service.record import build_record
from service.wording import word
from tests.cards.answers import demo_paths, demo_resources
from tests.integration.test_demo_bundles import TODAY as DEMO_TODAY
from tests.policy.charts import TODAY, laron_boy

POLICY = Path(__file__).resolve().parents[2] / "service" / "policy"
WORD = re.compile(r"[A-Za-z]{2,}")
# (module, function) whose f-strings are not decision wording; None: the whole module.
NOT_DECISION_TEXT = {
    ("loader.py", None): "errors for policy authors, naming the file and the field",
    ("rules.py", "match"): "PolicyChoice.detail: which payer pattern matched (policy versions rework it)",
    ("rules.py", "for_coverage"): "PolicyChoice.detail: the other files that matched the same payer",
    ("rules.py", "get"): "UnknownPolicy: an unknown policy id",
    ("evaluate.py", "choose_policy"): "PolicyChoice.detail: why this policy (policy versions rework it)",
    ("command.py", "run"): "command-line input errors",
    ("check.py", None): "the policy authors' command line (policy check): its table and input errors",
    ("compare.py", "format_within"): "a figure beside its limit ('just above 0.12'), not a sentence",
}

# Text fields, filled by service.wording.word only.
WORDS = {
    Criterion: ("threshold", "explanation", "documentation_needed", "note"),
    Exclusion: ("explanation",),
    LabelFinding: ("message", "title"),
    DoseFinding: ("message", "allowed", "limit"),
    ProposedDose: ("rule",),
    Decision: ("summary", "coding_note"),
}
# Of those, the ones every worded object has.
ALWAYS = {Criterion: ("threshold", "explanation"), Exclusion: ("explanation",), LabelFinding: ("message",),
          DoseFinding: ("message", "allowed"), ProposedDose: ("rule",), Decision: ("summary",)}


def _scopes(tree: ast.Module) -> dict[int, list[str]]:
    """id(node) → the names of the functions and classes around it."""
    scopes: dict[int, list[str]] = {}

    def visit(node, names):
        for child in ast.iter_child_nodes(node):
            inner = names + [child.name] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                else names
            scopes[id(child)] = inner
            visit(child, inner)
    visit(tree, [])
    return scopes


def sentences_built(path: Path) -> list[str]:
    """'module:line: literal' of every f-string in `path` whose literal parts hold a word and a space,
    outside NOT_DECISION_TEXT."""
    if (path.name, None) in NOT_DECISION_TEXT:
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scopes = _scopes(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr) or any((path.name, n) in NOT_DECISION_TEXT for n in scopes[id(node)]):
            continue
        literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        if " " in literal and WORD.search(literal):
            found.append(f"{path.name}:{node.lineno}: {literal!r}")
    return found


def test_the_policy_layer_builds_no_sentence():
    found = [hit for path in sorted(POLICY.glob("*.py")) for hit in sentences_built(path)]
    assert found == []


def test_the_check_sees_a_sentence(tmp_path):
    module = tmp_path / "criteria.py"
    module.write_text('def judge(value):\n    return f"Height {value} meets the limit."\n', encoding="utf-8")
    assert sentences_built(module) == ["criteria.py:2: 'Height  meets the limit.'"]
    module.write_text('def code(value):\n    return f"monitoring-{value}"\n', encoding="utf-8")
    assert sentences_built(module) == []


def test_no_policy_module_imports_the_wording_but_the_command_lines():
    importers = sorted(p.name for p in POLICY.glob("*.py")
                       if re.search(r"^\s*from service\.wording", p.read_text(encoding="utf-8"), re.M))
    assert importers == ["check.py", "command.py"]    # the command lines


def _objects(value, facts: bool = True):
    """Every dataclass instance inside a decision; with `facts`, those among a Reason's values too."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in dataclasses.fields(value):
            if facts or not (isinstance(value, Reason) and f.name == "facts"):
                yield from _objects(getattr(value, f.name), facts)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _objects(item, facts)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _objects(item, facts)


def _decisions(policies):
    for path in demo_paths():
        resources = demo_resources(path)
        record = build_record(resources, draft_order(resources), DEMO_TODAY)
        yield path.stem, evaluate(record, policies, DEMO_TODAY)
    chart = laron_boy()
    yield "laron-boy", evaluate(chart.record(TODAY), policies, TODAY)
    yield "laron-boy-technical", evaluate(chart.record(TODAY), policies, TODAY,
                                          technical_gaps=("observations: HTTP 503", "conditions: timeout"))
    yield "laron-boy-label", evaluate(chart.record(TODAY), policies, TODAY, policy_id="fda-label")


@pytest.fixture(scope="module")
def decisions(policies):
    return dict(_decisions(policies))


def test_the_evaluator_leaves_every_text_field_empty(decisions):
    for name, decision in decisions.items():
        assert decision.reasons == (), name
        for obj in _objects(decision):
            for field in WORDS.get(type(obj), ()):
                assert getattr(obj, field) is None, (name, type(obj).__name__, field, getattr(obj, field))
            if isinstance(obj, Evidence) and obj.notes:
                assert obj.note is None or obj.kind == "order", (name, obj)   # an order's note is the chart's


def test_word_fills_every_text_field_from_the_codes_and_values_alone(decisions):
    kinds = set()
    for name, decision in decisions.items():
        worded = word(decision)
        assert word(worded) is worded                                   # once, at the edge
        assert len(worded.reasons) == len(decision.grounds), name
        for obj in _objects(worded, facts=False):      # a Reason's values are values, not words
            kinds.add(type(obj))
            for field in ALWAYS.get(type(obj), ()):
                assert getattr(obj, field), (name, type(obj).__name__, field)
            if isinstance(obj, Criterion) and obj.status == "unknown":
                assert obj.documentation_needed, (name, obj.id)
            if isinstance(obj, LabelFinding) and obj.category != "monitoring":
                assert obj.title, (name, obj.id)
            if isinstance(obj, Evidence) and obj.notes:
                assert obj.note or obj.display, (name, obj)     # an age's notes word its display
    assert {Criterion, Exclusion, LabelFinding, DoseFinding, ProposedDose, Decision} <= kinds


def test_the_worded_decision_is_plain_json_with_its_codes_and_its_words(decisions):
    for name, decision in decisions.items():
        out = json.loads(json.dumps(word(decision).to_jsonable()))
        for criterion in out["criteria"]:
            assert criterion["why"]["code"] and criterion["explanation"], (name, criterion["id"])
        assert len(out["grounds"]) == len(out["reasons"]), name


def test_a_criterion_worded_from_its_codes_reads_as_before(policies):
    height = next(c for c in laron_boy().decide(policies).criteria if c.type == "height_sds")
    assert height.why.code == "met" and height.why["op"] == "<"
    assert height.explanation.startswith("Height ") and "meets the limit (< -2.25)" in height.explanation
