"""The speaker: one output stream that plays one buffer at a time, logs what it played, and is silenced at once.

Just over 300 lines: the playback log is the echo canceller's reference, so the callback that plays, the abort that
cuts and the log that must say exactly when each sample was heard (fades and underrun gaps included) stay together.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from voicecoach.audio.devices import (
    AudioDeviceError,
    callback_monotonic,
    device_errors,
    resolve_device,
    stream_device_name,
)
from voicecoach.audio.streams import discard_stream, open_stream
from voicecoach.audio.wavfile import resample

_SPEAKER_BLOCK_FRAMES = 256

_LOGGER = logging.getLogger(__name__)


_PLAYED_HISTORY_S = 60.0
_IDLE_TAIL_S = 30.0
"""Silence the speaker plays after a buffer before its stream stops itself. Long, so that one stream runs through
a session's pauses: every start of a stream (through PulseAudio, on the Pi as here) shifts the true output delay by
a few ms against the DAC times PortAudio reports, and each shift undoes what the echo canceller had learnt (a 2 ms
shift of the echo path takes a converged canceller from about 18 dB of echo removed to none)."""
_DRIFT_FOLLOW = 0.02
"""Share of each callback's offset from the count by which the drift estimate moves (a time constant of 50
callbacks)."""
_LATE_S = 0.01
"""A callback whose DAC time is this much later than the buffer's timeline says starts a new piece: the device fell
behind (an underrun), and the rest of the buffer is heard that much later than it was due. The log keeps the gap as
silence, so the echo canceller's reference stays where the sound really was."""


class _StreamClock:
    """When each frame of a running stream is due at the device: its frame count since the stream started, anchored
    to the first callback's DAC time; moved when the DAC times jump (an underrun) in two callbacks in a row, never
    by their slow drift.

    A buffer stamped with its own first callback's DAC time was off by up to 2 ms against the one before (thread
    wake-up, the pulse plugin's delay reports), which moved the echo path under the canceller at every sentence;
    the count holds it still (scripts/bench_stop_latency.py --echo-db 0: a median 37 dB of echo removed, from 4).
    """

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._frames = 0
        self._anchor_s: float | None = None
        """time.monotonic() at which frame 0 was due."""
        self._drift_s = 0.0
        """How far the DAC times have drifted from the count (slowly followed): a jump is measured from it, and
        taking a jump keeps it. Live the DAC times drift about 300 ppm from the count; a bound on the total
        re-anchored every 35 s, each time moving the echo path 10 ms under the canceller, which lost all its echo
        removal for seconds (scripts/bench_stop_latency.py, 0 dB: stops missed and false ones in those seconds)."""
        self._jump_s: float | None = None
        """A jump seen in the last callback alone, not yet taken (one callback's DAC time can be far off)."""
        self._last_at = 0
        self._moved_s: float | None = None
        """When the frame at _last_at was really due, once a jump that began there is confirmed (take_moved)."""

    def reset(self) -> None:
        """The stream (re)starts: the next callback anchors the clock afresh."""
        self._frames, self._anchor_s, self._drift_s, self._jump_s, self._moved_s = 0, None, 0.0, None, None

    def callback(self, dac_s: float, frames: int) -> float:
        """A callback of `frames` frames whose first frame PortAudio says is due at dac_s; when it is due."""
        at = self._frames
        self._frames += frames
        if self._anchor_s is None:
            self._anchor_s = dac_s - at / self._rate
            return dac_s
        jump_s = dac_s - (self._anchor_s + at / self._rate) - self._drift_s
        if abs(jump_s) <= _LATE_S:
            self._jump_s = None
            self._drift_s += _DRIFT_FOLLOW * jump_s
        elif self._jump_s is not None and abs(jump_s - self._jump_s) <= _LATE_S / 2:
            self._anchor_s += jump_s  # two callbacks agree: the device really is that much later (an underrun)
            self._jump_s = None
            self._moved_s = self._anchor_s + self._last_at / self._rate
        else:
            self._jump_s = jump_s
        self._last_at = at
        return self._anchor_s + at / self._rate

    def take_moved(self) -> float | None:
        """When the previous callback's first frame was really due, if this callback confirmed that the device
        jumped there (once; else None)."""
        moved, self._moved_s = self._moved_s, None
        return moved


# --- speaker ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayedBuffer:
    """One buffer the speaker played: the echo reference."""

    start_s: float
    """time.monotonic() when its first sample was due at the device (DAC time; callback time if unknown)."""
    sample_rate: int
    """Hz (the stream's rate, after any resampling)."""
    samples: np.ndarray
    """int16 mono, read-only, as played; cut at the estimated last sample heard when aborted."""
    aborted: bool = False
    stalled_s: float = 0.0
    """Seconds of silence inside samples where the device fell behind (underruns): the sound was heard that late."""

    @property
    def duration_s(self) -> float:
        """Seconds from the first sample heard to the last, stalls included."""
        return len(self.samples) / self.sample_rate


