"""The one vocabulary of events (into the Session) and actions (out of it)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Command(enum.StrEnum):
    """What a person can say, after phrase matching."""

    STOP = "stop"
    TOO_MUCH = "too_much"
    PAUSE = "pause"
    RESUME = "resume"
    NEXT = "next"
    BACK = "back"
    SKIP = "skip"
    REPEAT = "repeat"
    HOW_LONG = "how_long"
    START = "start"
    QUIT = "quit"

    @property
    def is_safety(self) -> bool:
        """True for the commands that must silence the narrator at once."""
        return self in (Command.STOP, Command.TOO_MUCH)


class LogKind(enum.StrEnum):
    """What a Log records besides a command acted on (whose kind is the Command)."""

    STATE = "state"
    EXERCISE = "exercise"
    HOLD_DONE = "hold_done"
    IGNORED = "ignored"
    START_OVER = "start_over"
    DEVICE = "device"


# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """The clock moved."""

    now_s: float
    """Seconds since the player started."""


@dataclass(frozen=True)
class Begin:
    """Start the routine (the player sends this once, when it is ready)."""


@dataclass(frozen=True)
class CommandHeard:
    """The listener (or the dry run) heard a command."""

    command: Command
    text: str = ""
    """The words as recognized."""
    confidence: float = 1.0
    """0 to 1."""
    audio_time_s: float | None = None
    """Seconds of input audio at the end of the command, when it came from audio."""


@dataclass(frozen=True)
class SpeechFinished:
    """The narrator finished playing an utterance to its end (not sent for aborted ones)."""

    utterance_id: int


@dataclass(frozen=True)
class DeviceProblem:
    """An audio device failed (or came back)."""

    message: str
    recovered: bool = False


@dataclass(frozen=True)
class Utterance:
    """Words a person said (typed, in a dry run), not yet matched to a command."""

    text: str


Event = Tick | Begin | CommandHeard | SpeechFinished | DeviceProblem | Utterance


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Speak this text after whatever is already queued."""

    utterance_id: int
    text: str
    cacheable: bool = False
    """A fixed phrase (countdown number, prompt) worth caching."""


@dataclass(frozen=True)
class StopSpeech:
    """Silence the narrator now and drop everything queued."""


@dataclass(frozen=True)
class Chime:
    """A short non-speech sound."""

    name: str = "ding"


@dataclass(frozen=True)
class Log:
    """Something worth recording (transcript, history)."""

    kind: LogKind | Command
    text: str
    exercise: str | None = None
    value_s: float | None = None
    """A duration that goes with the record (hold reached, seconds left)."""


@dataclass(frozen=True)
class Finish:
    """The routine is over; the player should wind down."""

    summary: str


Action = Say | StopSpeech | Chime | Log | Finish
