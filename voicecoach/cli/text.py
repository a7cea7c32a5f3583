"""Small pieces of wording shared by the commands' output."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 exercise', '2 exercises', '0 problems' (`many` for nouns that do not take an s)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
