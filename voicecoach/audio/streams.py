"""Opening and replacing the PortAudio streams of the speaker and the microphone, in one place.

Both devices use a mono int16 low-latency stream with a callback, and both reopen it the same way after the device
went away (a USB speaker or microphone unplugged and plugged back): close what is left of the old stream, look the
device up again by what the user asked for (its index may have changed), open a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from voicecoach.audio.devices import DeviceKind, device_errors, resolve_device

_LOGGER = logging.getLogger(__name__)


def open_stream(kind: DeviceKind, device: str | int | None, sample_rate: int, block_frames: int,
                callback: Callable[..., None], what: str) -> Any:
    """A new mono int16 stream (raw bytes for input, NumPy blocks for output) on the device `device` names now.

    PortAudio errors become AudioDeviceError prefixed with `what` ("Cannot open the speaker", ...).
    """  # fmt: skip
    with device_errors(what) as sd:
        index = resolve_device(device, kind)
        stream_class = sd.RawInputStream if kind == "input" else sd.OutputStream
        stream = stream_class(samplerate=sample_rate, blocksize=block_frames, device=index, channels=1,
                              dtype="int16", latency="low", callback=callback)  # fmt: skip
    _LOGGER.debug("%s stream open: device %s, %d Hz", kind, index, sample_rate)
    return stream


def discard_stream(stream: Any) -> None:
    """Stop and close a stream that is being replaced; a broken one may fail to do either, which is fine."""
    try:
        stream.abort()
        stream.close()
    except Exception:  # the old stream may be beyond closing; it is being replaced
        _LOGGER.debug("closing a broken stream failed", exc_info=True)
