"""Session history in SQLite: sessions, what each exercise reached, and every stop and "too much".

One file, `history.sqlite3`, in the user's data directory. The schema is versioned with `PRAGMA user_version`: each
version has one migration, run in its own transaction, so an old file is upgraded on open and a file from a newer
voicecoach is refused. Every write is one transaction (WAL journal, synchronous=FULL): a kill or power loss leaves
either all of it or none of it. Unique keys make writes idempotent: recording the same exercise again updates its
row, and the same event twice is stored once.

Suggested use by the player: `start_session(name, now, exercise_results(Session(routine)))` records the planned
holds at once; `record_event` for each 'stop', 'too_much' and 'device' log as it happens;
`finish_session(..., exercise_results(session))` at the end, in one transaction with the results.

Longer than most modules (about 500 lines): the schema, its migration and every query sit together so that a
schema change is one reviewable file; the table for the terminal is history_table.py.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from voicecoach.core.events import Command, LogKind
from voicecoach.core.progression import PastSession
from voicecoach.core.routine import Routine
from voicecoach.core.session import ExerciseRecord, Session

_LOGGER = logging.getLogger(__name__)

_DATA_ENV = "VOICECOACH_DATA"
_XDG_DATA_ENV = "XDG_DATA_HOME"
_FILE_NAME = "history.sqlite3"
_APPLICATION_ID = 0x56434831
"""'VCH1': marks the file as a voicecoach history (PRAGMA application_id)."""
_BUSY_TIMEOUT_S = 5.0
"""Seconds to wait for another process's write to finish."""
RECORDED_EVENT_KINDS = frozenset({Command.STOP, Command.TOO_MUCH, LogKind.DEVICE})
"""The Log kinds worth keeping in history (the player decides; record_event accepts any kind)."""


class HistoryError(Exception):
    """The history file cannot be opened, upgraded or written: one clear line for the user."""


@dataclass(frozen=True)
class SessionRow:
    """One session as listed by `voicecoach history`."""

    id: int
    routine: str
    started_at: datetime
    """UTC."""
    ended_at: datetime | None
    """UTC; None when the session never finished (crash, power loss)."""
    completed: bool
    summary: str
    exercises_done: int
    """Exercises with every hold done."""
    exercises_total: int
    stops: int
    too_much: int

    @property
    def minutes(self) -> float | None:
        """Minutes from start to end; None when unfinished."""
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds() / 60


@dataclass(frozen=True)
class ExerciseHistoryRow:
    """One exercise in one past session, as stored (past_sessions turns them into exercise records)."""

    session_id: int
    exercise: str
    started_at: datetime
    """UTC start of the session."""
    completed: bool
    """The session ran to its end."""
    hold_s: float | None
    """Seconds per hold as planned; None when only a "too much" event survived (no exercise row)."""
    holds_total: int
    holds_done: int
    longest_hold_s: float
    """Seconds."""
    skipped: bool
    too_much: int


@dataclass(frozen=True)
class HoldTrend:
    """How one exercise's hold changed over sessions, for `voicecoach history`."""

    routine: str
    exercise: str
    holds_s: tuple[float, ...]
    """Seconds per hold as planned in each session, oldest first."""


