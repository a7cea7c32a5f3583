"""The training script's smoke run: a tiny subset, seconds, a head the runtime loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voicecoach.listening.spotter.model import SpotterModel
from voicecoach.training.sources import DEFAULT_DATA_DIR

pytestmark = pytest.mark.engine

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_spotter.py"


def test_tiny_training_run_writes_a_loadable_head_and_card(tmp_path: Path) -> None:
    if not DEFAULT_DATA_DIR.is_dir():
        pytest.skip(f"the team's recordings are not here ({DEFAULT_DATA_DIR}); see ../shared/data/README.md")
    for module in ("torch", "audiomentations", "tqdm"):
        pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[train]'")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--out", str(out)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    model = SpotterModel.load(out / "head.npz")
    assert "stop" in model.commands and model.window_frames == 16
    card = (out / "MODEL.md").read_text()
    assert "arXiv:1804.03209" in card and "--tiny" in card and "Seed 1" in card
    assert (out / "head.npz").stat().st_size < 2_000_000


def test_missing_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    pytest.importorskip("tqdm", reason="tqdm missing: pip install -e '.[train]'")
    result = subprocess.run([sys.executable, str(_SCRIPT), "--data", str(tmp_path / "nowhere"), "--tiny"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "data folder" in result.stderr and "Traceback" not in result.stderr
