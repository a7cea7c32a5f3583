"""Routines: what a routine is. Loading and validation live in routine_file.py."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Sides(enum.Enum):
    """Whether an exercise is done once, or on the left and then the right."""

    NONE = "none"
    BOTH = "both"


class Side(enum.Enum):
    """The side a hold is on."""

    LEFT = "left"
    RIGHT = "right"


@dataclass(frozen=True)
class Exercise:
    """One exercise of a routine."""

    name: str
    position: str
    """Where the body starts, e.g. 'lying on your back'."""
    steps: tuple[str, ...]
    """Spoken setup steps, in order."""
    hold_s: float
    """Seconds per hold."""
    reps: int = 1
    sides: Sides = Sides.NONE
    rest_s: float = 0.0
    """Seconds of rest after the exercise."""
    equipment: tuple[str, ...] = ()
    """e.g. ('towel or band',), ('wall',)."""
    cautions: tuple[str, ...] = ()
    """Spoken before the steps."""
    hold_cue: str = ""
    """Spoken as each hold begins, e.g. 'Breathe slowly.'"""
    max_hold_s: float | None = None
    """Cap for progression; None means hold_s is the cap."""
    line: int = 0
    """Line in the routine file where the exercise starts (0: not from a file)."""


@dataclass(frozen=True)
class Routine:
    """A named list of exercises with spoken words around them."""

    name: str
    """Short id used on the command line, e.g. 'lower-back'."""
    title: str
    description: str
    exercises: tuple[Exercise, ...]
    intro: tuple[str, ...] = ()
    """Spoken at the start (safety advice)."""
    outro: tuple[str, ...] = ()
    """Spoken before the summary."""
    source: str = ""
    """Where it was loaded from."""
    language: str = "en"
