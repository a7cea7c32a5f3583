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
