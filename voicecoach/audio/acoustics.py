"""A simulated living room: what the microphone hears from the speaker's playback, a person and room noise.

The narrator's playback reaches the microphone delayed and through a room impulse response, at a level relative
to the person's speech; the person's recording is laid on the same timeline from t = 0, and noise at an SNR re the
person. Block by block, so that what is played next can depend on what was heard (the closed loop of the room).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16000
"""Hz: the microphone's rate."""
_SPEECH_FRAME = 320
_ACTIVE_DB = 30.0
"""Frames within this many dB of the loudest count as active speech (for speech levels)."""
_SYNTHETIC_T60_S = 0.35
"""Reverberation time of the synthetic room."""


@dataclass(frozen=True)
class RoomSettings:
    """The acoustics of the simulated room."""

    echo_db: float = 0.0
    """Level of the narrator's echo at the microphone re the person's speech (active speech levels), dB."""
    snr_db: float | None = 30.0
    """Person's speech level over the room noise, dB; None: no noise."""
    delay_ms: float = 45.0
    """Playback-to-microphone delay (device latencies and air)."""
    seed: int = 0


def active_level(samples: np.ndarray) -> float:
    """RMS over the frames that carry speech (within 30 dB of the loudest 20 ms frame); 0 for silence."""
    x = np.asarray(samples, dtype=np.float64)
    usable = len(x) - len(x) % _SPEECH_FRAME
    if usable == 0:
        return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    power = np.mean(x[:usable].reshape(-1, _SPEECH_FRAME) ** 2, axis=1)
    if power.max() <= 0:
        return 0.0
    active = power[power >= power.max() * 10 ** (-_ACTIVE_DB / 10)]
    return float(np.sqrt(np.mean(active)))


def speech_bounds(samples: np.ndarray) -> tuple[float, float]:
    """Start and end of the speech, s: 10 ms frames within 30 dB of the loudest and 10 dB over the clip's noise
    floor (its quietest fifth). The room's mark of a word (`scripts/eval_commands.py`); the live bench reports its
    latencies from it as well."""
    usable = len(samples) - len(samples) % 160
    power = np.mean(np.asarray(samples[:usable], dtype=np.float64).reshape(-1, 160) ** 2, axis=1)
    if len(power) == 0:
        return 0.0, len(samples) / RATE
    floor = float(np.percentile(power, 20))
    loud = np.flatnonzero(power >= max(power.max() * 1e-3, floor * 10))
    if len(loud) == 0:
        return 0.0, len(samples) / RATE
    return loud[0] * 160 / RATE, (loud[-1] + 1) * 160 / RATE


def synthetic_room(seed: int, t60_s: float = _SYNTHETIC_T60_S) -> np.ndarray:
    """A room impulse response: the direct path, then a diffuse tail decaying 60 dB over t60_s (unit peak)."""
    rng = np.random.default_rng(seed)
    length = round(t60_s * RATE)
    decay = np.exp(-6.9 * np.arange(length) / length)
    tail = rng.standard_normal(length) * decay * 0.25
    tail[: round(0.004 * RATE)] = 0.0  # the first reflections arrive a few ms after the direct sound
    tail[0] = 1.0
    return tail


def pink_noise(rng: np.random.Generator, count: int) -> np.ndarray:
    """Unit-RMS pink (1/f) noise."""
    spectrum = np.fft.rfft(rng.standard_normal(count))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, count)
    return noise / (np.sqrt(np.mean(noise**2)) or 1.0)


class RoomAcoustics:
    """Mixes microphone blocks: the echo of the playback timeline, the person and noise."""

    def __init__(self, settings: RoomSettings, person: np.ndarray, narrator_level: float,
                 impulse_response: np.ndarray | None = None, person_level: float | None = None) -> None:  # fmt: skip
        """person_level: the level echo_db and snr_db refer to (default: the person's active level, or 3000 when
        the recording is silent)."""
        self.settings = settings
        self.person = np.asarray(person, dtype=np.float64)
        person_level = person_level or active_level(self.person) or 3000.0
        response = synthetic_room(settings.seed) if impulse_response is None else np.asarray(impulse_response, float)
        response = response / (np.sqrt(np.sum(response**2)) or 1.0)  # unit energy: the level is set by the gain
        self._response = response.copy()
        """np.convolve flips it: output sample n is the sum over k of response[k] * played[n - delay - k]."""
        self._delay = round(settings.delay_ms * RATE / 1000)
        self._echo_gain = person_level * 10 ** (settings.echo_db / 20) / (narrator_level or 1.0)
        self._noise_level = 0.0 if settings.snr_db is None else person_level * 10 ** (-settings.snr_db / 20)
        self._rng = np.random.default_rng(settings.seed + 1)
        self._noise = pink_noise(self._rng, RATE * 20)

    def mic_block(self, start: int, count: int, played: np.ndarray) -> np.ndarray:
        """Microphone samples [start, start + count): played is the playback timeline so far (float, 16 kHz)."""
        taps = len(self._response)
        first = start - self._delay - taps + 1
        segment = np.zeros(count + taps - 1)
        lo, hi = max(first, 0), min(first + len(segment), len(played))
        if hi > lo:
            segment[lo - first : hi - first] = played[lo:hi]
        echo = np.convolve(segment, self._response, mode="valid") * self._echo_gain
        mix = echo
        person = self.person[start : start + count]
        mix[: len(person)] += person
        if self._noise_level:
            index = (start + np.arange(count)) % len(self._noise)
            mix += self._noise[index] * self._noise_level
        return np.clip(np.round(mix), -32768, 32767).astype(np.int16)

    def mic_track(self, count: int, played: np.ndarray) -> np.ndarray:
        """The first count microphone samples at once, for a playback timeline known in full: the same samples
        as mic_block over consecutive blocks, by FFT convolution (for rendering training data quickly)."""
        source = np.zeros(count)
        lo, hi = min(self._delay, count), min(count, self._delay + len(played))
        source[lo:hi] = np.asarray(played, dtype=np.float64)[: hi - lo]
        size = 1 << int(np.ceil(np.log2(count + len(self._response))))
        spectrum = np.fft.rfft(source, size) * np.fft.rfft(self._response, size)
        mix = np.fft.irfft(spectrum, size)[:count] * self._echo_gain
        person = self.person[:count]
        mix[: len(person)] += person
        if self._noise_level:
            mix += self._noise[np.arange(count) % len(self._noise)] * self._noise_level
        return np.clip(np.round(mix), -32768, 32767).astype(np.int16)

    def direct_end(self, played_end: int) -> int:
        """The sample at which the direct sound of playback that ended at played_end stops reaching the microphone
        (its room tail then decays over the response's length)."""
        return played_end + self._delay
