"""`voicecoach doctor`: check everything voice mode needs on this machine, and say how to fix what is missing.

Each check runs on its own and catches its own errors, so one broken part never hides the others. A check can pass
and still carry a fix line: then it works, but could be better (no Vosk model: the weaker PocketSphinx is used).
Side effects: the history file is opened (and so created, as the first session would), and eSpeak-NG speaks one
short phrase into a buffer (nothing is played).

Just over 300 lines: one small function per check, in the order a person would fix them.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from voicecoach.files.config import Config, ConfigError, config_path, load_config
from voicecoach.settings import NarratorSettings, RecognizerSettings

_LOGGER = logging.getLogger(__name__)

_MIN_PYTHON = (3, 11)
_TEST_PHRASE = "Ready when you are."
_MIN_FREE_BYTES = 200 * 1024 * 1024
"""The Vosk model download (about 40 MB zipped, 70 MB unpacked) and years of history fit in this."""
_ECHO_TEST_SAMPLES = 160
"""One 10 ms Speex frame at 16 kHz."""
_UNEXPECTED_FIX = "run `voicecoach --debug doctor` and report the traceback"


@dataclass(frozen=True)
class Check:
    """What one check found."""

    name: str
    ok: bool
    detail: str
    """What was found, in one line."""
    fix: str = ""
    """What to do about it, in one line; '' when there is nothing to do."""


def check_config(path: Path | None = None) -> tuple[Config, list[Check]]:
    """The config file's settings and one check per problem in it (defaults, if it has any problem)."""
    name = "config file"
    try:
        config = load_config(path)
    except ConfigError as exc:
        checks = [Check(name, False, str(problem), _config_fix(problem.file, problem.line)) for problem in exc.problems]
        return Config(), checks
    if config.path is None:
        return config, [Check(name, True, f"none at {config_path()}: built-in defaults")]
    return config, [Check(name, True, f"{config.path}")]


def _config_fix(file: str, line: int) -> str:
    """How to fix one config problem; the other checks meanwhile use the built-in defaults."""
    where = f"line {line} of {file}" if line else file
    return f"correct {where} (what is expected is in parentheses); until then the defaults are checked"


def run_checks(config: Config, config_file: Path | None = None) -> list[Check]:
    """Every check, in the order a person would fix them; fixes name config_file (the one given, which may have
    failed to load), else the file the settings came from, else the default location."""
    file = config.path or config_file or config_path()
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("python", _python),
        ("portaudio", _portaudio),
        ("input device", lambda: _device(config.mic.input_device, "input", file)),
        ("output device", lambda: _device(config.narrator.output_device, "output", file)),
        ("narrator", lambda: _narrator(config.narrator, file)),
        ("vosk model", lambda: _vosk(config.recognizer, file)),
        ("spotter", _spotter),
        ("pocketsphinx", _pocketsphinx),
        ("echo canceller", lambda: _echo(config.echo_cancel)),
        ("narrator level", _levels),
        ("history", _history),
        ("disk space", _disk),
        ("routine", lambda: _routine(config.routine, file)),
    ]
    return [_guarded(name, check) for name, check in checks]


RECORD_TEST_HINT = ("If it does not hear you: `voicecoach record-test test.wav` records a minute of narration and your "
                    "voice; `voicecoach listen --wav test.wav` replays it, and the file can be handed over.")


