"""The config file: `config.toml`, checked in full at start-up, then merged under the command line.

Where: `$VOICECOACH_CONFIG`, else `$XDG_CONFIG_HOME/voicecoach/config.toml`, else `~/.config/voicecoach/config.toml`.
The file is optional: when the default location has none, every setting is the built-in default. A file named
explicitly (the argument of load_config, or `$VOICECOACH_CONFIG`) must exist: a typo there should not silently fall
back to defaults.

Precedence: an option given on the command line, then the config file, then the built-in default.
cli.options.build_settings relies on options that default to None, so that "not given" can be told apart from
"given the default value".

Every problem in a file is reported at once, one line each: `FILE:LINE: key: what is wrong (what was expected)`.
tomllib gives no line numbers for values, so the line of a key is found by scanning the text for section headers
and `key =` lines (good enough for a hand-written file; a key it cannot place is reported at its section's line).

About 370 lines: the schema table (every key, its check and where it goes) is most of it, and reads best whole.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from voicecoach.core.progression import ProgressionSettings
from voicecoach.files.problems import FILE_FIELD, FileProblems, Problem, read_text_file
from voicecoach.files.toml_lines import key_lines
from voicecoach.settings import ENGINES, MAX_RATE_WPM, MIN_RATE_WPM, MicSettings, NarratorSettings, RecognizerSettings

_LOGGER = logging.getLogger(__name__)

_CONFIG_ENV = "VOICECOACH_CONFIG"
_XDG_CONFIG_ENV = "XDG_CONFIG_HOME"
_FILE_NAME = "config.toml"
_MAX_FILE_BYTES = 100_000
"""A config file is a few dozen lines; anything this big is not one (refused before it is read)."""
DEFAULT_ROUTINE = "lower-back"
_VOCAB_PACKAGE = "voicecoach.vocab"


class ConfigError(FileProblems):
    """A config file that cannot be used; carries every problem found."""


@dataclass(frozen=True)
class Config:
    """Everything the config file can set, with the built-in defaults for what it leaves out."""

    narrator: NarratorSettings = field(default_factory=NarratorSettings)
    mic: MicSettings = field(default_factory=MicSettings)
    recognizer: RecognizerSettings = field(default_factory=RecognizerSettings)
    progression: ProgressionSettings = field(default_factory=ProgressionSettings)
    routine: str = DEFAULT_ROUTINE
    """The routine started when the person says just "start"."""
    echo_cancel: bool = True
    """Cancel the narrator's own voice in the microphone signal (libspeexdsp)."""
    path: Path | None = None
    """The file these settings came from; None: built-in defaults only."""


# --- values -------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value of the wrong type or out of range; the message says what is wrong, without what was expected."""


def _describe(value: object) -> str:
    """What a TOML value is, for a problem message: 'the number 3', 'the text "x"', 'a list'."""
    if isinstance(value, bool):
        return f"the yes/no value {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"the date/time {value}"


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{_describe(value)} is not text")
    if not value.strip():
        raise _Invalid("is empty")
    return value.strip()


def _device(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _Invalid(f"{value} is not a device index")
        return str(value)
    if not isinstance(value, str):
        raise _Invalid(f"{_describe(value)} is neither a device index nor a name")
    return _text(value)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"{_describe(value)} is not true or false")
    return value


def _whole(low: int, high: int | None = None) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"{_describe(value)} is not a whole number")
        if value < low or (high is not None and value > high):
            raise _Invalid(f"{value} is out of range")
        return value

    return convert


def _number(low: float, high: float | None = None, low_open: bool = False) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"{_describe(value)} is not a number")
        if not math.isfinite(value):
            raise _Invalid(f"{value} is not a finite number")
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            raise _Invalid(f"{value} is out of range")
        return float(value)

    return convert


def _engine(value: object) -> str:
    text = _text(value).lower()
    if text not in ENGINES:
        raise _Invalid(f'"{value}" is not an engine{_suggestion(text, ENGINES, "; did you mean {}?")}')
    return text


def _path(value: object) -> Path:
    return Path(_text(value)).expanduser()


def _language(value: object) -> str:
    text = _text(value).lower()
    if text not in _languages():
        raise _Invalid(f'"{value}" has no command vocabulary')
    return text


