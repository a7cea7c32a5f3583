"""The fusion evaluation (scripts/eval_fusion.py): the rules combine the engines' detections as they say."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from support.scripts import load_script

from voicecoach.training.sources import HumanClip


@pytest.fixture(scope="module")
def fusion() -> ModuleType:
    return load_script("eval_fusion")


def _outcome(fusion: ModuleType, word: str, spotter: set[str], pocketsphinx: set[str]) -> object:
    clip = HumanClip(Path(f"{word}.wav"), word, f"speaker-{word}", "speech_commands")
    return fusion.Outcome(clip, 1.0, {"spotter": frozenset(spotter), "pocketsphinx": frozenset(pocketsphinx)})


def test_or_adds_detections_and_false_commands_and_requires_both_for_and(fusion: ModuleType) -> None:
    outcomes = [
        _outcome(fusion, "stop", {"stop"}, set()),
        _outcome(fusion, "stop", set(), {"stop"}),
        _outcome(fusion, "stop", {"stop"}, {"stop"}),
        _outcome(fusion, "go", {"resume"}, {"stop"}),  # a wrong command is not a hit
        _outcome(fusion, "bed", set(), {"too_much"}),
        _outcome(fusion, "bed", {"next"}, {"next"}),
        _outcome(fusion, "cat", set(), set()),
    ]
    rows = {line.split(" | ")[0].strip("| "): line for line in fusion.table(outcomes).splitlines()[2:]}
    assert "| 2/3 (66.7%) | 1/1 (100.0%) | 1/3 (33.33%) | 1200.0 |" in rows["spotter"]
    assert "| 2/3 (66.7%) | 0/1 (0.0%) | 2/3 (66.67%) | 2400.0 |" in rows["pocketsphinx"]
    assert "| 3/3 (100.0%) | 1/1 (100.0%) | 2/3 (66.67%) | 2400.0 |" in rows["either (OR)"]
    assert "| 1/3 (33.3%) | 0/1 (0.0%) | 1/3 (33.33%) | 1200.0 |" in rows["both (AND)"]


def test_only_held_out_speakers_are_used(fusion: ModuleType, tmp_path: Path) -> None:
    from voicecoach.training.sources import held_out

    words = tmp_path / "speech_commands" / "stop"
    words.mkdir(parents=True)
    speakers = [f"{n:08x}" for n in range(40)]
    for speaker in speakers:
        (words / f"{speaker}_nohash_0.wav").write_bytes(b"")
    chosen = {clip.speaker for clip in fusion.held_out_clips(tmp_path, None)}
    assert chosen == {s for s in speakers if held_out(s, seed=1)} and 0 < len(chosen) < len(speakers)


def test_one_engine_gives_its_own_row_alone(fusion: ModuleType) -> None:
    clip = HumanClip(Path("stop.wav"), "stop", "speaker-a", "speech_commands")
    rows = fusion.table([fusion.Outcome(clip, 1.0, {"spotter": frozenset({"stop"})})]).splitlines()[2:]
    assert len(rows) == 1 and rows[0].startswith("| spotter | 1/1")
