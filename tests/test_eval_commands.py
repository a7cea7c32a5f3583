"""The evaluation harness (scripts/eval_commands.py): its mixing levels, its scoring, and one real run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from voicecoach.narration import stand_in_voices as speech

pytestmark = pytest.mark.engine

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "eval_commands.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("eval_commands", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_commands"] = module
    spec.loader.exec_module(module)
    return module


def _clip(harness, label: str, text: str, seconds: float = 0.5):
    tone = np.sin(2 * np.pi * 300 * np.arange(int(seconds * 16000)) / 16000) * 8000
    return harness.Clip(label, text, "test", tone.astype(np.int16), seconds)


def test_conditions_parse_and_reject_nonsense(harness) -> None:
    assert harness.parse_condition("quiet") == harness.Condition(None, None)
    assert harness.parse_condition("-6/20") == harness.Condition(-6.0, 20.0)
    assert harness.parse_condition("0/-") == harness.Condition(0.0, None)
    with pytest.raises(Exception, match="expected"):
        harness.parse_condition("loud")


def test_scoring_counts_hits_wrong_commands_distractors_and_false_commands(harness) -> None:
    stop = harness.Insertion(_clip(harness, "stop", "stop"), 1.0)
    pause = harness.Insertion(_clip(harness, "pause", "pause"), 6.0)
    dog = harness.Insertion(_clip(harness, "", "dog"), 11.0)
    missed = harness.Insertion(_clip(harness, "next", "next"), 16.0)
    found = [
        harness.Detection("stop", 1.7, "stop"),  # 200 ms after the word's end
        harness.Detection("next", 6.9, "next"),  # wrong command for "pause"
        harness.Detection("resume", 11.8, "go"),  # a distractor taken for a command
        harness.Detection("stop", 30.0, "stop"),  # nothing was said here
        harness.Detection("back", 30.5, "back", dropped_as_own=True),
    ]
    score = harness.Score()
    harness.score_insertions(score, [stop, pause, dog, missed], [True, False, False, False], found)
    assert (score.detected["safety"], score.inserted["safety"]) == (1, 1)
    assert score.inserted["safety over narration"] == 1
    assert (score.detected["other"], score.inserted["other"], score.wrong["other"]) == (0, 2, 1)
    assert (score.detected["distractor"], score.inserted["distractor"]) == (1, 1)
    assert score.false_between == 1
    assert score.own_dropped == 1
    assert score.latencies_ms == pytest.approx([200.0])


def test_echo_and_noise_sit_at_the_levels_asked_for(harness) -> None:
    rng = np.random.default_rng(3)
    babble = (rng.normal(0, 3000, 16000 * 3) * np.repeat(rng.random(30) > 0.3, 1600)).astype(np.int16)
    narration = [harness.Spoken(0.0, "x", babble, 16000)]
    echo_only, _ = harness.microphone_signal(narration, [], harness.Condition(-6.0, None), 3.0, seed=1)
    assert harness.active_rms_db(echo_only) == pytest.approx(harness.VOICE_DBFS - 6.0, abs=0.5)
    noise_only, _ = harness.microphone_signal([], [], harness.Condition(None, 20.0), 3.0, seed=1)
    level = 10 * np.log10(np.mean((noise_only / 32768.0) ** 2))
    assert level == pytest.approx(harness.VOICE_DBFS - 20.0, abs=0.5)


def test_a_spoken_stop_goes_through_the_product_chain_and_is_found(harness) -> None:
    """A real run: flite says "stop" with no echo; the clean microphone, PocketSphinx and the spotter find it."""
    from voicecoach.core.commands import load_vocabulary

    vocabulary = load_vocabulary("en")
    samples, end_s = harness._trimmed(speech.synthesize(speech.Voice("flite", "slt"), "stop"))
    inserted = harness.Insertion(harness.Clip("stop", "stop", "test", samples, end_s), 1.0)
    mic, _ = harness.microphone_signal([], [inserted], harness.Condition(None, 30.0), 5.0, seed=2)
    recognizer = harness.make_recognizer("pocketsphinx", None, vocabulary)
    found, cpu_s = harness.listen(mic, [], False, recognizer, vocabulary)
    score = harness.Score()
    harness.score_insertions(score, [inserted], [False], found)
    assert score.detected["safety"] == 1, found
    assert score.false_between == 0
    assert 0 < cpu_s < 5.0