@dataclass(frozen=True)
class TooMuchMoment:
    """One "too much", for `voicecoach history`."""

    session_started_at: datetime
    """UTC start of its session."""
    routine: str
    exercise: str | None
    """None when it came between exercises (the intro, say)."""
    into_hold_s: float | None
    """Seconds into the hold it interrupted; None when no hold was running."""


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's data directory: $VOICECOACH_DATA, else $XDG_DATA_HOME/voicecoach, else ~/.local/share/voicecoach."""
    env = os.environ if environ is None else environ
    override = env.get(_DATA_ENV, "")
    if override:
        return Path(override).expanduser()
    data_home = env.get(_XDG_DATA_ENV, "")
    base = Path(data_home) if Path(data_home).is_absolute() else Path.home() / ".local" / "share"
    return base / "voicecoach"


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the history file lives."""
    return data_dir(environ) / _FILE_NAME


def exercise_results(session: Session) -> list[ExerciseRecord]:
    """The session's exercise records, with the holds it planned (its routine's hold_s)."""
    return [replace(r, hold_s=e.hold_s) for r, e in zip(session.records, session.routine.exercises, strict=True)]


# --- schema -------------------------------------------------------------------------------------


def _migrate_to_1(db: sqlite3.Connection) -> None:
    """Sessions, exercises per session, events per session."""
    db.execute(
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            routine TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            completed INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
            summary TEXT NOT NULL DEFAULT '',
            UNIQUE (routine, started_at))"""
    )
    db.execute(
        """CREATE TABLE exercises (
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            hold_s REAL NOT NULL CHECK (hold_s > 0),
            holds_total INTEGER NOT NULL CHECK (holds_total >= 0),
            holds_done INTEGER NOT NULL CHECK (holds_done >= 0),
            longest_hold_s REAL NOT NULL CHECK (longest_hold_s >= 0),
            skipped INTEGER NOT NULL CHECK (skipped IN (0, 1)),
            too_much INTEGER NOT NULL DEFAULT 0 CHECK (too_much >= 0),
            PRIMARY KEY (session_id, name))"""
    )
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            t_s REAL NOT NULL CHECK (t_s >= 0),
            kind TEXT NOT NULL CHECK (kind <> ''),
            exercise TEXT,
            value_s REAL,
            detail TEXT NOT NULL DEFAULT '')"""
    )
    db.execute("CREATE UNIQUE INDEX events_once ON events (session_id, t_s, kind, ifnull(exercise, ''))")
    db.execute("CREATE INDEX sessions_by_start ON sessions (routine, started_at)")
    db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_to_1}
"""Migration to version N, for every N from 1 to SCHEMA_VERSION. Add a new one; never edit an old one."""
SCHEMA_VERSION = max(_MIGRATIONS)


# --- the store ----------------------------------------------------------------------------------


class History:
    """The history file: open with `History.open(path)`, use as a context manager or call close()."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> History:
        """Open (creating or upgrading) the history file; HistoryError if it cannot be used."""
        path = default_path() if path is None else path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"cannot open the history file {path}: {error}") from error
        history = cls(db, path)
        try:
            history._prepare()
        except BaseException:
            db.close()
            raise
        return history

    def close(self) -> None:
        """Close the file (a clean close also folds the WAL back into it)."""
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The file's schema version."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # --- writes -----------------------------------------------------------------------------

    def start_session(self, routine_name: str, started_at: datetime, exercises: Iterable[ExerciseRecord] = ()) -> int:
        """Record a session's start (and its planned exercises) in one transaction; return its id.

        Starting the same routine at the same instant again returns the same id.
        """
        started = _utc_text(started_at)
        with self._transaction(f"record the start of {routine_name!r}") as db:
            db.execute(
                "INSERT INTO sessions (routine, started_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (routine_name, started),
            )
            row = db.execute(
                "SELECT id FROM sessions WHERE routine = ? AND started_at = ?", (routine_name, started)
            ).fetchone()
            session_id = int(row[0])
            for result in exercises:
                _upsert_exercise(db, session_id, result)
        _LOGGER.debug("session %d started: %s at %s", session_id, routine_name, started)
        return session_id

    def record_event(
        self,
        session_id: int,
        t_s: float,
        kind: str,
        exercise: str | None = None,
        value_s: float | None = None,
        detail: str = "",
    ) -> None:
        """Record one event (t_s: seconds on the player's clock); the same event twice is stored once."""
        with self._transaction(f"record a {kind!r} event in session {session_id}") as db:
            db.execute(
                "INSERT INTO events (session_id, t_s, kind, exercise, value_s, detail) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (session_id, t_s, kind, exercise, value_s, detail),
            )

    def record_exercise(self, session_id: int, result: ExerciseRecord) -> None:
        """Record (or update) what one exercise reached; recording it twice keeps one row."""
        with self._transaction(f"record {result.name!r} in session {session_id}") as db:
            _upsert_exercise(db, session_id, result)

    def finish_session(
        self,
        session_id: int,
        ended_at: datetime,
        completed: bool,
        summary: str,
        exercises: Iterable[ExerciseRecord] = (),
    ) -> None:
        """Record the end of a session, with its exercise results, in one transaction."""
        with self._transaction(f"record the end of session {session_id}") as db:
            for result in exercises:
                _upsert_exercise(db, session_id, result)
            cursor = db.execute(
                "UPDATE sessions SET ended_at = ?, completed = ?, summary = ? WHERE id = ?",
                (_utc_text(ended_at), int(completed), summary, session_id),
            )
            if cursor.rowcount != 1:
                raise HistoryError(f"cannot record the end of session {session_id}: there is no such session")

    # --- reads ------------------------------------------------------------------------------

    def recent_sessions(self, limit: int = 20) -> list[SessionRow]:
        """The newest sessions first, with counts of exercises done, stops and "too much"s."""
        return [_session_row(r) for r in self._read(_RECENT_SESSIONS_SQL, (limit,))]

    def exercise_history(self, routine: str, exercise: str, limit: int = 20) -> list[ExerciseHistoryRow]:
        """The newest sessions of `routine` that recorded `exercise` (or a "too much" during it), newest first."""
        parameters = {"routine": routine, "exercise": exercise, "limit": limit}
        return [_exercise_row(exercise, r) for r in self._read(_EXERCISE_HISTORY_SQL, parameters)]

    def routine_history(self, routine: Routine, limit: int = 20) -> list[ExerciseHistoryRow]:
        """exercise_history for every exercise of the routine."""
        return [row for e in routine.exercises for row in self.exercise_history(routine.name, e.name, limit)]

    def past_sessions(self, routine: Routine, limit: int = 20) -> list[PastSession]:
        """The routine's sessions with the records of its exercises (up to `limit` sessions per exercise), newest
        first: what progression.plan_holds takes, and what a resumed session picks up."""
        sessions: dict[int, tuple[ExerciseHistoryRow, list[ExerciseRecord]]] = {}
        for row in self.routine_history(routine, limit):
            sessions.setdefault(row.session_id, (row, []))[1].append(_record(row))
        past = [PastSession(row.started_at, row.completed, tuple(records)) for row, records in sessions.values()]
        return sorted(past, key=lambda session: session.started_at, reverse=True)

    def session_records(self, routine: Routine, session_id: int) -> dict[str, ExerciseRecord]:
        """What each exercise of the routine had reached in one session, by name (for resuming it after a crash)."""
        rows = self.routine_history(routine, limit=50)
        return {row.exercise: _record(row) for row in rows if row.session_id == session_id}

    def hold_trends(self, session_ids: Sequence[int]) -> list[HoldTrend]:
        """The planned hold of each exercise over these sessions, oldest first; exercises in the order their
        routine first had them."""
        trends: dict[tuple[str, str], list[float]] = {}
        for routine, exercise, hold_s in self._read(_in_sessions(_HOLDS_SQL, session_ids), list(session_ids)):
            trends.setdefault((str(routine), str(exercise)), []).append(float(hold_s))
        return [HoldTrend(routine, exercise, tuple(holds)) for (routine, exercise), holds in trends.items()]

    def too_much_moments(self, session_ids: Sequence[int]) -> list[TooMuchMoment]:
        """Every "too much" of these sessions, oldest first."""
        rows = self._read(_in_sessions(_TOO_MUCH_SQL, session_ids), list(session_ids))
        return [TooMuchMoment(_parse(r[0]), str(r[1]), r[2], None if r[3] is None else float(r[3])) for r in rows]

    # --- internals --------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Check the file is ours and not newer, switch to WAL, run pending migrations."""
        db = self._db
        try:
            application_id = int(db.execute("PRAGMA application_id").fetchone()[0])
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as error:
            raise HistoryError(f"{self.path} is not a voicecoach history file ({error})") from error
        if application_id not in (0, _APPLICATION_ID):
            raise HistoryError(f"{self.path} is not a voicecoach history file (application id {application_id:#x})")
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} was written by a newer voicecoach (history schema version {version}; this version"
                f" reads up to {SCHEMA_VERSION}). Update voicecoach, or set {_DATA_ENV} to use another folder."
            )
        try:
            db.execute("PRAGMA foreign_keys = ON")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as error:
            raise HistoryError(f"cannot use the history file {self.path}: {error}") from error
        if str(mode).lower() != "wal":
            _LOGGER.warning("%s: WAL journal not available here (journal mode %s)", self.path, mode)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self._migrate(target)

    def _migrate(self, target: int) -> None:
        """Upgrade to schema version `target` in one transaction (another process may have done it already)."""
        with self._transaction(f"upgrade {self.path} to history schema version {target}") as db:
            if int(db.execute("PRAGMA user_version").fetchone()[0]) >= target:
                return
            _MIGRATIONS[target](db)
            db.execute(f"PRAGMA user_version = {target}")
        _LOGGER.info("%s: upgraded to history schema version %d", self.path, target)

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed or none of it; sqlite errors become HistoryError."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise HistoryError(f"cannot {doing}: {error}") from error
            raise

    def _read(self, sql: str, parameters: Sequence[object] | Mapping[str, object]) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, parameters).fetchall())
        except sqlite3.Error as error:
            raise HistoryError(f"cannot read the history file {self.path}: {error}") from error