def format_checks(checks: list[Check]) -> str:
    """One line per check ('ok' or 'FAIL', name, detail), its fix below it, and a count at the end."""
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{'ok' if check.ok else 'FAIL':<4}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<4}  {'':<{width}}  {'fix' if not check.ok else 'tip'}: {check.fix}")
    failed = sum(not check.ok for check in checks)
    lines.append(f"{len(checks) - failed} of {len(checks)} checks passed" + (f"; {failed} failed." if failed else "."))
    return "\n".join(lines)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; an error it did not expect fails that check alone."""
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        _LOGGER.debug("check %s raised", name, exc_info=True)
        return Check(name, False, f"unexpected {type(exc).__name__}: {exc}", _UNEXPECTED_FIX)
    _LOGGER.debug("check %s: %s in %.0f ms", name, "ok" if result.ok else "FAIL", (time.perf_counter() - started) * 1e3)
    return result


def _where(file: Path, section: str, key: str) -> str:
    """'[audio] input_device in FILE' for fix lines."""
    return f"[{section}] {key} in {file}"


# --- the checks ---------------------------------------------------------------------------------


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < _MIN_PYTHON:
        wanted = ".".join(map(str, _MIN_PYTHON))
        return Check("python", False, f"Python {version} is too old", f"use Python {wanted} or newer (Debian 12's)")
    return Check("python", True, f"Python {version} ({sys.executable})")


def _portaudio() -> Check:
    from voicecoach.audio.devices import AudioDeviceError, list_devices

    name = "portaudio"
    try:
        devices = list_devices()
    except AudioDeviceError as exc:
        return Check(name, False, str(exc), "install PortAudio: sudo apt-get install libportaudio2")
    inputs = sum(device.has("input") for device in devices)
    outputs = sum(device.has("output") for device in devices)
    apis = ", ".join(sorted({device.hostapi for device in devices}))
    detail = f"{len(devices)} devices ({inputs} with input, {outputs} with output) through {apis}"
    fix = "plug in the USB microphone and speaker; `arecord -l` and `aplay -l` should list them"
    if not devices:
        return Check(name, False, "PortAudio loads but lists no audio devices", fix)
    if not inputs or not outputs:
        return Check(name, False, f"{detail}: no {'microphone' if not inputs else 'speaker'}", fix)
    return Check(name, True, detail)


def _device(spec: str | None, kind: str, file: Path) -> Check:
    from voicecoach.audio.devices import AudioDeviceError, list_devices, resolve_device

    name = f"{kind} device"
    key = "input_device" if kind == "input" else "output_device"
    fix = f"set {_where(file, 'audio', key)} (or --{key.replace('_', '-')}) to a device from `voicecoach devices`"
    try:
        index = resolve_device(spec, "input" if kind == "input" else "output")
        devices = list_devices()
    except AudioDeviceError as exc:
        return Check(name, False, str(exc), fix)
    if index is None:
        defaults = [d for d in devices if (d.is_default_input if kind == "input" else d.is_default_output)]
        if not defaults:
            return Check(name, False, f"no {kind} device is configured and PortAudio has no default one", fix)
        device, how = defaults[0], "the default"
    else:
        device, how = next(d for d in devices if d.index == index), f"matches {spec!r}"
    return Check(name, True, f"[{device.index}] {device.name} ({device.hostapi}), {how}")


def _narrator(settings: NarratorSettings, file: Path) -> Check:
    from voicecoach.narration.synthesis import Pyttsx3Synthesizer, TtsError

    name = "narrator"
    started = time.perf_counter()
    try:
        synthesizer = Pyttsx3Synthesizer(settings)
        ready_s = time.perf_counter()
        samples = synthesizer.synthesize(_TEST_PHRASE)
    except (TtsError, ValueError) as exc:
        if settings.voice and "voice" in str(exc).lower():
            fix = f"set {_where(file, 'voice', 'voice')} to a voice listed by `espeak-ng --voices`"
        else:
            fix = "install eSpeak-NG: sudo apt-get install espeak-ng libespeak-ng1"
        return Check(name, False, str(exc), fix)
    done_s = time.perf_counter()
    if not len(samples):
        return Check(name, False, f"eSpeak-NG returned no audio for {_TEST_PHRASE!r}", "reinstall espeak-ng")
    speech_s = len(samples) / synthesizer.sample_rate
    voice = synthesizer.voice_id or "the default voice"
    detail = (f"eSpeak-NG ({voice}) synthesized {speech_s:.1f} s of speech in {(done_s - ready_s) * 1e3:.0f} ms"
              f" (engine start-up {(ready_s - started) * 1e3:.0f} ms)")  # fmt: skip
    return Check(name, True, detail)


def _vosk(settings: RecognizerSettings, file: Path) -> Check:
    from voicecoach.listening.vosk import find_model, is_model_dir, model_search_dirs

    name = "vosk model"
    if settings.engine in ("pocketsphinx", "spotter"):
        return Check(name, True, f"not used: the engine is {settings.engine}")
    download = "install the Vosk model with `voicecoach model download`"
    model = settings.model_dir or (find_model() if settings.language == "en" else None)
    if model is None:
        looked = ", ".join(str(folder) for folder in model_search_dirs())
        if settings.engine == "vosk" or settings.language != "en":
            fix = f"{download}, or set {_where(file, 'recognizer', 'model')} to a model for {settings.language!r}"
            return Check(name, False, f"no Vosk model found (looked in {looked})", fix)
        return Check(name, True, "no Vosk model installed (not needed: the keyword spotter listens)", download)
    if not is_model_dir(model):
        fix = f"set {_where(file, 'recognizer', 'model')} to an unpacked Vosk model folder, or {download}"
        return Check(name, False, f"{model} is not a Vosk model folder (no am/final.mdl and conf/model.conf)", fix)
    try:
        import vosk  # noqa: F401
    except (ImportError, OSError) as exc:
        return Check(name, False, f"the vosk package does not load: {exc}", "reinstall it: pip install vosk")
    return Check(name, True, f"{model.name} at {model} (vosk {metadata.version('vosk')})")


def _spotter() -> Check:
    name = "spotter"
    try:
        from voicecoach.listening.spotter.model import SpotterModel

        model = SpotterModel.load()
    except Exception as exc:  # a missing front end or head: say so, do not crash the doctor
        return Check(name, False, f"the keyword spotter does not load: {exc}", "reinstall voicecoach (pip install .)")
    return Check(name, True, f"keyword spotter loaded ({len(model.commands)} commands)")


def _pocketsphinx() -> Check:
    name = "pocketsphinx"
    fix = "reinstall it: pip install --force-reinstall pocketsphinx"
    try:
        import pocketsphinx
    except (ImportError, OSError) as exc:
        return Check(name, False, f"pocketsphinx does not load: {exc}", fix)
    model = Path(pocketsphinx.get_model_path()) / "en-us"
    if not (model / "en-us").is_dir() or not (model / "cmudict-en-us.dict").is_file():
        return Check(name, False, f"its bundled English model is missing from {model}", fix)
    started = time.perf_counter()
    try:
        pocketsphinx.Decoder(loglevel="FATAL")
    except Exception as exc:  # pocketsphinx raises RuntimeError, ValueError or its own errors
        return Check(name, False, f"its bundled English model does not load: {exc}", fix)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    version = metadata.version("pocketsphinx")
    return Check(name, True, f"pocketsphinx {version}, bundled en-us model loads in {elapsed_ms:.0f} ms")


def _echo(enabled: bool) -> Check:
    from voicecoach.echo.speex import EchoCancellerUnavailable, SpeexEchoCanceller

    name = "echo canceller"
    silence = np.zeros(_ECHO_TEST_SAMPLES, dtype=np.int16)
    try:
        with SpeexEchoCanceller() as canceller:
            canceller.process(silence, silence)
    except EchoCancellerUnavailable as exc:
        if not enabled:
            return Check(name, True, f"off in the config file ([echo] cancel = false); {exc}")
        return Check(name, False, str(exc), "install it: sudo apt-get install libspeexdsp1")
    state = "on" if enabled else "off in the config file ([echo] cancel = false)"
    return Check(name, True, f"libspeexdsp works; echo cancellation is {state}")


def _levels() -> Check:
    from voicecoach.echo.clipping import ClipGuardSettings
    from voicecoach.store.history import data_dir
    from voicecoach.store.levels import FILE_NAME, LevelFileError, parse

    name, path = "narrator level", data_dir() / FILE_NAME
    try:
        levels = parse(path.read_text("utf-8"), path) if path.is_file() else []
    except (OSError, LevelFileError) as exc:
        return Check(name, False, str(exc), f"delete {path} (the next session sets an unreadable one aside)")
    if not levels:
        return Check(name, True, "full level (its voice has not clipped the microphone on these devices)")
    step = ClipGuardSettings().first_step_db
    detail = "; ".join(f"{level.devices.speaker} and {level.devices.microphone} at volume {level.devices.volume:g}: "
                       f"ended -{level.down_db:.0f} dB, next session starts at -{step(level.down_db):.0f} dB"
                       for level in levels)  # fmt: skip
    return Check(name, True, detail, "its voice clipped the microphone there: a lower volume (--volume, or volume in "
                 "the config's [voice]) or the speaker farther from the microphone lets it play at full level")


def _history() -> Check:
    from voicecoach.store.history import History, HistoryError, default_path

    name = "history"
    path = default_path()
    try:
        with History.open(path) as history:
            version = history.schema_version
    except HistoryError as exc:
        fix = f"make {path.parent} writable, or set VOICECOACH_DATA to a writable folder"
        return Check(name, False, str(exc), fix)
    return Check(name, True, f"{path} opens (schema version {version})")


def _disk() -> Check:
    from voicecoach.store.history import data_dir

    name = "disk space"
    folder = data_dir()
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    detail = f"{free / 1e9:.1f} GB free for {folder}"
    if free < _MIN_FREE_BYTES:
        need = f"{_MIN_FREE_BYTES // (1024 * 1024)} MB"
        return Check(name, False, detail, f"free at least {need} on that disk (the Vosk model needs about 110 MB)")
    return Check(name, True, detail)


def _routine(routine: str, file: Path) -> Check:
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import RoutineFileError, load_routine_file

    name = "routine"
    try:
        loaded = load_routine_file(find_routine(routine))
    except RoutineFileError as exc:
        fix = f"set {_where(file, 'routine', 'default')} to a routine from `voicecoach list`, or fix that file"
        return Check(name, False, str(exc.problems[0]) if exc.problems else str(exc), fix)
    return Check(name, True, f"{loaded.name}: {loaded.title} ({len(loaded.exercises)} exercises)")