class _Playback:
    """The buffer in flight, shared with the audio callback (which advances `position` and sets the times)."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples
        self.position = 0
        """Frames handed to PortAudio."""
        self.start_s: float | None = None
        self.pieces: list[tuple[int, float]] = []
        """(first frame, its DAC time) of each stretch played without a gap; the first is (0, start_s)."""
        self.logged: tuple[int, int, np.ndarray] | None = None
        """(frames, pieces, samples) of the last _logged() with gaps: played() asks every 20 ms."""
        self.end_s: float | None = None
        """time.monotonic() when the last sample is due at the device (set once all are handed over)."""
        self.tail_frames = 0
        """Silent frames sent after the last sample."""
        self.handed_over = threading.Event()
        """Set once every sample was handed to PortAudio, or on abort."""
        self.done = threading.Event()
        self.finished = False
        """True if it played to its end, False if it was aborted."""
        self.gains = np.ones(len(samples), dtype=np.float32)
        """The gain each sample was played at (1 unless the narrator was faded or turned down): the log keeps what was
        heard."""
        self.faded = False
        """Set by the callback once any sample was played below full level (gains then need reading)."""
        self.cancelled = False
        """Set by abort() without any lock: the callback sends silence from its next block."""


class Speaker:
    """One int16 mono output stream that plays one buffer at a time and can be silenced at once.

    A buffer counts as finished when PortAudio's DAC time of its last sample has passed, so completion never
    waits for a drain (through the ALSA pulse plugin a drain took up to 2 s here). After a buffer the stream
    plays silence, and the next buffer follows on the same running stream (the echo path stays where the
    canceller learnt it); after `idle_tail_s` of silence the stream stops itself and the next play() restarts it,
    as it does after an abort.
    """

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int | None = None,
        block_frames: int = _SPEAKER_BLOCK_FRAMES,
        idle_tail_s: float = _IDLE_TAIL_S,
        history_s: float = _PLAYED_HISTORY_S,
    ) -> None:
        self._device_spec = device
        self._block_frames = block_frames
        self._broken = False
        """True after a device error: the next play() opens the device afresh (it may have been replugged)."""
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._log: collections.deque[PlayedBuffer] = collections.deque()
        self._history_s = history_s
        self._playback: _Playback | None = None
        self._aborts = 0
        """abort() calls so far: a play() that an abort() overtook silences itself before it returns."""
        self._level = 1.0
        """The narrator's level (turn_down lowers it for good): every buffer plays at it, fades are relative to it."""
        self._gain = 1.0
        self._target_gain = 1.0
        """fade() and turn_down() set it; the callback ramps to it within one block (5 ms at 48 kHz)."""
        self.underflows = 0
        """Callbacks in which PortAudio reported an output underflow."""
        what = "Cannot open the speaker"
        with device_errors(what) as sd:
            if sample_rate is None:
                sample_rate = int(sd.query_devices(resolve_device(device, "output"), "output")["default_samplerate"])
            rate = sample_rate
            self._callback_abort = sd.CallbackAbort
        self._stream = open_stream("output", device, rate, block_frames, self._callback, what)
        self.device_name = stream_device_name(self._stream)
        """The device's name (what a level remembered for it is filed under)."""
        self.sample_rate: int = rate
        self._clock = _StreamClock(rate)
        self._last_placed: tuple[_Playback, int] | None = None
        """The buffer and position the last callback played from (where a confirmed jump began)."""
        self._idle_tail_frames = round(idle_tail_s * rate)
        self._idle_frames = 0
        """Silent frames sent since the last buffer was cut off (the stream stops itself after the idle tail)."""
        _LOGGER.debug("speaker open: %d Hz, latency %.1f ms", rate, self.latency_s * 1e3)

    @property
    def latency_s(self) -> float:
        """The output latency PortAudio reports."""
        return float(self._stream.latency)

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        """Start playing one int16 mono buffer (cutting off any buffer still playing); returns at once."""
        if samples.ndim != 1 or samples.dtype != np.int16:
            raise ValueError(f"expected 1-D int16 samples, got {samples.ndim}-D {samples.dtype}")
        playback = _Playback(np.array(resample(samples, sample_rate, self.sample_rate), dtype=np.int16))
        playback.samples.flags.writeable = False
        aborts_before = self._aborts
        self._gain = self._target_gain = self._level  # a new utterance starts at the level, whatever was faded before
        with self._lock:
            if self._follow_on_locked(playback, aborts_before):
                return
            self._abort_locked()
            try:
                if self._broken:
                    self._reopen_locked()
                with device_errors("Cannot play on the speaker"):
                    self._stream.abort()  # a stream that stopped itself is inactive but not yet stopped
                    self._playback = playback
                    self._clock.reset()
                    self._stream.start()
                if self._aborts != aborts_before:  # abort() came while this play() held the lock (a reopen)
                    self._abort_locked()
            except AudioDeviceError:
                self._broken = True
                self._complete(playback, time.monotonic())
                raise

    def _follow_on_locked(self, playback: _Playback, aborts_before: int) -> bool:
        """Hand a buffer to the running stream, cutting off any buffer still playing, without restarting the stream
        (caller holds _lock); False if the stream has to be (re)started: nothing played yet, it stopped itself after
        its idle tail, or it failed."""
        if self._broken or self._playback is None or not getattr(self._stream, "active", False):
            return False
        self._abort_locked()
        self._playback = playback
        if not getattr(self._stream, "active", False):
            return False  # it stopped itself just now: the caller restarts it with this buffer
        if self._aborts != aborts_before:  # abort() came while this play() ran: it silences this buffer too
            self._abort_locked()
        return True

    def _reopen_locked(self) -> None:
        """Open the output device again after an error (caller holds _lock)."""
        discard_stream(self._stream)
        self._stream = open_stream("output", self._device_spec, self.sample_rate, self._block_frames, self._callback,
                                   "The speaker is still unavailable")  # fmt: skip
        self._broken = False
        _LOGGER.info("speaker reopened")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the current buffer played to its end (True) or was aborted (False)."""
        playback = self._playback
        if playback is None:
            return True
        if not playback.handed_over.wait(timeout_s):
            raise AudioDeviceError(f"The speaker stalled: a buffer was not played within {timeout_s:.1f} s")
        if not playback.done.is_set():
            due_s = max(0.0, (playback.end_s or 0.0) - time.monotonic())
            if not playback.done.wait(due_s):
                self._complete(playback, None)
        return playback.finished

    def abort(self) -> None:
        """Silence now and drop the rest of the buffer; safe from any thread, and never waits for a play() or a
        device reopen in progress (that play() sees the abort and silences itself before it returns)."""
        self._aborts += 1
        playback = self._playback
        if playback is not None:
            playback.cancelled = True
        if self._lock.acquire(blocking=False):
            try:
                self._abort_locked()
            finally:
                self._lock.release()

    def fade(self, gain_db: float) -> None:
        """Play on at gain_db re the level (0: back to it); the change ramps in within one block. Never waits."""
        self._target_gain = self._level * float(10 ** (gain_db / 20))

    def turn_down(self, step_db: float) -> None:
        """Lower the level by step_db for good, the buffer playing now included (within one block). Never waits."""
        factor = float(10 ** (-abs(step_db) / 20))
        self._level *= factor
        self._target_gain *= factor

    @property
    def level_db(self) -> float:
        """The level re full scale, dB (0 unless turned down)."""
        return 20 * math.log10(self._level)

    def played(self) -> list[PlayedBuffer]:
        """The buffers played in about the last minute, oldest first (the one in flight: as handed over so far)."""
        with self._log_lock:
            entries = list(self._log)
        playback = self._playback
        if playback is not None and not playback.done.is_set() and playback.start_s is not None:
            position = playback.position
            if position > 0:
                entries.append(_logged(playback, position, self.sample_rate, aborted=False))
        return entries

    def close(self) -> None:
        """Abort and release the device."""
        with self._lock:
            self._abort_locked(hard=True)
            self._stream.close()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abort_locked(self, hard: bool = False) -> None:
        """Silence the buffer in flight, if any (caller holds _lock); one already past its end counts as finished.

        On a running stream the callback sends silence from its next block and the stream runs on, so the echo
        path stays as the canceller learnt it: what was handed over already (one block and the output latency,
        about 12 ms here) is still heard, and logged. Closing, or a stream that is not running, aborts the stream.
        """
        playback = self._playback
        if playback is None or playback.done.is_set():
            return
        now_s = time.monotonic()
        past_end = playback.end_s is not None and playback.end_s <= now_s
        if hard or not getattr(self._stream, "active", False):
            self._stream.abort()
            self._complete(playback, None if past_end else now_s)
            return
        playback.cancelled = True
        self._complete(playback, None if past_end else now_s, heard_frames=playback.position)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: copy the next frames of the buffer, then silence; stop after the idle tail."""
        if status.output_underflow:
            self.underflows += 1
        due_s = self._clock.callback(callback_monotonic(time_info.outputBufferDacTime, time_info.currentTime), frames)
        playback = self._playback
        if playback is None or playback.cancelled:
            outdata.fill(0)
            self._idle_frames += frames
            if playback is None or self._idle_frames >= self._idle_tail_frames:
                raise self._callback_abort
            return
        self._idle_frames = 0
        position = playback.position
        chunk = playback.samples[position : position + frames]
        moved_s = self._clock.take_moved()
        if moved_s is not None and self._last_placed is not None and self._last_placed[0] is playback:
            self._place(playback, self._last_placed[1], moved_s)  # the jump began with the previous callback
        if len(chunk):
            self._place(playback, position, due_s)
            self._last_placed = (playback, position)
        if self._gain == self._target_gain == 1.0:
            outdata[: len(chunk), 0] = chunk
        else:
            ramp = np.linspace(self._gain, self._target_gain, len(chunk) + 1, dtype=np.float32)[1:]
            outdata[: len(chunk), 0] = np.round(chunk * ramp).astype(np.int16)
            playback.gains[position : position + len(chunk)] = ramp
            playback.faded = True
            self._gain = self._target_gain
        outdata[len(chunk) :] = 0
        playback.position = position + len(chunk)
        if playback.end_s is None:
            if playback.position < len(playback.samples):
                return
            playback.end_s = due_s + len(chunk) / self.sample_rate
            playback.handed_over.set()
        playback.tail_frames += frames - len(chunk)
        if playback.tail_frames >= self._idle_tail_frames and self._playback is playback:
            raise self._callback_abort

    def _place(self, playback: _Playback, position: int, dac_s: float) -> None:
        """Note when the frame at `position` is due at the device; a late one starts a new piece of the log."""
        if playback.start_s is None:
            playback.start_s = dac_s
            playback.pieces.append((0, dac_s))
            return
        first, first_s = playback.pieces[-1]
        if dac_s - (first_s + (position - first) / self.sample_rate) > _LATE_S:
            playback.pieces.append((position, dac_s))

    def _complete(self, playback: _Playback, abort_s: float | None, heard_frames: int | None = None) -> None:
        """Log what was heard of this buffer and release its waiters (once); abort_s None means it finished.
        heard_frames: how much of an aborted buffer is heard (default: estimated from the DAC times)."""
        with self._log_lock:
            if playback.done.is_set():
                return
            frames = playback.position
            if abort_s is not None and heard_frames is not None:
                frames = min(frames, heard_frames)
            elif abort_s is not None:
                heard = 0
                if playback.pieces:
                    first, first_s = playback.pieces[-1]
                    heard = first + round((abort_s - first_s) * self.sample_rate)
                frames = min(frames, max(0, heard))
            if playback.start_s is not None and frames > 0:
                entry = _logged(playback, frames, self.sample_rate, aborted=abort_s is not None)
                self._log.append(entry)
                self._trim_log(entry.start_s + entry.duration_s)
            playback.finished = abort_s is None
            playback.done.set()
            playback.handed_over.set()

    def _trim_log(self, now_s: float) -> None:
        """Forget buffers that ended more than history_s ago (caller holds _log_lock)."""
        while self._log and self._log[0].start_s + self._log[0].duration_s < now_s - self._history_s:
            self._log.popleft()


