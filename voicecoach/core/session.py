"""The routine as a pure state machine: events in, actions out; no I/O, no threads, no clock reads.

Longer than most modules (about 450 lines) on purpose: every rule of the routine (steps, holds and countdowns,
sides, reps, rests, pause and resume, next/back/repeat/skip, how long, the safety stop) acts on the same state, and
splitting the handlers across files would hide which transitions exist. Each handler is a small method.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from voicecoach.core.events import (
    Action,
    Begin,
    Command,
    CommandHeard,
    DeviceProblem,
    Event,
    Finish,
    Log,
    LogKind,
    Say,
    SpeechFinished,
    StopSpeech,
    Tick,
)
from voicecoach.core.plan import Kind, Segment, build_plan, segment_estimate_s
from voicecoach.core.routine import Routine

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_STOP_LINE = "Okay. Rest as long as you like. Say resume, next, or end workout."
_TOO_MUCH_LINE = (
    "Okay, easing off. Slowly come out of the stretch and rest. Say resume, next, or end workout."
)
_PAUSED_LINE = "Paused."
_DEVICE_BACK_LINE = "The sound device is working again. Say resume when you are ready."
_DEVICE_LINE = "The sound device had a problem, so I have paused. Say resume when you are ready."


class State(enum.Enum):
    """Where the session is."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class Phase(enum.Enum):
    """Within a segment: speaking its text, or timing."""

    SPEAKING = "speaking"
    TIMING = "timing"


@dataclass
class ExerciseRecord:
    """What one exercise reached in one session (the session fills it in; the history keeps it)."""

    name: str
    hold_s: float
    """Seconds per hold, as planned for this session (after progression)."""
    holds_total: int
    holds_done: int = 0
    longest_hold_s: float = 0.0
    """Seconds of the longest hold reached, complete or not."""
    skipped: bool = False
    too_much: int = 0
    """How many times "too much" was said during this exercise."""


@dataclass(frozen=True)
class Status:
    """A read-only snapshot for tests and displays."""

    state: State
    segment: int
    phase: Phase
    remaining_s: float | None
    """Seconds left on the running or frozen timer; None when no timer."""


@dataclass
class _Timer:
    """The timer of the current segment, frozen while not running."""

    remaining_s: float
    ends_at_s: float | None = None
    """Clock time when it runs out; None while frozen."""
    spoken: set[str] = field(default_factory=set)
    """Cues already said (numbers, 'halfway')."""

    def left_s(self, now_s: float) -> float:
        """Seconds left at now_s."""
        return self.remaining_s if self.ends_at_s is None else max(0.0, self.ends_at_s - now_s)

    def freeze(self, now_s: float) -> None:
        """Stop the timer, keeping what is left."""
        self.remaining_s = self.left_s(now_s)
        self.ends_at_s = None

    def run(self, now_s: float) -> None:
        """Start or restart the timer from what is left."""
        if self.ends_at_s is None:
            self.ends_at_s = now_s + self.remaining_s


