"""The microphone: an input stream whose callback only queues copies of the blocks."""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass
from typing import Any

from voicecoach.audio.devices import callback_monotonic, device_errors, stream_device_name
from voicecoach.audio.streams import discard_stream, open_stream

_MIC_SAMPLE_RATE = 16000
_MIC_BLOCK_FRAMES = 320
"""20 ms at 16 kHz."""
_MIC_MAX_QUEUED_BLOCKS = 1500
"""30 s of 20 ms blocks; older audio is dropped (and counted) when nobody reads."""

_LOGGER = logging.getLogger(__name__)


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
        self._device_spec = device
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.overflows = 0
        """Blocks PortAudio reported as overflowed (audio lost before the callback)."""
        self.dropped = 0
        """Blocks dropped because the queue was full (nobody reading)."""
        self._queue: queue.Queue[MicBlock] = queue.Queue(maxsize=max_queued_blocks)
        self._stream = open_stream("input", device, sample_rate, block_frames, self._callback,
                                   "Cannot open the microphone")  # fmt: skip
        self.device_name = stream_device_name(self._stream)
        """The device's name (what a level remembered for it is filed under)."""

    def start(self) -> None:
        """Start capturing."""
        with device_errors("Cannot start the microphone"):
            self._stream.start()

    def reopen(self) -> None:
        """Open the input device afresh and start it (after it went away, e.g. unplugged and plugged back)."""
        what = "The microphone is still unavailable"
        discard_stream(self._stream)
        self._stream = open_stream("input", self._device_spec, self.sample_rate, self.block_frames, self._callback,
                                   what)  # fmt: skip
        with device_errors(what):
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
                MicBlock(bytes(indata), callback_monotonic(time_info.inputBufferAdcTime, time_info.currentTime))
            )
        except queue.Full:
            self.dropped += 1
