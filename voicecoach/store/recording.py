"""Keeping a session in the history as it runs: stops, too-much, holds reached, the end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from voicecoach.core.events import Action, Finish, Log, LogKind
from voicecoach.core.progression import HoldChange, ProgressionSettings, plan_holds
from voicecoach.core.routine import Routine
from voicecoach.core.session import Session
from voicecoach.store.history import RECORDED_EVENT_KINDS, History, HistoryError, data_dir, exercise_results
from voicecoach.store.resume import Position, PositionSaver, PositionStore

_LOGGER = logging.getLogger(__name__)


class SessionRecorder:
    """A player observer that writes one session to the history; a failing disk never stops the routine."""

    def __init__(self, history: History, session: Session, session_id: int | None = None) -> None:
        """session_id: continue that history row (a resumed session) instead of starting one."""
        self._history = history
        self._session = session
        self._id: int | None = session_id
        self._started_at: datetime | None = None
        """When this recorder began the history row; None for a resumed row (its start is in the file)."""
        self._first_t_s: float | None = None
        """The player's clock at the first action since the row began: the end is that far after the start."""

    @property
    def session_id(self) -> int | None:
        """The history row this session writes to."""
        return self._id

    def begin(self, started_at: datetime | None = None) -> None:
        """Record the session's start with its planned holds."""
        when = started_at or datetime.now(UTC)
        self._started_at, self._first_t_s = when, None
        self._guard(lambda: self._start(when))

    def __call__(self, t_s: float, action: Action) -> None:
        """Take one action the player carried out."""
        if self._id is None:
            return
        session_id = self._id
        if self._first_t_s is None:
            self._first_t_s = t_s
        if isinstance(action, Log) and action.kind is LogKind.START_OVER:
            self.begin()
            self._first_t_s = t_s
        elif isinstance(action, Log) and action.kind in RECORDED_EVENT_KINDS:
            self._guard(lambda: self._history.record_event(session_id, t_s, action.kind, action.exercise,
                                                           action.value_s, action.text))
        elif isinstance(action, Log) and action.kind is LogKind.HOLD_DONE:
            self._guard(lambda: self._save_exercises(session_id))
        elif isinstance(action, Finish):
            completed = not self._session.ended_early
            ended_at = self._ended_at(t_s)
            self._guard(lambda: self._history.finish_session(session_id, ended_at, completed, action.summary,
                                                             exercise_results(self._session)))

    def _ended_at(self, t_s: float) -> datetime:
        """The start plus the time the routine took on the player's clock: the wall clock for a voice run, the
        routine's own time for a dry run on virtual time (which finishes at once) or sped up."""
        if self._started_at is None or self._first_t_s is None:
            return datetime.now(UTC)
        return self._started_at + timedelta(seconds=max(0.0, t_s - self._first_t_s))

    def close(self) -> None:
        """Close the history file."""
        self._history.close()

    def _start(self, when: datetime) -> None:
        self._id = self._history.start_session(self._session.routine.name, when, exercise_results(self._session))

    def _save_exercises(self, session_id: int) -> None:
        for result in exercise_results(self._session):
            self._history.record_exercise(session_id, result)

    def _guard(self, write: object) -> None:
        try:
            write()  # type: ignore[operator]
        except HistoryError as exc:
            _LOGGER.warning("history not saved: %s", exc)


def prepare_session(
    routine: Routine, *, record: bool, progression: ProgressionSettings | None
) -> tuple[Session, list[Callable[[float, Action], None]], Callable[[], None]]:
    """The session to run, its observers (history, saved position) and what closes them.

    With progression settings (None: off), holds are adjusted from history and said at the start; after a crash the
    session offers to pick up where the last one was, continuing the same history row.
    """
    if progression is not None and not progression.enabled:
        progression = None
    if not record:
        if progression is not None:
            with History.open() as history:
                routine, _ = _progressed(routine, history, progression)
        return Session(routine), [], lambda: None
    history = History.open()
    store = PositionStore(data_dir())
    position = store.load(routine.name)
    if position is not None and position.session_id is not None:
        session = _resumed_session(routine, history, position)
        recorder = SessionRecorder(history, session, position.session_id)
    else:
        routine, _ = _progressed(routine, history, progression) if progression is not None else (routine, [])
        session = Session(routine)
        recorder = SessionRecorder(history, session)
        recorder.begin()
    saver = PositionSaver(store, session, lambda: recorder.session_id)
    return session, [recorder, saver], recorder.close


def _progressed(routine: Routine, history: History, settings: ProgressionSettings) -> tuple[Routine, list[HoldChange]]:
    """The routine with holds from progression, the changes said after the intro."""
    routine, changes = plan_holds(routine, history.past_sessions(routine), settings)
    if changes:
        routine = replace(routine, intro=(*routine.intro, *(c.text for c in changes)))
    return routine, changes


def _resumed_session(routine: Routine, history: History, position: Position) -> Session:
    """A session offering to resume at the saved segment, with the holds and results it had before the crash."""
    saved = history.session_records(routine, position.session_id) if position.session_id is not None else {}
    exercises = tuple(
        replace(e, hold_s=saved[e.name].hold_s or e.hold_s) if e.name in saved else e for e in routine.exercises
    )
    routine = replace(routine, exercises=exercises)
    fresh = Session(routine)
    records = [
        replace(saved[r.name], hold_s=r.hold_s, holds_total=r.holds_total) if r.name in saved else r
        for r in fresh.records
    ]
    return Session(routine, resume_at=position.segment, records=records)
