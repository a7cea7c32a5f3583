"""Hold-time progression: build up hold times gradually, and ease off after something was too strong.

Pure functions over the routine as loaded from its file and its past sessions: each one's outcome and the session's
own exercise records (core/session.ExerciseRecord; store/history.py reads them back). Per exercise (by name):

- Range. The cap is `max_hold_s`, or the file's `hold_s` when there is none (then the hold never grows). The floor
  is half the file's `hold_s`, but at least 5 s, rounded up to a whole second, and never above the file's `hold_s`
  (a hold of 5 s or less never shrinks).
- Current hold. The hold last planned for the exercise in history (so progression accumulates across sessions);
  the file's `hold_s` when history has none. If the file changed and the current hold is now outside the range, the
  hold moves to the nearest limit, and that is the only change this time.
- Ease off. If the newest session with the exercise had a "too much" during it, the hold drops by
  `back_off_fraction` (rounded to a whole second, at least 1 s less, not below the floor). This comes first.
- Step up. If the newest `sessions_per_step` sessions with the exercise were all smooth at the current hold, the hold
  grows by `step_s` (rounded to a whole second, not above the cap). Smooth: the session ran to its end, the exercise
  was not skipped, every hold was done, and nothing was too much. Anything else (skipped, ended early, a hold not
  done, a "too much", a different hold) ends the run, and since only sessions at the current hold count, the run
  starts over after every change.
- Disabled: the routine comes back as it is, with no changes.

Each change carries one sentence the narrator can say. It never contains a command word (the narrator's own voice
must not sound like a command): no stop, next, back, go, wait, pause, again, skip, repeat, continue, start, begin,
"too much" or hurts.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from voicecoach.core.routine import Exercise, Routine
from voicecoach.core.session import ExerciseRecord

_LOGGER = logging.getLogger(__name__)

_MIN_FLOOR_S = 5.0
_FLOOR_FRACTION = 0.5
_MIN_CUT_S = 1.0
"""An ease-off always takes at least this many seconds off (unless the floor is reached)."""
_TOLERANCE_S = 1e-6
_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class ProgressionSettings:
    """How hold times change from session to session."""

    enabled: bool = True
    step_s: float = 5.0
    """Seconds added to a hold per step up."""
    sessions_per_step: int = 2
    """Smooth sessions in a row at the current hold before a step up."""
    back_off_fraction: float = 0.25
    """Fraction of the hold taken off after a "too much" (0 to 1)."""

    def __post_init__(self) -> None:
        if self.step_s < 1.0:
            raise ValueError(f"step_s: {self.step_s} is too small (expected at least 1 second)")
        if self.sessions_per_step < 1:
            raise ValueError(f"sessions_per_step: {self.sessions_per_step} is too small (expected at least 1)")
        if not 0.0 < self.back_off_fraction <= 1.0:
            raise ValueError(f"back_off_fraction: {self.back_off_fraction} is out of range (expected above 0, up to 1)")


@dataclass(frozen=True)
class PastSession:
    """One earlier session of the routine, as progression reads it."""

    started_at: datetime
    """Orders the sessions (one routine's sessions never share a start)."""
    completed: bool
    """The session ran to its end."""
    records: tuple[ExerciseRecord, ...]
    """What its exercises reached (not necessarily all of them). A record that plans no holds (holds_total 0) is
    what survived of an exercise whose record was lost, such as its "too much" count after a crash: its hold_s
    says nothing."""


@dataclass(frozen=True)
class _Past:
    """One exercise in one past session."""

    session: PastSession
    record: ExerciseRecord

    @property
    def planned_s(self) -> float | None:
        """Seconds per hold planned that session; None when its record was lost."""
        return self.record.hold_s if self.record.holds_total > 0 else None


class Cause(enum.Enum):
    """Why a hold changed."""

    STEP_UP = "step_up"
    EASE_OFF = "ease_off"
    LIMITS = "limits"
    """The routine file's hold or cap changed and the hold moved into the new range."""


@dataclass(frozen=True)
class HoldChange:
    """A hold that differs from the one last planned, with a sentence to say about it."""

    exercise: str
    from_s: float
    """Seconds per hold last time."""
    to_s: float
    """Seconds per hold now."""
    cause: Cause
    text: str
    """Spoken, e.g. 'Bridge: holds are now 20 seconds, up from 15, because the last two sessions went smoothly.'"""


def hold_range(exercise: Exercise) -> tuple[float, float]:
    """(floor, cap) in seconds for the exercise as written in its routine file."""
    cap = exercise.hold_s if exercise.max_hold_s is None else max(exercise.hold_s, exercise.max_hold_s)
    floor = min(exercise.hold_s, float(math.ceil(max(exercise.hold_s * _FLOOR_FRACTION, _MIN_FLOOR_S))))
    return floor, cap


def plan_holds(
    routine: Routine, past: Iterable[PastSession], settings: ProgressionSettings | None = None
) -> tuple[Routine, list[HoldChange]]:
    """The routine with each exercise's hold_s for today, and the changes since last time.

    `routine` must be as loaded from its file (its hold_s and max_hold_s set the range); `past` are its earlier
    sessions, in any order (History.past_sessions gives them).
    """
    settings = ProgressionSettings() if settings is None else settings
    if not settings.enabled:
        return routine, []
    by_exercise: dict[str, list[_Past]] = defaultdict(list)
    for session in past:
        for record in session.records:
            by_exercise[record.name].append(_Past(session, record))
    exercises: list[Exercise] = []
    changes: list[HoldChange] = []
    for exercise in routine.exercises:
        newest_first = sorted(by_exercise.get(exercise.name, []), key=lambda p: p.session.started_at, reverse=True)
        change = _exercise_change(exercise, newest_first, settings)
        if change is None:
            exercises.append(replace(exercise, hold_s=_current_hold_s(exercise, newest_first)))
        else:
            _LOGGER.info("%s", change.text)
            exercises.append(replace(exercise, hold_s=change.to_s))
            changes.append(change)
    return replace(routine, exercises=tuple(exercises)), changes


def _exercise_change(exercise: Exercise, past: Sequence[_Past], settings: ProgressionSettings) -> HoldChange | None:
    """The change for one exercise (its past newest first), or None to keep the current hold."""
    floor, cap = hold_range(exercise)
    current = _current_hold_s(exercise, past)
    if not floor - _TOLERANCE_S <= current <= cap + _TOLERANCE_S:
        return _change(exercise.name, current, min(cap, max(floor, current)), Cause.LIMITS, settings)
    if past and past[0].record.too_much > 0:
        eased = min(_whole(current * (1.0 - settings.back_off_fraction)), current - _MIN_CUT_S)
        return _change(exercise.name, current, max(floor, eased), Cause.EASE_OFF, settings)
    if _smooth_run(past, current) >= settings.sessions_per_step:
        return _change(exercise.name, current, min(cap, _whole(current + settings.step_s)), Cause.STEP_UP, settings)
    return None


def _current_hold_s(exercise: Exercise, past: Sequence[_Past]) -> float:
    """The hold last planned (past newest first), else the file's."""
    return next((p.planned_s for p in past if p.planned_s is not None), exercise.hold_s)


def _smooth_run(past: Sequence[_Past], hold_s: float) -> int:
    """How many of the newest sessions in a row were smooth at hold_s."""
    run = 0
    for p in past:
        if not (_is_smooth(p) and p.planned_s is not None and abs(p.planned_s - hold_s) <= _TOLERANCE_S):
            break
        run += 1
    return run


def _is_smooth(past: _Past) -> bool:
    """The session ran to its end with every hold of the exercise done, nothing skipped, nothing too much."""
    record = past.record
    return past.session.completed and not record.skipped and record.too_much == 0 and \
        0 < record.holds_total <= record.holds_done


def _change(name: str, from_s: float, to_s: float, cause: Cause, settings: ProgressionSettings) -> HoldChange | None:
    if abs(to_s - from_s) <= _TOLERANCE_S:
        return None
    text = spoken_change(name, from_s, to_s, cause, settings.sessions_per_step)
    return HoldChange(name, from_s, to_s, cause, text)


def spoken_change(name: str, from_s: float, to_s: float, cause: Cause, sessions_per_step: int = 2) -> str:
    """The sentence for a change; free of command words."""
    direction = "up" if to_s > from_s else "down"
    if cause is Cause.STEP_UP:
        sessions = "session" if sessions_per_step == 1 else f"{_count_words(sessions_per_step)} sessions"
        because = f"because the last {sessions} went smoothly"
    elif cause is Cause.EASE_OFF:
        because = "because it was too strong last time"
    else:
        because = "to fit the routine's new limits"
    return f"{name}: holds are now {_seconds(to_s)}, {direction} from {_number(from_s)}, {because}."


def _count_words(count: int) -> str:
    return _COUNT_WORDS[count] if count < len(_COUNT_WORDS) else str(count)


def _whole(value_s: float) -> float:
    """Rounded to the nearest whole second, halves up."""
    return float(math.floor(value_s + 0.5))


def _number(value_s: float) -> str:
    return f"{value_s:.0f}" if abs(value_s - round(value_s)) <= _TOLERANCE_S else f"{value_s:.1f}"


def _seconds(value_s: float) -> str:
    text = _number(value_s)
    return f"{text} second" if text == "1" else f"{text} seconds"
