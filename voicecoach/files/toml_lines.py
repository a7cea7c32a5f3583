"""Line numbers of the keys in a TOML text: tomllib gives none for values."""

from __future__ import annotations

import re

# --- line numbers -------------------------------------------------------------------------------

_BARE_KEY = r"[A-Za-z0-9_-]+"
_QUOTED_KEY = r'"(?:[^"\\]|\\.)*"' + r"|'[^']*'"
_DOTTED_KEY = rf"(?:{_BARE_KEY}|{_QUOTED_KEY})(?:\s*\.\s*(?:{_BARE_KEY}|{_QUOTED_KEY}))*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED_KEY})\s*\]\]?")
_ASSIGNMENT = re.compile(rf"^\s*({_DOTTED_KEY})\s*=")
_KEY_PART = re.compile(rf"{_BARE_KEY}|{_QUOTED_KEY}")
_MULTILINE_QUOTES = ('"""', "'''")


def _key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(part[1:-1] if part[:1] in "\"'" else part for part in _KEY_PART.findall(dotted))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line of each section header and `key =` line, by full key path (first occurrence wins)."""
    lines: dict[tuple[str, ...], int] = {}
    section: tuple[str, ...] = ()
    open_quotes: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_quotes is not None:
            if line.count(open_quotes) % 2:
                open_quotes = None
            continue
        header, assignment = _HEADER.match(line), _ASSIGNMENT.match(line)
        if header:
            section = _key_parts(header.group(1))
            lines.setdefault(section, number)
        elif assignment:
            lines.setdefault(section + _key_parts(assignment.group(1)), number)
        open_quotes = next((quotes for quotes in _MULTILINE_QUOTES if line.count(quotes) % 2), None)
    return lines
