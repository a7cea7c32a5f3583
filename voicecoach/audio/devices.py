"""The audio device boundary: device lookup, the speaker (with its playback log) and the microphone.

sounddevice (and so PortAudio) is imported only when a device is used, so the package imports without it.
Every PortAudio failure leaves this module as `AudioDeviceError`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from voicecoach.audio.wavfile import resample

_LOGGER = logging.getLogger(__name__)

DeviceKind = Literal["input", "output"]

_SPEAKER_BLOCK_FRAMES = 256
_MIC_SAMPLE_RATE = 16000
_MIC_BLOCK_FRAMES = 320
"""20 ms at 16 kHz."""
_MIC_MAX_QUEUED_BLOCKS = 1500
"""30 s of 20 ms blocks; older audio is dropped (and counted) when nobody reads."""
_PLAYED_HISTORY_S = 60.0
_IDLE_TAIL_S = 0.5
"""Silence the speaker plays after a buffer before its stream stops itself (well above any output latency)."""
_MAX_PLAUSIBLE_LATENCY_S = 1.0
"""A callback's DAC/ADC time further than this from its current time is not trusted."""


class AudioDeviceError(RuntimeError):
    """An audio device could not be found, opened or used (one clear line for the user)."""


def _sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into AudioDeviceError."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install it: apt-get install libportaudio2"
        ) from exc
    return sounddevice


@contextlib.contextmanager
def _device_errors(what: str) -> Iterator[ModuleType]:
    """Yield sounddevice; re-raise its errors as AudioDeviceError prefixed with `what`."""
    sd = _sounddevice()
    try:
        yield sd
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"{what}: {exc.args[0] if exc.args else exc}") from exc


# --- device listing and choice --------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device."""

    index: int
    name: str
    hostapi: str
    input_channels: int
    output_channels: int
    default_sample_rate: float
    """Hz."""
    is_default_input: bool = False
    is_default_output: bool = False

    def has(self, kind: DeviceKind) -> bool:
        """True if the device has channels of this kind."""
        return (self.input_channels if kind == "input" else self.output_channels) > 0


def _default_index(sd: ModuleType, kind: DeviceKind) -> int:
    """PortAudio's default device of this kind, or -1."""
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except (sd.PortAudioError, ValueError):
        return -1


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio sees."""
    with _device_errors("Cannot list audio devices") as sd:
        hostapis = [str(api["name"]) for api in sd.query_hostapis()]
        default_in, default_out = _default_index(sd, "input"), _default_index(sd, "output")
        return [
            DeviceInfo(
                index=index,
                name=str(info["name"]),
                hostapi=hostapis[info["hostapi"]],
                input_channels=int(info["max_input_channels"]),
                output_channels=int(info["max_output_channels"]),
                default_sample_rate=float(info["default_samplerate"]),
                is_default_input=index == default_in,
                is_default_output=index == default_out,
            )
            for index, info in enumerate(sd.query_devices())
        ]


def format_devices(devices: list[DeviceInfo]) -> str:
    """A table for `voicecoach devices`: '>' marks the default input, '<' the default output."""
    if not devices:
        return "No audio devices found."
    lines = []
    for device in devices:
        mark = (">" if device.is_default_input else " ") + ("<" if device.is_default_output else " ")
        lines.append(
            f"{mark} {device.index:>3} {device.name} ({device.hostapi}), "
            f"{device.input_channels} in, {device.output_channels} out, {device.default_sample_rate:g} Hz"
        )
    return "\n".join(lines)


def _describe(devices: list[DeviceInfo]) -> str:
    """'[0] pulse, [1] default' (or 'none')."""
    return ", ".join(f"[{d.index}] {d.name}" for d in devices) or "none"


def _matches(device: DeviceInfo, query: str) -> bool:
    """sounddevice's rule: every space-separated word occurs, in order, in 'name, hostapi'."""
    full, position = f"{device.name}, {device.hostapi}".lower(), 0
    for word in query.split():
        position = full.find(word, position)
        if position < 0:
            return False
        position += len(word)
    return True


