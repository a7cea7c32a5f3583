"""The player: one event queue, one loop, feeding the Session and carrying out its actions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from voicecoach.core.commands import Vocabulary
from voicecoach.core.events import (
    Action,
    Begin,
    Chime,
    CommandHeard,
    DeviceProblem,
    Event,
    Finish,
    Log,
    Say,
    SpeechFinished,
    StopSpeech,
    Tick,
    Utterance,
)
from voicecoach.core.session import Session
from voicecoach.runtime.clock import EventQueue
from voicecoach.runtime.transcript import Transcript

_LOGGER = logging.getLogger(__name__)
_IDLE_WAKE_S = 0.5
"""How often the loop wakes with nothing to do (real time): the narrator going idle, a fresh status."""


class Narrator(Protocol):
    """Turns text into sound; reports each utterance that played to its end."""

    def say(self, utterance_id: int, text: str, cacheable: bool) -> None:
        """Queue an utterance (never blocks)."""
        ...

    def stop(self) -> None:
        """Silence now and drop everything queued."""
        ...

    def chime(self, name: str) -> None:
        """Play a short sound."""
        ...

    def idle(self) -> bool:
        """True when nothing is playing or queued."""
        ...


class Player:
    """Runs one session to its end."""

    def __init__(
        self,
        session: Session,
        narrator: Narrator,
        events: EventQueue,
        vocabulary: Vocabulary,
        transcript: Transcript,
        observers: Sequence[Callable[[float, Action], None]] = (),
    ) -> None:
        self.session = session
        self.narrator = narrator
        self.events = events
        self.vocabulary = vocabulary
        self.transcript = transcript
        self.observers = list(observers)
        self.finished = False
        self.summary = ""

    def run(self) -> str:
        """Play the routine until it finishes and the narrator is quiet; return the summary."""
        self._dispatch(Begin())
        while not (self.finished and self.narrator.idle()):
            deadline = self.session.next_deadline_s()
            if not self.events.clock.virtual:
                wake = self.events.clock.now() + _IDLE_WAKE_S
                deadline = wake if deadline is None else min(deadline, wake)
            event = self.events.next_event(deadline)
            self._dispatch(Tick(self.events.clock.now()))
            if event is not None:
                self._dispatch(event)
            elif deadline is None and self.events.clock.virtual:
                self._record("end_of_script", self._waiting_reason())
                break
        return self.summary

    def _waiting_reason(self) -> str:
        state = self.session.state.value
        return f"the commands ran out while {state}; a person would now say resume, next or end workout"

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Utterance):
            matched = self._match(event.text)
            if matched is None:
                return
            event = matched
        if isinstance(event, CommandHeard):
            self._record("heard", event.text, command=event.command.value, confidence=event.confidence)
        elif isinstance(event, DeviceProblem):
            self._record("device", event.message)
        for action in self.session.handle(event):
            self._carry_out(action)
            self._notify(action)

    def _match(self, text: str) -> CommandHeard | None:
        found = self.vocabulary.match(text)
        if found is None:
            self._record("heard", text)
            return None
        return CommandHeard(found.command, text)

    def _carry_out(self, action: Action) -> None:
        if isinstance(action, StopSpeech):
            self.narrator.stop()
            self._record("stop_speech")
        elif isinstance(action, Say):
            self.narrator.say(action.utterance_id, action.text, action.cacheable)
            self._record("say", action.text, id=action.utterance_id)
        elif isinstance(action, Chime):
            self.narrator.chime(action.name)
            self._record("chime", action.name)
        elif isinstance(action, Log):
            self._record(action.kind, action.text, exercise=action.exercise, value_s=action.value_s)
        elif isinstance(action, Finish):
            self.finished, self.summary = True, action.summary
            self._record("finish", action.summary)

    def _notify(self, action: Action) -> None:
        now = self.events.clock.now()
        for observer in self.observers:
            try:
                observer(now, action)
            except Exception:  # an observer (history, display) must never stop the routine
                _LOGGER.exception("observer %r failed on %r", observer, action)

    def _record(self, kind: str, text: str = "", **extra: object) -> None:
        self.transcript.record(self.events.clock.now(), kind, text, **extra)


@dataclass(frozen=True)
class SpeechDone:
    """A narrator callback that posts SpeechFinished(utterance_id) into the event queue."""

    events: EventQueue

    def __call__(self, utterance_id: int) -> None:
        """Report that an utterance played to its end."""
        self.events.post(SpeechFinished(utterance_id))
