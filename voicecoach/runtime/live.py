"""Voice mode: the narrator and the listener on real audio devices, and the commands that need them."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicecoach.runtime.clock import EventQueue, RealClock
from voicecoach.core.commands import Vocabulary, load_vocabulary, normalize
from voicecoach.core.events import Command, CommandHeard, DeviceProblem
from voicecoach.runtime.player import Player, SpeechDone
from voicecoach.core.progression import ProgressionSettings
from voicecoach.listening.recognizer import Recognizer, RecognizerError
from voicecoach.store.recording import prepare_session
from voicecoach.core.routine import Routine
from voicecoach.settings import (
    MicSettings,
    RecognizerSettings,
    add_voice_options,
    mic_settings,
    narrator_settings,
    recognizer_settings,
)
from voicecoach.runtime.transcript import stdout_transcript

_LOGGER = logging.getLogger(__name__)
_MIC_SILENT_S = 3.0
"""Seconds without a block before the microphone counts as gone."""
_DIVERGED_BLOCKS = 50
"""Consecutive blocks in which cancelling added energy before the echo canceller is reset (50 x 20 ms)."""
_MIC_RATE = 16000
"""Hz: what the recognizers and the echo canceller take."""
_FIXED_PHRASES = ("One.", "Two.", "Three.", "Four.", "Five.", "Halfway.", "And release.", "Paused.")


class LiveError(RuntimeError):
    """Voice mode cannot start (device, engine, model): one clear line."""


# --- engines ----------------------------------------------------------------------------------


def make_recognizer(settings: RecognizerSettings, vocabulary: Vocabulary) -> Recognizer:
    """The engine the settings ask for; auto is Vosk when its model is installed, else PocketSphinx."""
    engine = settings.engine
    model = settings.model_dir
    if engine in ("auto", "vosk") and model is None:
        from voicecoach.listening.vosk import find_model

        model = find_model() if settings.language == "en" else None
    if engine == "auto":
        engine = "vosk" if model is not None else "pocketsphinx"
        _LOGGER.info("engine auto: %s", engine)
    if engine == "vosk":
        if model is None:
            raise LiveError("no Vosk model is installed: run `voicecoach model download`, or use --engine pocketsphinx")
        from voicecoach.listening.vosk import VoskRecognizer

        return VoskRecognizer(model, vocabulary)
    if settings.language != "en":
        raise LiveError(f"pocketsphinx has only an English model; for {settings.language!r} use --engine vosk --model")
    from voicecoach.listening.pocketsphinx import PocketSphinxRecognizer

    return PocketSphinxRecognizer(vocabulary)


# --- the microphone, echo-cancelled -----------------------------------------------------------


class MicWatch:
    """Notices a microphone that stopped delivering audio, reports it, reopens it, and reports when it is back."""

    def __init__(self, mic: Any, report: Callable[[DeviceProblem], None], silent_limit_s: float = _MIC_SILENT_S
                 ) -> None:
        self._mic = mic
        self._report = report
        self._limit_s = silent_limit_s
        self._last_block_s = time.monotonic()
        self._down = False
        self._next_try_s = 0.0

    def read_block(self, timeout_s: float | None = None) -> Any:
        """The microphone's next block; while it is down, try to reopen it now and then."""
        block = self._mic.read_block(timeout_s)
        now = time.monotonic()
        if block is not None:
            self._last_block_s = now
            if self._down:
                self._down = False
                self._report(DeviceProblem("the microphone is back", recovered=True))
            return block
        if not self._down and now - self._last_block_s > self._limit_s:
            self._down = True
            self._report(DeviceProblem(f"no sound from the microphone for {self._limit_s:g} seconds"))
        if self._down and now >= self._next_try_s:
            self._next_try_s = now + self._limit_s
            try:
                self._mic.reopen()
            except Exception as exc:  # still unplugged: keep trying
                _LOGGER.info("microphone reopen failed: %s", exc)
        return None