def resolve_device(spec: str | int | None, kind: DeviceKind) -> int | None:
    """A device index from an index or a case-insensitive name substring; None means the default."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    candidates = [d for d in list_devices() if d.has(kind)]
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        if any(d.index == index for d in candidates):
            return index
        raise AudioDeviceError(f"No {kind} device has index {index}; {kind} devices: {_describe(candidates)}")
    query = spec.strip().lower()
    found = [d for d in candidates if _matches(d, query)]
    exact = [d for d in found if query in (d.name.lower(), f"{d.name}, {d.hostapi}".lower())]
    if len(found) == 1 or len(exact) == 1:
        return (exact or found)[0].index
    if not found:
        raise AudioDeviceError(f"No {kind} device matches {spec!r}; {kind} devices: {_describe(candidates)}")
    raise AudioDeviceError(f"{spec!r} matches several {kind} devices: {_describe(found)}; be more specific")


def _callback_monotonic(device_time_s: float, current_time_s: float) -> float:
    """Map a PortAudio stream time (DAC/ADC) to time.monotonic(), from inside a callback."""
    now = time.monotonic()
    offset = device_time_s - current_time_s
    if device_time_s > 0 and current_time_s > 0 and abs(offset) < _MAX_PLAUSIBLE_LATENCY_S:
        return now + offset
    return now


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

    @property
    def duration_s(self) -> float:
        """Seconds of audio played."""
        return len(self.samples) / self.sample_rate


class _Playback:
    """The buffer in flight, shared with the audio callback (which advances `position` and sets the times)."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples
        self.position = 0
        """Frames handed to PortAudio."""
        self.start_s: float | None = None
        self.end_s: float | None = None
        """time.monotonic() when the last sample is due at the device (set once all are handed over)."""
        self.tail_frames = 0
        """Silent frames sent after the last sample."""
        self.handed_over = threading.Event()
        """Set once every sample was handed to PortAudio, or on abort."""
        self.done = threading.Event()
        self.finished = False
        """True if it played to its end, False if it was aborted."""
        self.cancelled = False
        """Set by abort() without any lock: the callback sends silence from its next block."""