class Session:
    """Every rule of the routine: steps, holds, sides, rests, commands, the safety stop."""

    def __init__(
        self, routine: Routine, resume_at: int | None = None, records: list[ExerciseRecord] | None = None
    ) -> None:
        """resume_at: a segment to offer to pick up from (after a crash); records: what was done before it."""
        self.routine = routine
        self.plan: list[Segment] = build_plan(routine)
        self.records = records or [
            ExerciseRecord(e.name, e.hold_s, sum(1 for s in self.plan if s.exercise == i and s.kind is Kind.HOLD))
            for i, e in enumerate(routine.exercises)
        ]
        self._resume_at = resume_at if resume_at is not None and 0 < resume_at < len(self.plan) else None
        self._state = State.READY
        self._index = 0
        self._phase = Phase.SPEAKING
        self._timer: _Timer | None = None
        self._awaiting: int | None = None
        self._next_id = 0
        self._now_s = 0.0
        self._started_s: float | None = None
        self._ended_early = False

    # --- queries -----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def ended_early(self) -> bool:
        """True once the workout was ended before its last segment."""
        return self._ended_early

    @property
    def offering_resume(self) -> bool:
        """True while waiting for 'resume' or 'start over' after a crash."""
        return self._state is State.READY and self._resume_at is not None

    def status(self) -> Status:
        """A snapshot of where the session is."""
        left = None if self._timer is None else self._timer.left_s(self._now_s)
        return Status(self._state, self._index, self._phase, left)

    def next_deadline_s(self) -> float | None:
        """Clock time of the next cue or timer end, so a player can tick exactly then."""
        timer = self._timer
        if self._state is not State.RUNNING or timer is None or timer.ends_at_s is None:
            return None
        segment = self.plan[self._index]
        cues = [timer.ends_at_s]
        if segment.halfway and "halfway" not in timer.spoken:
            cues.append(timer.ends_at_s - segment.duration_s / 2)
        for number in range(1, segment.countdown_from + 1):
            if str(number) not in timer.spoken:
                cues.append(timer.ends_at_s - number)
        return max(self._now_s, min(cues))

    def remaining_routine_s(self) -> float:
        """Rough seconds left in the whole routine."""
        current = self._timer.left_s(self._now_s) if self._timer else segment_estimate_s(self.plan[self._index])
        return current + sum(segment_estimate_s(s) for s in self.plan[self._index + 1 :])

    # --- the one entry point -----------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Take one event; return what to do."""
        if isinstance(event, Tick):
            self._now_s = max(self._now_s, event.now_s)
            return self._on_tick()
        if isinstance(event, Begin):
            return self._begin() if self._state is State.READY else []
        if isinstance(event, SpeechFinished):
            return self._on_speech_finished(event.utterance_id)
        if isinstance(event, CommandHeard):
            return self._on_command(event)
        if isinstance(event, DeviceProblem):
            return self._on_device_problem(event)
        return []

    # --- events ------------------------------------------------------------------------------

    def _begin(self, at: int = 0) -> list[Action]:
        if self._resume_at is not None and at == 0:
            return [self._say(self._offer_line())]
        self._started_s, self._resume_at = self._now_s, None
        return [*self._set_state(State.RUNNING), *self._enter(at)]

    def _offer_line(self) -> str:
        exercise = self.plan[self._resume_at or 0].exercise
        where = "the introduction" if exercise is None else self.routine.exercises[exercise].name
        return f"Welcome back. Last time ended during {where}. Say resume to pick up there, or start over."

    def _on_tick(self) -> list[Action]:
        timer = self._timer
        if self._state is not State.RUNNING or timer is None or timer.ends_at_s is None:
            return []
        segment = self.plan[self._index]
        left = timer.left_s(self._now_s)
        if left <= 0:
            return self._timer_done(segment)
        actions: list[Action] = []
        if segment.halfway and "halfway" not in timer.spoken and left <= segment.duration_s / 2:
            timer.spoken.add("halfway")
            if left > segment.countdown_from + 1:
                actions.append(self._say("Halfway.", cacheable=True))
        due = [n for n in range(1, segment.countdown_from + 1) if str(n) not in timer.spoken and left <= n]
        if due:
            timer.spoken.update(str(n) for n in due)
            actions.append(self._say(_NUMBER_WORDS[min(due)].capitalize() + ".", cacheable=True))
        return actions

    def _on_speech_finished(self, utterance_id: int) -> list[Action]:
        if self._state is not State.RUNNING or utterance_id != self._awaiting:
            return []
        self._awaiting = None
        segment = self.plan[self._index]
        if segment.kind is Kind.SPEAK:
            return self._enter(self._index + 1)
        self._phase = Phase.TIMING
        self._timer = _Timer(segment.duration_s)
        self._timer.run(self._now_s)
        return []

    def _on_device_problem(self, event: DeviceProblem) -> list[Action]:
        log = Log(LogKind.DEVICE, event.message)
        if event.recovered and self._state is State.PAUSED:
            return [log, self._say(_DEVICE_BACK_LINE)]
        if event.recovered or self._state is not State.RUNNING:
            return [log]
        return [log, *self._freeze(State.PAUSED), self._say(_DEVICE_LINE)]

    # --- commands ----------------------------------------------------------------------------

    def _on_command(self, heard: CommandHeard) -> list[Action]:
        command = heard.command
        if command.is_safety:
            return self._safety_stop(command)
        handler = {
            Command.PAUSE: self._pause,
            Command.RESUME: self._resume,
            Command.NEXT: self._next,
            Command.BACK: self._back,
            Command.SKIP: self._skip,
            Command.REPEAT: self._repeat,
            Command.HOW_LONG: self._how_long,
            Command.START: self._start,
            Command.QUIT: self._quit,
        }[command]
        actions = handler()
        if actions is None:
            return [Log(LogKind.IGNORED, f"{command.value} ignored while {self._state.value}")]
        return actions

    def _safety_stop(self, command: Command) -> list[Action]:
        exercise = self._exercise_name()
        log = Log(command, f"{command.value} heard", exercise, self._hold_elapsed_s())
        if command is Command.TOO_MUCH and self._current_exercise() is not None:
            self.records[self._current_exercise() or 0].too_much += 1
        if self._state in (State.READY, State.STOPPED, State.FINISHED):
            return [StopSpeech(), log]
        line = _TOO_MUCH_LINE if command is Command.TOO_MUCH else _STOP_LINE
        return [*self._freeze(State.STOPPED), log, self._say(line)]

    def _pause(self) -> list[Action] | None:
        if self._state is not State.RUNNING:
            return None
        return [*self._freeze(State.PAUSED), self._say(_PAUSED_LINE, cacheable=True)]

    def _resume(self) -> list[Action] | None:
        if self._state is State.READY and self._resume_at is not None:
            return [StopSpeech(), *self._begin(self._resume_at)]
        if self._state not in (State.PAUSED, State.STOPPED):
            return None
        actions = self._set_state(State.RUNNING)
        timer = self._timer
        if self._phase is Phase.TIMING and timer is not None:
            timer.run(self._now_s)
            left = math.ceil(timer.left_s(self._now_s))
            return [*actions, StopSpeech(), self._say(f"Resuming. {left} seconds left.")]
        return [*actions, StopSpeech(), *self._enter(self._index)]

    def _next(self) -> list[Action] | None:
        if self._state not in (State.RUNNING, State.PAUSED, State.STOPPED):
            return None
        self._note_hold_left_early()
        target = self._index + 1
        while target < len(self.plan) and self.plan[target].kind is Kind.RELAX:
            target += 1
        return [StopSpeech(), *self._set_state(State.RUNNING), *self._enter(target)]

    def _back(self) -> list[Action] | None:
        if self._state not in (State.RUNNING, State.PAUSED):
            return None
        self._note_hold_left_early()
        target = self._index - 1
        while target > 0 and self.plan[target].kind in (Kind.RELAX, Kind.REST):
            target -= 1
        return [StopSpeech(), *self._set_state(State.RUNNING), *self._enter(max(0, target))]

    def _skip(self) -> list[Action] | None:
        if self._state not in (State.RUNNING, State.PAUSED):
            return None
        current = self._current_exercise()
        target = self._index + 1
        if current is not None:
            self.records[current].skipped = self.records[current].holds_done < self.records[current].holds_total
            while target < len(self.plan) and self.plan[target].exercise == current:
                target += 1
        else:
            while target < len(self.plan) and self.plan[target].exercise is None:
                target += 1
        return [StopSpeech(), *self._set_state(State.RUNNING), *self._enter(target)]

    def _repeat(self) -> list[Action] | None:
        if self._state not in (State.RUNNING, State.PAUSED):
            return None
        segment = self.plan[self._index]
        if self._state is State.RUNNING and self._phase is Phase.SPEAKING:
            return [StopSpeech(), *self._enter(self._index)]
        text = segment.text or "Relax for a moment."
        if segment.kind is Kind.HOLD and segment.exercise is not None:
            steps = self.routine.exercises[segment.exercise].steps
            text = steps[-1] if steps else text
        return [StopSpeech(), self._say(text)]

    def _how_long(self) -> list[Action] | None:
        if self._state not in (State.RUNNING, State.PAUSED):
            return None
        timer = self._timer
        if timer is not None:
            left = math.ceil(timer.left_s(self._now_s))
            prefix = "Paused with" if self._state is State.PAUSED else "About" if left > 10 else ""
            text = f"{prefix} {left} seconds left.".strip()
            return [self._say(text[0].upper() + text[1:])]
        minutes = max(1, round(self.remaining_routine_s() / 60))
        unit = "minute" if minutes == 1 else "minutes"
        return [self._say(f"No timer right now. About {minutes} {unit} left in the routine.")]

    def _start(self) -> list[Action] | None:
        if self._state is not State.READY:
            return None
        if self._resume_at is not None:
            self._resume_at = None
            self.records = [ExerciseRecord(r.name, r.hold_s, r.holds_total) for r in self.records]
            return [StopSpeech(), Log(LogKind.START_OVER, "starting over instead of resuming"), *self._begin()]
        return self._begin()

    def _quit(self) -> list[Action] | None:
        if self._state in (State.READY, State.FINISHED):
            return None
        self._note_hold_left_early()
        return [StopSpeech(), *self._finish(early=True)]

    # --- moving through the plan -------------------------------------------------------------

    def _enter(self, index: int) -> list[Action]:
        """Start segment `index` (or finish past the end)."""
        if index >= len(self.plan):
            return self._finish(early=False)
        previous = self._current_exercise()
        self._index, self._phase, self._timer, self._awaiting = index, Phase.SPEAKING, None, None
        segment = self.plan[index]
        actions: list[Action] = []
        if segment.exercise is not None and segment.exercise != previous and segment.kind is not Kind.REST:
            actions.append(Log(LogKind.EXERCISE, segment.text, self._exercise_name()))
        if segment.kind is Kind.RELAX:
            self._phase, self._timer = Phase.TIMING, _Timer(segment.duration_s)
            self._timer.run(self._now_s)
            return actions
        say = self._say(segment.text)
        self._awaiting = say.utterance_id
        return [*actions, say]

    def _timer_done(self, segment: Segment) -> list[Action]:
        actions: list[Action] = []
        if segment.kind is Kind.HOLD and segment.exercise is not None:
            record = self.records[segment.exercise]
            record.holds_done += 1
            record.longest_hold_s = max(record.longest_hold_s, segment.duration_s)
            actions.append(Log(LogKind.HOLD_DONE, segment.side.value if segment.side else "hold",
                               record.name, segment.duration_s))
        if segment.end_text:
            actions.append(self._say(segment.end_text, cacheable=True))
        return actions + self._enter(self._index + 1)

    def _finish(self, early: bool) -> list[Action]:
        self._timer, self._awaiting, self._ended_early = None, None, early
        summary = self._summary(early)
        return [*self._set_state(State.FINISHED), self._say(summary), Finish(summary)]

    def _summary(self, early: bool) -> str:
        done = [r for r in self.records if r.holds_total and r.holds_done >= r.holds_total]
        skipped = [r.name for r in self.records if r.skipped]
        sore = [r.name for r in self.records if r.too_much]
        minutes = max(1, round((self._now_s - (self._started_s or 0.0)) / 60))
        parts = ["You ended the workout early." if early else "Routine complete. Well done."]
        parts.append(f"You finished {len(done)} of {len(self.records)} exercises in about {minutes} "
                     f"minute{'s' if minutes != 1 else ''}.")
        if skipped:
            parts.append(f"Skipped: {', '.join(skipped)}.")
        if sore:
            parts.append(f"Take it easier with {', '.join(sore)} next time.")
        return " ".join(parts)

    # --- helpers -----------------------------------------------------------------------------

    def _freeze(self, state: State) -> list[Action]:
        if self._timer is not None:
            self._timer.freeze(self._now_s)
        self._awaiting = None
        return [StopSpeech(), *self._set_state(state)]

    def _set_state(self, state: State) -> list[Action]:
        if state is self._state:
            return []
        self._state = state
        return [Log(LogKind.STATE, state.value)]

    def _say(self, text: str, cacheable: bool = False) -> Say:
        self._next_id += 1
        return Say(self._next_id, text, cacheable)

    def _current_exercise(self) -> int | None:
        return self.plan[self._index].exercise if self._state is not State.READY else None

    def _exercise_name(self) -> str | None:
        current = self._current_exercise()
        return None if current is None else self.routine.exercises[current].name

    def _hold_elapsed_s(self) -> float | None:
        segment = self.plan[self._index]
        if segment.kind is not Kind.HOLD or self._timer is None:
            return None
        return round(segment.duration_s - self._timer.left_s(self._now_s), 1)

    def _note_hold_left_early(self) -> None:
        elapsed = self._hold_elapsed_s()
        current = self._current_exercise()
        if elapsed is not None and current is not None:
            record = self.records[current]
            record.longest_hold_s = max(record.longest_hold_s, elapsed)
