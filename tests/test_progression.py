"""Hold progression over simulated sessions: step up after smooth sessions, ease off after a "too much"."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_cli import records, run_cli

from voicecoach.core.progression import (
    Cause,
    HoldChange,
    PastSession,
    ProgressionSettings,
    hold_range,
    plan_holds,
    spoken_change,
)
from voicecoach.core.routine import Exercise, Routine
from voicecoach.core.session import ExerciseRecord
from voicecoach.store.history import History

T0 = datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
BRIDGE = Exercise("Bridge", "lying face up", ("Lift your hips.",), hold_s=15, reps=2, max_hold_s=30)
TWIST = Exercise("Twist", "lying face up", ("Knees to one side.",), hold_s=10)
OUTCOMES = ("ok", "much", "skip", "early", "partial", "crash")
"""ok: smooth; much: a "too much"; skip: skipped; early: session ended early; partial: a hold not done;
crash: the session died and only its "too much" event survived."""
COMMAND_WORDS = re.compile(
    r"\b(stop|next|back|go|wait|pause|again|skip|repeat|continue|start|begin|too much|hurts?)\b", re.IGNORECASE
)


def _routine(*exercises: Exercise) -> Routine:
    return Routine("lower-back", "Lower back", "For tests.", exercises or (BRIDGE,))


def _row(number: int, hold_s: float, outcome: str, name: str = "Bridge") -> PastSession:
    """Session `number` with the record of one exercise planned at hold_s (2 holds)."""
    crash = outcome == "crash"
    record = ExerciseRecord(
        name,
        hold_s=0.0 if crash else hold_s,
        holds_total=0 if crash else 2,
        holds_done={"ok": 2, "much": 1, "skip": 0, "early": 1, "partial": 1, "crash": 0}[outcome],
        longest_hold_s=0.0 if crash else hold_s,
        skipped=outcome == "skip",
        too_much=int(outcome in ("much", "crash")),
    )
    return PastSession(T0 + timedelta(days=number), outcome not in ("early", "crash"), (record,))


def simulate(
    outcomes: list[str], exercise: Exercise = BRIDGE, settings: ProgressionSettings | None = None
) -> tuple[list[float], list[HoldChange]]:
    """Plan, play (with the given outcome) and record one session per outcome; the planned holds and all changes."""
    rows: list[PastSession] = []
    holds: list[float] = []
    changes: list[HoldChange] = []
    for number, outcome in enumerate(outcomes):
        planned, changed = plan_holds(_routine(exercise), rows, settings)
        holds.append(planned.exercises[0].hold_s)
        changes += changed
        rows.append(_row(number, holds[-1], outcome, exercise.name))
    return holds, changes


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ("ok " * 10, [15, 15, 20, 20, 25, 25, 30, 30, 30, 30]),
        ("ok ok much ok ok ok", [15, 15, 20, 15, 15, 20]),
        ("much much much much", [15, 11, 8, 8]),
        ("ok much ok ok ok", [15, 15, 11, 11, 16]),
        ("ok skip ok ok ok", [15, 15, 15, 15, 20]),
        ("ok early ok ok ok", [15, 15, 15, 15, 20]),
        ("ok partial ok ok ok", [15, 15, 15, 15, 20]),
        ("ok ok crash ok", [15, 15, 20, 11]),
        ("skip skip skip", [15, 15, 15]),
    ],
    ids=["smooth-to-cap", "too-much-resets", "down-to-floor", "regrow", "skip", "early", "partial", "crash", "skips"],
)
def test_holds_over_simulated_sessions(outcomes: str, expected: list[float]) -> None:
    holds, _ = simulate(outcomes.split())
    assert holds == expected


@pytest.mark.parametrize(
    ("exercise", "settings", "outcomes", "expected"),
    [
        (replace(BRIDGE, max_hold_s=None), None, "ok ok ok ok", [15, 15, 15, 15]),
        (BRIDGE, ProgressionSettings(step_s=10, sessions_per_step=1), "ok ok ok", [15, 25, 30]),
        (BRIDGE, ProgressionSettings(sessions_per_step=3), "ok ok ok ok", [15, 15, 15, 20]),
        (BRIDGE, ProgressionSettings(back_off_fraction=0.5), "much ok", [15, 8]),
        (BRIDGE, ProgressionSettings(back_off_fraction=0.01), "much much", [15, 14]),
        (replace(BRIDGE, hold_s=5, max_hold_s=8), None, "much ok ok ok", [5, 5, 5, 8]),
        (BRIDGE, ProgressionSettings(enabled=False), "ok ok ok much ok", [15] * 5),
    ],
    ids=["no-cap", "big-steps-cap", "three-per-step", "half-off", "at-least-1s-off", "short-hold-floor", "disabled"],
)
def test_settings_change_the_steps(
    exercise: Exercise, settings: ProgressionSettings | None, outcomes: str, expected: list[float]
) -> None:
    holds, _ = simulate(outcomes.split(), exercise, settings)
    assert holds == expected


def test_disabled_returns_the_routine_unchanged() -> None:
    routine = _routine(BRIDGE, TWIST)
    rows = [_row(n, 15, "ok") for n in range(4)] + [_row(4, 15, "much")]
    assert plan_holds(routine, rows, ProgressionSettings(enabled=False)) == (routine, [])


def test_spoken_changes() -> None:
    _, changes = simulate(["ok", "ok", "much", "much"])
    assert [(c.cause, c.from_s, c.to_s, c.text) for c in changes] == [
        (
            Cause.STEP_UP,
            15,
            20,
            "Bridge: holds are now 20 seconds, up from 15, because the last two sessions went smoothly.",
        ),
        (
            Cause.EASE_OFF,
            20,
            15,
            "Bridge: holds are now 15 seconds, down from 20, because it was too strong last time.",
        ),
    ]
    _, changes = simulate(["ok", "ok"], settings=ProgressionSettings(sessions_per_step=1))
    assert changes[0].text == "Bridge: holds are now 20 seconds, up from 15, because the last session went smoothly."


def test_an_edited_routine_file_moves_the_hold_into_its_new_range() -> None:
    rows = [_row(0, 40, "ok"), _row(1, 40, "ok")]
    planned, [change] = plan_holds(_routine(BRIDGE), rows)
    assert planned.exercises[0].hold_s == 30
    assert change == HoldChange(
        "Bridge",
        40,
        30,
        Cause.LIMITS,
        "Bridge: holds are now 30 seconds, down from 40, to fit the routine's new limits.",
    )


def test_each_exercise_progresses_on_its_own_from_rows_in_any_order() -> None:
    rows = [_row(n, 15, "ok") for n in range(2)] + [_row(n, 10, "much", "Twist") for n in range(2)]
    random.Random(4).shuffle(rows)
    planned, changes = plan_holds(_routine(BRIDGE, TWIST), rows)
    assert [(e.name, e.hold_s, e.max_hold_s) for e in planned.exercises] == [("Bridge", 20, 30), ("Twist", 8, None)]
    assert [(c.exercise, c.cause) for c in changes] == [("Bridge", Cause.STEP_UP), ("Twist", Cause.EASE_OFF)]
    assert planned.exercises[0] == replace(BRIDGE, hold_s=20)


def test_the_hold_carries_over_when_nothing_changes() -> None:
    rows = [_row(0, 15, "ok"), _row(1, 15, "ok"), _row(2, 20, "skip")]
    planned, changes = plan_holds(_routine(BRIDGE), rows)
    assert (planned.exercises[0].hold_s, changes) == (20, [])


@pytest.mark.parametrize(
    "arguments",
    [{"step_s": 0.5}, {"sessions_per_step": 0}, {"back_off_fraction": 0.0}, {"back_off_fraction": 1.5}],
)
def test_settings_are_checked(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="expected"):
        ProgressionSettings(**arguments)  # type: ignore[arg-type]


def test_progression_from_a_stored_history(tmp_path: Path) -> None:
    routine = _routine(BRIDGE, TWIST)
    with History.open(tmp_path / "history.sqlite3") as history:
        for day in range(2):
            session_id = history.start_session(routine.name, T0 + timedelta(days=day))
            results = [ExerciseRecord("Bridge", 15, 2, 2, 15), ExerciseRecord("Twist", 10, 1, 1, 10)]
            history.finish_session(session_id, T0 + timedelta(days=day, minutes=10), True, "done", results)
        history.record_event(session_id, 50.0, "too_much", "Twist", 4.0)
        planned, changes = plan_holds(routine, history.past_sessions(routine))
    assert [e.hold_s for e in planned.exercises] == [20, 8]
    assert [(c.exercise, c.cause) for c in changes] == [("Bridge", Cause.STEP_UP), ("Twist", Cause.EASE_OFF)]


# --- properties ---------------------------------------------------------------------------------

_EXERCISES = st.builds(
    lambda hold, extra: replace(BRIDGE, hold_s=hold, max_hold_s=None if extra is None else hold + extra),
    st.integers(min_value=1, max_value=120).map(float) | st.floats(min_value=1.0, max_value=120.0),
    st.none() | st.floats(min_value=0.0, max_value=300.0),
)
_SETTINGS = st.builds(
    ProgressionSettings,
    enabled=st.booleans(),
    step_s=st.floats(min_value=1.0, max_value=30.0),
    sessions_per_step=st.integers(min_value=1, max_value=4),
    back_off_fraction=st.floats(min_value=0.01, max_value=1.0),
)


@given(_EXERCISES, _SETTINGS, st.lists(st.sampled_from(OUTCOMES), max_size=25))
def test_hold_always_stays_within_floor_and_cap(
    exercise: Exercise, settings: ProgressionSettings, outcomes: list[str]
) -> None:
    floor, cap = hold_range(exercise)
    assert min(exercise.hold_s, 5.0) <= floor <= exercise.hold_s <= cap
    assert floor >= min(exercise.hold_s, max(exercise.hold_s / 2, 5.0))
    holds, changes = simulate(outcomes, exercise, settings)
    assert all(floor <= hold <= cap for hold in holds)
    for change in changes:
        assert change.from_s != change.to_s
        assert not COMMAND_WORDS.search(change.text), change.text


@given(
    st.sampled_from(list(Cause)),
    st.floats(min_value=1.0, max_value=600.0),
    st.floats(min_value=1.0, max_value=600.0),
    st.integers(min_value=1, max_value=20),
)
def test_spoken_reasons_never_contain_a_command_word(cause: Cause, from_s: float, to_s: float, count: int) -> None:
    assert not COMMAND_WORDS.search(spoken_change("Bridge", from_s, to_s, cause, count))


# --- the config file's [progression], through recorded dry runs of the command line -------------------------------

_SHORT_ROUTINE = """\
name: short-bridge
title: Short bridge
description: One exercise, for progression through the command line.
exercises:
  - name: Bridge
    position: lying face up
    steps: ["Lift your hips."]
    hold_s: 20
    max_hold_s: 45
