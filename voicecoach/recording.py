"""Keeping a session in the history as it runs: stops, too-much, holds reached, the end."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from voicecoach.events import Action, Finish, Log
from voicecoach.history import RECORDED_EVENT_KINDS, History, HistoryError, exercise_results
from voicecoach.progression import HoldChange, ProgressionSettings, plan_holds
from voicecoach.routine import Routine
from voicecoach.session import Session

_LOGGER = logging.getLogger(__name__)


class SessionRecorder:
    """A player observer that writes one session to the history; a failing disk never stops the routine."""

    def __init__(self, history: History, session: Session) -> None:
        self._history = history
        self._session = session
        self._id: int | None = None

    def begin(self, started_at: datetime | None = None) -> None:
        """Record the session's start with its planned holds."""
        when = started_at or datetime.now(UTC)
        self._guard(lambda: self._start(when))

    def __call__(self, t_s: float, action: Action) -> None:
        """Take one action the player carried out."""
        if self._id is None:
            return
        session_id = self._id
        if isinstance(action, Log) and action.kind in RECORDED_EVENT_KINDS:
            self._guard(lambda: self._history.record_event(session_id, t_s, action.kind, action.exercise,
                                                           action.value_s, action.text))
        elif isinstance(action, Log) and action.kind == "hold_done":
            self._guard(lambda: self._save_exercises(session_id))
        elif isinstance(action, Finish):
            completed = not self._session.ended_early
            self._guard(lambda: self._history.finish_session(session_id, datetime.now(UTC), completed,
                                                             action.summary, exercise_results(self._session)))

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


def prepare_session(routine: Routine, *, record: bool, progression: bool) -> tuple[Session, SessionRecorder | None]:
    """The session to run: holds adjusted from history (said at the start), and its recorder when recording."""
    if not record and not progression:
        return Session(routine), None
    history = History.open()
    changes: list[HoldChange] = []
    if progression:
        routine, changes = plan_holds(routine, history.routine_history(routine), ProgressionSettings())
    if changes:
        routine = replace(routine, intro=(*routine.intro, *(c.text for c in changes)))
    session = Session(routine)
    if not record:
        history.close()
        return session, None
    recorder = SessionRecorder(history, session)
    recorder.begin()
    return session, recorder
