"""The commands that need audio devices or engines: devices, listen, serve, model."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from voicecoach.cli.options import add_voice_options
from voicecoach.cli.text import plural
from voicecoach.core.commands import load_vocabulary
from voicecoach.core.events import CommandHeard
from voicecoach.runtime.rig import DeviceTrouble, LiveError
from voicecoach.settings import AppSettings, RecognizerSettings

_DOWNLOAD_TIMEOUT_S = 15.0
"""Seconds of silence from the model server before giving up (it answers in well under a second when it is up)."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the commands that need audio devices or engines."""
    p = sub.add_parser("devices", help="list audio devices")
    p.set_defaults(handler=cmd_devices)

    p = sub.add_parser("listen", help="print each command heard, live from the microphone or from a WAV file")
    p.add_argument("--wav", type=Path, help="a WAV file (any sample rate, int16 or float), decoded faster than real "
                   "time; a two-channel file is (microphone, what the speaker played)")  # fmt: skip
    p.add_argument("--reference", type=Path, metavar="PLAYED.wav",
                   help="with --wav: what the speaker played, starting at the same instant (echo reference)")
    p.add_argument("--language", help="command vocabulary (en, ko; default en)")
    add_voice_options(p)
    p.set_defaults(handler=cmd_listen,
                   without_audio="voicecoach listen --wav FILE (a recording instead of the microphone)")

    p = sub.add_parser("serve", help="wait listening; say 'start' to begin the default routine ('start lower back' "
                                     "names one with --engine vosk or pocketsphinx)")
    p.add_argument("--routine", help="the routine 'start' alone begins (default: the config file's, else lower-back)")
    p.add_argument("--once", action="store_true", help="exit after one routine")
    add_voice_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.set_defaults(handler=cmd_serve, without_audio="voicecoach run ROUTINE --simulate (a dry run, no audio devices)")

    p = sub.add_parser("record-test", help="play a minute of narration while recording the microphone, into a "
                       "two-channel WAV (microphone, played) to replay with listen --wav or to hand over")
    p.add_argument("out", type=Path, metavar="OUT.wav")
    p.add_argument("--routine", help="whose narration to play (default lower-back)")
    p.add_argument("--seconds", type=float, default=60.0, help="about how long (default 60)")
    add_voice_options(p)
    p.set_defaults(handler=cmd_record_test)

    p = sub.add_parser("model", help="speech models")
    model_sub = p.add_subparsers(metavar="ACTION")
    d = model_sub.add_parser("download", help="download and install the Vosk English model")
    d.add_argument("--url", help="where to fetch the zip from (default: the Vosk models site)")
    d.add_argument("--sha256", help="expected SHA-256 of the zip")
    d.add_argument("--force", action="store_true", help="replace an installed model")
    d.add_argument("--dest", type=Path, help="models folder (default: the first model folder)")
    d.add_argument("--timeout", type=float, default=_DOWNLOAD_TIMEOUT_S, metavar="S",
                   help=f"give up when the server says nothing for this many seconds (default {_DOWNLOAD_TIMEOUT_S:g})")
    d.set_defaults(handler=cmd_model_download)
    s = model_sub.add_parser("status", help="where models are looked for, and which are installed")
    s.set_defaults(handler=cmd_model_status)


def cmd_devices(args: argparse.Namespace, settings: AppSettings) -> int:
    """Print the audio devices."""
    from voicecoach.audio.devices import AudioDeviceError, format_devices, list_devices

    try:
        print(format_devices(list_devices()))
    except AudioDeviceError as exc:
        raise DeviceTrouble(str(exc)) from None
    return 0


