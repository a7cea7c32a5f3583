"""The history file: schema versions, idempotent and atomic writes, reads, and the `voicecoach history` table."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.sessionkit import small_routine

from voicecoach.core.session import Session
from voicecoach.store.history import (
    SCHEMA_VERSION,
    ExerciseRecord,
    History,
    HistoryError,
    HoldTrend,
    SessionRow,
    TooMuchMoment,
    data_dir,
    default_path,
    exercise_results,
)
from voicecoach.store.history_table import format_sessions, format_too_much, format_trends

T0 = datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
TWIST = ExerciseRecord("Twist", hold_s=10, holds_total=2, holds_done=2, longest_hold_s=10)
BRIDGE = ExerciseRecord("Bridge", hold_s=20, holds_total=2, holds_done=1, longest_hold_s=20, too_much=1)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


def _count(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def _one_session(history: History, at: datetime = T0, routine: str = "small") -> int:
    session_id = history.start_session(routine, at)
    history.record_event(session_id, 65.2, "too_much", "Bridge", 4.5)
    history.record_event(session_id, 80.0, "stop", "Bridge", 12.0)
    history.finish_session(session_id, at + timedelta(minutes=12), True, "Routine complete.", [TWIST, BRIDGE])
    return session_id


# --- where the file lives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"VOICECOACH_DATA": "/srv/vc", "XDG_DATA_HOME": "/x"}, Path("/srv/vc")),
        ({"XDG_DATA_HOME": "/x"}, Path("/x/voicecoach")),
        ({"XDG_DATA_HOME": "relative/ignored"}, Path.home() / ".local/share/voicecoach"),
        ({"VOICECOACH_DATA": ""}, Path.home() / ".local/share/voicecoach"),
        ({}, Path.home() / ".local/share/voicecoach"),
    ],
)
def test_data_dir_follows_the_environment(environ: dict[str, str], expected: Path) -> None:
    assert data_dir(environ) == expected
    assert default_path(environ) == expected / "history.sqlite3"


# --- schema -------------------------------------------------------------------------------------


def test_new_file_gets_the_current_schema_version_in_wal_mode(path: Path) -> None:
    with History.open(path) as history:
        assert history.schema_version == SCHEMA_VERSION
        _one_session(history)
        assert _count(path, "PRAGMA user_version") == SCHEMA_VERSION
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


def test_empty_version_0_file_is_upgraded(path: Path) -> None:
    path.parent.mkdir(parents=True)
    sqlite3.connect(path).close()
    with History.open(path) as history:
        assert history.schema_version == SCHEMA_VERSION
        assert history.recent_sessions() == []


def test_file_from_a_newer_version_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(
        HistoryError, match=r"newer voicecoach \(history schema version 2; this version reads up to 1\)"
    ):
        History.open(path)
    assert _count(path, "PRAGMA user_version") == SCHEMA_VERSION + 1
    assert _count(path, "SELECT count(*) FROM sqlite_schema") == 0


def test_a_file_that_is_not_a_database_is_refused_with_one_line(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("hello, not sqlite\n" * 100)
    with pytest.raises(HistoryError, match="is not a voicecoach history file") as raised:
        History.open(path)
    assert "\n" not in str(raised.value)


def test_another_applications_database_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 1234")
    db.close()
    with pytest.raises(HistoryError, match="not a voicecoach history file"):
        History.open(path)


# --- writes -------------------------------------------------------------------------------------


def test_reopening_keeps_the_data(path: Path) -> None:
    with History.open(path) as history:
        session_id = _one_session(history)
    with History.open(path) as history:
        [row] = history.recent_sessions()
    assert row == SessionRow(
        id=session_id,
        routine="small",
        started_at=T0,
        ended_at=T0 + timedelta(minutes=12),
        completed=True,
        summary="Routine complete.",
        exercises_done=1,
        exercises_total=2,
        stops=1,
        too_much=1,
    )


def test_recording_the_same_exercise_twice_keeps_one_row_with_the_latest_values(path: Path) -> None:
    with History.open(path) as history:
        session_id = history.start_session("small", T0, [ExerciseRecord("Twist", 10, 2)])
        history.record_exercise(session_id, TWIST)
        history.record_exercise(session_id, TWIST)
        history.finish_session(session_id, T0 + timedelta(minutes=5), True, "done", [TWIST])
        [row] = history.exercise_history("small", "Twist")
    assert _count(path, "SELECT count(*) FROM exercises") == 1
    assert (row.holds_done, row.holds_total, row.hold_s) == (2, 2, 10.0)


def test_the_same_event_and_the_same_start_are_stored_once(path: Path) -> None:
    with History.open(path) as history:
        session_id = history.start_session("small", T0)
        assert history.start_session("small", T0) == session_id
        for _ in range(2):
            history.record_event(session_id, 12.5, "stop")
            history.record_event(session_id, 30.0, "too_much", "Bridge", 3.0)
        history.record_event(session_id, 30.0, "too_much", "Twist", 3.0)
    assert _count(path, "SELECT count(*) FROM sessions") == 1
    assert _count(path, "SELECT count(*) FROM events") == 3


def test_an_error_inside_a_write_leaves_nothing_of_it(path: Path) -> None:
    broken = ExerciseRecord("Bridge", hold_s=20, holds_total=2, holds_done=-1)
    with History.open(path) as history:
        with pytest.raises(HistoryError, match="cannot record the start"):
            history.start_session("small", T0, [TWIST, broken])
        assert history.recent_sessions() == []
        session_id = history.start_session("small", T0)
        with pytest.raises(HistoryError, match=f"cannot record the end of session {session_id}"):
            history.finish_session(session_id, T0 + timedelta(minutes=5), True, "done", [TWIST, broken])
        [row] = history.recent_sessions()
    assert (row.ended_at, row.completed, row.exercises_total) == (None, False, 0)
    assert _count(path, "SELECT count(*) FROM exercises") == 0


_KILLED_MID_WRITE = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from voicecoach.core.session import ExerciseRecord
from voicecoach.store.history import History

history = History.open(Path(sys.argv[1]))
session_id = history.start_session("small", datetime(2024, 5, 1, 7, 30, tzinfo=UTC))
print(session_id, flush=True)

def results():
    yield ExerciseRecord("Twist", 10, 2, 2, 10.0)
    os.kill(os.getpid(), signal.SIGKILL)  # after the first row is written, before the commit
    yield ExerciseRecord("Bridge", 20, 2, 2, 20.0)

history.finish_session(session_id, datetime(2024, 5, 1, 7, 40, tzinfo=UTC), True, "done", results())
"""


