"""bench/quality_routing.py's dev/held-out split and its list of wrong selections (issue 15, item 4): settings
are chosen on the even-numbered tasks, the odd ones are held out, and a miss names what was added and lost."""

from __future__ import annotations

from bench.quality_routing import halves, load, misses, scores, split_numbers

TASKS = [("refund please", ["Refunds"]), ("discount and refund", ["Pricing", "Refunds"]),
         ("book a room", []), ("status page down", ["Incidents"])]


def fixed_router(message: str) -> list[str]:
    return {"refund please": ["Refunds"], "discount and refund": ["Refunds"], "book a room": ["Discovery"],
            "status page down": ["Incidents"]}[message]


def test_split_numbers_match_halves_on_the_checked_in_dataset() -> None:
    _, tasks = load()
    parts = halves(tasks)
    for name in ("all", "dev", "held_out"):
        assert [tasks[i] for i in split_numbers(len(tasks), name)] == parts[name]
    assert set(split_numbers(len(tasks), "dev")).isdisjoint(split_numbers(len(tasks), "held_out"))


def test_misses_name_the_extra_and_missing_guidelines_per_task() -> None:
    wrong = misses(fixed_router, TASKS, split_numbers(len(TASKS), "all"))
    assert [(m["task"], m["extra"], m["missing"]) for m in wrong] == [(1, [], ["Pricing"]), (2, ["Discovery"], [])]
    assert [m["task"] for m in misses(fixed_router, TASKS, split_numbers(len(TASKS), "held_out"))] == [1]
    assert misses(fixed_router, TASKS, split_numbers(len(TASKS), "dev"))[0]["task"] == 2


def test_scores_are_micro_precision_and_recall_over_pairs() -> None:
    s = scores(fixed_router, TASKS)
    assert (s["precision"], s["recall"], s["exact"]) == (0.75, 0.75, 0.5)
