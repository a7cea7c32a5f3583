"""Command words in a routine's narration: `voicecoach check` warns where the narrator would say them."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecoach.cli.main import main
from voicecoach.core.events import Command
from voicecoach.core.plan import build_plan
from voicecoach.files.library import find_routine
from voicecoach.files.routine_check import Finding, Level, check_routine

# Line numbers: 1 name, 2 title, 3 description, 4 intro, 5 first intro line, 6 exercises, 7 first exercise,
# 8 position, 9 steps, 10 first step, 11 second step, 12 hold_s.
_ROUTINE = """\
name: test-check
title: Gentle stretches
description: Stop here is only shown, never spoken.
intro:
  - "{intro}"
exercises:
  - name: Knee hug
    position: lying on your back
    steps:
      - "Lie face up and draw both knees toward your chest."
      - "{step}"
    hold_s: 20
"""
_CLEAN_INTRO = "Move slowly and breathe."
_CLEAN_STEP = "Hug your knees gently."


def write_routine(tmp_path: Path, step: str = _CLEAN_STEP, intro: str = _CLEAN_INTRO) -> Path:
    path = tmp_path / "test-check.yaml"
    path.write_text(_ROUTINE.format(step=step, intro=intro), "utf-8")
    return path


def findings_for(tmp_path: Path, step: str) -> list[Finding]:
    _, findings = check_routine(write_routine(tmp_path, step=step))
    return findings


def run_check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --- what is found ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "command", "phrase", "level"),
    [
        ("Stop if your knees feel pinched.", Command.STOP, "stop", Level.WARNING),
        ("Ease off if it is too much.", Command.TOO_MUCH, "too much", Level.WARNING),
        ("Ease off if that hurts.", Command.TOO_MUCH, "that hurts", Level.WARNING),
        ("Then move on to the next leg.", Command.NEXT, "next", Level.NOTE),
        ("Roll onto your back.", Command.BACK, "back", Level.NOTE),
        ("Keep going for a while.", Command.RESUME, "keep going", Level.NOTE),
    ],
)
def test_a_command_phrase_in_a_step_is_found_with_its_line_and_field(
    tmp_path: Path, step: str, command: Command, phrase: str, level: Level
) -> None:
    [finding] = findings_for(tmp_path, step)
    assert (finding.line, finding.field, finding.command, finding.phrase, finding.level) == (
        11,
        "exercises[1].steps[2]",
        command,
        phrase,
        level,
    )


@pytest.mark.parametrize(
    ("step", "phrases"),
    [
        ("Start a stopwatch.", ["start", "stopwatch"]),
        ("Breathe nonstop.", []),
        ("The stretch stops at the hip.", ["stops"]),
        ("Stopping early is fine.", ["stopping"]),
        ("Go slowly, this is a non-stop flow.", ["go", "stop"]),
        ("STOP.", ["stop"]),
        ("Ease off when it feels like too, much.", ["too much"]),
        ("Let's start.", ["lets start"]),
        ("Stop here. Later, stop once more.", ["stop"]),
    ],
)
def test_phrases_are_matched_as_the_recognizer_hears_them(tmp_path: Path, step: str, phrases: list[str]) -> None:
    assert [finding.phrase for finding in findings_for(tmp_path, step)] == phrases


def test_a_word_built_on_a_safety_phrase_is_a_warning_the_spotter_may_hear(tmp_path: Path) -> None:
    """The recognizer matches words, the keyword spotter sounds: voicecoach's own answer to a stop said "stopped", and
    in a quiet room the canceller's residue of it fired stop again (34 false commands in five seeds of the room)."""
    findings = findings_for(tmp_path, "Ouches aside, you stopped here before; it stopped hurting.")
    assert [(f.phrase, f.command, f.level) for f in findings] == [
        ("ouches", Command.TOO_MUCH, Level.WARNING),
        ("stopped", Command.STOP, Level.WARNING),  # once per text
    ]
    assert 'says "stopped", which sounds like "stop", the STOP command' in findings[1].message
    assert findings[1].line == 11 and findings[1].field == "exercises[1].steps[2]"


def test_a_clean_file_has_no_findings(tmp_path: Path) -> None:
    assert findings_for(tmp_path, _CLEAN_STEP) == []


def test_every_text_the_narrator_says_is_checked_and_nothing_else(tmp_path: Path) -> None:
    texts = {
        "title": "Title stop",
        "description": "Description stop",
        "intro[1]": "Intro stop",
        "outro[1]": "Outro stop",
        "exercises[1].name": "First stop",
        "exercises[1].position": "Position stop",
        "exercises[1].cautions[1]": "Caution stop",
        "exercises[1].steps[1]": "Step stop",
        "exercises[1].hold_cue": "Cue stop",
        "exercises[2].name": "Second stop",
        "exercises[2].steps[1]": "Other step stop",
    }
    path = tmp_path / "every-field.yaml"
    path.write_text(
        f"""\
name: every-field
title: {texts["title"]}
description: {texts["description"]}
intro: [{texts["intro[1]"]}]
outro: [{texts["outro[1]"]}]
exercises:
  - name: {texts["exercises[1].name"]}
    position: {texts["exercises[1].position"]}
    equipment: [mat]
    cautions: [{texts["exercises[1].cautions[1]"]}]
    steps: [{texts["exercises[1].steps[1]"]}]
    hold_cue: {texts["exercises[1].hold_cue"]}
    hold_s: 10
    reps: 2
    sides: both
    rest_s: 5
  - name: {texts["exercises[2].name"]}
    position: standing
    steps: [{texts["exercises[2].steps[1]"]}]
    hold_s: 10
""",
        "utf-8",
    )
    routine, findings = check_routine(path)
    spoken = [segment.text for segment in build_plan(routine)]
    expected = {field for field, text in texts.items() if any(text in said for said in spoken)}
    assert "exercises[1].position" not in expected and "exercises[1].hold_cue" in expected
    assert {finding.field for finding in findings} == expected
    assert all(finding.level is Level.WARNING for finding in findings)


