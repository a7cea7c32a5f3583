"""The README's "What you can say" table, made from the command vocabulary so that the two never disagree.

    python -m voicecoach.cli.command_table README.md           # rewrite the table between its markers
    python -m voicecoach.cli.command_table --check README.md   # exit 1 if the README's table is out of date

The vocabulary (`voicecoach/vocab/en.toml`) says which phrases mean which command; this module says, per row, which
commands share it and what they do. A test checks the README against it, and every phrase of the README's table
against the dry run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from voicecoach.core.commands import Vocabulary, load_vocabulary
from voicecoach.core.events import Command

BEGIN_MARKER = ("<!-- commands: made from voicecoach/vocab/en.toml by "
                "`python -m voicecoach.cli.command_table README.md` -->")
END_MARKER = "<!-- end of commands -->"

_ROWS: tuple[tuple[tuple[Command, ...], str], ...] = (
    ((Command.STOP,), "silence at once, freeze the hold, one calm line, wait"),
    ((Command.TOO_MUCH,), "as stop, and it is recorded against the exercise"),
    ((Command.PAUSE, Command.RESUME), "freeze / continue the countdown where it was"),
    ((Command.NEXT, Command.BACK, Command.SKIP), "next step, previous step, next exercise"),
    ((Command.REPEAT,), "say the current step again"),
    ((Command.HOW_LONG,), "the seconds left on the hold"),
    ((Command.START, Command.QUIT), "begin; end early with a summary"),
)
"""Every command, in the order a person meets them, grouped as the README shows them, with what it does."""
_NAMES = {Command.QUIT: "end"}
"""Commands whose name in the table is not their value with spaces."""


class TableError(ValueError):
    """The README has no place for the table (its markers are missing)."""


def command_name(command: Command) -> str:
    """The command as the table names it: 'too much', 'end'."""
    return _NAMES.get(command, command.value.replace("_", " "))


def command_table(vocabulary: Vocabulary) -> str:
    """The markdown table: command, every phrase of it, what it does."""
    lines = ["| command | phrases | effect |", "|---|---|---|"]
    for commands, effect in _ROWS:
        names = " / ".join(command_name(command) for command in commands)
        phrases = " / ".join(", ".join(f'"{p}"' for p in vocabulary.phrases.get(c, ())) for c in commands)
        lines.append(f"| {names} | {phrases} | {effect} |")
    return "\n".join(lines)


def table_commands() -> list[Command]:
    """The commands the table has rows for, in its order."""
    return [command for commands, _ in _ROWS for command in commands]


def with_table(readme: str, table: str) -> str:
    """The README text with the table between its markers replaced."""
    start, end = readme.find(BEGIN_MARKER), readme.find(END_MARKER)
    if start < 0 or end < start:
        raise TableError(f"the README has no {BEGIN_MARKER!r} ... {END_MARKER!r} markers for the table")
    return f"{readme[: start + len(BEGIN_MARKER)]}\n{table}\n{readme[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the README's table."""
    parser = argparse.ArgumentParser(prog="python -m voicecoach.cli.command_table", description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path, help="the README to update")
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is out of date; change nothing")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    try:
        updated = with_table(text, command_table(load_vocabulary("en")))
    except TableError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    if updated == text:
        print(f"{args.readme}: the command table is up to date")
        return 0
    if args.check:
        print(f"{args.readme}: the command table is out of date (run: python -m voicecoach.cli.command_table "
              f"{args.readme})", file=sys.stderr)  # fmt: skip
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: the command table now matches voicecoach/vocab/en.toml")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
