"""`voicecoach serve` and `voicecoach run` by voice: idle listening, a routine on 'start', and the routine itself."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from voicecoach.core.commands import Vocabulary, load_vocabulary, normalize
from voicecoach.core.events import Command, CommandHeard
from voicecoach.core.routine import Routine
from voicecoach.runtime.clock import EventQueue, RealClock
from voicecoach.runtime.player import Player
from voicecoach.runtime.rig import open_rig
from voicecoach.runtime.transcript import stdout_transcript
from voicecoach.settings import AppSettings
from voicecoach.store.history import data_dir
from voicecoach.store.levels import LevelMemory
from voicecoach.store.recording import prepare_session

_LOGGER = logging.getLogger(__name__)


def run_live(routine: Routine, vocabulary: Vocabulary, settings: AppSettings, json_lines: bool = False) -> int:
    """`voicecoach run ROUTINE`: speak and listen on the audio devices until the routine ends."""
    events = EventQueue(RealClock())
    rig = open_rig(settings.voice, vocabulary, events, LevelMemory(data_dir()))
    session, observers, close = prepare_session(routine, record=settings.history, progression=settings.progression)
    try:
        rig.start()
        Player(session, rig.narrator, events, vocabulary, stdout_transcript(json_lines), observers).run()
    finally:
        rig.close()
        close()
    return 0


def routine_starters(vocabulary: Vocabulary) -> tuple[Vocabulary, dict[str, str]]:
    """The vocabulary with 'start NAME' for every routine, and each such phrase's routine name."""
    from voicecoach.files.library import list_routines

    by_phrase = {f"start {ref.name.replace('-', ' ')}": ref.name for ref in list_routines()}
    return vocabulary.extended(Command.START, list(by_phrase)), by_phrase


def chosen_routine(heard: CommandHeard, by_phrase: dict[str, str], default: str) -> str:
    """The routine a 'start ...' command names, else the default."""
    words = " ".join(normalize(heard.text))
    for phrase, name in sorted(by_phrase.items(), key=lambda item: -len(item[0])):
        if phrase in words:
            return name
    return default


class _Terminated(BaseException):
    """SIGTERM (the service stopping): unwind like Ctrl-C, closing the devices and the history on the way."""


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the clean-up short
    raise _Terminated


def serve(settings: AppSettings, once: bool = False, json_lines: bool = False) -> int:
    """Idle listening; run a routine on 'start'; idle again when it ends; exit 0 on SIGTERM.

    A routine cut short by SIGTERM keeps its saved position, as after a power cut: its next start offers to resume.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return _serve(settings, once, json_lines)
    except _Terminated:
        print("voicecoach: stopped (SIGTERM)", file=sys.stderr)
        return 0
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _serve(settings: AppSettings, once: bool, json_lines: bool) -> int:
    """The serve loop: idle until 'start', play the routine, idle again (until --once's routine ends)."""
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import RoutineFileError, load_routine_file

    default = settings.routine
    load_routine_file(find_routine(default))  # a broken default is a start-up error, not a surprise at "start"
    vocabulary, by_phrase = routine_starters(load_vocabulary("en"))
    events = EventQueue(RealClock())
    rig = open_rig(settings.voice, vocabulary, events, LevelMemory(data_dir()))
    try:
        rig.start()
        while True:
            transcript = stdout_transcript(json_lines)
            transcript.record(events.clock.now(), "idle", f'listening: say "start" to begin {default}')
            name = chosen_routine(_wait_for_start(events), by_phrase, default)
            try:
                routine = load_routine_file(find_routine(name))
            except RoutineFileError as exc:
                _LOGGER.warning("cannot start %s:\n%s", name, exc)
                continue
            session, observers, close = prepare_session(routine, record=settings.history,
                                                        progression=settings.progression)  # fmt: skip
            try:
                Player(session, rig.narrator, events, vocabulary, transcript, observers).run()
            finally:
                close()
            if once:
                return 0
    finally:
        rig.close()


def _wait_for_start(events: EventQueue) -> CommandHeard:
    """Block until a START command arrives; everything else heard while idle is dropped."""
    while True:
        event = events.next_event(events.clock.now() + 3600.0)
        if isinstance(event, CommandHeard) and event.command is Command.START:
            return event