_RECENT_SESSIONS_SQL = """
SELECT s.id, s.routine, s.started_at, s.ended_at, s.completed, s.summary,
    (SELECT count(*) FROM exercises e
        WHERE e.session_id = s.id AND e.holds_total > 0 AND e.holds_done >= e.holds_total),
    (SELECT count(*) FROM exercises e WHERE e.session_id = s.id),
    (SELECT count(*) FROM events v WHERE v.session_id = s.id AND v.kind = 'stop'),
    max((SELECT count(*) FROM events v WHERE v.session_id = s.id AND v.kind = 'too_much'),
        (SELECT ifnull(sum(e.too_much), 0) FROM exercises e WHERE e.session_id = s.id))
FROM sessions s
ORDER BY s.started_at DESC, s.id DESC
LIMIT ?
"""
"""A "too much" counts once whether the events, the exercise rows or both recorded it."""

_EXERCISE_HISTORY_SQL = """
SELECT s.id, s.started_at, s.completed, e.hold_s, e.holds_total, e.holds_done, e.longest_hold_s,
    ifnull(e.skipped, 0),
    max(ifnull(e.too_much, 0),
        (SELECT count(*) FROM events v
            WHERE v.session_id = s.id AND v.kind = 'too_much' AND v.exercise = :exercise))
FROM sessions s
LEFT JOIN exercises e ON e.session_id = s.id AND e.name = :exercise
WHERE s.routine = :routine
    AND (e.session_id IS NOT NULL OR EXISTS (SELECT 1 FROM events v
            WHERE v.session_id = s.id AND v.kind = 'too_much' AND v.exercise = :exercise))
ORDER BY s.started_at DESC, s.id DESC
LIMIT :limit
"""


