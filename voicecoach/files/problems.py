"""Problems in files a person writes (config, routine files) and findings about them: one type, one format."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicecoach.core.events import Command


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
        """The problem as `FILE:LINE: field: message`."""
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


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
        return f"{self.file}:{self.line}: {self.field}: {self.level.value}: {self.message}"