def cmd_record_test(args: argparse.Namespace, settings: AppSettings) -> int:
    """Play narration and record the microphone into one two-channel WAV."""
    from voicecoach.audio.devices import AudioDeviceError
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import load_routine_file
    from voicecoach.narration.synthesis import TtsError
    from voicecoach.runtime.record_test import record_test

    routine = load_routine_file(find_routine(args.routine or settings.routine))
    print(f"Playing {args.seconds:g} s of narration and recording; say a few commands now (stop, next, pause).",
          file=sys.stderr)  # fmt: skip
    try:
        recorded = record_test(args.out, routine, settings.voice, args.seconds)
    except AudioDeviceError as exc:
        raise DeviceTrouble(str(exc)) from None
    except (TtsError, OSError) as exc:
        raise LiveError(str(exc)) from None
    print(f"Wrote {args.out}: {recorded.seconds:.1f} s, channel 1 the microphone, channel 2 what the speaker played.")
    if recorded.clipped:
        print(f"The microphone clipped on {recorded.clipped} samples while the narrator spoke: its echo cannot be "
              "fully cancelled. Lower the volume (volume in the config's [voice], or --volume) or move the speaker "
              "away from the microphone; in a session voicecoach turns itself down when this happens.")  # fmt: skip
    else:
        print("The microphone did not clip on the narrator's voice.")
    print(f"Replay it: voicecoach listen --wav {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: AppSettings) -> int:
    """Idle listening; a routine on 'start'."""
    from voicecoach.runtime.serve import serve

    return serve(settings, once=args.once, json_lines=args.json)


def cmd_listen(args: argparse.Namespace, settings: AppSettings) -> int:
    """Print one line per command heard, with its audio time."""
    from voicecoach.listening.recognizer import RecognizerError
    from voicecoach.runtime.rig import open_pipeline

    if args.reference is not None and args.wav is None:
        raise LiveError("--reference goes with --wav (a recording of the microphone)")
    listening = settings.voice.listening
    vocabulary = load_vocabulary(listening.recognizer.language)
    try:
        pipeline = open_pipeline(listening, vocabulary)
    except RecognizerError as exc:
        raise LiveError(str(exc)) from None
    if args.wav is not None:
        return _listen_file(args.wav, args.reference, pipeline)
    return _listen_live(settings, pipeline)


def _listen_file(path: Path, reference: Path | None, pipeline: object) -> int:
    from voicecoach.audio.wavfile import AudioFileError

    try:
        result = pipeline.run_file(path, reference)  # type: ignore[attr-defined]
    except (AudioFileError, OSError) as exc:
        raise LiveError(str(exc)) from None
    for heard in result.commands:
        print(heard_line(heard))
    rtf = result.real_time_factor
    print(f"# {plural(len(result.commands), 'command')}; {pipeline.name}, real-time factor {rtf:.3f}",  # type: ignore[attr-defined]
          file=sys.stderr)  # fmt: skip
    return 0


def _listen_live(settings: AppSettings, pipeline: object) -> int:
    from voicecoach.audio.devices import AudioDeviceError
    from voicecoach.listening.listener import Listener
    from voicecoach.runtime.rig import open_mic

    try:
        mic = open_mic(settings.voice.mic)
    except AudioDeviceError as exc:
        raise DeviceTrouble(str(exc)) from None
    done = threading.Event()
    listener = Listener(mic, pipeline, lambda heard: print(heard_line(heard), flush=True))  # type: ignore[arg-type]
    print(f"Listening with {pipeline.name}; say a command (Ctrl-C to end).", file=sys.stderr)  # type: ignore[attr-defined]
    try:
        try:
            mic.start()
        except AudioDeviceError as exc:
            raise DeviceTrouble(str(exc)) from None
        listener.start()
        done.wait()
    finally:
        listener.stop()
        mic.close()
    return 0


def heard_line(heard: CommandHeard) -> str:
    """`   12.34s  stop      'stop' (confidence 0.97)`: the line scripts read."""
    at = f"{heard.audio_time_s:8.2f}s" if heard.audio_time_s is not None else "       -"
    return f"{at}  {heard.command.value:<9} {heard.text!r} (confidence {heard.confidence:.2f})"


def cmd_model_download(args: argparse.Namespace, settings: AppSettings) -> int:
    """Download, verify and install the Vosk English model; on failure, say what listens meanwhile and how to
    install the model by hand."""
    from voicecoach.listening.model_download import (
        DEFAULT_MODEL_URL,
        URL_ENV,
        ModelDownloadError,
        download_model,
        print_progress,
    )
    from voicecoach.listening.vosk import DEFAULT_MODEL_NAME, default_model_dir, is_model_dir

    if args.timeout <= 0:
        raise LiveError(f"--timeout: {args.timeout:g} is not a number of seconds (expected more than 0)")
    url = args.url or os.environ.get(URL_ENV, "").strip() or DEFAULT_MODEL_URL
    dest = args.dest or default_model_dir()
    if args.force or not is_model_dir(dest / DEFAULT_MODEL_NAME):
        print(f"Downloading {DEFAULT_MODEL_NAME} from {url} into {dest} (waiting up to {args.timeout:g} s for each "
              "answer from the server; Ctrl-C to stop)", file=sys.stderr)  # fmt: skip
    try:
        path = download_model(url, dest, expected_sha256=args.sha256, progress=print_progress(), force=args.force,
                              timeout_s=args.timeout)  # fmt: skip
    except ModelDownloadError as exc:
        waited = f" (no answer within {args.timeout:g} s; --timeout waits longer)" if "timed out" in str(exc) else ""
        archive = url.rstrip("/").rsplit("/", 1)[-1] or f"{DEFAULT_MODEL_NAME}.zip"
        by_hand = (f"to install it by hand, fetch {url} on a machine that reaches it, then "
                   f"`unzip {archive} -d {dest}` (models/README.md has the steps)")  # fmt: skip
        meanwhile = _meanwhile(settings.voice.listening.recognizer)
        raise LiveError(f"{exc}{waited}\nvoicecoach: without the model, {meanwhile}\nvoicecoach: {by_hand}") from None
    print(f"Model ready: {path}")
    return 0


def _meanwhile(recognizer: RecognizerSettings) -> str:
    """What listens without the Vosk model, with these settings."""
    if recognizer.engine in ("auto", "spotter") and recognizer.language == "en":
        return "voicecoach listens with its built-in keyword spotter, which needs no download (Vosk is optional)"
    if recognizer.engine == "pocketsphinx":
        return "voicecoach listens with PocketSphinx, whose English model comes with it"
    return (f"voice mode cannot listen with --engine {recognizer.engine} for {recognizer.language!r} without a Vosk "
            "model; for English, --engine spotter (the built-in keyword spotter) needs none")  # fmt: skip


def cmd_model_status(args: argparse.Namespace, settings: AppSettings) -> int:
    """Say where models are looked for and what is installed."""
    from voicecoach.listening.vosk import DEFAULT_MODEL_NAME, find_model, model_search_dirs

    for folder in model_search_dirs():
        print(f"looks in: {folder}")
    found = find_model()
    print(f"{DEFAULT_MODEL_NAME}: {found if found else 'not installed (voicecoach model download)'}")
    print("pocketsphinx: English model bundled with the pocketsphinx package (no download)")
    return 0


