"""Command-line options shared by the commands that speak or listen, and the settings built from them once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from voicecoach.files.config import Config
from voicecoach.settings import (
    DEFAULT_RATE_WPM,
    ENGINES,
    MAX_RATE_WPM,
    MIN_RATE_WPM,
    AppSettings,
    ListeningSettings,
    MicSettings,
    NarratorSettings,
    RecognizerSettings,
    VoiceSettings,
)


def add_voice_options(parser: argparse.ArgumentParser) -> None:
    """Options for commands that speak or listen."""
    group = parser.add_argument_group("voice")
    group.add_argument("--engine", choices=ENGINES,
                       help="speech recognizer (default auto: the built-in keyword spotter for English, vosk for "
                       "other languages)")
    group.add_argument("--model", type=Path, help="Vosk model folder")
    group.add_argument("--input-device", help="microphone: index or name substring (see: voicecoach devices)")
    group.add_argument("--output-device", help="speaker: index or name substring")
    group.add_argument("--voice", help="eSpeak-NG voice, e.g. en-us or en+f3")
    group.add_argument("--rate", type=int,
                       help=f"speech rate in words per minute, {MIN_RATE_WPM} to {MAX_RATE_WPM} "
                       f"(default {DEFAULT_RATE_WPM})")
    group.add_argument("--volume", type=float, help="narrator volume, 0 to 1 (default 1)")
    group.add_argument("--no-echo-cancel", action="store_true", help="do not cancel the narrator's own voice")


def _given(args: argparse.Namespace, name: str, fallback: Any) -> Any:
    """The option's value when given on the command line (not None), else the fallback."""
    value = getattr(args, name, None)
    return fallback if value is None else value


def build_settings(args: argparse.Namespace, config: Config, language: str | None = None) -> AppSettings:
    """The settings of this run, built once: each option given on the command line, else the config file's value,
    else the built-in default. Flags that turn a feature off win over the file; the file may turn them off too."""
    narrator = NarratorSettings(
        voice=_given(args, "voice", config.narrator.voice),
        rate_wpm=_given(args, "rate", config.narrator.rate_wpm),
        volume=_given(args, "volume", config.narrator.volume),
        output_device=_given(args, "output_device", config.narrator.output_device),
    )
    _check_range("--rate", narrator.rate_wpm, MIN_RATE_WPM, MAX_RATE_WPM, "words per minute from ")
    _check_range("--volume", narrator.volume, 0.0, 1.0, "")
    mic = MicSettings(input_device=_given(args, "input_device", config.mic.input_device))
    recognizer = RecognizerSettings(
        engine=_given(args, "engine", config.recognizer.engine),
        model_dir=_given(args, "model", config.recognizer.model_dir),
        language=language or _given(args, "language", config.recognizer.language),
    )
    echo_cancel = config.echo_cancel and not getattr(args, "no_echo_cancel", False)
    progression = config.progression if config.progression.enabled else None
    if getattr(args, "progression", True) is None:  # --no-progression
        progression = None
    return AppSettings(
        voice=VoiceSettings(narrator, mic, ListeningSettings(recognizer, echo_cancel)),
        progression=progression,
        history=getattr(args, "history", True),
        routine=_given(args, "routine", config.routine),
        config_path=config.path,
    )


def _check_range(option: str, value: float, low: float, high: float, unit: str) -> None:
    """A ValueError naming the option when value is outside low..high."""
    if not low <= value <= high:
        raise ValueError(f"{option}: {value} is out of range (expected {unit}{low:g} to {high:g})")