class CleanMicrophone:
    """Microphone blocks with the narrator's own playback cancelled (the speaker's playback log is the reference)."""

    def __init__(self, mic: Any, speaker: Any, enabled: bool = True) -> None:
        from voicecoach.echo.speex import (
            AlignerSettings,
            EchoCancellerUnavailable,
            EchoSettings,
            PassThroughEchoCanceller,
            ReferenceAligner,
            SpeexEchoCanceller,
        )

        self._mic = mic
        self._speaker = speaker
        self._aligner = ReferenceAligner(AlignerSettings(sample_rate=_MIC_RATE))
        self._canceller: Any = PassThroughEchoCanceller()
        self._louder_blocks = 0
        if enabled:
            try:
                settings = EchoSettings(sample_rate=_MIC_RATE, residual_suppression=False)
                self._canceller = SpeexEchoCanceller(settings)
            except EchoCancellerUnavailable as exc:
                _LOGGER.warning("echo cancellation off: %s", exc)

    def read(self, timeout_s: float | None = None) -> bytes | None:
        """The next block, cleaned; None if the microphone gave nothing in time."""
        block = self._mic.read_block(timeout_s)
        if block is None:
            return None
        pcm = np.frombuffer(block.pcm, dtype="<i2")
        self._aligner.sync(self._speaker.played())
        reference = self._aligner.align(pcm, block.adc_s)
        cleaned = np.asarray(self._canceller.process(pcm, reference), dtype=np.int16)
        return self._do_no_harm(pcm, cleaned).astype("<i2").tobytes()

    def _do_no_harm(self, pcm: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
        """The cleaned block, unless cancelling made it louder: then the filter is wrong (no echo path, or it
        adapted during double talk) and would add phantom narration; pass the microphone through, and reset
        the filter once that has lasted a while."""
        before = float(np.dot(pcm.astype(np.float64), pcm))
        after = float(np.dot(cleaned.astype(np.float64), cleaned))
        if after <= before:
            self._louder_blocks = 0
            return cleaned
        self._louder_blocks += 1
        if self._louder_blocks >= _DIVERGED_BLOCKS:
            _LOGGER.info("echo canceller diverged: reset")
            self._canceller.reset()
            self._louder_blocks = 0
        return pcm


# --- run --------------------------------------------------------------------------------------


@dataclass
class VoiceRig:
    """Everything voice mode opens, closed together."""

    speaker: Any
    mic: Any
    narrator: Any
    listener: Any

    def close(self) -> None:
        """Stop listening and speaking; release the devices."""
        for part in (self.listener, self.narrator):
            try:
                part.close() if hasattr(part, "close") else part.stop()
            except Exception:
                _LOGGER.exception("closing %r", part)
        self.mic.close()
        self.speaker.close()


def open_rig(args: argparse.Namespace, vocabulary: Vocabulary, events: EventQueue, language: str) -> VoiceRig:
    """Open speaker, microphone, narrator, recognizer and listener; the listener posts into events."""
    from voicecoach.audio.devices import Speaker
    from voicecoach.listening.listener import Listener
    from voicecoach.narration.narrator import SoundNarrator
    from voicecoach.listening.own_voice import OwnVoice
    from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer

    voice = narrator_settings(args)
    mic_config = mic_settings(args)
    recognizer = make_recognizer(recognizer_settings(args, language), vocabulary)
    speaker = Speaker(voice.output_device)
    mic = _open_mic(mic_config, speaker)
    synthesizer = CachedSynthesizer(Pyttsx3Synthesizer(voice))
    synthesizer.warm(_FIXED_PHRASES)
    own_voice = OwnVoice(vocabulary)
    narrator = SoundNarrator(synthesizer, speaker, SpeechDone(events), _device_reporter(events), own_voice)

    def heard(command: CommandHeard) -> None:
        if own_voice.is_own_echo(command, time.monotonic()):
            _LOGGER.info("ignored own voice: %s (%r)", command.command.value, command.text)
            return
        events.post(command)

    source = CleanMicrophone(MicWatch(mic, events.post), speaker, enabled=not args.no_echo_cancel)
    listener = Listener(source, recognizer, vocabulary, heard)
    return VoiceRig(speaker, mic, narrator, listener)


def _open_mic(config: MicSettings, speaker: Any) -> Any:
    from voicecoach.audio.devices import Microphone

    try:
        return Microphone(config.input_device, config.sample_rate, config.sample_rate * config.block_ms // 1000)
    except Exception:
        speaker.close()
        raise


def _device_reporter(events: EventQueue) -> Any:
    def report(message: str) -> None:
        events.post(DeviceProblem(message))

    return report


def run_live(routine: Routine, vocabulary: Vocabulary, args: argparse.Namespace) -> int:
    """`voicecoach run ROUTINE`: speak and listen on the audio devices until the routine ends."""
    from voicecoach.audio.devices import AudioDeviceError
    from voicecoach.narration.synthesis import TtsError

    events = EventQueue(RealClock())
    try:
        rig = open_rig(args, vocabulary, events, routine.language)
    except (AudioDeviceError, TtsError, RecognizerError, LiveError, ValueError) as exc:
        raise LiveError(str(exc)) from None
    session, observers, close = prepare_session(routine, record=args.history, progression=args.progression)
    try:
        rig.mic.start()
        rig.listener.start()
        Player(session, rig.narrator, events, vocabulary, stdout_transcript(args.json), observers).run()
    finally:
        rig.close()
        close()
    return 0


# --- devices, listen, model -------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the commands that need audio devices or engines."""
    p = sub.add_parser("devices", help="list audio devices")
    p.set_defaults(handler=cmd_devices)

    p = sub.add_parser("listen", help="print each command heard, live from the microphone or from a WAV file")
    p.add_argument("--wav", type=Path, help="a WAV file (any sample rate), decoded faster than real time")
    p.add_argument("--language", help="command vocabulary (en, ko; default en)")
    add_voice_options(p)
    p.set_defaults(handler=cmd_listen)

    add_serve_command(sub)

    p = sub.add_parser("model", help="speech models")
    model_sub = p.add_subparsers(metavar="ACTION")
    d = model_sub.add_parser("download", help="download and install the Vosk English model")
    d.add_argument("--url", help="where to fetch the zip from (default: the Vosk models site)")
    d.add_argument("--sha256", help="expected SHA-256 of the zip")
    d.add_argument("--force", action="store_true", help="replace an installed model")
    d.add_argument("--dest", type=Path, help="models folder (default: the first model folder)")
    d.set_defaults(handler=cmd_model_download)
    s = model_sub.add_parser("status", help="where models are looked for, and which are installed")
    s.set_defaults(handler=cmd_model_status)


def add_serve_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`voicecoach serve`: idle, listening; a routine starts when the person says so."""
    p = sub.add_parser("serve", help="wait listening; say 'start' (or 'start lower back') to begin a routine")
    p.add_argument("--routine", help="the routine 'start' alone begins (default: the config file's, else lower-back)")
    p.add_argument("--once", action="store_true", help="exit after one routine")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.set_defaults(handler=cmd_serve, history=True, progression=ProgressionSettings())


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` needs for voice mode."""
    add_voice_options(parser)
    parser.add_argument("--no-echo-cancel", action="store_true", help="do not cancel the narrator's own voice")


def cmd_devices(args: argparse.Namespace) -> int:
    """Print the audio devices."""
    from voicecoach.audio.devices import AudioDeviceError, format_devices, list_devices

    try:
        print(format_devices(list_devices()))
    except AudioDeviceError as exc:
        raise LiveError(str(exc)) from None
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    """Print one line per command heard, with its audio time."""
    language = args.language or "en"
    vocabulary = load_vocabulary(language)
    try:
        recognizer = make_recognizer(recognizer_settings(args, language), vocabulary)
    except RecognizerError as exc:
        raise LiveError(str(exc)) from None
    if args.wav is not None:
        return _listen_file(args.wav, recognizer, vocabulary)
    return _listen_live(args, recognizer, vocabulary)


def _listen_file(path: Path, recognizer: Recognizer, vocabulary: Vocabulary) -> int:
    from voicecoach.listening.listener import spot_file
    from voicecoach.audio.wavfile import AudioFileError

    try:
        result = spot_file(path, recognizer, vocabulary)
    except (AudioFileError, OSError) as exc:
        raise LiveError(str(exc)) from None
    for heard in result.commands:
        print(_heard_line(heard))
    rtf = result.real_time_factor
    print(f"# {len(result.commands)} commands; {recognizer.name}, real-time factor {rtf:.3f}", file=sys.stderr)
    return 0


def _listen_live(args: argparse.Namespace, recognizer: Recognizer, vocabulary: Vocabulary) -> int:
    from voicecoach.audio.devices import AudioDeviceError, Microphone
    from voicecoach.listening.listener import Listener

    config = mic_settings(args)
    try:
        mic = Microphone(config.input_device, config.sample_rate, config.sample_rate * config.block_ms // 1000)
    except AudioDeviceError as exc:
        raise LiveError(str(exc)) from None
    done = threading.Event()
    listener = Listener(mic, recognizer, vocabulary, lambda heard: print(_heard_line(heard), flush=True))
    print(f"Listening with {recognizer.name}; say a command (Ctrl-C to end).", file=sys.stderr)
    try:
        mic.start()
        listener.start()
        done.wait()
    finally:
        listener.stop()
        mic.close()
    return 0


def _heard_line(heard: CommandHeard) -> str:
    at = f"{heard.audio_time_s:8.2f}s" if heard.audio_time_s is not None else "       -"
    return f"{at}  {heard.command.value:<9} {heard.text!r} (confidence {heard.confidence:.2f})"


def cmd_model_download(args: argparse.Namespace) -> int:
    """Download, verify and install the Vosk English model."""
    from voicecoach.listening.model_download import ModelDownloadError, download_model, print_progress

    try:
        path = download_model(args.url, args.dest, expected_sha256=args.sha256, progress=print_progress(),
                              force=args.force)  # fmt: skip
    except ModelDownloadError as exc:
        raise LiveError(str(exc)) from None
    print(f"Model ready: {path}")
    return 0


def cmd_model_status(args: argparse.Namespace) -> int:
    """Say where models are looked for and what is installed."""
    from voicecoach.listening.vosk import DEFAULT_MODEL_NAME, find_model, model_search_dirs

    for folder in model_search_dirs():
        print(f"looks in: {folder}")
    found = find_model()
    print(f"{DEFAULT_MODEL_NAME}: {found if found else 'not installed (voicecoach model download)'}")
    print("pocketsphinx: English model bundled with the pocketsphinx package (no download)")
    return 0


def routine_starters(vocabulary: Vocabulary) -> tuple[Vocabulary, dict[str, str]]:
    """The vocabulary with 'start NAME' for every routine, and each such phrase's routine name."""
    from voicecoach.files.routine_file import list_routines

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


def cmd_serve(args: argparse.Namespace) -> int:
    """Idle listening; run a routine on 'start'; idle again when it ends; exit 0 on SIGTERM.

    A routine cut short by SIGTERM keeps its saved position, as after a power cut: its next start offers to resume.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return _serve(args)
    except _Terminated:
        print("voicecoach: stopped (SIGTERM)", file=sys.stderr)
        return 0
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _serve(args: argparse.Namespace) -> int:
    """The serve loop: idle until 'start', play the routine, idle again (until --once's routine ends)."""
    from voicecoach.audio.devices import AudioDeviceError
    from voicecoach.files.config import DEFAULT_ROUTINE
    from voicecoach.files.routine_file import RoutineFileError, find_routine, load_routine_file
    from voicecoach.narration.synthesis import TtsError

    default = args.routine or DEFAULT_ROUTINE
    load_routine_file(find_routine(default))  # a broken default is a start-up error, not a surprise at "start"
    vocabulary, by_phrase = routine_starters(load_vocabulary("en"))
    events = EventQueue(RealClock())
    try:
        rig = open_rig(args, vocabulary, events, "en")
    except (AudioDeviceError, TtsError, RecognizerError, ValueError) as exc:
        raise LiveError(str(exc)) from None
    try:
        rig.mic.start()
        rig.listener.start()
        while True:
            transcript = stdout_transcript(args.json)
            transcript.record(events.clock.now(), "idle", f'listening: say "start" to begin {default}')
            name = chosen_routine(_wait_for_start(events), by_phrase, default)
            try:
                routine = load_routine_file(find_routine(name))
            except RoutineFileError as exc:
                _LOGGER.warning("cannot start %s:\n%s", name, exc)
                continue
            session, observers, close = prepare_session(routine, record=args.history, progression=args.progression)
            try:
                Player(session, rig.narrator, events, vocabulary, transcript, observers).run()
            finally:
                close()
            if args.once:
                return 0
    finally:
        rig.close()


def _wait_for_start(events: EventQueue) -> CommandHeard:
    """Block until a START command arrives; everything else heard while idle is dropped."""
    while True:
        event = events.next_event(events.clock.now() + 3600.0)
        if isinstance(event, CommandHeard) and event.command is Command.START:
            return event
