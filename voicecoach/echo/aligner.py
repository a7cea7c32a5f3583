"""The played audio lined up with each microphone block by monotonic time.

So the canceller's filter only has to model the room, not the device latencies.

A little over 300 lines: the band-limited resampler onto the microphone grid, the sample ring and the block clock
exist only for the aligner and share its timeline arithmetic.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voicecoach.echo.delay import active_fraction, estimate_delay
from voicecoach.echo.speex import int16_block

_SINC_ZERO_CROSSINGS = 16
"""Half-width of the resampling kernel, in zero crossings (about 1 ms of look-ahead at 16 kHz)."""
_SINC_CUTOFF = 0.95
"""Resampling low-pass cutoff, as a fraction of the lower Nyquist frequency."""
_KAISER_BETA = 8.0
_SINC_PHASES = 1024
"""Tabulated fractional positions per input sample (timing error under 1/2048 sample)."""
_RESAMPLE_CHUNK = 4096
"""Output samples interpolated per vectorised step (bounds the temporary kernel matrix)."""


_RESYNC_S = 0.05
"""A mic block further than this from where the previous one ended (beyond the capture times' slow drift) starts a
new timeline (lost blocks)."""
_DRIFT_FOLLOW = 0.05
"""Share of each block's offset from the count by which the drift estimate moves (a time constant of 20 blocks)."""
_AHEAD_S = 1.0
"""Played audio is put on the mic grid at most this far ahead of the newest mic block: a buffer known in full long
before it is heard (a recording's whole reference, the room's utterances) must not overrun the history kept."""


# --- resampling onto the microphone's sample grid -----------------------------------------------

_LOGGER = logging.getLogger(__name__)


@functools.cache
def _sinc_table(cutoff: float) -> np.ndarray:
    """Kaiser-windowed sinc low-pass taps for each of _SINC_PHASES + 1 fractional positions (rows)."""
    half_width = math.ceil(_SINC_ZERO_CROSSINGS / cutoff)
    taps = np.arange(-half_width + 1, half_width + 1)
    distance = np.arange(_SINC_PHASES + 1)[:, None] / _SINC_PHASES - taps[None, :]
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (distance / half_width) ** 2, 0.0, None)))
    return (cutoff * np.sinc(cutoff * distance) * window / np.i0(_KAISER_BETA)).astype(np.float32)


def _interpolate(samples: np.ndarray, position: np.ndarray, cutoff: float) -> np.ndarray:
    """Band-limited int16 values of samples at increasing fractional input positions (zeros outside them)."""
    if len(position) == 0:
        return np.zeros(0, dtype=np.int16)
    table = _sinc_table(cutoff)
    half_width = table.shape[1] // 2
    base = np.floor(position).astype(np.int64)
    phase = np.round((position - base) * _SINC_PHASES).astype(np.int64)
    first, stop = int(base[0]) - half_width + 1, int(base[-1]) + half_width + 1
    span = np.zeros(stop - first, dtype=np.float32)
    inside = samples[max(first, 0) : max(min(stop, len(samples)), 0)]
    span[max(-first, 0) : max(-first, 0) + len(inside)] = inside
    out = np.empty(len(position))
    for begin in range(0, len(position), _RESAMPLE_CHUNK):
        end = begin + _RESAMPLE_CHUNK
        index = (base[begin:end] - base[0])[:, None] + np.arange(2 * half_width)[None, :]
        out[begin:end] = np.einsum("ij,ij->i", table[phase[begin:end]], span[index])
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


class _SampleRing:
    """The last `capacity` int16 samples of a timeline indexed by absolute sample number; unwritten ones read as 0."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=np.int16)
        self._stamp = np.full(capacity, -(2**62), dtype=np.int64)

    def write(self, start: int, samples: np.ndarray) -> None:
        """Store samples at absolute indices start, start+1, ..."""
        if len(samples) > self.capacity:
            start, samples = start + len(samples) - self.capacity, samples[-self.capacity :]
        index = np.arange(start, start + len(samples), dtype=np.int64)
        self._data[index % self.capacity] = samples
        self._stamp[index % self.capacity] = index

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples at absolute indices start .. start+count-1 (0 where none was written or it was overwritten)."""
        index = np.arange(start, start + count, dtype=np.int64)
        slots = index % self.capacity
        return np.where(self._stamp[slots] == index, self._data[slots], np.int16(0)).astype(np.int16)


