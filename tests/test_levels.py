"""The narrator's level remembered per devices: a room whose microphone clips on the narrator starts the next
session turned down (one step louder than the last ended), and a room that no longer clips comes back to full level
a step a session."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from voicecoach.core.commands import Vocabulary, load_vocabulary
from voicecoach.echo.clipping import ClipGuard, ClipGuardSettings
from voicecoach.listening.pipeline import ListeningPipeline
from voicecoach.listening.recognizer import Hypothesis
from voicecoach.runtime.rig import _Level
from voicecoach.store.levels import Devices, LevelMemory

USB = Devices("USB Audio Device: speaker", "USB Audio Device: mic", 1.0)


class _Deaf:
    """An engine that hears nothing."""

    name = "deaf"
    sample_rate = 16000

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        return []

    def flush(self) -> list[Hypothesis]:
        return []

    def reset(self) -> None:
        """Nothing to forget."""


class _Narrator:
    """A floor that records how far it was turned down, and plays at that level."""

    def __init__(self) -> None:
        self.down_db = 0.0

    def fade(self, gain_db: float) -> None:
        """Not used here."""

    def turn_down(self, step_db: float) -> None:
        self.down_db += step_db


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return load_vocabulary("en")


def _session(memory: LevelMemory, vocabulary: Vocabulary, seconds: float, clips_above_db: float) -> _Narrator:
    """One session of narration: the microphone clips on the narrator's peaks while it plays louder than
    -clips_above_db; the narrator as it ended."""
    pipeline = ListeningPipeline(_Deaf(), vocabulary, echo_cancel=False)
    narrator = _Narrator()
    pipeline.floor = narrator
    level = _Level.start(memory, USB, pipeline)
    assert level is not None
    narration = np.full(int(16000 * seconds), 3000, np.int16)
    played = [_PlayedAt0(narration)]
    for offset in range(0, len(narration), 320):
        block = narration[offset : offset + 320].copy()
        if narrator.down_db < clips_above_db:
            block[::100] = 32767
        pipeline.process(block, offset / 16000, played)
    level.session_ended()
    return narrator


class _PlayedAt0:
    def __init__(self, samples: np.ndarray) -> None:
        self.start_s, self.sample_rate, self.samples = 0.0, 16000, samples


def test_a_clipping_room_starts_the_next_session_turned_down_and_relaxes_a_step_a_session_once_it_stops(
    tmp_path: Path, vocabulary: Vocabulary
) -> None:
    memory = LevelMemory(tmp_path)
    first = _session(memory, vocabulary, 20, clips_above_db=6)
    assert first.down_db == 6.0, "two steps bring its peaks under full scale"
    assert memory.recall(USB) == 6.0
    second = _session(memory, vocabulary, 20, clips_above_db=6)
    assert second.down_db == 6.0, "it starts a step louder (-3 dB), clips, and takes the step back"
    assert memory.recall(USB) == 6.0
    # the speaker's knob turned down: the narrator no longer clips the microphone at any level
    short = _session(memory, vocabulary, 20, clips_above_db=0)
    assert short.down_db == 3.0 and memory.recall(USB) == 6.0, "20 s of narration is no proof that -3 dB is safe"
    long = _session(memory, vocabulary, 70, clips_above_db=0)
    assert long.down_db == 3.0 and memory.recall(USB) == 3.0
    full = _session(memory, vocabulary, 70, clips_above_db=0)
    assert full.down_db == 0.0 and memory.recall(USB) == 0.0
    assert json.loads(memory.path.read_text())["levels"] == [], "full level: nothing left to remember"


def test_a_step_is_remembered_as_it_is_taken(tmp_path: Path, vocabulary: Vocabulary) -> None:
    memory = LevelMemory(tmp_path)
    pipeline = ListeningPipeline(_Deaf(), vocabulary, echo_cancel=False)
    pipeline.floor = _Narrator()
    _Level.start(memory, USB, pipeline)
    narration = np.full(16000 * 3 // 2, 3000, np.int16)  # 1.5 s: one step (the next would come after its hold)
    narration[::400] = 32767
    for offset in range(0, len(narration), 320):
        pipeline.process(narration[offset : offset + 320], offset / 16000, [_PlayedAt0(narration)])
    assert memory.recall(USB) == 3.0, "a crash or power cut before the session ends keeps it"


def test_the_memory_is_per_devices_and_volume_and_off_with_the_guard(tmp_path: Path, vocabulary: Vocabulary) -> None:
    memory = LevelMemory(tmp_path)
    memory.keep(USB, 9.0)
    assert memory.recall(Devices(USB.speaker, "another mic", 1.0)) == 0.0
    assert memory.recall(Devices(USB.speaker, USB.microphone, 0.5)) == 0.0
    pipeline = ListeningPipeline(_Deaf(), vocabulary, echo_cancel=False)
    narrator = _Narrator()
    pipeline.floor = narrator
    _Level.start(memory, USB, pipeline)
    assert narrator.down_db == 6.0
    off = ListeningPipeline(_Deaf(), vocabulary, echo_cancel=False, clip_guard=None)
    off.floor = _Narrator()
    assert _Level.start(memory, USB, off) is None and off.floor.down_db == 0.0


def test_the_file_is_written_only_when_a_level_changes(tmp_path: Path) -> None:
    memory = LevelMemory(tmp_path)
    memory.keep(USB, 0.0)
    assert not memory.path.exists()
    memory.keep(USB, 3.0)
    before = memory.path.read_text()
    memory.keep(USB, 3.0)
    assert memory.path.read_text() == before


def test_an_unreadable_file_is_set_aside_with_a_clear_warning_and_nothing_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    memory = LevelMemory(tmp_path)
    memory.path.write_text('{"version": 1,\n "levels": [\n')
    with caplog.at_level(logging.WARNING):
        assert memory.recall(USB) == 0.0
    assert f"{memory.path}: line 3" in caplog.text and "not valid JSON" in caplog.text
    assert "set aside as levels.json.bad" in caplog.text
    assert (tmp_path / "levels.json.bad").read_text() == '{"version": 1,\n "levels": [\n'
    memory.keep(USB, 3.0)
    assert memory.recall(USB) == 3.0


@pytest.mark.parametrize(("entry", "field"), [
    ({"speaker": 3, "microphone": "m", "volume": 1.0, "down_db": 3.0, "saved_at": 1.0}, "speaker"),
    ({"speaker": "s", "microphone": "m", "volume": 2.0, "down_db": 3.0, "saved_at": 1.0}, "volume"),
    ({"speaker": "s", "microphone": "m", "volume": 1.0, "down_db": "3", "saved_at": 1.0}, "down_db"),
])  # fmt: skip
def test_a_bad_field_is_named_with_what_was_expected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, entry: dict, field: str
) -> None:
    memory = LevelMemory(tmp_path)
    memory.path.write_text(json.dumps({"version": 1, "levels": [entry]}))
    with caplog.at_level(logging.WARNING):
        assert memory.levels() == []
    assert f'levels[0]: field "{field}" must be' in caplog.text


def test_a_session_starts_one_step_louder_than_the_last_ended_within_the_guards_limits() -> None:
    settings = ClipGuardSettings()
    assert [settings.first_step_db(db) for db in (0.0, 3.0, 6.0, 12.0, 30.0)] == [0.0, 0.0, 3.0, 9.0, 12.0]
    guard = ClipGuard(settings)
    guard.start_down(30.0)
    assert guard.down_db == settings.max_down_db
    guard = ClipGuard(settings)
    guard.start_down(3.0)
    assert guard.level_to_keep(6.0) == 6.0, "no narration yet: no proof"
    guard.feed(np.full(16000 * 61, 3000, np.int16), 61.0, narrating=True)
    assert guard.level_to_keep(6.0) == 3.0
    assert guard.level_to_keep(3.0) == 3.0
