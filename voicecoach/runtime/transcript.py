"""What happened, when: a readable transcript or one JSON object per line."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Transcript:
    """Collects records and, when given a stream, prints each as it happens."""

    stream: TextIO | None = None
    as_json: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)

    def record(self, t: float, kind: str, text: str = "", **extra: Any) -> None:
        """Add one record at clock time t (seconds)."""
        entry: dict[str, Any] = {"t": round(t, 3), "kind": kind, "text": text}
        entry.update({k: v for k, v in extra.items() if v is not None})
        self.records.append(entry)
        if self.stream is not None:
            self.stream.write(self._format(entry) + "\n")
            self.stream.flush()

    def _format(self, entry: dict[str, Any]) -> str:
        if self.as_json:
            return json.dumps(entry, ensure_ascii=False)
        minutes, seconds = divmod(entry["t"], 60)
        stamp = f"{int(minutes):02d}:{seconds:05.2f}"
        kind, text = entry["kind"], entry["text"]
        details = {k: v for k, v in entry.items() if k not in ("t", "kind", "text", "id")}
        if kind == "say":
            line = f'says     "{text}"'
        elif kind == "heard":
            command = details.pop("command", "(no command)")
            line = f'heard    "{text}" -> {command}'
        else:
            line = f"{kind:<8} {text}".rstrip()
        if details:
            line += "  (" + ", ".join(f"{k}={v}" for k, v in details.items()) + ")"
        return f"[{stamp}] {line}"


def stdout_transcript(as_json: bool) -> Transcript:
    """A transcript that prints to standard output."""
    return Transcript(sys.stdout, as_json)