def test_a_kill_in_the_middle_of_a_write_leaves_no_partial_session(path: Path) -> None:
    script = textwrap.dedent(_KILLED_MID_WRITE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert Path(f"{path}-wal").exists()
    with History.open(path) as history:
        [row] = history.recent_sessions()
        assert row.id == int(done.stdout)
        assert (row.ended_at, row.completed, row.exercises_total) == (None, False, 0)
        assert history.exercise_history("small", "Twist") == []


def test_unknown_sessions_and_naive_times_are_errors(path: Path) -> None:
    with History.open(path) as history:
        with pytest.raises(HistoryError, match="no such session"):
            history.finish_session(99, T0, True, "")
        with pytest.raises(HistoryError, match="FOREIGN KEY"):
            history.record_exercise(99, TWIST)
        with pytest.raises(ValueError, match="no time zone"):
            history.start_session("small", datetime(2024, 5, 1, 7, 30))


# --- reads --------------------------------------------------------------------------------------


def test_times_are_stored_as_utc(path: Path) -> None:
    local = datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with History.open(path) as history:
        history.start_session("small", local)
        [row] = history.recent_sessions()
    assert row.started_at == T0
    assert row.started_at.utcoffset() == timedelta(0)
    assert _count(path, "SELECT started_at = '2024-05-01T07:30:00.000+00:00' FROM sessions") == 1


def test_recent_sessions_are_newest_first_and_limited(path: Path) -> None:
    with History.open(path) as history:
        ids = [_one_session(history, T0 + timedelta(days=day)) for day in range(4)]
        rows = history.recent_sessions(limit=3)
    assert [row.id for row in rows] == ids[:0:-1]


def test_exercise_history_is_per_routine_and_includes_too_much_without_a_result(path: Path) -> None:
    with History.open(path) as history:
        first = _one_session(history, T0)
        _one_session(history, T0 + timedelta(days=1), routine="other")
        crashed = history.start_session("small", T0 + timedelta(days=2))
        history.record_event(crashed, 40.0, "too_much", "Bridge", 2.0)
        rows = history.exercise_history("small", "Bridge")
    assert [(r.session_id, r.hold_s, r.too_much, r.completed) for r in rows] == [
        (crashed, None, 1, False),
        (first, 20.0, 1, True),
    ]


def test_routine_history_and_exercise_results_from_a_session(path: Path) -> None:
    routine = small_routine()
    session = Session(routine)
    session.records[1].holds_done = 2
    results = exercise_results(session)
    assert results[1] == ExerciseRecord("Bridge", 20.0, 2, 2, 0.0, False, 0)
    with History.open(path) as history:
        session_id = history.start_session(routine.name, T0, exercise_results(Session(routine)))
        history.finish_session(session_id, T0 + timedelta(minutes=9), True, "done", results)
        rows = history.routine_history(routine)
    assert [(r.exercise, r.holds_done, r.holds_total) for r in rows] == [("Twist", 0, 2), ("Bridge", 2, 2)]


def test_past_sessions_give_progression_the_sessions_own_exercise_records(path: Path) -> None:
    routine = small_routine()
    with History.open(path) as history:
        first = _one_session(history, T0)
        crashed = history.start_session("small", T0 + timedelta(days=1))
        history.record_event(crashed, 40.0, "too_much", "Bridge", 2.0)
        past = history.past_sessions(routine)
        saved = history.session_records(routine, first)
        assert history.session_records(routine, crashed) == {"Bridge": past[0].records[0]}
    assert [(s.started_at, s.completed) for s in past] == [(T0 + timedelta(days=1), False), (T0, True)]
    assert past[0].records == (ExerciseRecord("Bridge", hold_s=0.0, holds_total=0, too_much=1),)
    assert sorted(past[1].records, key=lambda r: r.name) == [BRIDGE, TWIST]
    assert saved == {"Twist": TWIST, "Bridge": BRIDGE}


# --- the table ----------------------------------------------------------------------------------


def test_format_sessions_table() -> None:
    rows = [
        SessionRow(2, "lower-back", T0 + timedelta(days=1), None, False, "", 3, 10, 0, 0),
        SessionRow(1, "small", T0, T0 + timedelta(minutes=12, seconds=20), True, "done", 2, 2, 1, 1),
    ]
    assert format_sessions(rows, UTC) == "\n".join(
        [
            "Date              Routine     Minutes  Exercises  Stops  Too much",
            "2024-05-02 07:30  lower-back        -       3/10      0         0",
            "2024-05-01 07:30  small            12        2/2      1         1",
        ]
    )
    assert format_sessions([]) == "No sessions recorded yet."


def test_format_sessions_uses_the_given_time_zone(path: Path) -> None:
    with History.open(path) as history:
        _one_session(history)
        table = format_sessions(history.recent_sessions(), timezone(timedelta(hours=-4)))
    assert table.splitlines()[1] == "2024-05-01 03:30  small         12        1/2      1         1"


def test_hold_trends_and_too_much_moments_over_the_sessions_asked_for(path: Path) -> None:
    with History.open(path) as history:
        ids = []
        for day, (twist_s, bridge_s) in enumerate([(10, 20), (10, 20), (15, 20), (11, 25)]):
            ids.append(history.start_session("small", T0 + timedelta(days=day)))
            records = [replace(TWIST, hold_s=twist_s), replace(BRIDGE, hold_s=bridge_s, too_much=0)]
            history.finish_session(ids[-1], T0 + timedelta(days=day, minutes=9), True, "done", records)
        history.record_event(ids[2], 61.0, "too_much", "Twist", 7.5)
        history.record_event(ids[2], 70.0, "too_much", None, None)
        other = history.start_session("other", T0 + timedelta(days=9), [TWIST])
        trends = history.hold_trends(ids[1:])
        moments = history.too_much_moments(ids[1:])
        assert history.hold_trends([]) == [] and history.too_much_moments([other]) == []
    assert trends == [HoldTrend("small", "Twist", (10, 15, 11)), HoldTrend("small", "Bridge", (20, 20, 25))]
    assert moments == [TooMuchMoment(T0 + timedelta(days=2), "small", "Twist", 7.5),
                       TooMuchMoment(T0 + timedelta(days=2), "small", None, None)]  # fmt: skip
    assert format_trends(trends) == "\n".join([
        "Holds over these sessions, oldest first:",
        "  small",
        "    Twist   10 -> 15 -> 11 s",
        "    Bridge  20 -> 25 s",
    ])  # fmt: skip
    assert format_too_much(moments, UTC) == "\n".join([
        '"Too much":',
        "  2024-05-03 07:30  small: Twist, 7.5 s into a hold",
        "  2024-05-03 07:30  small: between exercises",
    ])  # fmt: skip
    assert format_trends([]) == format_too_much([]) == ""
