"""Reading clips: WAV files to int16 mono 16 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16000


def read_wav(path: Path) -> np.ndarray:
    """int16 mono 16 kHz samples of a WAV file (other rates resampled, channels averaged)."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.clip(np.rint(mono * 32768.0), -32768, 32767).astype(np.int16)
