"""The command line: parsing, settings built once, and the run, history and doctor commands (list, show and check
are in routines.py; devices, listen, serve and model in voice.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from voicecoach import __version__
from voicecoach.cli import voice
from voicecoach.cli.options import add_voice_options, build_settings
from voicecoach.cli.routines import cmd_check, cmd_list, cmd_show, print_problems
from voicecoach.core.commands import Vocabulary, VocabularyError, load_vocabulary
from voicecoach.core.progression import ProgressionSettings
from voicecoach.core.routine import Routine
from voicecoach.files.config import ConfigError, load_config
from voicecoach.files.library import find_routine
from voicecoach.files.routine_file import RoutineFileError, load_routine_file
from voicecoach.runtime.dry_run import ScriptError
from voicecoach.runtime.rig import DEVICE_HELP, DeviceTrouble, LiveError
from voicecoach.settings import AppSettings
from voicecoach.store.history import HistoryError

_LOGGER = logging.getLogger(__name__)
_EXIT_USER_ERROR = 2
_EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a Unix tool whose reader went away (`... | head`)."""


class UserError(Exception):
    """A mistake the user can fix: printed as one line (or one per problem), exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m voicecoach`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace, AppSettings], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return _EXIT_USER_ERROR
    try:
        return _handle(handler, args)
    except BrokenPipeError:
        return _reader_gone()


def _handle(handler: Callable[[argparse.Namespace, AppSettings], int], args: argparse.Namespace) -> int:
    """Run one command with the settings of the config file under the command line; user errors are one line."""
    try:
        settings = AppSettings()
        if handler is not cmd_doctor:  # doctor reports the config file's problems as checks of its own
            try:
                settings = build_settings(args, load_config(args.config))
            except ValueError as exc:
                raise UserError(str(exc)) from None
        return handler(args, settings)
    except (RoutineFileError, ConfigError) as exc:
        print_problems(exc)
        return _EXIT_USER_ERROR
    except DeviceTrouble as exc:
        print(f"voicecoach: {str(exc).rstrip('.')}. What to do: {DEVICE_HELP}{_without_audio(args)}.",
              file=sys.stderr)  # one line: scripts and logs take a device failure as one line
        return _EXIT_USER_ERROR
    except (UserError, VocabularyError, ScriptError, HistoryError, LiveError) as exc:
        print(f"voicecoach: {exc}", file=sys.stderr)
        return _EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("voicecoach: interrupted", file=sys.stderr)
        return 130


def _without_audio(args: argparse.Namespace) -> str:
    """'; without audio: ...' for a command that has a way to try it without devices, else ''."""
    alternative = getattr(args, "without_audio", None)
    return f"; without audio: {alternative.format(**vars(args))}" if alternative else ""


def _reader_gone() -> int:
    """The reader of standard output went away: end quietly, as Unix tools do, with no traceback at exit either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout at exit: let that flush go nowhere
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (tests capture it)
        pass
    return _EXIT_BROKEN_PIPE


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(prog="voicecoach", description="Hands-free, voice-guided stretching routines.")
    parser.add_argument("--debug", action="store_true", help="show debug logs and tracebacks")
    parser.add_argument("--version", action="version", version=f"voicecoach {__version__}")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="config file (default: $VOICECOACH_CONFIG or ~/.config/voicecoach/config.toml)")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("list", help="list built-in and user routines")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("show", help="show a routine's exercises and times")
    p.add_argument("routine", help="routine name or YAML file")
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("check", help="validate routines; warn about command words the narrator would say")
    p.add_argument("routines", nargs="+", metavar="ROUTINE_OR_FILE", help="routine name or YAML file")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings (notes never count)")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("history", help="show the last sessions")
    p.add_argument("--limit", type=int, default=15, help="how many sessions")
    p.set_defaults(handler=cmd_history)

    p = sub.add_parser("run", help="play a routine (by voice, or --simulate for a dry run)")
    p.add_argument("routine", help="routine name or YAML file")
    _add_run_options(p)
    add_voice_options(p)
    p.set_defaults(handler=cmd_run, without_audio="voicecoach run {routine} --simulate (a dry run, typed commands)")

    p = sub.add_parser("doctor", help="check the devices, engines and files voice mode needs")
    p.set_defaults(handler=cmd_doctor)

    voice.add_commands(sub)
    return parser


