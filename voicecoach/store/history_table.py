"""The history as a table for voicecoach history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from voicecoach.store.history import SessionRow

_HEADERS = ("Date", "Routine", "Minutes", "Exercises", "Stops", "Too much")
_RIGHT_ALIGNED = frozenset({2, 3, 4, 5})


def format_sessions(rows: Sequence[SessionRow], zone: tzinfo | None = None) -> str:
    """A readable table for `voicecoach history` (dates in `zone`, default the local time zone)."""
    if not rows:
        return "No sessions recorded yet."
    cells = [_HEADERS] + [_cells(row, zone) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_HEADERS))]
    lines = [
        "  ".join(
            c.rjust(w) if i in _RIGHT_ALIGNED else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def _cells(row: SessionRow, zone: tzinfo | None) -> tuple[str, ...]:
    minutes = row.minutes
    return (
        row.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        row.routine,
        "-" if minutes is None else f"{minutes:.0f}",
        f"{row.exercises_done}/{row.exercises_total}",
        str(row.stops),
        str(row.too_much),
    )