_HOLDS_SQL = """
SELECT s.routine, e.name, e.hold_s FROM exercises e JOIN sessions s ON s.id = e.session_id
WHERE s.id IN ({ids})
ORDER BY s.started_at, s.id, e.rowid
"""
"""An exercise's rows keep the rowid of their first insert: the order the session planned them in."""

_TOO_MUCH_SQL = """
SELECT s.started_at, s.routine, v.exercise, v.value_s FROM events v JOIN sessions s ON s.id = v.session_id
WHERE v.kind = 'too_much' AND s.id IN ({ids})
ORDER BY s.started_at, s.id, v.t_s
"""


def _in_sessions(sql: str, session_ids: Sequence[int]) -> str:
    """The query with one placeholder per session id."""
    return sql.format(ids=", ".join("?" * len(session_ids)) or "NULL")


def _upsert_exercise(db: sqlite3.Connection, session_id: int, result: ExerciseRecord) -> None:
    """Insert the exercise's row, or replace its values: the latest record wins, never a second row."""
    db.execute(
        """INSERT INTO exercises
            (session_id, name, hold_s, holds_total, holds_done, longest_hold_s, skipped, too_much)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (session_id, name) DO UPDATE SET
            hold_s = excluded.hold_s, holds_total = excluded.holds_total, holds_done = excluded.holds_done,
            longest_hold_s = excluded.longest_hold_s, skipped = excluded.skipped, too_much = excluded.too_much""",
        (session_id, result.name, result.hold_s, result.holds_total, result.holds_done)
        + (result.longest_hold_s, int(result.skipped), result.too_much),
    )


def _session_row(r: tuple[Any, ...]) -> SessionRow:
    return SessionRow(
        id=int(r[0]),
        routine=str(r[1]),
        started_at=_parse(r[2]),
        ended_at=_parse(r[3]) if r[3] else None,
        completed=bool(r[4]),
        summary=str(r[5]),
        exercises_done=int(r[6]),
        exercises_total=int(r[7]),
        stops=int(r[8]),
        too_much=int(r[9]),
    )


def _exercise_row(exercise: str, r: tuple[Any, ...]) -> ExerciseHistoryRow:
    return ExerciseHistoryRow(
        session_id=int(r[0]),
        exercise=exercise,
        started_at=_parse(r[1]),
        completed=bool(r[2]),
        hold_s=None if r[3] is None else float(r[3]),
        holds_total=int(r[4] or 0),
        holds_done=int(r[5] or 0),
        longest_hold_s=float(r[6] or 0.0),
        skipped=bool(r[7]),
        too_much=int(r[8]),
    )


def _record(row: ExerciseHistoryRow) -> ExerciseRecord:
    """A stored exercise row as the session's record; a "too much" that outlived its row plans no holds."""
    if row.hold_s is None:
        return ExerciseRecord(row.exercise, hold_s=0.0, holds_total=0, too_much=row.too_much)
    return ExerciseRecord(row.exercise, row.hold_s, row.holds_total, row.holds_done, row.longest_hold_s, row.skipped,
                          row.too_much)  # fmt: skip


def _utc_text(moment: datetime) -> str:
    """A timezone-aware datetime as sortable UTC ISO 8601 text (milliseconds)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone (expected an aware datetime, e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse(text: object) -> datetime:
    return datetime.fromisoformat(str(text))