class _Feed:
    """One played buffer being converted onto the mic grid, as far as its samples allow (it may still grow)."""

    def __init__(self, start_s: float, sample_rate: int, mic_rate: int) -> None:
        self.start_s = start_s
        self.sample_rate = sample_rate
        self.samples = np.zeros(0, dtype=np.int16)
        self.cutoff = 1.0 if sample_rate == mic_rate else _SINC_CUTOFF * min(1.0, mic_rate / sample_rate)
        """Low-pass cutoff as a fraction of the input Nyquist (1: same rate, a pure fractional delay)."""
        self.look_ahead = math.ceil(_SINC_ZERO_CROSSINGS / self.cutoff)
        """Input samples needed past a position before its value is final."""
        self.next_index = math.ceil(start_s * mic_rate - 1e-6)
        """The next mic-grid sample to produce."""
        self.final = False
        """True once the buffer can grow no more (a newer one started, or the mic is past its end)."""

    def end_index(self, mic_rate: int) -> int:
        """One past the last mic-grid sample this buffer (as known so far) reaches."""
        return math.ceil((self.start_s + len(self.samples) / self.sample_rate) * mic_rate - 1e-6)


# --- lining the reference up with the microphone --------------------------------------------------


class PlayedAudio(Protocol):
    """What the speaker logs for each buffer it played (voicecoach.audio.PlayedBuffer has this shape)."""

    @property
    def start_s(self) -> float:
        """time.monotonic() when the first sample reached the device."""
        ...

    @property
    def sample_rate(self) -> int:
        """Hz."""
        ...

    @property
    def samples(self) -> np.ndarray:
        """int16 mono, as played so far."""
        ...


def played_within(played: Iterable[PlayedAudio], at_s: float, seconds: float) -> bool:
    """True if any of the played audio was sounding at some time from seconds before at_s up to at_s."""
    return any(p.start_s <= at_s and p.start_s + len(p.samples) / p.sample_rate > at_s - seconds for p in played)


@dataclass(frozen=True)
class AlignerSettings:
    """How played audio is lined up with microphone blocks."""

    sample_rate: int = 16000
    """Hz of the microphone blocks; the reference is converted to it."""
    history_s: float = 8.0
    """Seconds of reference and mic kept."""
    delay_s: float | None = None
    """Fixed seconds from playback timestamp to capture timestamp of the same sound; None: estimate it."""
    initial_delay_s: float = 0.0
    """Delay used until the first confident estimate."""
    lead_s: float = 0.02
    """The reference is handed over this much early, so the echo never precedes it (the filter absorbs the lead)."""
    min_delay_s: float = 0.0
    max_delay_s: float = 0.5
    estimate_every_s: float = 1.0
    """Seconds of mic audio between delay estimates."""
    estimate_window_s: float = 3.0
    """Seconds of recent audio each estimate looks at."""
    min_playback_fraction: float = 0.3
    """Fraction of that window in which something must have played for an estimate to be tried."""
    min_confidence: float = 0.05
    """GCC-PHAT peak strength below which an estimate is ignored."""
    estimates_kept: int = 5
    """The delay used is the median of this many recent confident estimates."""
    hysteresis_s: float = 0.008
    """The delay in use moves only when the median moves further than this (each move makes the filter readapt)."""

    def __post_init__(self) -> None:
        if self.history_s < self.estimate_window_s + self.max_delay_s + 1.0:
            raise ValueError("aligner: history_s must cover the estimate window plus the maximum delay plus 1 s")
        if not self.min_delay_s <= self.initial_delay_s <= self.max_delay_s:
            raise ValueError("aligner: initial_delay_s must lie between min_delay_s and max_delay_s")


