"""Synthesize test speech at test time with several TTS engines, as 16 kHz mono int16 arrays."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicecoach.audio.wavfile import read_wav, resample

RATE = 16000
"""Hz of every array these helpers return."""


@dataclass(frozen=True)
class Voice:
    """One TTS engine and voice."""

    engine: str
    """'espeak-ng', 'flite' or 'festival'."""
    name: str

    @property
    def label(self) -> str:
        """A short id such as 'flite:slt'."""
        return f"{self.engine}:{self.name}"


ESPEAK_VOICES = (Voice("espeak-ng", "en-us"), Voice("espeak-ng", "en+m3"), Voice("espeak-ng", "en+f3"))
FLITE_VOICES = (Voice("flite", "slt"), Voice("flite", "kal"), Voice("flite", "rms"), Voice("flite", "awb"))
HELD_OUT_VOICES = (Voice("espeak-ng", "en-gb-scotland+m1"), Voice("espeak-ng", "en-us+f2"), Voice("flite", "kal16"))
"""Voices never used while tuning: the honest check."""


def available(voice: Voice) -> bool:
    """True when the engine's program is installed (and, for festival, has a voice)."""
    if voice.engine == "festival":
        return _festival_works()
    return shutil.which(voice.engine) is not None


@functools.cache
def _festival_works() -> bool:
    """Festival is often installed without any voice; try it once."""
    if shutil.which("text2wave") is None:
        return False
    try:
        _run_to_wav(["text2wave", "-o", "{out}"], "test")
    except (subprocess.CalledProcessError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=2048)
def _cached(voice: Voice, text: str) -> bytes:
    """Synthesize once per (voice, text) per test session."""
    if voice.engine == "espeak-ng":
        samples, rate = _run_to_wav(["espeak-ng", "-v", voice.name, "-w", "{out}", text], None)
    elif voice.engine == "flite":
        samples, rate = _run_to_wav(["flite", "-voice", voice.name, "-t", text, "-o", "{out}"], None)
    elif voice.engine == "festival":
        samples, rate = _run_to_wav(["text2wave", "-eval", f"({voice.name})", "-o", "{out}"], text)
    else:
        raise ValueError(f"unknown TTS engine {voice.engine!r}")
    return resample(samples, rate, RATE).tobytes()


def synthesize(voice: Voice, text: str) -> np.ndarray:
    """Speak text with a voice: 16 kHz mono int16."""
    return np.frombuffer(_cached(voice, text), dtype=np.int16).copy()


def _run_to_wav(argv: list[str], stdin: str | None) -> tuple[np.ndarray, int]:
    """Run a TTS command that writes a WAV to '{out}' and read it back."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "out.wav")
        cmd = [out if a == "{out}" else a for a in argv]
        subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True, timeout=60)
        samples, rate = read_wav(out)
    if len(samples) == 0:
        raise ValueError(f"{argv[0]} produced no audio")
    return samples, rate


def silence(seconds: float) -> np.ndarray:
    """Digital silence of a length."""
    return np.zeros(int(round(seconds * RATE)), dtype=np.int16)


def pad(samples: np.ndarray, lead_s: float, tail_s: float) -> np.ndarray:
    """Silence before and after."""
    return np.concatenate([silence(lead_s), samples.astype(np.int16), silence(tail_s)])


def concat(*parts: np.ndarray, gap_s: float = 0.0) -> np.ndarray:
    """Join clips with a silent gap between each."""
    pieces: list[np.ndarray] = []
    for i, part in enumerate(parts):
        if i:
            pieces.append(silence(gap_s))
        pieces.append(part.astype(np.int16))
    return np.concatenate(pieces) if pieces else silence(0)


def mix(base: np.ndarray, other: np.ndarray, at_s: float = 0.0, gain_db: float = 0.0) -> np.ndarray:
    """Add another clip into base starting at a time, scaled by a gain; base grows if needed."""
    start = int(round(at_s * RATE))
    length = max(len(base), start + len(other))
    out = np.zeros(length, dtype=np.float64)
    out[: len(base)] += base
    out[start : start + len(other)] += other.astype(np.float64) * 10 ** (gain_db / 20)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def noise(seconds: float, level_db: float = -40.0, seed: int = 0) -> np.ndarray:
    """White noise at a level in dB relative to full scale RMS."""
    rng = np.random.default_rng(seed)
    rms = 32767 * 10 ** (level_db / 20)
    return np.clip(rng.normal(0, rms, int(round(seconds * RATE))), -32768, 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Write mono int16 samples as a WAV file."""
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path
