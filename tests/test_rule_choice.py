"""Choosing the decision rule on validation: thresholds and frames in a row, per command (no model needed)."""

from __future__ import annotations

import numpy as np

from voicecoach.training import evaluate


def test_run_peak_holds_each_column_for_its_own_count() -> None:
    scores = np.array([[0.9, 0.9], [0.2, 0.8], [0.95, 0.7], [0.95, 0.1]])
    np.testing.assert_allclose(evaluate._run_peak(scores, 1), [0.95, 0.9])
    np.testing.assert_allclose(evaluate._run_peak(scores, 2), [0.95, 0.8])
    np.testing.assert_allclose(evaluate._run_peak(scores, np.array([1, 3])), [0.95, 0.7])
    np.testing.assert_allclose(evaluate._run_peak(scores, np.array([3, 1])), [0.2, 0.9])


def test_per_command_rule_takes_the_shorter_rule_unless_a_longer_one_is_clearly_better() -> None:
    recalls = {1: {"stop": 0.80, "pause": 0.60}, 2: {"stop": 0.801, "pause": 0.70}, 3: {"stop": 0.79, "pause": 0.75}}
    assert evaluate.per_command_rule(recalls, ("stop", "pause")) == {"stop": 1, "pause": 3}
    assert evaluate.per_command_rule(recalls, ("stop", "pause"), tolerance=0.2) == {"stop": 1, "pause": 1}


def test_figures_recall_per_command_is_the_mean_of_its_validation_rows() -> None:
    figs = {"recall": [{"split": "val", "command": "stop", "recall": 0.5}, {"split": "val", "command": "stop",
                        "recall": 1.0}, {"split": "test", "command": "stop", "recall": 0.0}]}  # fmt: skip
    assert evaluate.command_recall(figs) == {"stop": 0.75}
    assert evaluate.command_recall(figs, "test") == {"stop": 0.0}


def _clip(stop: float, resume: float) -> np.ndarray:
    """A three-frame clip whose middle frame scores stop and resume so (labels stop, resume, none)."""
    rows = np.tile([0.0, 0.0, 1.0], (3, 1))
    rows[1] = [stop, resume, max(0.0, 1.0 - stop - resume)]
    return rows


def test_other_commands_heard_as_stop_may_use_their_own_budget() -> None:
    from types import SimpleNamespace

    model = SimpleNamespace(labels=("stop", "resume", "none"), commands=("stop", "resume"))
    meta, probabilities = [], {}
    for n in range(600):  # non-commands: one in 600 reaches 0.9 for stop
        meta.append({"split": "val", "tag": "human_word", "label": "none"})
        probabilities[len(meta) - 1] = _clip(0.9 if n == 0 else 0.1, 0.0)
    for n in range(40):  # people's "go": two in 40 (5%) score 0.95 for stop, two more 0.8
        meta.append({"split": "val", "tag": "human_cmd", "label": "resume"})
        probabilities[len(meta) - 1] = _clip({0: 0.95, 1: 0.95, 2: 0.8, 3: 0.8}.get(n, 0.02), 0.97)
    meta.append({"split": "val", "tag": "narr_other", "label": "none"})  # the narration: stop up to 0.6
    probabilities[len(meta) - 1] = _clip(0.6, 0.0)
    features = SimpleNamespace(meta=meta)
    counted = evaluate.choose_thresholds(model, probabilities, features, 1)  # type: ignore[arg-type]
    assert counted["stop"] == 0.96  # above every "go": 2 of 640 negatives would be over the 0.2% budget
    apart = evaluate.choose_thresholds(model, probabilities, features, 1, safety_confusion=0.05)  # type: ignore[arg-type]
    assert apart["stop"] == 0.85  # 2 of 40 "go" (5%) may fire stop, 4 (10%) may not; the word at 0.9 is 1 in 600
    loose = evaluate.choose_thresholds(model, probabilities, features, 1, safety_confusion=0.10)  # type: ignore[arg-type]
    assert loose["stop"] == 0.65  # the narration (0.6) still bounds it from below
    assert apart["resume"] == counted["resume"]  # only the safety commands get the wider budget


def test_other_commands_never_get_a_threshold_below_one_half_safety_commands_may() -> None:
    from types import SimpleNamespace

    model = SimpleNamespace(labels=("stop", "resume", "none"), commands=("stop", "resume"))
    meta = [{"split": "val", "tag": "human_word", "label": "none"} for _ in range(100)]
    probabilities = {i: _clip(0.05, 0.05) for i in range(100)}  # nothing near either command
    chosen = evaluate.choose_thresholds(model, probabilities, SimpleNamespace(meta=meta), 1)  # type: ignore[arg-type]
    assert chosen == {"stop": float(evaluate.THRESHOLD_GRID[0]), "resume": 0.5}


def test_stop_and_too_much_never_get_a_rule_longer_than_two_frames() -> None:
    recalls = {1: {"stop": 0.70, "pause": 0.60}, 2: {"stop": 0.75, "pause": 0.65}, 3: {"stop": 0.90, "pause": 0.80}}
    assert evaluate.per_command_rule(recalls, ("stop", "pause")) == {"stop": 2, "pause": 3}


def test_other_peoples_talk_heard_as_stop_uses_the_wider_budget_but_not_for_other_commands() -> None:
    from types import SimpleNamespace

    model = SimpleNamespace(labels=("stop", "resume", "none"), commands=("stop", "resume"))
    meta, probabilities = [], {}
    for _ in range(600):  # real people's words: nowhere near
        meta.append({"split": "val", "tag": "human_word", "label": "none"})
        probabilities[len(meta) - 1] = _clip(0.1, 0.1)
    for n in range(40):  # synthesized talk: 2 of 40 score 0.9 for stop, and 2 others 0.9 for resume
        meta.append({"split": "val", "tag": "talk", "label": "none"})
        probabilities[len(meta) - 1] = _clip(0.9 if n < 2 else 0.1, 0.9 if n in (2, 3) else 0.0)
    features = SimpleNamespace(meta=meta)
    counted = evaluate.choose_thresholds(model, probabilities, features, 1)  # type: ignore[arg-type]
    assert counted["stop"] == 0.91 and counted["resume"] == 0.91  # just above: 2 of 640 is over the 0.2% budget
    apart = evaluate.choose_thresholds(model, probabilities, features, 1, safety_confusion=0.05)  # type: ignore[arg-type]
    assert apart["stop"] == float(evaluate.THRESHOLD_GRID[0])  # 5% of the talk may halt the narrator
    assert apart["resume"] == 0.91  # but never start anything