class _BlockClock:
    """Turns jittery block capture times into a gap-free sample index, re-anchored only after lost blocks.

    The count is the truth: live, through PulseAudio, the capture times PortAudio reports drift against the
    samples by a few hundred ppm while the audio itself stays locked to the speaker's (one server clock, as one USB
    speakerphone has). Following that drift, in 2 ms steps or sample by sample, moved the echo path against the
    reference, and the canceller, which needs the path to hold still to a fraction of a millisecond, removed a
    median 4 dB of echo instead of 37 (scripts/bench_stop_latency.py, 0 dB).
    """

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._next: int | None = None
        self._drift = 0.0
        """How far the capture times have drifted from the count (samples, slowly followed): lost blocks are a jump
        away from it, not a total. A fixed bound on the total resynchronised every few minutes at 300 ppm, each time
        moving the echo path 50 ms under the canceller."""

    def place(self, capture_s: float, count: int) -> int:
        """Absolute mic-grid index of a block's first sample."""
        measured = capture_s * self._rate
        off = 0.0 if self._next is None else measured - self._next
        if self._next is None:
            start = round(measured)
        elif abs(off - self._drift) > _RESYNC_S * self._rate:
            _LOGGER.debug("mic timeline resynchronised (%.1f ms off)", (off - self._drift) / self._rate * 1e3)
            start = self._next + round(off - self._drift)  # the lost blocks' length; the drift estimate is kept
        else:
            start = self._next
            self._drift += _DRIFT_FOLLOW * (off - self._drift)
        self._next = start + count
        return start


