"""Where a running routine is, saved atomically, so a crash or power cut can pick up in the same exercise."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from voicecoach.core.events import Action, Finish
from voicecoach.core.session import Session
from voicecoach.store.atomic import replace_file

_LOGGER = logging.getLogger(__name__)
_FILE_NAME = "position.json"
_MAX_AGE_S = 12 * 3600.0
"""An older position is not offered: a new day starts over."""


@dataclass(frozen=True)
class Position:
    """Where a routine was."""

    routine: str
    segment: int
    """Index into the session's plan."""
    session_id: int | None
    """The history session it belongs to, so a resume continues that row instead of adding one."""
    saved_at: float
    """Seconds since the epoch."""


class PositionStore:
    """One small JSON file, replaced atomically (voicecoach.store.atomic)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / _FILE_NAME

    def save(self, position: Position) -> None:
        """Replace the saved position; a crash at any moment leaves the old one or the new one."""
        replace_file(self.path, json.dumps(asdict(position)))

    def load(self, routine: str, now: float | None = None) -> Position | None:
        """The saved position for this routine, if recent and readable."""
        try:
            data = json.loads(self.path.read_text("utf-8"))
            position = Position(str(data["routine"]), int(data["segment"]),
                                None if data["session_id"] is None else int(data["session_id"]),
                                float(data["saved_at"]))  # fmt: skip
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _LOGGER.warning("ignoring unreadable %s: %s", self.path, exc)
            return None
        age_s = (now if now is not None else time.time()) - position.saved_at
        return position if position.routine == routine and 0 <= age_s <= _MAX_AGE_S else None

    def clear(self) -> None:
        """Forget the position (the routine ended)."""
        self.path.unlink(missing_ok=True)


class PositionSaver:
    """A player observer: saves the position whenever the segment changes, and clears it at the end."""

    def __init__(self, store: PositionStore, session: Session, session_id: Callable[[], int | None]) -> None:
        self._store = store
        self._session = session
        self._session_id = session_id
        self._saved: int | None = None

    def __call__(self, t_s: float, action: Action) -> None:
        """Take one action the player carried out."""
        if isinstance(action, Finish):
            self._store.clear()
            return
        segment = self._session.status().segment
        if self._session.offering_resume or segment == self._saved:
            return
        try:
            self._store.save(Position(self._session.routine.name, segment, self._session_id(), time.time()))
            self._saved = segment
        except OSError as exc:
            _LOGGER.warning("position not saved: %s", exc)
