"""The command line, as a user runs it: list, show, check, run --simulate."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from voicecoach.cli.main import main
from voicecoach.core.plan import estimate_speech_s

pytestmark = pytest.mark.engine

_BAD_ROUTINE = """\
name: bad
title: Bad
description: A broken routine.
exercises:
  - name: Twist
    position: lying face up
    steps: ["Lie down."]
    hold_s: 20
    sidez: both
  - name: Bridge
    position: lying face up
    steps: ["Lift."]
    hold_s: -5
"""


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    """Run main() in-process with a non-interactive standard input."""
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(args)
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def records(out: str) -> list[dict[str, object]]:
    """Parse --json output."""
    return [json.loads(line) for line in out.splitlines()]


def test_list_shows_the_built_in_routine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    assert out.startswith("lower-back") and "built-in" in out and "10 exercises" in out


def test_show_lists_ten_exercises_with_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["show", "lower-back"], capsys)
    assert code == 0
    rows = [line for line in out.splitlines() if line[:2].strip().isdigit()]
    assert len(rows) == 10
    assert "Two knee twist" in rows[0] and "Legs up the wall" in rows[9]
    assert "Total: 10 exercises, about" in out


def test_check_reports_every_problem_with_its_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(_BAD_ROUTINE)
    code, out, err = run_cli(["check", str(bad)], capsys)
    assert code == 2
    assert f"{bad}:9: exercises[1].sidez: unknown field" in err
    assert "did you mean sides?" in err
    assert f"{bad}:13: exercises[2].hold_s: -5 is out of range" in err
    assert "Traceback" not in err


def test_check_accepts_the_built_in_routine(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parents[1] / "voicecoach" / "routines" / "lower-back.yaml"
    code, out, _ = run_cli(["check", str(path)], capsys)
    assert code == 0 and ": ok (10 exercises" in out


def test_too_much_silences_first_then_only_the_calm_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["run", "lower-back", "--simulate", "--commands", "30:too much", "--json"], capsys)
    assert code == 0
    recs = records(out)
    heard = next(i for i, r in enumerate(recs) if r["kind"] == "heard")
    assert recs[heard]["t"] == 30.0 and recs[heard]["command"] == "too_much"
    after = recs[heard + 1 :]
    assert after[0]["kind"] == "stop_speech"
    spoken = [r for r in after if r["kind"] == "say"]
    assert len(spoken) == 1 and "easing off" in str(spoken[0]["text"])
    assert recs[-1]["kind"] == "end_of_script"


def test_without_commands_the_whole_routine_runs_to_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["run", "lower-back", "--simulate", "--json"], capsys)
    assert code == 0
    recs = records(out)
    assert recs[-1]["kind"] == "finish"
    assert "You finished 10 of 10 exercises" in str(recs[-1]["text"])
    assert sum(1 for r in recs if r["kind"] == "exercise") == 10
    assert all({"t", "kind", "text"} <= r.keys() for r in recs)
    times = [float(r["t"]) for r in recs]  # type: ignore[arg-type]
    assert times == sorted(times)


def test_spoken_words_use_the_recognizer_phrase_matching(capsys: pytest.CaptureFixture[str]) -> None:
    script = "20:ouch\n25:what was that\n40:continue\n"
    code, out, _ = run_cli(["run", "lower-back", "--simulate", "--json"], capsys, stdin=script)
    assert code == 0
    heard = [(r["text"], r.get("command")) for r in records(out) if r["kind"] == "heard"]
    assert heard == [("ouch", "too_much"), ("what was that", None), ("continue", "resume")]


def test_pause_resume_in_a_hold_keeps_the_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["run", "lower-back", "--simulate", "--json", "--commands", "85:pause, 100:resume"], capsys)
    recs = records(out)
    says = [r for r in recs if r["kind"] == "say"]
    hold = next(r for r in says if str(r["text"]).startswith("Left side. Round 1"))
    cue_end = float(hold["t"]) + estimate_speech_s(str(hold["text"]))  # type: ignore[arg-type]
    assert cue_end < 85.0, "the hold must be running when 'pause' is heard"
    left_at_pause = 20.0 - (85.0 - cue_end)
    resumed = [r for r in says if str(r["text"]).startswith("Resuming.")]
    assert code == 0 and len(resumed) == 1
    five = next(float(r["t"]) for r in says if r["text"] == "Five." and float(r["t"]) > 100.0)  # type: ignore[arg-type]
    assert five == pytest.approx(100.0 + left_at_pause - 5.0, abs=0.05)


def test_a_malformed_command_list_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["run", "lower-back", "--simulate", "--commands", "30 too much"], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "voicecoach: --commands:1: '30 too much' is not a timed command (expected SECONDS:WORDS, e.g. 12:pause)"
    ]


def test_an_unknown_routine_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["show", "upper-back"], capsys)
    assert code == 2 and "lower-back" in err and len(err.strip().splitlines()) == 1


def test_the_console_entry_point_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voicecoach", "run", "lower-back", "--simulate", "--commands", "10:stop, 12:end"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "You ended the workout early." not in result.stdout, "'end' alone is not 'end workout'"
    assert "Okay. Rest as long as you like." in result.stdout


_EVERY_STATE = ("10:stop, 14:resume, 30:pause, 33:resume, 40:how long, 50:next, 60:back, 70:repeat, 80:too much, "
                "84:next, 100:skip, 130:pause, 131:how long, 132:resume, 200:stop, 202:how long, 203:next, "
                "300:too much, 302:resume, 400:stop, 402:resume")


def test_nothing_voicecoach_says_itself_holds_a_safety_word() -> None:
    """The microphone hears the narrator, and stop and too much are never set aside as its own voice. The answer to
    a stop used to be "Okay, I have stopped...": in a room without noise the canceller's residue of "stopped" fired
    stop again and cut the answer, and in the simulated room (0 dB echo, no noise, 15 seeds of people's stops and
    too much, scripts/eval_commands.py --conditions 0/- --words stop,too_much) that made 34 false commands in five
    seeds; reworded, 0 in fifteen. Every line of a whole routine with every command in every state is checked: no
    safety phrase, and no word built on one of its words (stopped, hurting), except the routine's own line that
    teaches them (`# teaches:` in the routine file, which `voicecoach check` reports)."""
    import yaml

    from voicecoach.core.commands import load_vocabulary
    from voicecoach.core.events import Command
    from voicecoach.files.routine_check import spoken_texts

    result = subprocess.run(
        [sys.executable, "-m", "voicecoach", "run", "lower-back", "--simulate", "--commands", _EVERY_STATE],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = {m.group(1) for m in re.finditer(r'\] says +"(.*)"$', result.stdout, flags=re.MULTILINE)}
    assert len(said) > 60 and any(line.startswith("Routine complete.") for line in said)  # the whole routine
    routine = (Path(__file__).parents[1] / "voicecoach" / "routines" / "lower-back.yaml").read_text(encoding="utf-8")
    taught = {t.text for t in spoken_texts(yaml.compose(routine, Loader=yaml.SafeLoader), routine.splitlines())
              if t.teaches is not None}  # fmt: skip
    assert taught, "the routine teaches stop and too much in one line"
    vocabulary = load_vocabulary("en")
    safety = [p for c in (Command.STOP, Command.TOO_MUCH) for p in vocabulary.phrases[c]]
    words = ("stop", "ouch", "hurt")  # the safety phrases' own words ("now", "far", "much" are everyday words)
    for line in said - taught:
        lowered = line.lower()
        assert not [p for p in safety if re.search(rf"\b{p}\b", lowered)], line
        assert not [w for w in words if re.search(rf"\b{w}\w*", lowered)], line