class ReferenceAligner:
    """The played audio each microphone block hears as echo, from the speaker's timestamped playback log.

    Give it what the speaker played (sync() or add_played(), as often as you like: buffers are keyed by their start
    time, so a growing or repeated buffer is taken once) and each mic block with its capture time (align()); it returns
    the reference block for the echo canceller: int16 at the mic rate, silence where nothing played. The delay from
    playback time to capture time is fixed or estimated from recent audio. Not thread-safe: call it from one thread.
    """

    def __init__(self, settings: AlignerSettings | None = None) -> None:
        self.settings = settings or AlignerSettings()
        capacity = round(self.settings.history_s * self.settings.sample_rate)
        self._reference = _SampleRing(capacity)
        self._mic = _SampleRing(capacity)
        self._feeds: dict[float, _Feed] = {}
        self._clock = _BlockClock(self.settings.sample_rate)
        self._newest = 0
        """One past the newest mic-grid index seen on either side."""
        self._mic_end: int | None = None
        """One past the newest mic block's last sample (None before the first block)."""
        self._estimates: collections.deque[float] = collections.deque(maxlen=self.settings.estimates_kept)
        fixed = self.settings.delay_s
        self._delay_s = self.settings.initial_delay_s if fixed is None else fixed
        self._estimated = False
        self._next_estimate: int | None = None
        self.last_estimate: tuple[float, float] | None = None
        """The latest (delay_s, confidence) estimate_delay gave, accepted or not."""

    @property
    def delay_s(self) -> float:
        """Seconds from playback timestamp to capture timestamp now in use."""
        return self._delay_s

    def sync(self, played: Iterable[PlayedAudio]) -> None:
        """Take in the speaker's playback log (e.g. Speaker.played()); only what is new is processed."""
        for buffer in played:
            self.add_played(buffer.start_s, buffer.samples, buffer.sample_rate)

    def add_played(self, start_s: float, samples: np.ndarray, sample_rate: int) -> None:
        """Record int16 mono audio that started playing at start_s (monotonic); call again as it grows or is cut."""
        rate = self.settings.sample_rate
        feed = self._feeds.get(start_s)
        if feed is None:
            if (start_s + len(samples) / sample_rate) * rate < self._newest - self._reference.capacity:
                return
            feed = self._feeds[start_s] = _Feed(start_s, sample_rate, rate)
            for older in self._feeds.values():
                if older.start_s < start_s:
                    older.final = True
                    self._produce(older)
        samples = int16_block(samples, "played")
        if len(samples) < len(feed.samples):
            self._cut(feed, len(samples))
        feed.samples = samples
        self._produce(feed)
        self._forget_old_feeds()

    def align(self, mic: np.ndarray, capture_s: float) -> np.ndarray:
        """The reference block heard in this mic block, whose first sample was captured at capture_s (monotonic)."""
        mic16 = int16_block(mic, "mic")
        start = self._clock.place(capture_s, len(mic16))
        self._mic.write(start, mic16)
        self._newest = max(self._newest, start + len(mic16))
        self._mic_end = start + len(mic16)
        reference_start = start - round((self._delay_s - self.settings.lead_s) * self.settings.sample_rate)
        for feed in self._feeds.values():
            if feed.end_index(self.settings.sample_rate) <= reference_start + len(mic16):
                feed.final = True
            self._produce(feed)
        self._maybe_estimate(start + len(mic16))
        return self._reference.read(reference_start, len(mic16))

    def _produce(self, feed: _Feed) -> None:
        """Put as much of a buffer on the mic grid as its samples allow (all of it, silence after, when final), but
        no further than _AHEAD_S past the newest mic block."""
        rate = self.settings.sample_rate
        if self._mic_end is None:
            return
        if feed.final:
            stop = feed.end_index(rate)
        else:
            ready = len(feed.samples) - 1 - feed.look_ahead
            stop = math.floor((feed.start_s + ready / feed.sample_rate) * rate + 1e-6) + 1
        stop = min(stop, self._mic_end + round(_AHEAD_S * rate))
        if stop <= feed.next_index:
            return
        index = np.arange(feed.next_index, stop, dtype=np.int64)
        position = (index / rate - feed.start_s) * feed.sample_rate
        self._reference.write(feed.next_index, _interpolate(feed.samples, position, feed.cutoff))
        feed.next_index = stop
        self._newest = max(self._newest, stop)

    def _cut(self, feed: _Feed, length: int) -> None:
        """A buffer was cut short (aborted): silence what was put on the grid past its new end."""
        end = math.ceil((feed.start_s + length / feed.sample_rate) * self.settings.sample_rate - 1e-6)
        if feed.next_index > end:
            self._reference.write(end, np.zeros(feed.next_index - end, dtype=np.int16))
            feed.next_index = end

    def _forget_old_feeds(self) -> None:
        """Drop buffers that ended before the history kept."""
        horizon = self._newest - self._reference.capacity
        rate = self.settings.sample_rate
        for start_s in [s for s, feed in self._feeds.items() if feed.end_index(rate) < horizon]:
            del self._feeds[start_s]

    def _maybe_estimate(self, end: int) -> None:
        """Every estimate_every_s of mic audio, estimate the delay from the recent window if enough was played."""
        settings, rate = self.settings, self.settings.sample_rate
        if settings.delay_s is not None:
            return
        if self._next_estimate is None or abs(end - self._next_estimate) > self._reference.capacity:
            self._next_estimate = end + round(settings.estimate_every_s * rate)
        if end < self._next_estimate:
            return
        self._next_estimate = end + round(settings.estimate_every_s * rate)
        window = round(settings.estimate_window_s * rate)
        reference = self._reference.read(end - window, window)
        if active_fraction(reference, rate) < settings.min_playback_fraction:
            return
        mic = self._mic.read(end - window, window)
        self.last_estimate = estimate_delay(
            mic, reference, rate, settings.max_delay_s, min_delay_s=settings.min_delay_s
        )
        if self.last_estimate[1] >= settings.min_confidence:
            self._accept(self.last_estimate[0])

    def _accept(self, delay_s: float) -> None:
        """Take a confident estimate into the median; move the delay in use if it moved past the hysteresis."""
        self._estimates.append(delay_s)
        median = float(np.median(self._estimates))
        if self._estimated and abs(median - self._delay_s) <= self.settings.hysteresis_s:
            return
        _LOGGER.info("echo delay %.1f ms (was %.1f ms)", median * 1e3, self._delay_s * 1e3)
        self._delay_s = median
        self._estimated = True