class Speaker:
    """One int16 mono output stream that plays one buffer at a time and can be silenced at once.

    A buffer counts as finished when PortAudio's DAC time of its last sample has passed, so completion never
    waits for a drain (through the ALSA pulse plugin a drain took up to 2 s here). After a buffer the stream
    plays `idle_tail_s` of silence and then stops itself; the next play() restarts it.
    """

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int | None = None,
        block_frames: int = _SPEAKER_BLOCK_FRAMES,
        idle_tail_s: float = _IDLE_TAIL_S,
        history_s: float = _PLAYED_HISTORY_S,
    ) -> None:
        index = resolve_device(device, "output")
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
        self.underflows = 0
        """Callbacks in which PortAudio reported an output underflow."""
        with _device_errors("Cannot open the speaker") as sd:
            rate = sample_rate or int(sd.query_devices(index, "output")["default_samplerate"])
            self._callback_abort = sd.CallbackAbort
            self._stream = sd.OutputStream(
                samplerate=rate, blocksize=block_frames, device=index, channels=1, dtype="int16",
                latency="low", callback=self._callback,
            )  # fmt: skip
        self.sample_rate: int = rate
        self._idle_tail_frames = round(idle_tail_s * rate)
        _LOGGER.debug("speaker open: device %s, %d Hz, latency %.1f ms", index, rate, self.latency_s * 1e3)

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
        with self._lock:
            self._abort_locked()
            try:
                if self._broken:
                    self._reopen_locked()
                with _device_errors("Cannot play on the speaker"):
                    self._stream.abort()  # a stream that stopped itself is inactive but not yet stopped
                    self._playback = playback
                    self._stream.start()
                if self._aborts != aborts_before:  # abort() came while this play() held the lock (a reopen)
                    self._abort_locked()
            except AudioDeviceError:
                self._broken = True
                self._complete(playback, time.monotonic())
                raise

    def _reopen_locked(self) -> None:
        """Open the output device again after an error (caller holds _lock)."""
        with _device_errors("The speaker is still unavailable") as sd:
            try:
                self._stream.close()
            except Exception:  # the old stream may be beyond closing; it is being replaced
                _LOGGER.debug("closing the broken speaker stream failed", exc_info=True)
            index = resolve_device(self._device_spec, "output")
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate, blocksize=self._block_frames, device=index, channels=1, dtype="int16",
                latency="low", callback=self._callback,
            )  # fmt: skip
        self._broken = False
        _LOGGER.info("speaker reopened: device %s", index)

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

    def played(self) -> list[PlayedBuffer]:
        """The buffers played in about the last minute, oldest first (the one in flight: as handed over so far)."""
        with self._log_lock:
            entries = list(self._log)
        playback = self._playback
        if playback is not None and not playback.done.is_set() and playback.start_s is not None:
            position = playback.position
            if position > 0:
                entries.append(PlayedBuffer(playback.start_s, self.sample_rate, playback.samples[:position]))
        return entries

    def close(self) -> None:
        """Abort and release the device."""
        with self._lock:
            self._abort_locked()
            self._stream.close()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abort_locked(self) -> None:
        """Abort the buffer in flight, if any (caller holds _lock); one already past its end counts as finished."""
        playback = self._playback
        if playback is None or playback.done.is_set():
            return
        now_s = time.monotonic()
        self._stream.abort()
        past_end = playback.end_s is not None and playback.end_s <= now_s
        self._complete(playback, None if past_end else now_s)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: copy the next frames of the buffer, then silence; stop after the idle tail."""
        if status.output_underflow:
            self.underflows += 1
        playback = self._playback
        if playback is None or playback.cancelled:
            outdata.fill(0)
            raise self._callback_abort
        position = playback.position
        chunk = playback.samples[position : position + frames]
        outdata[: len(chunk), 0] = chunk
        outdata[len(chunk) :] = 0
        if playback.start_s is None:
            playback.start_s = _callback_monotonic(time_info.outputBufferDacTime, time_info.currentTime)
        playback.position = position + len(chunk)
        if playback.end_s is None:
            if playback.position < len(playback.samples):
                return
            dac_s = _callback_monotonic(time_info.outputBufferDacTime, time_info.currentTime)
            playback.end_s = dac_s + len(chunk) / self.sample_rate
            playback.handed_over.set()
        playback.tail_frames += frames - len(chunk)
        if playback.tail_frames >= self._idle_tail_frames:
            raise self._callback_abort

    def _complete(self, playback: _Playback, abort_s: float | None) -> None:
        """Log what was heard of this buffer and release its waiters (once); abort_s None means it finished."""
        with self._log_lock:
            if playback.done.is_set():
                return
            frames = playback.position
            if abort_s is not None:
                heard = 0 if playback.start_s is None else round((abort_s - playback.start_s) * self.sample_rate)
                frames = min(frames, max(0, heard))
            if playback.start_s is not None and frames > 0:
                entry = PlayedBuffer(playback.start_s, self.sample_rate, playback.samples[:frames],
                                     aborted=abort_s is not None)  # fmt: skip
                self._log.append(entry)
                self._trim_log(entry.start_s + entry.duration_s)
            playback.finished = abort_s is None
            playback.done.set()
            playback.handed_over.set()

    def _trim_log(self, now_s: float) -> None:
        """Forget buffers that ended more than history_s ago (caller holds _log_lock)."""
        while self._log and self._log[0].start_s + self._log[0].duration_s < now_s - self._history_s:
            self._log.popleft()


# --- microphone ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MicBlock:
    """One block of captured audio."""

    pcm: bytes
    """Little-endian int16 mono."""
    adc_s: float
    """time.monotonic() when its first sample was captured (callback time if PortAudio gives none)."""


class Microphone:
    """An int16 mono input stream whose callback only queues copies of the blocks."""

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int = _MIC_SAMPLE_RATE,
        block_frames: int = _MIC_BLOCK_FRAMES,
        max_queued_blocks: int = _MIC_MAX_QUEUED_BLOCKS,
    ) -> None:
        index = resolve_device(device, "input")
        self._device_spec = device
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.overflows = 0
        """Blocks PortAudio reported as overflowed (audio lost before the callback)."""
        self.dropped = 0
        """Blocks dropped because the queue was full (nobody reading)."""
        self._queue: queue.Queue[MicBlock] = queue.Queue(maxsize=max_queued_blocks)
        with _device_errors("Cannot open the microphone") as sd:
            self._stream = sd.RawInputStream(
                samplerate=sample_rate, blocksize=block_frames, device=index, channels=1, dtype="int16",
                latency="low", callback=self._callback,
            )  # fmt: skip

    def start(self) -> None:
        """Start capturing."""
        with _device_errors("Cannot start the microphone"):
            self._stream.start()

    def reopen(self) -> None:
        """Open the input device afresh and start it (after it went away, e.g. unplugged and plugged back)."""
        with _device_errors("The microphone is still unavailable") as sd:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # the old stream may be beyond closing; it is being replaced
                _LOGGER.debug("closing the broken microphone stream failed", exc_info=True)
            index = resolve_device(self._device_spec, "input")
            self._stream = sd.RawInputStream(
                samplerate=self.sample_rate, blocksize=self.block_frames, device=index, channels=1, dtype="int16",
                latency="low", callback=self._callback,
            )  # fmt: skip
            self._stream.start()

    def read(self, timeout_s: float | None = None) -> bytes | None:
        """The next block's PCM, or None if none arrived within timeout_s."""
        block = self.read_block(timeout_s)
        return None if block is None else block.pcm

    def read_block(self, timeout_s: float | None = None) -> MicBlock | None:
        """The next block with its capture time, or None if none arrived within timeout_s."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop capturing and release the device."""
        self._stream.abort()
        self._stream.close()

    def __enter__(self) -> Microphone:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: copy the block into the queue, nothing else."""
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(
                MicBlock(bytes(indata), _callback_monotonic(time_info.inputBufferAdcTime, time_info.currentTime))
            )
        except queue.Full:
            self.dropped += 1
