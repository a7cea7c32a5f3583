"""Problems in files a person writes (config, routine files) and findings about them: one type, one format."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from voicecoach.core.events import Command

FILE_FIELD = "(file)"
"""The field of a problem with the file as a whole (it cannot be read, is not YAML or TOML, ...)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file; `field` is a key or path such as `voice.rate` or `exercises[2].hold_s` (1-based)."""

    file: str
    line: int
    """1-based line of the offending value; 0 when there is no line (e.g. the file cannot be read)."""
    field: str
    message: str
    """What is wrong, then what was expected in parentheses."""

    @property
    def key(self) -> str:
        """The config key (the same as field)."""
        return self.field

    def __str__(self) -> str:
        """The problem as `FILE:LINE: field: message`, on one line whatever the file held."""
        return one_line(f"{self.file}:{self.line}: {self.field}: {self.message}")


_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F, 0x85]} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}
"""Characters that would break a problem's one line (text from the file can hold any), and how they are shown."""


def one_line(text: str) -> str:
    """The text with line breaks and control characters written as escapes (`\\n`, `\\x00`)."""
    return text.translate(_CONTROL)


class FileProblems(Exception):
    """A file that cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        """One line per problem."""
        return "\n".join(str(problem) for problem in self.problems)


class Level(enum.Enum):
    """How much a finding matters."""

    WARNING = "warning"
    """The narrator could stop the session by itself; fails `check --strict`."""
    NOTE = "note"
    """Worth knowing, but handled at run time; never fails a check."""


@dataclass(frozen=True)
class Finding(Problem):
    """One thing to know about a file that loads; printed like a Problem, with its level."""

    level: Level = Level.WARNING
    command: Command | None = None
    """The command a phrase in the text would trigger; None for findings about something else."""
    phrase: str = ""
    """The command phrase as the recognizer would hear it (normalized)."""

    def __str__(self) -> str:
        """The finding as `FILE:LINE: field: level: message`."""
        return one_line(f"{self.file}:{self.line}: {self.field}: {self.level.value}: {self.message}")


def read_text_file(
    path: Path, source: str, error: type[FileProblems], *, kind: str, max_bytes: int, missing: str = ""
) -> str:
    """The text of a file a person wrote, decoded as UTF-8 (a byte-order mark is dropped).

    Anything that keeps it from being read raises `error` with one problem at the file: missing (`missing` says
    what to do then; without it, the file cannot be read), unreadable, larger than max_bytes (refused before reading it,
    so a huge file costs nothing), or not UTF-8 (at the line of the first bad byte). `kind` is what the file should
    be, such as "a routine file".
    """

    def fail(line: int, message: str) -> NoReturn:
        raise error([Problem(source, line, FILE_FIELD, message)])

    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > max_bytes:
                fail(0, f"is {_size(size)} (expected {kind} of at most {_size(max_bytes)})")
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        if missing and isinstance(exc, FileNotFoundError):
            fail(0, missing)
        fail(0, f"cannot be read: {exc.strerror or exc} (expected a readable file)")
    if len(data) > max_bytes:  # grew while being read, or a device that reports no size
        fail(0, f"is larger than {_size(max_bytes)} (expected {kind} of at most {_size(max_bytes)})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        fail(line, f"byte 0x{data[exc.start]:02x} is not UTF-8 (expected a text file saved as UTF-8)")


def _size(count: int) -> str:
    """'10.0 MB', '512 KB', '300 bytes'."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    if count >= 1_000:
        return f"{count // 1_000} KB"
    return f"{count} bytes"
