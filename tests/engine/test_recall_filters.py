"""Recall filter grammar (mem0 syntax), memorize controls and the score calibration curve, in isolation.
The end-to-end behaviour (scoped and org-wide, through the API) is tests/gateway/test_recall_controls.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from memrelay.engine.memory.memory_controls import ChatMessage, check_metadata, expiry, memorable, transcript
from memrelay.engine.memory.recall_filters import FilterError, compile_filters
from memrelay.engine.memory.score_calibration import Calibration, calibration_for, fit_anchors

TS = datetime(2026, 3, 1, tzinfo=UTC)
MEM = {"metadata": {"score": 7, "ratio": 0.5, "name": "Acme Corp", "flag": True, "when": "2026-02-10",
                    "deep": {"a": {"b": 1}}, "labels": ["x", "y"]},
       "tags": ["crm"], "topic": "budget", "speaker": "Ana", "source": "memorize", "type": "contact", "ts": TS}


def holds(spec: dict, mem: dict = MEM) -> bool:  # type: ignore[type-arg]
    return compile_filters(spec)(mem, [])


@pytest.mark.parametrize(("spec", "expected"), [
    ({"score": 7}, True), ({"score": "7"}, False),  # no cross-type equality
    ({"flag": True}, True), ({"flag": 1}, False),  # booleans are not numbers
    ({"score": {"$gt": 6.5}}, True), ({"ratio": {"lte": 0.5}}, True), ({"ratio": {"lt": 0.5}}, False),
    ({"name": {"gt": "A"}}, True), ({"name": {"gt": 3}}, False),  # strings compare with strings only
    ({"when": {"gte": "2026-02-01", "lt": "2026-03-01"}}, True),  # ISO dates order as strings
    ({"deep.a.b": 1}, True), ({"deep.a.c": {"ne": 1}}, True), ({"deep.a.c": {"eq": 1}}, False),
    ({"missing": {"nin": [1]}}, True), ({"missing": {"in": [1]}}, False), ({"missing": "*"}, False),
    ({"labels": {"in": ["y", "z"]}}, True), ({"labels": {"nin": ["y"]}}, False), ({"labels": ["x", "y"]}, True),
    ({"name": {"icontains": "acme"}}, True), ({"name": {"contains": "acme"}}, False),
    ({"score": {"contains": 7}}, False),  # contains needs a string or a list field
    ({"topic": "budget", "speaker": "Ana"}, True), ({"tags": {"contains": "crm"}}, True),
    ({"type": {"in": ["company"]}}, False), ({"timestamp": {"gte": "2026-03-01"}}, True),
    ({"$and": [{"score": 7}, {"$not": {"name": "x"}}]}, True),
    ({"NOT": [{"score": 7}, {"name": "x"}]}, False),  # NOT of a list: none may hold
    ({"OR": [{"score": 1}, {"AND": [{"flag": True}, {"ratio": {"gt": 0.1}}]}]}, True),
])
def test_operators(spec: dict, expected: bool) -> None:  # type: ignore[type-arg]
    assert holds(spec) is expected


def test_metadata_wins_over_builtin_fields_and_matched_leaves_are_reported() -> None:
    mem = {**MEM, "metadata": {"topic": "custom"}}
    assert holds({"topic": "custom"}, mem) and not holds({"topic": "budget"}, mem)
    hits: list[str] = []
    assert compile_filters({"OR": [{"score": 1}, {"score": {"gte": 7}}]})(MEM, hits)
    assert hits == ["score gte 7"]


@pytest.mark.parametrize("spec", [{"a": {"like": 1}}, {"AND": []}, {"OR": {"a": 1}}, {"a": {"in": "x"}},
                                  {"a": {"gt": None}}, {"a": {"gt": True}}, {"a": {"contains": [1]}}, {},
                                  {"a": {}}, {"NOT": []}])
def test_invalid_filters_raise(spec: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(FilterError):
        compile_filters(spec)


def test_nesting_depth_is_bounded() -> None:
    spec: dict = {"a": 1}  # type: ignore[type-arg]
    for _ in range(10):
        spec = {"AND": [spec]}
    with pytest.raises(FilterError):
        compile_filters(spec)


def test_chat_messages_and_expiry_helpers() -> None:
    msgs = [ChatMessage(role="system", content="Be nice."), ChatMessage(role="user", name="Ana", content="Hi, I run ops."),
            ChatMessage(role="assistant", content="  "), ChatMessage.model_validate(
                {"role": "assistant", "content": [{"type": "text", "text": "Noted"}, {"type": "image"}]})]
    assert [m.author for m in memorable(msgs)] == ["Ana", "assistant"]
    assert transcript(msgs) == "Ana: Hi, I run ops.\nassistant: Noted"
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert expiry(None, 60, now) == now + timedelta(seconds=60)
    assert expiry(date(2026, 2, 1), 60, now) == datetime(2026, 2, 1, tzinfo=UTC)  # expiresAt wins over ttl
    assert expiry(None, None, now) is None
    assert check_metadata(None) is None and check_metadata({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError):
        check_metadata({"big": "x" * 20_000})


def test_calibration_curve_is_monotone_and_maps_the_anchor_percentiles() -> None:
    rng = np.random.default_rng(7)
    relevant, same, other = rng.normal(0.4, 0.1, 300), rng.normal(0.05, 0.08, 900), rng.normal(0.0, 0.08, 900)
    xs, ys = fit_anchors(relevant, same, other)
    cal = Calibration("test", tuple(xs), tuple(ys))
    grid = np.linspace(-1, 1.5, 200)
    assert np.all(np.diff(cal(grid)) >= 0) and cal(grid).min() == 0 and cal(grid).max() == 1
    unrelated_p95 = (np.percentile(same, 95) + np.percentile(other, 95)) / 2
    assert cal(unrelated_p95) == pytest.approx(0.5, abs=1e-3)  # "precise" = 95% of unrelated dropped
    assert cal.cosine_for(0.5) == pytest.approx(unrelated_p95, abs=1e-3)


def test_each_shipped_embedder_curve_is_fitted_and_an_unknown_one_is_raw() -> None:
    wl = calibration_for("wordllama:l2_supercat_256")
    assert wl.fitted and list(wl.ys) == sorted(wl.ys) and list(wl.xs) == sorted(wl.xs)
    raw = calibration_for("litellm:some/model")
    assert not raw.fitted and raw(np.array([-0.2, 0.4, 1.2])).tolist() == [0.0, 0.4, 1.0]
