"""Files a person writes, fuzzed: whatever bytes a routine or config file holds, the answer is the file's settings or
clear `FILE:LINE: field: message` problems, never a traceback."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voicecoach.files.config import ConfigError, load_config
from voicecoach.files.routine_check import check_routine
from voicecoach.files.routine_file import RoutineFileError

_EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID_ROUTINE = """\
name: fuzz
title: Fuzz
description: A routine to break.
intro: ["Move gently."]
exercises:
  - name: Bridge
    position: lying face up
    equipment: [mat]
    steps:
      - "Lift your hips."
    hold_s: 20
    max_hold_s: 40
    reps: 2
    sides: both
    rest_s: 10
"""
ROUTINE_TOKENS = [
    "name: ", "title: ", "description: ", "exercises:\n", "  - ", "    ", "hold_s: ", "reps: ", "sides: ", "steps: ",
    "equipment: ", "max_hold_s: ", "20", "20.5", "-1", "1e999", ".nan", "yes", "null", "~", "both", "\n", ": ", "- ",
    "[", "]", "{", "}", ",", "&a ", "*a", "!!python/object:os.system ", "!!binary ", "'", '"', "# teaches: stop\n",
    "<<: ", "---\n", "...\n", "\t", "\x00", "\ufeff", "\x85", "stop", "é", "|\n", ">-\n", "? ", "%YAML 1.1\n",
]  # fmt: skip

VALID_CONFIG = """\
[audio]
input_device = "USB"
[voice]
rate = 150
volume = 0.8
[recognizer]
engine = "auto"
model = "models/vosk"
[progression]
step_s = 5
"""
CONFIG_TOKENS = [
    "[voice]\n", "[audio]\n", "[progression]\n", "[[voice]]\n", "[a.b]\n", "rate = ", "volume = ", "engine = ",
    "input_device = ", "model = ", "enabled = ", "x.y = ", "1.5", "-1", "nan", "inf", "1e999", "true", '"x"', "''",
    '"""', "'''", "=", "\n", "[", "]", "{", "}", "{x = 1}", "1979-05-27T07:32:00Z", "#", "\x00", "\ufeff", "é", "\\",
]  # fmt: skip

_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>.+?): (?P<message>\S.*)$")


def _spliced(valid: str, tokens: list[str]) -> st.SearchStrategy[bytes]:
    """A valid file with a few tokens put in at random places, and now and then a byte cut out."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        text = valid
        for _ in range(draw(st.integers(1, 6))):
            where = draw(st.integers(0, len(text)))
            text = text[:where] + draw(st.sampled_from(tokens)) + text[where:]
        data = text.encode("utf-8")
        if draw(st.booleans()):
            where = draw(st.integers(0, len(data) - 1))
            data = data[:where] + data[where + 1 :]
        return data

    return build()


def _files(valid: str, tokens: list[str]) -> st.SearchStrategy[bytes]:
    """Any bytes; token soup; a valid file spliced with tokens."""
    soup = st.lists(st.sampled_from(tokens) | st.text(max_size=8), max_size=40).map(lambda parts: "".join(parts))
    return st.binary(max_size=300) | soup.map(lambda text: text.encode("utf-8")) | _spliced(valid, tokens)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the examples write their file into (one fixture for all of a test's examples)."""
    with tempfile.TemporaryDirectory(prefix="vc-fuzz-") as name:
        yield Path(name)


def _assert_clear(problems: list[object], path: Path, data: bytes) -> None:
    """Every problem is one `FILE:LINE: field: message` line about this file, at a line the file has (0: none)."""
    assert problems
    text = data.decode("utf-8", "replace")
    lines = max(data.count(b"\n"), len(text.splitlines())) + 1  # YAML also breaks lines at \r and \x85
    for problem in problems:
        line = str(problem)
        found = _PROBLEM.match(line)
        assert found is not None and "\n" not in line and "\r" not in line, line
        assert found["file"] == str(path), line
        assert 0 <= int(found["line"]) <= lines, line
        assert "Traceback" not in line


@_EXAMPLES
@given(data=_files(VALID_ROUTINE, ROUTINE_TOKENS))
@example(data=b"name: " + b"[" * 600 + b"]" * 600)  # too deep for the YAML composer
@example(data=b"(\n\n!")  # a top-level text over several lines: its problem stays on one line
def test_any_routine_file_loads_or_gives_clear_problems(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.yaml"
    path.write_bytes(data)
    try:
        routine, findings = check_routine(path)
    except RoutineFileError as exc:
        _assert_clear(exc.problems, path, data)
    else:
        assert routine.exercises and routine.name
        for finding in findings:
            assert str(finding).startswith(f"{path}:") and "\n" not in str(finding)


@_EXAMPLES
@given(data=_files(VALID_CONFIG, CONFIG_TOKENS))
@example(data=b"a = " + b"[" * 5000 + b"]" * 5000)
@example(data=b"x = {" + b"a = {" * 3000 + b"}" * 3001)
def test_any_config_file_loads_or_gives_clear_problems(folder: Path, data: bytes) -> None:
    path = folder / "config.toml"
    path.write_bytes(data)
    try:
        config = load_config(path)
    except ConfigError as exc:
        _assert_clear(exc.problems, path, data)
    else:
        assert config.path == path
