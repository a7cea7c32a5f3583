"""Synthetic echo scenes: speech-like narration, its echo through a small room, noise and a near-end talker.

For the canceller's tests and benchmarks, and as the synthetic room of the closed-loop simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voicecoach.echo.speex import EchoSettings, SpeexEchoCanceller

RATE = 16000
BLOCK = 320
"""20 ms, the microphone's block."""


# --- synthetic signals --------------------------------------------------------------------------


def speech_like(rng: np.random.Generator, seconds: float, f0_hz: tuple[float, float] = (100, 180)) -> np.ndarray:
    """Unit-RMS 'speech': voiced syllables (harmonics through random formants) of 120-300 ms, gaps and pauses."""
    out = np.zeros(round(seconds * RATE))
    position = round(rng.uniform(0, 0.1) * RATE)
    while position < len(out):
        length = round(rng.uniform(0.12, 0.3) * RATE)
        out[position : position + length] = _syllable(rng, length, f0_hz)[: len(out) - position]
        pause_s = rng.uniform(0.3, 0.6) if rng.random() < 0.2 else rng.uniform(0.03, 0.12)
        position += length + round(pause_s * RATE)
    return out / np.sqrt(np.mean(out**2))


def _syllable(rng: np.random.Generator, length: int, f0_hz: tuple[float, float]) -> np.ndarray:
    """One syllable: a gliding pitch's harmonics plus breath noise, shaped by three formants, with an envelope."""
    t = np.arange(length) / RATE
    pitch = rng.uniform(*f0_hz) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    source = sum(np.sin(k * phase) / k for k in range(1, 40) if k * pitch.max() < RATE / 2)
    source = source + rng.standard_normal(length) * rng.uniform(0.05, 0.6)
    freqs = np.fft.rfftfreq(length, 1 / RATE)
    formants = ((300, 900, 120, 1.0), (900, 2500, 200, 0.5), (2500, 3800, 300, 0.25))
    shape = sum(gain * np.exp(-0.5 * ((freqs - rng.uniform(lo, hi)) / width) ** 2) for lo, hi, width, gain in formants)
    shaped = np.fft.irfft(np.fft.rfft(source) * (shape + 0.02), length)
    return shaped * np.sin(np.pi * np.arange(length) / length) ** 0.7


def room_response(rng: np.random.Generator, tail_s: float = 0.05, tail_gain: float = 0.2) -> np.ndarray:
    """A direct path, then 1 ms later a noise tail decaying 60 dB over tail_s (direct-to-reverberant about -2 dB)."""
    length = round(tail_s * RATE)
    response = rng.standard_normal(length) * tail_gain * np.exp(-6.9 * np.arange(length) / length)
    response[: RATE // 1000] = 0.0
    response[0] = 1.0
    return response


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Rounded and clipped to int16."""
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class EchoScene:
    """A microphone recording of the narrator's echo, a little noise and optionally a near-end talker."""

    reference: np.ndarray
    """int16: what the speaker played."""
    mic: np.ndarray
    """int16: echo + noise + near end."""
    echo: np.ndarray
    """float: the echo alone."""
    near: np.ndarray
    """float: the near-end talker alone (zeros if none)."""


def echo_scene(
    seed: int,
    seconds: float = 8.0,
    delay_s: float = 0.037,
    echo_db: float = -6.0,
    near_s: float = 0.0,
    reference: np.ndarray | None = None,
) -> EchoScene:
    """Reference at -20 dBFS RMS (speech-like unless given); its echo delayed, through a room, at echo_db re it.

    Noise 45 dB under the reference; a near-end talker (another pitch range) over the last near_s seconds.
    """
    rng = np.random.default_rng(seed)
    level = 32768 * 10 ** (-20 / 20)
    source = speech_like(rng, seconds) if reference is None else reference.astype(np.float64)
    played = source * level / np.sqrt(np.mean(source**2))
    delayed = np.concatenate([np.zeros(round(delay_s * RATE)), played])[: len(played)]
    echo_signal = np.convolve(delayed, room_response(rng))[: len(played)]
    echo_signal *= level * 10 ** (echo_db / 20) / np.sqrt(np.mean(echo_signal**2))
    noise = rng.standard_normal(len(played)) * level * 10 ** (-45 / 20)
    near = np.zeros(len(played))
    if near_s:
        near[-round(near_s * RATE) :] = speech_like(rng, near_s, f0_hz=(170, 260)) * level
    return EchoScene(to_int16(played), to_int16(echo_signal + noise + near), echo_signal, near)


def energy_db(samples: np.ndarray) -> float:
    """Mean power in dB (re 1 LSB squared)."""
    return float(10 * np.log10(np.mean(np.asarray(samples, dtype=np.float64) ** 2) + 1e-12))


def cancel(scene: EchoScene, settings: EchoSettings | None = None) -> np.ndarray:
    """The scene's mic with the echo cancelled block by block, shifted back by the canceller's latency."""
    with SpeexEchoCanceller(settings) as canceller:
        blocks = [canceller.process(scene.mic[i : i + BLOCK], scene.reference[i : i + BLOCK])
                  for i in range(0, len(scene.mic), BLOCK)]  # fmt: skip
        latency = canceller.latency_samples
    out = np.concatenate(blocks).astype(np.float64)
    return np.concatenate([out[latency:], np.zeros(latency)])


# --- the canceller ------------------------------------------------------------------------------

