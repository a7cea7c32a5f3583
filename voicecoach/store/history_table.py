"""The history as a table for voicecoach history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from voicecoach.store.history import HoldTrend, SessionRow, TooMuchMoment

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


def format_trends(trends: Sequence[HoldTrend]) -> str:
    """Each exercise's holds over the sessions, changes only: `  Bridge  15 -> 20 -> 25 s`, under its routine."""
    if not trends:
        return ""
    width = max(len(trend.exercise) for trend in trends)
    lines = ["Holds over these sessions, oldest first:"]
    for routine in dict.fromkeys(trend.routine for trend in trends):
        lines.append(f"  {routine}")
        for trend in (t for t in trends if t.routine == routine):
            lines.append(f"    {trend.exercise:<{width}}  {_steps(trend.holds_s)}")
    return "\n".join(lines)


def _steps(holds_s: Sequence[float]) -> str:
    """'15 -> 20 -> 25 s': each hold that differs from the one before it."""
    changes = [hold for index, hold in enumerate(holds_s) if index == 0 or hold != holds_s[index - 1]]
    return " -> ".join(f"{hold:g}" for hold in changes) + " s"


def format_too_much(moments: Sequence[TooMuchMoment], zone: tzinfo | None = None) -> str:
    """One line per "too much": when, in which routine and exercise, how far into the hold."""
    if not moments:
        return ""
    lines = ['"Too much":']
    for moment in moments:
        when = moment.session_started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        where = moment.exercise or "between exercises"
        into = f", {moment.into_hold_s:g} s into a hold" if moment.into_hold_s is not None else ""
        lines.append(f"  {when}  {moment.routine}: {where}{into}")
    return "\n".join(lines)
