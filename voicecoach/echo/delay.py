"""The bulk delay between what the speaker played and what the microphone heard (GCC-PHAT).

Also how much of a reference is playback at all.
"""

from __future__ import annotations

import math

import numpy as np

_PHAT_REGULARIZATION = 1e-3
"""Cross-spectrum bins weaker than this fraction of the strongest are not whitened up to full weight."""


_ACTIVITY_FRAME_S = 0.01
_ACTIVITY_THRESHOLD = 100
"""int16 RMS (about -50 dBFS) above which a 10 ms frame of reference counts as playback."""


# --- delay estimation ---------------------------------------------------------------------------


def estimate_delay(
    mic: np.ndarray, reference: np.ndarray, sample_rate: int, max_delay_s: float = 0.5, *, min_delay_s: float = 0.0
) -> tuple[float, float]:
    """Seconds by which mic lags reference (GCC-PHAT) and the peak's strength (near 1: clean delay; near 0: none)."""
    if len(mic) == 0 or len(reference) == 0:
        return 0.0, 0.0
    mic_f = np.asarray(mic, dtype=np.float64) - np.mean(mic)
    reference_f = np.asarray(reference, dtype=np.float64) - np.mean(reference)
    longest_lag = math.ceil(max(abs(min_delay_s), abs(max_delay_s)) * sample_rate)
    size = 1 << math.ceil(math.log2(max(len(mic_f), len(reference_f)) + longest_lag + 1))
    cross = np.fft.rfft(mic_f, size) * np.conj(np.fft.rfft(reference_f, size))
    magnitude = np.abs(cross)
    cross /= np.maximum(magnitude, _PHAT_REGULARIZATION * (magnitude.max() or 1.0))
    correlation = np.fft.irfft(cross, size)
    lags = np.arange(math.floor(min_delay_s * sample_rate), math.ceil(max_delay_s * sample_rate) + 1)
    lags = lags[(lags > -len(reference_f)) & (lags < len(mic_f))]
    values = correlation[lags % size]
    best = int(np.argmax(values))
    return (lags[best] + _parabolic_offset(values, best)) / sample_rate, float(values[best])


def _parabolic_offset(values: np.ndarray, index: int) -> float:
    """Sub-sample position of a peak from its two neighbours (0 at the edges)."""
    if index == 0 or index == len(values) - 1:
        return 0.0
    left, centre, right = values[index - 1], values[index], values[index + 1]
    curvature = left - 2 * centre + right
    return 0.0 if curvature >= 0 else float(0.5 * (left - right) / curvature)


def active_fraction(samples: np.ndarray, sample_rate: int) -> float:
    """Fraction of 10 ms frames whose RMS is above the playback threshold."""
    frame = max(1, round(_ACTIVITY_FRAME_S * sample_rate))
    usable = len(samples) - len(samples) % frame
    if usable == 0:
        return 0.0
    power = np.mean(samples[:usable].astype(np.float64).reshape(-1, frame) ** 2, axis=1)
    return float(np.mean(power > _ACTIVITY_THRESHOLD**2))