def _add_run_options(p: argparse.ArgumentParser) -> None:
    sim = p.add_argument_group("dry run (no audio hardware)")
    sim.add_argument("--simulate", action="store_true", help="print what would be said; commands come as text")
    sim.add_argument(
        "--commands",
        metavar="LIST",
        help='timed spoken words on virtual time, e.g. "12:pause, 20:resume, 45:too much"; finishes at once',
    )
    sim.add_argument("--speed", type=float,
                     help="run on the real clock, this many times faster, reading typed lines as they come")
    sim.add_argument("--json", action="store_true", help="print one JSON object per line")
    sim.add_argument("--record", action="store_true",
                     help="keep a dry run in the history and apply progression (voice runs always do)")
    room = p.add_argument_group("virtual living room (closed loop, virtual time, real narrator audio and listening)")
    room.add_argument("--room", action="store_true",
                      help="run in a simulated room: the narration echoes into a virtual microphone with --person")
    room.add_argument("--person", type=Path, metavar="WAV", help="a recording of the person, from t = 0")
    room.add_argument("--echo-db", type=float, default=0.0, help="narrator echo re the person's speech (default 0)")
    room.add_argument("--snr-db", type=float, default=30.0, help="person's speech over room noise (default 30)")
    room.add_argument("--ir", type=Path, metavar="WAV", help="room impulse response (default: a synthetic room)")
    room.add_argument("--delay-ms", type=float, default=45.0, help="playback to microphone delay (default 45)")
    room.add_argument("--auto-resume", type=float, metavar="S", help="say resume S seconds after each stop")
    room.add_argument("--seed", type=int, default=0, help="room noise and synthetic room (default 0)")
    hist = p.add_argument_group("history and progression")
    hist.add_argument("--no-history", dest="history", action="store_false", help="do not record this session")
    hist.add_argument("--no-progression", dest="progression", action="store_const", const=None,
                      default=ProgressionSettings(), help="use the routine file's hold times as they are")


def cmd_doctor(args: argparse.Namespace, settings: AppSettings) -> int:
    """Check everything voice mode needs; exit 0 when all checks pass, 1 otherwise."""
    from voicecoach.cli.doctor import RECORD_TEST_HINT, check_config, format_checks, run_checks

    config, config_checks = check_config(args.config)
    checks = [*config_checks, *run_checks(config, args.config)]
    print(format_checks(checks))
    print(RECORD_TEST_HINT)
    return 0 if all(check.ok for check in checks) else 1


def cmd_history(args: argparse.Namespace, settings: AppSettings) -> int:
    """Print the last sessions as a table, how each exercise's hold grew over them, and every "too much"."""
    from voicecoach.store.history import History, default_path
    from voicecoach.store.history_table import format_sessions, format_too_much, format_trends

    if not default_path().exists():
        print(f"No sessions yet ({default_path()} does not exist).")
        return 0
    with History.open() as history:
        rows = history.recent_sessions(args.limit)
        ids = [row.id for row in rows]
        trends, moments = history.hold_trends(ids), history.too_much_moments(ids)
    if not rows:
        print("No sessions yet.")
        return 0
    parts = (format_sessions(rows), format_trends(trends), format_too_much(moments))
    print("\n\n".join(part for part in parts if part))
    return 0


# --- run --------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: AppSettings) -> int:
    """Play a routine: a dry run with --simulate, else by voice on the audio devices."""
    routine = load_routine_file(find_routine(args.routine))
    vocabulary = load_vocabulary(routine.language)
    if args.room:
        return _run_in_room(routine, vocabulary, args, settings.for_language(routine.language))
    if args.simulate:
        from voicecoach.runtime.dry_run import run_dry

        return run_dry(routine, vocabulary, args, settings)
    from voicecoach.runtime.serve import run_live

    return run_live(routine, vocabulary, settings.for_language(routine.language), json_lines=args.json)


def _run_in_room(routine: Routine, vocabulary: Vocabulary, args: argparse.Namespace, settings: AppSettings) -> int:
    """`run --room`: the routine in the simulated living room, faster than real time."""
    from voicecoach.audio.acoustics import RoomSettings
    from voicecoach.audio.wavfile import AudioFileError
    from voicecoach.core.session import Session
    from voicecoach.listening.recognizer import RecognizerError
    from voicecoach.narration.speech_store import StoredSynthesizer
    from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer, TtsError
    from voicecoach.runtime.rig import open_pipeline
    from voicecoach.runtime.room import RoomRun, run_room
    from voicecoach.runtime.transcript import stdout_transcript

    acoustics = RoomSettings(args.echo_db, args.snr_db, args.delay_ms, args.seed)
    run = RoomRun(args.person, args.ir, args.auto_resume, acoustics)
    try:
        pipeline = open_pipeline(settings.voice.listening, vocabulary)
        voice = settings.voice.narrator
        stored = StoredSynthesizer(Pyttsx3Synthesizer(voice), f"pyttsx3 {voice.voice} {voice.rate_wpm} {voice.volume}")
        synthesizer = CachedSynthesizer(stored)
        run_room(Session(routine), vocabulary, pipeline, synthesizer, run, stdout_transcript(args.json))
    except (AudioFileError, RecognizerError, TtsError) as exc:
        raise UserError(str(exc)) from None
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