def _languages() -> tuple[str, ...]:
    """Languages with a command vocabulary in the package."""
    files = resources.files(_VOCAB_PACKAGE).iterdir()
    return tuple(sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml")))


# --- the schema ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    """One key a section may have: how its value is checked and where it goes."""

    expected: str
    """What a valid value is, for problem messages."""
    convert: Callable[[object], object]
    """The value as the settings take it; raises _Invalid."""
    target: str
    """'narrator', 'mic', 'recognizer', 'progression' or 'config'."""
    field: str
    """The field of the target that takes the value."""


_SCHEMA: dict[str, dict[str, _Key]] = {
    "audio": {
        "input_device": _Key("a microphone: a device index or name substring; see: voicecoach devices", _device,
                             "mic", "input_device"),
        "output_device": _Key("a speaker: a device index or name substring; see: voicecoach devices", _device,
                              "narrator", "output_device"),
    },
    "voice": {
        "voice": _Key("an eSpeak-NG voice such as en-us or en+f3", _text, "narrator", "voice"),
        "rate": _Key(f"words per minute from {MIN_RATE_WPM} to {MAX_RATE_WPM}", _whole(MIN_RATE_WPM, MAX_RATE_WPM),
                     "narrator", "rate_wpm"),
        "volume": _Key("a number from 0 to 1", _number(0.0, 1.0), "narrator", "volume"),
    },
    "recognizer": {
        "engine": _Key(f"one of: {', '.join(ENGINES)}", _engine, "recognizer", "engine"),
        "model": _Key("the path of an unpacked Vosk model folder", _path, "recognizer", "model_dir"),
        "language": _Key(f"a language with a command vocabulary: {', '.join(_languages())}", _language,
                         "recognizer", "language"),
    },
    "routine": {
        "default": _Key("a routine name or YAML file, such as lower-back", _text, "config", "routine"),
    },
    "progression": {
        "enabled": _Key("true or false", _boolean, "progression", "enabled"),
        "step_s": _Key("seconds added to a hold per step up, at least 1", _number(1.0), "progression", "step_s"),
        "sessions_per_step": _Key("a whole number of smooth sessions, at least 1", _whole(1), "progression",
                                  "sessions_per_step"),
        "back_off_fraction": _Key("a fraction above 0, up to 1", _number(0.0, 1.0, low_open=True), "progression",
                                  "back_off_fraction"),
    },
    "echo": {
        "cancel": _Key("true or false", _boolean, "config", "echo_cancel"),
    },
}  # fmt: skip


# --- finding, reading and checking the file -----------------------------------------------------


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file is looked for (it need not exist)."""
    env = os.environ if environ is None else environ
    override = env.get(_CONFIG_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    config_home = env.get(_XDG_CONFIG_ENV, "")
    base = Path(config_home) if Path(config_home).is_absolute() else Path.home() / ".config"
    return base / "voicecoach" / _FILE_NAME


def load_config(path: Path | None = None) -> Config:
    """The settings of the config file (defaults if the default location has none); ConfigError lists problems."""
    from_environment = path is None and bool(os.environ.get(_CONFIG_ENV, "").strip())
    explicit = path is not None or from_environment
    path = config_path() if path is None else path
    if not explicit and not path.exists():
        _LOGGER.debug("no config file at %s: built-in defaults", path)
        return Config()
    if from_environment:
        missing = f"no such file (expected a TOML config file, as ${_CONFIG_ENV} names it; unset it to use none)"
    else:
        missing = "no such file (expected a TOML config file, as --config names it; check the path)"
    text = read_text_file(path, str(path), ConfigError, kind="a TOML config file", max_bytes=_MAX_FILE_BYTES,
                          missing=missing)  # fmt: skip
    config = parse_config(text, path)
    _LOGGER.debug("config loaded from %s", path)
    return config


def parse_config(text: str, source: Path) -> Config:
    """Check the text of a config file and build its settings; ConfigError lists every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(exc, text, str(source))]) from None
    except RecursionError:
        message = "is nested too deeply (expected [section] headers and key = value lines)"
        raise ConfigError([Problem(str(source), 1, FILE_FIELD, message)]) from None
    checker = _Checker(str(source), key_lines(text))
    values = checker.check(data)
    if checker.problems:
        raise ConfigError(sorted(checker.problems, key=lambda problem: problem.line))
    return _build(values, source)


