"""How far the narrator had to be turned down for a speaker and microphone, remembered between sessions.

The clip guard (voicecoach.echo.clipping) turns the narrator down when its voice clips the microphone. Without a
memory every session would start at full level and clip again for its first second or two, where the echo
canceller cannot remove the clipped voice and false commands come from. So the level a session ends at is kept per
pair of devices and narrator volume, and the next session starts one step louder than that: a room that still
clips takes the step back within a second or two, and one that no longer does (the speaker's knob turned down, the
speaker moved) comes back to full level a step a session.

The file is small JSON in the data folder (levels.json), replaced atomically. An unreadable one is set aside as
levels.json.bad (nothing is lost) with a warning that says what was wrong, and the memory starts afresh.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voicecoach.store.atomic import replace_file

_LOGGER = logging.getLogger(__name__)
FILE_NAME = "levels.json"
_VERSION = 1


@dataclass(frozen=True)
class Devices:
    """What a remembered level belongs to: the devices by name, and the narrator's volume setting."""

    speaker: str
    microphone: str
    volume: float


@dataclass(frozen=True)
class RememberedLevel:
    """One remembered level."""

    devices: Devices
    down_db: float
    """How far below full level the narrator ended its last session on these devices, dB (positive)."""
    saved_at: float
    """Seconds since the epoch."""


class LevelFileError(ValueError):
    """levels.json is not what this version writes."""


class LevelMemory:
    """The remembered levels in one JSON file in the data folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME

    def recall(self, devices: Devices) -> float:
        """How far down the narrator ended last time on these devices, dB (0: never turned down, or unknown)."""
        for level in self.levels():
            if level.devices == devices:
                return level.down_db
        return 0.0

    def keep(self, devices: Devices, down_db: float) -> None:
        """Remember down_db for these devices (0 forgets them); the file is written only when something changed."""
        levels = self.levels()
        down_db = round(float(down_db), 2) if down_db > 0 else 0.0
        if next((level.down_db for level in levels if level.devices == devices), 0.0) == down_db:
            return
        kept = [level for level in levels if level.devices != devices]
        if down_db > 0:
            kept.append(RememberedLevel(devices, down_db, time.time()))
        entries = [{**asdict(level.devices), "down_db": level.down_db, "saved_at": level.saved_at}
                   for level in kept]  # fmt: skip
        body = {"version": _VERSION, "levels": entries}
        replace_file(self.path, json.dumps(body, indent=1) + "\n")

    def levels(self) -> list[RememberedLevel]:
        """Every remembered level; an unreadable file is set aside (see the module) and counts as none."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            _LOGGER.warning("cannot read %s (%s): the narrator starts at full level", self.path, exc)
            return []
        try:
            return parse(text, self.path)
        except LevelFileError as exc:
            bad = self.path.with_name(FILE_NAME + ".bad")
            try:
                self.path.replace(bad)
                kept = f"set aside as {bad.name}, a new one is started"
            except OSError:
                kept = "left as it is"
            _LOGGER.warning("%s; the narrator starts at full level (the file is %s)", exc, kept)
            return []


def parse(text: str, path: Path) -> list[RememberedLevel]:
    """The levels of a levels.json; LevelFileError naming the file, line or entry and field, and what was expected."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LevelFileError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(body, dict) or body.get("version") != _VERSION or not isinstance(body.get("levels"), list):
        raise LevelFileError(f'{path}: expected an object with "version": {_VERSION} and a "levels" list')
    return [_level(entry, path, index) for index, entry in enumerate(body["levels"])]


def _level(entry: Any, path: Path, index: int) -> RememberedLevel:
    where = f"{path}: levels[{index}]"
    if not isinstance(entry, dict):
        raise LevelFileError(f"{where}: expected an object, got {type(entry).__name__}")
    for name in ("speaker", "microphone"):
        if not isinstance(entry.get(name), str):
            raise LevelFileError(f'{where}: field "{name}" must be the device name (a string)')
    numbers = {}
    for name, low, high in (("volume", 0.0, 1.0), ("down_db", 0.0, 60.0), ("saved_at", 0.0, math.inf)):
        value = entry.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise LevelFileError(f'{where}: field "{name}" must be a number from {low:g} to {high:g}, got {value!r}')
        numbers[name] = float(value)
    devices = Devices(entry["speaker"], entry["microphone"], numbers["volume"])
    return RememberedLevel(devices, numbers["down_db"], numbers["saved_at"])