def _logged(playback: _Playback, frames: int, rate: int, aborted: bool) -> PlayedBuffer:
    """The log entry of a buffer's first frames: as heard, with silence where the device fell behind."""
    heard = _as_heard(playback, frames)
    pieces = [(first, start_s) for first, start_s in list(playback.pieces) if first < frames]
    start_s = pieces[0][1]
    stalled_s = 0.0
    if len(pieces) > 1:
        cached = playback.logged
        if cached is not None and cached[:2] == (frames, len(pieces)):
            heard = cached[2]
        else:
            spans = [(first, (pieces[n + 1][0] if n + 1 < len(pieces) else frames), round((at_s - start_s) * rate))
                     for n, (first, at_s) in enumerate(pieces)]  # fmt: skip
            spans = [(first, end, max(at, first)) for first, end, at in spans]
            gapped = np.zeros(max(at + end - first for first, end, at in spans), dtype=np.int16)
            for first, end, at in spans:
                gapped[at : at + end - first] = heard[first:end]
            gapped.flags.writeable = False
            playback.logged = (frames, len(pieces), gapped)
            heard = gapped
        stalled_s = (len(heard) - frames) / rate
    return PlayedBuffer(start_s, rate, heard, aborted=aborted, stalled_s=stalled_s)


def _as_heard(playback: _Playback, frames: int) -> np.ndarray:
    """The first frames of a buffer as they were played (faded where a fade was on)."""
    samples = playback.samples[:frames]
    gains = playback.gains[:frames]
    if not playback.faded or np.all(gains == 1.0):  # the flag spares the scan of the whole buffer every 20 ms
        return samples
    heard = np.round(samples * gains).astype(np.int16)
    heard.flags.writeable = False
    return heard
