"""Settings per concern: frozen dataclasses built once at start-up (config file under the command line) and passed
in through constructors. Each limit is stated once, here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from voicecoach.core.progression import ProgressionSettings
from voicecoach.echo.clipping import ClipGuardSettings
from voicecoach.listening.rules import SpotterSettings

Engine = Literal["auto", "spotter", "vosk", "pocketsphinx"]
ENGINES: tuple[Engine, ...] = ("auto", "spotter", "vosk", "pocketsphinx")
MIN_RATE_WPM = 80
MAX_RATE_WPM = 400
"""The narrator's speech rate limits, words per minute (eSpeak-NG goes higher, but gets hard to follow)."""
DEFAULT_RATE_WPM = 165


@dataclass(frozen=True)
class NarratorSettings:
    """How the narrator sounds and where it plays."""

    voice: str | None = None
    """eSpeak-NG voice id or name substring; None: the engine's default."""
    rate_wpm: int = DEFAULT_RATE_WPM
    """Words per minute."""
    volume: float = 1.0
    """0 to 1."""
    output_device: str | None = None
    """Device index or name substring; None: the default output."""


@dataclass(frozen=True)
class MicSettings:
    """Where the microphone is and how it is read."""

    input_device: str | None = None
    """Device index or name substring; None: the default input."""
    sample_rate: int = 16000
    """Hz."""
    block_ms: int = 20
    """Milliseconds of audio per callback block."""

    @property
    def block_frames(self) -> int:
        """Frames per callback block."""
        return self.sample_rate * self.block_ms // 1000


@dataclass(frozen=True)
class RecognizerSettings:
    """Which engine listens, with which model and vocabulary."""

    engine: Engine = "auto"
    model_dir: Path | None = None
    """A Vosk model folder; None: look in the model folders. With engine "spotter": a head file other than the
    packaged one (e.g. a training run's, to evaluate it)."""
    language: str = "en"
    safety_head: Path | None = None
    """With engine "spotter" and a head file: the second stop/too-much detector to run beside it (e.g. the packaged
    safety_head.npz, to measure a candidate head as the product would run it); None: none beside another head."""


@dataclass(frozen=True)
class YieldSettings:
    """Yielding the floor: the narrator fades the moment a safety score rises (or, with near_end, speech the echo
    does not explain), and comes back if no command follows."""

    enabled: bool = False
    """Off. Latest measurement (2026-12-07, composite head, one detection per rise of the score): in the closed-loop
    room at 0/20 it heard 87/103 stops against 90/103 without it and cut the narration sooner (end of word to quiet
    median -17 ms, p95 149, against 60 and 285); live, people's stops 25/30 with 3 trials stopped before the word,
    against 26/30 and none, and a median 252 ms to silence against 320 (the score reaches 0.3 about when the
    decision comes). Fewer stops and early stops for a faster cut; earlier rounds and their fixes are in
    docs/eval/room-eval.md. scripts/eval_commands.py --yield and scripts/bench_stop_latency.py --yield weigh it."""
    score: float = 0.3
    """A stop or too-much score at or above this fades the narrator (the command itself needs the full threshold)."""
    fade_db: float = -25.0
    hold_s: float = 1.0
    """With no command this long after the fade, the narrator comes back to full level."""
    near_end: bool = False
    """Also fade the moment the echo-cancelled signal carries sound the echo does not explain (the person starting
    to speak), before any score rises. Off: at 0 dB echo it caught few stops early for its false fades
    (scripts/eval_near_end.py)."""


@dataclass(frozen=True)
class ListeningSettings:
    """How the listening pipeline listens."""

    recognizer: RecognizerSettings = field(default_factory=RecognizerSettings)
    echo_cancel: bool = True
    """Cancel the narrator's own playback in the microphone signal."""
    rules: SpotterSettings = field(default_factory=SpotterSettings)
    yield_floor: YieldSettings = field(default_factory=YieldSettings)
    clip_guard: ClipGuardSettings | None = field(default_factory=ClipGuardSettings)
    """Turn the narrator down when the microphone clips on its voice (voicecoach.echo.clipping); None: never."""


@dataclass(frozen=True)
class VoiceSettings:
    """Everything voice mode needs: narrator, microphone, listening."""

    narrator: NarratorSettings = field(default_factory=NarratorSettings)
    mic: MicSettings = field(default_factory=MicSettings)
    listening: ListeningSettings = field(default_factory=ListeningSettings)


@dataclass(frozen=True)
class AppSettings:
    """All settings of one command run: the config file's, under what the command line gave."""

    voice: VoiceSettings = field(default_factory=VoiceSettings)
    progression: ProgressionSettings | None = field(default_factory=ProgressionSettings)
    """None: hold times as the routine file has them."""
    history: bool = True
    """Record sessions in the history."""
    routine: str = "lower-back"
    """The routine 'start' alone begins."""
    config_path: Path | None = None
    """The config file these came from; None: built-in defaults only."""

    def for_language(self, language: str) -> AppSettings:
        """These settings, listening for a routine in this language."""
        listening = self.voice.listening
        recognizer = replace(listening.recognizer, language=language)
        return replace(self, voice=replace(self.voice, listening=replace(listening, recognizer=recognizer)))