def test_a_multi_line_text_is_reported_at_its_first_line(tmp_path: Path) -> None:
    path = write_routine(tmp_path)
    path.write_text(
        path.read_text("utf-8").replace(f'"{_CLEAN_STEP}"', ">-\n        Hug your knees,\n        then stop.")
    )
    _, [finding] = check_routine(path)
    assert (finding.line, finding.command) == (11, Command.STOP)


def test_a_language_without_a_vocabulary_is_a_warning(tmp_path: Path) -> None:
    path = write_routine(tmp_path, step="Stop.")
    path.write_text(path.read_text("utf-8").replace("description:", "language: de\ndescription:"))
    _, [finding] = check_routine(path)
    assert (finding.line, finding.field, finding.level) == (3, "language", Level.WARNING)
    assert '"de" has no command vocabulary' in finding.message and "en, ko" in finding.message


# --- teaching the commands on purpose -------------------------------------------------------------


def test_a_teaches_comment_turns_the_commands_it_names_into_notes(tmp_path: Path) -> None:
    path = write_routine(tmp_path)
    intro = '"Say stop or too much at any time."  # teaches: stop, too much'
    path.write_text(path.read_text("utf-8").replace(f'"{_CLEAN_INTRO}"', intro))
    _, findings = check_routine(path)
    assert [(f.line, f.field, f.command, f.level) for f in findings] == [
        (5, "intro[1]", Command.STOP, Level.NOTE),
        (5, "intro[1]", Command.TOO_MUCH, Level.NOTE),
    ]
    assert "on purpose" in findings[0].message


def test_a_teaches_comment_covers_only_the_commands_it_names(tmp_path: Path) -> None:
    path = write_routine(tmp_path)
    path.write_text(
        path.read_text("utf-8").replace(f'"{_CLEAN_INTRO}"', '"Say stop if it is too much."  # teaches: stop')
    )
    _, findings = check_routine(path)
    assert [(f.command, f.level) for f in findings] == [(Command.STOP, Level.NOTE), (Command.TOO_MUCH, Level.WARNING)]


def test_a_teaches_comment_after_a_block_indicator_counts(tmp_path: Path) -> None:
    path = write_routine(tmp_path)
    block = ">-  # teaches: stop\n    Say stop\n    at any time."
    path.write_text(path.read_text("utf-8").replace(f'"{_CLEAN_INTRO}"', block))
    _, [finding] = check_routine(path)
    assert (finding.line, finding.command, finding.level) == (5, Command.STOP, Level.NOTE)


def test_a_teaches_comment_on_a_text_without_commands_is_noted(tmp_path: Path) -> None:
    path = write_routine(tmp_path)
    path.write_text(path.read_text("utf-8").replace(f'"{_CLEAN_INTRO}"', f'"{_CLEAN_INTRO}"  # teaches: stop'))
    _, [finding] = check_routine(path)
    assert (finding.line, finding.command, finding.level) == (5, None, Level.NOTE)
    assert '"# teaches:" names no command this text says' in finding.message


def test_a_hash_inside_the_quotes_is_text_not_a_comment(tmp_path: Path) -> None:
    path = write_routine(tmp_path, step="Stop #teaches: stop")
    _, [finding] = check_routine(path)
    assert (finding.command, finding.level) == (Command.STOP, Level.WARNING)


# --- the command line -----------------------------------------------------------------------------


def test_check_prints_a_safety_warning_with_file_line_field_and_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_routine(tmp_path, step="Stop if your knees feel pinched.")
    code, out, err = run_check([str(path)], capsys)
    assert code == 0
    assert f'{path}:11: exercises[1].steps[2]: warning: says "stop", the STOP command:' in err
    assert "reword it" in err and "Traceback" not in err
    assert f"{path}: ok (1 exercise, about 1 min; 1 warning)" in out


def test_check_notes_a_non_safety_command_as_less_severe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_routine(tmp_path, step="Then move on to the next leg.")
    code, out, err = run_check(["--strict", str(path)], capsys)
    assert code == 0
    assert f'{path}:11: exercises[1].steps[2]: note: says "next", the NEXT command: less severe' in err
    assert "own-voice filter" in err and "1 note)" in out


def test_strict_exits_1_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_routine(tmp_path, step="Ease off if it is too much.")
    code, _, err = run_check(["--strict", str(path)], capsys)
    assert code == 1
    assert '"too much", the TOO_MUCH command' in err


def test_a_clean_file_prints_only_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_routine(tmp_path)
    code, out, err = run_check(["--strict", str(path)], capsys)
    assert (code, err) == (0, "")
    assert out == f"{path}: ok (1 exercise, about 1 min)\n"


def test_problems_still_exit_2_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_routine(tmp_path, step="Stop.")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntitle: [\n", "utf-8")
    code, out, err = run_check(["--strict", str(good), str(bad), "no-such-routine"], capsys)
    assert code == 2
    assert f"{bad}:" in err and "not valid YAML" in err
    assert 'unknown routine "no-such-routine"' in err
    assert f"{good}: ok" in out and "Traceback" not in err


def test_the_built_in_routine_has_no_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    _, findings = check_routine(find_routine("lower-back"))
    assert [f for f in findings if f.level is Level.WARNING] == []
    assert {f.command for f in findings if f.field == "intro[5]"} == {Command.STOP, Command.TOO_MUCH}
    code, out, err = run_check(["--strict", "lower-back"], capsys)
    assert code == 0 and "lower-back.yaml: ok (10 exercises" in out
    assert "warning" not in err
