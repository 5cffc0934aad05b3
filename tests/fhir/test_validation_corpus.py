"""R4 validation keeps its verdicts: the corpus of tests/fhir/validation_corpus.py, the record and the
decision each case leads to, and the fast check vouching only for what the models accept."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from service.fhir.r4_shape import surely_valid
from service.fhir.resources import _validates, bundle_resources, is_valid_r4, normalise_quirks, screen
from service.policy.evaluate import evaluate
from service.policy.loader import load_policies
from service.record import build_record
from service.record.resources import resources_from_bundle
from service.settings import Settings
from tests.conftest import TODAY
from tests.fhir.validation_corpus import CORPUS, chart_with
from tests.fixtures import laron_prefetch, mecasermin_order

# What each case made of the Laron chart when full validation decided alone (recorded before the
# fast check existed): kept or skipped, the record's `skipped` entries, the decision.
OUTCOMES = json.loads((Path(__file__).parent / "validation_corpus_outcomes.json").read_text())
PATIENTS = Path(__file__).parents[2] / "sandbox-config" / "patients"
IDS = [name for name, _, _ in CORPUS]


@pytest.mark.parametrize("name,resource,accepted", CORPUS, ids=IDS)
def test_each_resource_gets_the_verdict_of_full_validation(name, resource, accepted):
    assert is_valid_r4(normalise_quirks(resource)) is accepted


@pytest.mark.parametrize("name,resource,accepted", CORPUS, ids=IDS)
def test_the_models_still_give_the_recorded_verdict(name, resource, accepted):
    """If a fhir.resources upgrade moves a verdict, this says which, before the fast check hides it."""
    assert _validates(normalise_quirks(resource)) is accepted


@pytest.mark.parametrize("name,resource,accepted", CORPUS, ids=IDS)
def test_the_fast_check_vouches_only_for_accepted_resources(name, resource, accepted):
    if surely_valid(normalise_quirks(resource)):
        assert accepted


_POLICIES = load_policies()
_SETTINGS = Settings.from_env({}, database_url="sqlite:///unused.sqlite3")     # never opened


def outcome(resource: dict) -> dict:
    """What the chart with this resource in its place gives: screened, recorded, decided."""
    candidates = [r for value in chart_with(resource).values() for r in bundle_resources(value)]
    screened = screen(candidates)
    order = mecasermin_order()
    record = build_record(list(screened.resources) + [order], order, TODAY, rxnorm_codes=_SETTINGS.rxnorm_codes,
                          mg_per_ml=_POLICIES.label.dosing.concentration_mg_per_ml)
    decision = evaluate(record, _POLICIES, TODAY, default_policy=_SETTINGS.default_policy, refused=screened.refused)
    return {"invalid": screened.invalid,
            "kept": any(r.get("id") == resource.get("id") and r.get("resourceType") == resource.get("resourceType")
                        for r in screened.resources),
            "skipped": [[s.reference, s.reason] for s in record.skipped],
            "determination": decision.determination,
            "criteria": {c.id: c.status for c in decision.criteria}}


@pytest.mark.parametrize("name,resource,accepted", CORPUS, ids=IDS)
def test_the_record_and_the_decision_are_those_of_full_validation(name, resource, accepted):
    assert outcome(resource) == OUTCOMES[name]


def _mutations(seed: int, count: int):
    """Resources of the corpus and of the demo patients, each changed at random places in the ways
    servers and attackers get them wrong."""
    bases = [normalise_quirks(r) for _, r, ok in CORPUS if ok]
    for path in sorted(PATIENTS.glob("*.json")):
        bases += [normalise_quirks(r) for r in resources_from_bundle(json.loads(path.read_text()))]
    values = ["", " ", "x y", "x", 5, 5.5, -3, 0, True, None, [], {}, [{}], [None], "2026-02-30",
              "2026-01-01T10:00:00", "2026-01-01T10:00:00+15:00", "2026-01-01T24:00:00Z", "2016-12-31T23:59:60Z",
              "2026-13", "0000", "2026-01-01T10:00:00.1234567Z", "abc\u00e9", "\u00a0", "a\u2003b", 2 ** 40,
              -2 ** 31 - 1, "1e5", {"foo": 1}, "http://x y", "#x", 1e308, float("nan"), float("inf"), "12.50",
              [1, 2], {"reference": 5}, {"coding": [{"code": " x"}]}, {"resourceType": "Patient"}, "-0", 1e-7,
              "\t", "a\nb", "\x0b", "a\ud800", "\udfff", [{"url": "http://x.org/e", "valueCode": "a"}], {"extension": []}]
    extra_keys = ["foo", "valueString", "extension", "modifierExtension", "contained", "text", "id", "_id",
                  "resourceType", "fhir_comments"]
    rng = random.Random(seed)
    for _ in range(count):
        resource = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.choice((1, 1, 2, 3))):
            places = list(_places(resource))
            parent, key = rng.choice(places)
            roll = rng.random()
            if roll < 0.6:
                parent[key] = copy.deepcopy(rng.choice(values))
            elif roll < 0.7 and isinstance(parent, dict):
                del parent[key]
            elif roll < 0.8 and isinstance(parent, dict):
                parent[rng.choice(extra_keys + [f"_{key}"])] = copy.deepcopy(rng.choice(values))
            elif roll < 0.9:
                parent[key] = [parent[key]]
            elif isinstance(parent[key], list) and parent[key]:
                parent[key] = parent[key][0]
        yield resource


def _places(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield value, key
            yield from _places(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index
            yield from _places(item)


def test_the_fast_check_never_vouches_for_what_the_models_refuse():
    vouched = 0
    for resource in _mutations(seed=19, count=1500):
        if surely_valid(resource):
            vouched += 1
            assert _validates(resource), json.dumps(resource)[:2000]
    assert vouched > 150        # the walk does vouch for many of them: the test exercises both sides


def test_the_fast_check_vouches_for_every_resource_of_the_demo_patients():
    """Plain charts never reach the models: that is where the time goes."""
    resources = [r for value in laron_prefetch().values() for r in bundle_resources(value)]
    for path in sorted(PATIENTS.glob("*.json")):
        resources += resources_from_bundle(json.loads(path.read_text()))
    assert len(resources) > 100
    assert [r.get("id") for r in resources if not surely_valid(normalise_quirks(r))] == []


def test_a_resource_nested_past_the_recursion_limit_is_left_to_the_models():
    deep: dict = {"url": "http://x.org/e", "valueString": "x"}
    for _ in range(3000):
        deep = {"url": "http://x.org/e", "extension": [deep]}
    resource = {"resourceType": "Patient", "id": "p1", "extension": [deep]}
    assert surely_valid(resource) is False


def test_every_element_normalised_repeats_in_a_read_type_unless_it_is_kept_single():
    """What lets the screen keep a resource the fast check vouches for as it came: it holds a list
    wherever one is wrapped (service/fhir/resources.py, `screen`)."""
    from service.fhir import r4_shape
    from service.fhir.resources import _LIST_ELEMENTS, _SINGLE_ELEMENTS, READ_TYPES
    for resource_type in READ_TYPES:
        elements = r4_shape._resource_shape(resource_type).elements
        single = {name for name in _LIST_ELEMENTS & set(elements) if not elements[name][1]}
        assert single <= set(_SINGLE_ELEMENTS.get(resource_type, ())), resource_type


def _screen_as_before(candidates: list) -> tuple:
    """The screen as it was written before it skipped normalising what the fast check vouches for:
    every read resource normalised, then judged."""
    from service.fhir.resources import is_read, refusal_of
    kept, anonymous, refusals, ignored = {}, [], {}, 0
    for candidate in candidates:
        if not is_read(candidate):
            ignored += 1
            continue
        resource = normalise_quirks(candidate)
        why = refusal_of(resource)
        if why is not None:
            refusals.setdefault(why.reference or len(refusals), why)
            continue
        if isinstance(resource.get("id"), str):
            kept.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
        else:
            anonymous.append(resource)
    unread = tuple(r for r in refusals.values() if r.reference not in kept)
    return tuple(kept.values()) + tuple(anonymous), len(unread), ignored, unread


def _raises_in_screen(resource) -> bool:
    """A few mutations make the models raise an error they do not expect (AttributeError on a
    primitive's `_field` given a number): the old and the new screen raise it alike."""
    try:
        _screen_as_before([resource])
    except Exception as error:  # noqa: BLE001
        with pytest.raises(type(error)):
            screen([resource])
        return True
    return False


def test_the_screen_keeps_what_normalising_then_judging_each_resource_keeps():
    """Over the corpus as sent (single objects where R4 wants arrays), the demo patients and mutated
    resources (lists unwrapped, keys added, values changed), in charts of 40 with repeated ids."""
    candidates = [copy.deepcopy(r) for _, r, _ in CORPUS]
    for path in sorted(PATIENTS.glob("*.json")):
        candidates += resources_from_bundle(json.loads(path.read_text()))
    candidates += list(_mutations(seed=23, count=3000))
    random.Random(23).shuffle(candidates)
    candidates = [r for r in candidates if not _raises_in_screen(r)]
    vouched = 0
    for resource in candidates:
        if surely_valid(resource):
            vouched += 1
            assert normalise_quirks(resource) is resource, json.dumps(resource)[:2000]
    assert vouched > 500
    for start in range(0, len(candidates), 40):
        chart = candidates[start:start + 40]
        screened = screen(chart)
        resources, invalid, ignored, refused = _screen_as_before(chart)
        sent = {id(r) for r in chart}
        # The same resources, each the one sent when it was kept as sent (a normalised one is a new copy).
        assert [id(r) if id(r) in sent else r for r in screened.resources] == [
            id(r) if id(r) in sent else r for r in resources]
        assert (screened.invalid, screened.ignored, screened.refused) == (invalid, ignored, refused)