"""


def _dry_run(tmp_path: Path, config: str, *options: str) -> list[str]:
    """The command line of a recorded dry run of a one-exercise routine, with this config file."""
    routine = tmp_path / "short-bridge.yaml"
    routine.write_text(_SHORT_ROUTINE, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    return ["--config", str(path), "run", str(routine), "--simulate", "--record", *options]


def _bridge_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str], run: list[str]) -> list[float | None]:
    """The hold of each of three such dry runs, as planned."""
    holds: list[float | None] = []
    for _ in range(3):
        code, _, err = run_cli(run, capsys)
        assert code == 0, err
        with History.open(tmp_path / "data" / "history.sqlite3") as history:
            holds.append(history.exercise_history("short-bridge", "Bridge", limit=1)[0].hold_s)
    return holds


@pytest.mark.parametrize(
    ("config", "options", "expected"),
    [
        ("", (), [20, 20, 25]),
        ("[progression]\nstep_s = 5\nsessions_per_step = 1\n", (), [20, 25, 30]),
        ("[progression]\nstep_s = 3\nsessions_per_step = 1\n", (), [20, 23, 26]),
        ("[progression]\nstep_s = 5\nsessions_per_step = 1\n", ("--no-progression",), [20, 20, 20]),
        ("[progression]\nenabled = false\nstep_s = 5\nsessions_per_step = 1\n", (), [20, 20, 20]),
    ],
    ids=["defaults", "every-session-by-5", "every-session-by-3", "no-progression-option", "disabled-in-file"],
)
def test_the_config_files_progression_reaches_the_session(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config: str,
    options: tuple[str, ...],
    expected: list[float],
) -> None:
    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path / "data"))
    assert _bridge_holds(tmp_path, capsys, _dry_run(tmp_path, config, *options)) == expected


def test_a_step_from_the_config_file_is_said_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path / "data"))
    run = _dry_run(tmp_path, "[progression]\nstep_s = 5\nsessions_per_step = 1\n", "--json")
    run_cli(run, capsys)
    _, out, _ = run_cli(run, capsys)
    said = [str(r["text"]) for r in records(out) if r["kind"] == "say"]
    assert "Bridge: holds are now 25 seconds, up from 20, because the last session went smoothly." in said
    assert "Hold for 25 seconds." in " ".join(said)


def test_bad_progression_values_stop_a_run_with_file_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path / "data"))
    path = tmp_path / "config.toml"
    path.write_text("[progression]\nstep_s = 0.5\nsessions_per_step = 1.5\nback_off_fraction = 2\n", encoding="utf-8")
    code, out, err = run_cli(["--config", str(path), "run", "lower-back", "--simulate", "--record"], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"{path}:2: progression.step_s: 0.5 is out of range (expected seconds added to a hold per step up, at least 1)",
        f"{path}:3: progression.sessions_per_step: the number 1.5 is not a whole number "
        "(expected a whole number of smooth sessions, at least 1)",
        f"{path}:4: progression.back_off_fraction: 2 is out of range (expected a fraction above 0, up to 1)",
    ]
    assert not (tmp_path / "data").exists()