_LINE_COLUMN = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str, source: str) -> Problem:
    """tomllib's account of a syntax error as a problem (its message carries the line and column)."""
    message = str(exc)
    where = _LINE_COLUMN.search(message)
    if where:
        line, at = int(where.group(1)), f" at column {where.group(2)}"
        message = message[: where.start()]
    else:
        line, at = (text.count("\n") + 1, " at the end of the file") if _AT_END.search(message) else (0, "")
        message = _AT_END.sub("", message)
    expected = '(expected TOML: [section] headers and key = value lines, text in "quotes")'
    return Problem(source, line, FILE_FIELD, f"{message[:1].lower()}{message[1:]}{at} {expected}")


class _Checker:
    """Checks parsed TOML against the schema, collecting problems with the lines of their keys."""

    def __init__(self, source: str, lines: dict[tuple[str, ...], int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: tuple[str, ...], label: str, message: str) -> None:
        """Record a problem at the line of the key path (or of its nearest enclosing key)."""
        line = next((self.lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in self.lines), 0)
        self.problems.append(Problem(self.source, line, label, message))

    def check(self, data: dict[str, Any]) -> dict[tuple[str, str], object]:
        """The converted value of every valid key, by (section, key)."""
        values: dict[tuple[str, str], object] = {}
        for section, table in data.items():
            keys = _SCHEMA.get(section)
            if keys is None:
                label = f"[{section}]" if isinstance(table, dict) else section
                self.add((section,), label, _unknown_section_message(section, isinstance(table, dict)))
            elif not isinstance(table, dict):
                self.add((section,), section, f"{_describe(table)} is not a section (expected a [{section}] table)")
            else:
                values.update(self._section(section, table, keys))
        return values

    def _section(self, section: str, table: dict[str, Any], keys: dict[str, _Key]) -> dict[tuple[str, str], object]:
        values: dict[tuple[str, str], object] = {}
        for name, value in table.items():
            label, key = f"{section}.{name}", keys.get(name)
            if key is None:
                self.add((section, name), label, _unknown_key_message(section, name))
                continue
            try:
                values[(section, name)] = key.convert(value)
            except _Invalid as exc:
                self.add((section, name), label, f"{exc} (expected {key.expected})")
        return values


def _suggestion(word: str, choices: tuple[str, ...] | list[str], form: str) -> str:
    """`form` filled with the closest choice, or ''."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1)
    return form.format(close[0]) if close else ""


def _home_section(name: str) -> str | None:
    """The section a key name belongs to, if any."""
    return next((section for section, keys in _SCHEMA.items() if name in keys), None)


def _unknown_section_message(name: str, is_table: bool) -> str:
    home = _home_section(name)
    where = f"; {name} goes under [{home}]" if home else _suggestion(name, list(_SCHEMA), "; did you mean [{}]?")
    what = "unknown section" if is_table else "unknown key outside any section"
    return f"{what} (expected one of: {', '.join(f'[{s}]' for s in _SCHEMA)}{where})"


def _unknown_key_message(section: str, name: str) -> str:
    known = list(_SCHEMA[section])
    home = _home_section(name)
    hint = _suggestion(name, known, "; did you mean {}?")
    if not hint and home:
        hint = f"; {name} goes under [{home}]"
    return f"unknown key (expected one of: {', '.join(known)}{hint})"


def _build(values: dict[tuple[str, str], object], source: Path) -> Config:
    """The Config with every checked value in its place; a relative model path is taken from the file's folder."""
    fields: dict[str, dict[str, Any]] = {"narrator": {}, "mic": {}, "recognizer": {}, "progression": {}, "config": {}}
    for (section, name), value in values.items():
        key = _SCHEMA[section][name]
        if isinstance(value, Path) and not value.is_absolute():
            value = source.parent / value
        fields[key.target][key.field] = value
    return Config(
        narrator=NarratorSettings(**fields["narrator"]),
        mic=MicSettings(**fields["mic"]),
        recognizer=RecognizerSettings(**fields["recognizer"]),
        progression=ProgressionSettings(**fields["progression"]),
        path=source,
        **fields["config"],
    )


