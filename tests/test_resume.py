"""Resume after the process is killed mid-hold: a real subprocess, SIGKILL, then a new run picks up."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import records, run_cli

from voicecoach.core.plan import Kind
from voicecoach.core.session import Session
from voicecoach.files.library import find_routine
from voicecoach.files.routine_file import load_routine_file
from voicecoach.store.resume import Position, PositionStore

pytestmark = pytest.mark.engine


def start_dry_run(data: Path) -> subprocess.Popen[str]:
    """A real-time dry run, 40 times faster than life, recording history."""
    env = {**os.environ, "VOICECOACH_DATA": str(data)}
    return subprocess.Popen(
        [sys.executable, "-m", "voicecoach", "run", "lower-back", "--simulate", "--record", "--speed", "40", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def read_until_mid_hold(process: subprocess.Popen[str], exercise: str, timeout_s: float = 60) -> list[dict]:
    """Read the transcript until a hold of `exercise` has started and is under way."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    in_exercise = False
    while time.monotonic() < deadline:
        record = json.loads(process.stdout.readline())
        seen.append(record)
        in_exercise = in_exercise or (record["kind"] == "exercise" and record.get("exercise") == exercise)
        if in_exercise and record["kind"] == "say" and str(record["text"]).startswith("Halfway"):
            return seen
    raise AssertionError(f"no hold of {exercise} under way in time: {seen[-5:]}")


def test_killed_mid_hold_resumes_in_the_same_exercise_without_doubling_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    process = start_dry_run(tmp_path)
    try:
        read_until_mid_hold(process, "Prone press-up")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    position = PositionStore(tmp_path).load("lower-back")
    assert position is not None and position.session_id is not None

    routine = load_routine_file(find_routine("lower-back"))
    segment = Session(routine).plan[position.segment]
    assert segment.exercise is not None and segment.exercise >= 2, "killed in or after the prone press-up"
    assert segment.kind is Kind.HOLD, f"killed mid-hold, not in {segment}"
    name = routine.exercises[segment.exercise].name

    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path))
    code, out, _ = run_cli(["run", "lower-back", "--simulate", "--record", "--json", "--commands", "8:resume"], capsys)
    said = [r["text"] for r in records(out) if r["kind"] == "say"]
    assert code == 0
    assert said[0] == f"Welcome back. Last time ended during {name}. Say resume to pick up there, or start over."
    assert said[1] == segment.text or segment.kind is Kind.RELAX, "it picked up at the segment it was in"
    assert "Exercise 1 of 10" not in " ".join(said), "not from the start"
    assert "You finished 10 of 10 exercises" in said[-1]
    assert not PositionStore(tmp_path).path.exists(), "a finished routine leaves no position behind"

    with sqlite3.connect(tmp_path / "history.sqlite3") as db:
        sessions = db.execute("SELECT id, completed FROM sessions").fetchall()
        done = dict(db.execute("SELECT name, holds_done FROM exercises"))
    assert sessions == [(position.session_id, 1)], "one session, continued, not two"
    assert done["Two knee twist"] == 4 and done["Standing torso twist"] == 4, "holds done before the crash kept"
    assert done["Legs up the wall"] == 2


def test_start_over_instead_of_resuming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path))
    run_cli(["run", "lower-back", "--simulate", "--record", "--commands", "200:stop"], capsys)
    assert PositionStore(tmp_path).path.exists(), "an unfinished routine leaves its position"
    code, out, _ = run_cli(["run", "lower-back", "--simulate", "--record", "--json", "--commands", "8:start over"],
                           capsys)
    said = [r["text"] for r in records(out) if r["kind"] == "say"]
    assert said[0].startswith("Welcome back.") and said[1] == "Lower back stretches."
    with sqlite3.connect(tmp_path / "history.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone() == (2,)


def test_an_old_or_broken_position_is_not_offered(tmp_path: Path) -> None:
    store = PositionStore(tmp_path)
    store.save(Position("lower-back", 12, 1, saved_at=time.time() - 13 * 3600))
    assert store.load("lower-back") is None
    store.save(Position("lower-back", 12, 1, saved_at=time.time()))
    assert store.load("other-routine") is None and store.load("lower-back") is not None
    store.path.write_text("{not json")
    assert store.load("lower-back") is None
