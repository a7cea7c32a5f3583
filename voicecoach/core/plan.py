"""A routine flattened into the segments the session walks through."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voicecoach.core.routine import Exercise, Routine, Side, Sides

_WORDS_PER_S = 2.7
"""eSpeak-NG's default rate (175 words a minute) less pauses at punctuation."""
_RELAX_S = 3.0
"""Silent seconds between two holds of one exercise (come out, breathe, switch)."""
_HALFWAY_MIN_HOLD_S = 20.0
_LONG_COUNTDOWN_MIN_S = 10.0


class Kind(enum.Enum):
    """What a segment does."""

    SPEAK = "speak"
    """Say the text; done when it has been spoken."""
    HOLD = "hold"
    """Say the text, then time a hold with a countdown."""
    RELAX = "relax"
    """A short silent gap between holds."""
    REST = "rest"
    """Say the text, then time a rest."""


@dataclass(frozen=True)
class Segment:
    """One step of the flattened routine."""

    kind: Kind
    text: str
    exercise: int | None = None
    """Index into Routine.exercises; None for the intro and outro."""
    duration_s: float = 0.0
    """Timed seconds (HOLD, RELAX, REST)."""
    side: Side | None = None
    rep: int = 1
    countdown_from: int = 0
    """Speak the numbers from this one down to one at the end of the timer (0: none)."""
    halfway: bool = False
    end_text: str = ""
    """Said when the timer runs out."""


def estimate_speech_s(text: str) -> float:
    """Rough seconds the narrator needs to say the text."""
    words = len(text.split())
    return 0.0 if words == 0 else 0.3 + words / _WORDS_PER_S


def build_plan(routine: Routine) -> list[Segment]:
    """Flatten a routine: intro, each exercise (announce, cautions, steps, holds, rest), outro."""
    plan = [Segment(Kind.SPEAK, f"{routine.title}.")]
    plan += [Segment(Kind.SPEAK, line) for line in routine.intro]
    total = len(routine.exercises)
    for index, exercise in enumerate(routine.exercises):
        plan += _exercise_segments(index, total, exercise)
        if exercise.rest_s > 0 and index + 1 < total:
            following = routine.exercises[index + 1].name
            text = f"Rest for {_seconds(exercise.rest_s)}. Coming up: {following}."
            plan.append(Segment(Kind.REST, text, index, exercise.rest_s, countdown_from=3))
    plan += [Segment(Kind.SPEAK, line) for line in routine.outro]
    return plan


def _exercise_segments(index: int, total: int, exercise: Exercise) -> list[Segment]:
    announce = f"Exercise {index + 1} of {total}: {exercise.name}."
    if exercise.equipment:
        announce += f" You will need {' and '.join(_with_article(e) for e in exercise.equipment)}."
    segments = [Segment(Kind.SPEAK, announce, index)]
    segments += [Segment(Kind.SPEAK, line, index) for line in exercise.cautions]
    segments += [Segment(Kind.SPEAK, line, index) for line in exercise.steps]
    holds = _hold_segments(index, exercise)
    for number, hold in enumerate(holds):
        if number:
            segments.append(Segment(Kind.RELAX, "", index, _RELAX_S))
        segments.append(hold)
    return segments


def _hold_segments(index: int, exercise: Exercise) -> list[Segment]:
    sides: list[Side | None] = [Side.LEFT, Side.RIGHT] if exercise.sides is Sides.BOTH else [None]
    countdown = 5 if exercise.hold_s >= _LONG_COUNTDOWN_MIN_S else 3
    holds = []
    for rep in range(1, exercise.reps + 1):
        for side in sides:
            text = _hold_text(exercise, rep, side)
            holds.append(
                Segment(
                    Kind.HOLD,
                    text,
                    index,
                    exercise.hold_s,
                    side=side,
                    rep=rep,
                    countdown_from=min(countdown, int(exercise.hold_s) - 1),
                    halfway=exercise.hold_s >= _HALFWAY_MIN_HOLD_S,
                    end_text="And release.",
                )
            )
    return holds


def _hold_text(exercise: Exercise, rep: int, side: Side | None) -> str:
    parts = []
    if side is Side.LEFT:
        parts.append("Left side.")
    elif side is Side.RIGHT:
        parts.append("Now switch to the right side.")
    if exercise.reps > 1 and side in (None, Side.LEFT):
        parts.append(f"Round {rep} of {exercise.reps}.")
    parts.append(f"Hold for {_seconds(exercise.hold_s)}.")
    if exercise.hold_cue:
        parts.append(exercise.hold_cue)
    return " ".join(parts)


def _seconds(value_s: float) -> str:
    whole = round(value_s)
    if whole >= 60 and whole % 60 == 0:
        minutes = whole // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"{whole} seconds"


def _with_article(item: str) -> str:
    return f"an {item}" if item[0] in "aeiou" else f"a {item}"


def segment_estimate_s(segment: Segment) -> float:
    """Rough seconds a segment takes when nothing interrupts it."""
    spoken = estimate_speech_s(segment.text) + estimate_speech_s(segment.end_text)
    return spoken + segment.duration_s


def exercise_estimate_s(plan: list[Segment], exercise: int) -> float:
    """Rough seconds for one exercise, including its rest."""
    return sum(segment_estimate_s(s) for s in plan if s.exercise == exercise)
