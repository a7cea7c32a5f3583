"""Dry runs with no audio hardware: a narrator that only pretends to speak, and commands as text."""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from voicecoach.core.commands import Vocabulary, normalize
from voicecoach.core.events import Command, CommandHeard, SpeechFinished, Utterance
from voicecoach.core.plan import estimate_speech_s
from voicecoach.core.routine import Routine
from voicecoach.runtime.clock import Clock, EventQueue, RealClock, VirtualClock
from voicecoach.runtime.player import Player
from voicecoach.runtime.transcript import stdout_transcript
from voicecoach.settings import AppSettings
from voicecoach.store.recording import prepare_session

_SCRIPT_ITEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\S.*?)\s*$")
_SECOND_ITEM = re.compile(r"(?:^|[\s;,|/])\d+(?:\.\d+)?\s*:")
"""Another SECONDS: inside the words of an item: the items were joined with the wrong separator."""
_END_OF_INPUT = "end of input"
"""What the transcript shows as heard when Ctrl-D ends a typed dry run."""


class ScriptError(ValueError):
    """A command script is malformed (one clear line)."""


@dataclass(frozen=True)
class ScriptedUtterance:
    """Words said at a routine time."""

    at_s: float
    text: str


class SimulatedNarrator:
    """Takes as long as real speech would (estimated from the words), on whatever clock the queue has."""

    def __init__(self, events: EventQueue) -> None:
        self._events = events
        self._busy_until_s = 0.0
        self._pending: set[int] = set()
        self._lock = threading.Lock()

    def say(self, utterance_id: int, text: str, cacheable: bool) -> None:
        """Schedule the end of this utterance after everything already queued."""
        with self._lock:
            start = max(self._events.clock.now(), self._busy_until_s)
            self._busy_until_s = start + estimate_speech_s(text)
            self._pending.add(utterance_id)
            self._events.post(SpeechFinished(utterance_id), at_s=self._busy_until_s)

    def stop(self) -> None:
        """Cut everything: queued ends are withdrawn."""
        with self._lock:
            pending = set(self._pending)
            self._events.cancel(lambda e: isinstance(e, SpeechFinished) and e.utterance_id in pending)
            self._pending.clear()
            self._busy_until_s = self._events.clock.now()

    def chime(self, name: str) -> None:
        """Nothing to play in a dry run."""

    def idle(self) -> bool:
        """True once the last scheduled utterance has ended."""
        return self._events.clock.now() >= self._busy_until_s


_ONE_PER_LINE = "one SECONDS:WORDS per line, e.g. 12:pause"
_COMMA_SEPARATED = 'SECONDS:WORDS items separated by commas, e.g. "12:pause, 20:resume"'


def parse_script(items: Iterable[str], source: str, layout: str = _ONE_PER_LINE) -> list[ScriptedUtterance]:
    """Parse 'SECONDS:words' items; blank items and '#' comments are skipped. `layout` says how items are written."""
    script = []
    for number, item in enumerate(items, start=1):
        if not item.strip() or item.lstrip().startswith("#"):
            continue
        found = _SCRIPT_ITEM.match(item)
        where = f"{source}:{number}: {item.strip()!r}"
        if found is None:
            raise ScriptError(f"{where} is not a timed command (expected SECONDS:WORDS, e.g. 12:pause)")
        if _SECOND_ITEM.search(found.group(2)):
            raise ScriptError(f"{where} holds more than one timed command (expected {layout})")
        if not normalize(found.group(2)):
            raise ScriptError(f"{where} has no words after the colon (expected SECONDS:WORDS, e.g. 12:pause)")
        script.append(ScriptedUtterance(float(found.group(1)), found.group(2)))
    return sorted(script, key=lambda s: s.at_s)


def parse_commands_option(value: str) -> list[ScriptedUtterance]:
    """Parse --commands "12:pause, 20:resume, 45:too much"."""
    return parse_script(value.split(","), "--commands", _COMMA_SEPARATED)


def post_script(events: EventQueue, script: list[ScriptedUtterance]) -> None:
    """Put each scripted utterance into the queue at its time."""
    for item in script:
        events.post(Utterance(item.text), at_s=item.at_s)


def read_typed_lines(stream: TextIO, events: EventQueue, end_at_eof: bool = False) -> threading.Thread:
    """Start a thread that posts each typed line as something the person said, now.

    end_at_eof: the end of the input (Ctrl-D at a terminal) ends the workout, as "end workout" would.
    """

    def pump() -> None:
        for line in stream:
            if line.strip():
                events.post(Utterance(line.strip()))
        if end_at_eof:
            print("End of input: ending the workout.", file=sys.stderr)
            events.post(CommandHeard(Command.QUIT, _END_OF_INPUT))

    thread = threading.Thread(target=pump, name="typed-commands", daemon=True)
    thread.start()
    return thread


def run_dry(routine: Routine, vocabulary: Vocabulary, args: argparse.Namespace, settings: AppSettings) -> int:
    """`voicecoach run --simulate`: virtual time for scripted commands, real time when typed at a terminal."""
    script = _script_from(args)
    clock: Clock = VirtualClock() if script is not None else RealClock(args.speed or 1.0)
    events = EventQueue(clock)
    if script is not None:
        post_script(events, script)
    else:
        at_terminal = sys.stdin is not None and sys.stdin.isatty()
        if at_terminal:
            print("Dry run: type what you would say (next, pause, too much, ...), one per line; Ctrl-D ends it.",
                  file=sys.stderr)  # fmt: skip
        else:
            print("Dry run: type what you would say (next, pause, too much, ...), one per line.", file=sys.stderr)
        read_typed_lines(sys.stdin, events, end_at_eof=at_terminal)
    progression = settings.progression if args.record else None
    session, observers, close = prepare_session(routine, record=args.record, progression=progression)
    try:
        Player(session, SimulatedNarrator(events), events, vocabulary, stdout_transcript(args.json), observers).run()
    finally:
        close()
    return 0


def _script_from(args: argparse.Namespace) -> list[ScriptedUtterance] | None:
    """The scripted commands, or None for an interactive run."""
    if args.commands is not None:
        return parse_commands_option(args.commands)
    if args.speed is not None:
        return None
    if sys.stdin is None or not sys.stdin.isatty():
        lines = sys.stdin.read().splitlines() if sys.stdin is not None else []
        return parse_script(lines, "<stdin>")
    return None
