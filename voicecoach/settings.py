"""Settings per concern, built once at start-up and passed in through constructors."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Engine = Literal["auto", "vosk", "pocketsphinx"]
ENGINES: tuple[Engine, ...] = ("auto", "vosk", "pocketsphinx")


@dataclass(frozen=True)
class NarratorSettings:
    """How the narrator sounds and where it plays."""

    voice: str | None = None
    """eSpeak-NG voice id or name substring; None: the engine's default."""
    rate_wpm: int = 165
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


@dataclass(frozen=True)
class RecognizerSettings:
    """Which engine listens, with which model and vocabulary."""

    engine: Engine = "auto"
    model_dir: Path | None = None
    """A Vosk model folder; None: look in the model folders."""
    language: str = "en"


def add_voice_options(parser: argparse.ArgumentParser) -> None:
    """Options for commands that speak or listen."""
    group = parser.add_argument_group("voice")
    group.add_argument("--engine", choices=ENGINES,
                       help="speech recognizer (default auto: vosk when its model is installed, else pocketsphinx)")
    group.add_argument("--model", type=Path, help="Vosk model folder")
    group.add_argument("--input-device", help="microphone: index or name substring (see: voicecoach devices)")
    group.add_argument("--output-device", help="speaker: index or name substring")
    group.add_argument("--voice", help="eSpeak-NG voice, e.g. en-us or en+f3")
    group.add_argument("--rate", type=int, help="speech rate in words per minute, 80 to 400 (default 165)")
    group.add_argument("--volume", type=float, help="narrator volume, 0 to 1 (default 1)")


def narrator_settings(args: argparse.Namespace) -> NarratorSettings:
    """NarratorSettings from parsed options, validated."""
    rate = NarratorSettings.rate_wpm if args.rate is None else args.rate
    volume = NarratorSettings.volume if args.volume is None else args.volume
    if not 80 <= rate <= 400:
        raise ValueError(f"--rate: {rate} is out of range (expected words per minute from 80 to 400)")
    if not 0.0 <= volume <= 1.0:
        raise ValueError(f"--volume: {volume} is out of range (expected 0 to 1)")
    return NarratorSettings(args.voice, rate, volume, args.output_device)


def mic_settings(args: argparse.Namespace) -> MicSettings:
    """MicSettings from parsed options."""
    return MicSettings(input_device=args.input_device)


def recognizer_settings(args: argparse.Namespace, language: str) -> RecognizerSettings:
    """RecognizerSettings from parsed options."""
    return RecognizerSettings(args.engine or "auto", args.model, language)
