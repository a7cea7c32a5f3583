"""A small driver for the pure Session: a fake clock in test time, and a narrator that finishes on demand."""

from __future__ import annotations

from voicecoach.core.events import Action, Begin, Command, CommandHeard, Say, SpeechFinished, StopSpeech, Tick
from voicecoach.core.routine import Exercise, Routine, Sides
from voicecoach.core.session import Session


def small_routine() -> Routine:
    """Two exercises: one with sides and a rest, one with two reps; an intro and an outro line."""
    twist = Exercise("Twist", "lying face up", ("Lie down.", "Knees to one side."), 10, 1, Sides.BOTH, 5)
    bridge = Exercise("Bridge", "lying face up", ("Lift your hips.",), 20, 2, Sides.NONE, 0)
    return Routine("small", "Small routine", "For tests.", (twist, bridge), ("Hello.",), ("Bye.",))


class Drive:
    """Feeds a Session and keeps every action it returned."""

    def __init__(self, routine: Routine | None = None) -> None:
        self.session = Session(routine or small_routine())
        self.now_s = 0.0
        self.actions: list[Action] = []
        self.pending: list[Say] = []

    def send(self, event: object) -> list[Action]:
        """Tick to now, then deliver the event; record and return the actions."""
        out = self.session.handle(Tick(self.now_s))
        if event is not None:
            out += self.session.handle(event)  # type: ignore[arg-type]
        for action in out:
            if isinstance(action, StopSpeech):
                self.pending.clear()
            elif isinstance(action, Say):
                self.pending.append(action)
        self.actions += out
        return out

    def begin(self) -> list[Action]:
        """Start the routine."""
        return self.send(Begin())

    def at(self, now_s: float) -> list[Action]:
        """Move the clock to now_s (ticking at every deadline on the way)."""
        out: list[Action] = []
        while True:
            deadline = self.session.next_deadline_s()
            if deadline is None or deadline > now_s:
                break
            self.now_s = max(self.now_s, deadline)
            out += self.send(None)
        self.now_s = now_s
        return out + self.send(None)

    def say_done(self) -> list[Action]:
        """The oldest queued utterance finished playing."""
        say = self.pending.pop(0)
        return self.send(SpeechFinished(say.utterance_id))

    def speak_until_timer(self, limit: int = 50) -> None:
        """Finish utterances until a timer runs (or nothing is left to say)."""
        for _ in range(limit):
            if self.session.status().remaining_s is not None or not self.pending:
                return
            self.say_done()

    def hear(self, command: Command, text: str = "") -> list[Action]:
        """The person said a command."""
        return self.send(CommandHeard(command, text or command.value))


def says(actions: list[Action]) -> list[str]:
    """The texts of the Say actions."""
    return [a.text for a in actions if isinstance(a, Say)]
