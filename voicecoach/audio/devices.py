"""The audio device boundary: device lookup, the speaker (with its playback log) and the microphone.

sounddevice (and so PortAudio) is imported only when a device is used, so the package imports without it.
Every PortAudio failure leaves this module as `AudioDeviceError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

_LOGGER = logging.getLogger(__name__)

DeviceKind = Literal["input", "output"]

_MAX_PLAUSIBLE_LATENCY_S = 1.0
"""A callback's DAC/ADC time further than this from its current time is not trusted."""


class AudioDeviceError(RuntimeError):
    """An audio device could not be found, opened or used (one clear line for the user)."""


# --- ALSA's own error lines --------------------------------------------------------------------------

_AlsaErrorHandler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_char_p)  # fmt: skip
"""ALSA's snd_lib_error_handler_t: file, line, function, errno, printf format (its variadic arguments unread)."""
_alsa_handler: Any = None
"""The installed handler; kept here so that it outlives every ALSA call (ctypes frees an unreferenced one)."""


def _log_alsa_error(file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
    """ALSA's message (its format, arguments not filled in) in the debug log instead of on stderr."""
    def text(raw: bytes | None) -> str:
        return raw.decode("utf-8", "replace") if raw else "?"

    _LOGGER.debug("ALSA %s:%d (%s): %s (error %d)", text(file), line, text(function), text(fmt), err)


def quiet_alsa(library: Any = None) -> bool:
    """Send ALSA's own error lines (`snd_pcm_recover underrun occurred`, `Unknown PCM cards.pcm.rear`), which it
    prints on stderr past PortAudio, to the debug log; once per process. False if there is no ALSA library here."""
    global _alsa_handler
    if _alsa_handler is not None:
        return True
    if library is None:
        name = ctypes.util.find_library("asound")
        try:
            library = ctypes.CDLL(name) if name else None
        except OSError:
            library = None
    if library is None:
        return False
    handler = _AlsaErrorHandler(_log_alsa_error)
    library.snd_lib_error_set_handler(handler)
    _alsa_handler = handler
    return True


def _sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into AudioDeviceError; ALSA's chatter goes to the log."""
    quiet_alsa()  # before the import: PortAudio opens every ALSA device as it starts
    try:
        import sounddevice
    except OSError as exc:
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install it: apt-get install libportaudio2"
        ) from exc
    return sounddevice


@contextlib.contextmanager
def device_errors(what: str) -> Iterator[ModuleType]:
    """Yield sounddevice; re-raise its errors as AudioDeviceError prefixed with `what`."""
    sd = _sounddevice()
    try:
        yield sd
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"{what}: {plain_portaudio(str(exc.args[0] if exc.args else exc))}") from exc


_PORTAUDIO_MEANINGS = {
    "Error querying device -1": "there is no audio device to use, not even a default one",
    "Device unavailable": "the device is unavailable (unplugged, or busy in another program)",
    "Invalid sample rate": "the device does not take the sample rate voicecoach needs",
    "Invalid number of channels": "the device does not have the channels voicecoach needs",
    "Invalid device": "there is no such device",
}
"""What PortAudio's terse messages mean to a person (its words follow, for searching)."""


def plain_portaudio(message: str) -> str:
    """PortAudio's message in plain words, with PortAudio's own words after them."""
    meaning = next((plain for text, plain in _PORTAUDIO_MEANINGS.items() if message.startswith(text)), None)
    return f"{meaning} (PortAudio: {message})" if meaning else message


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
    with device_errors("Cannot list audio devices") as sd:
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


def stream_device_name(stream: Any, fallback: str = "default") -> str:
    """The name of the device an open stream plays or records on (fallback if PortAudio cannot say): what the
    narrator's level is remembered under."""
    try:
        with device_errors("Cannot query the stream's device") as sd:
            return str(sd.query_devices(int(stream.device))["name"])
    except (AudioDeviceError, AttributeError, ValueError, TypeError, KeyError):
        return fallback


def callback_monotonic(device_time_s: float, current_time_s: float) -> float:
    """Map a PortAudio stream time (DAC/ADC) to time.monotonic(), from inside a callback."""
    now = time.monotonic()
    offset = device_time_s - current_time_s
    if device_time_s > 0 and current_time_s > 0 and abs(offset) < _MAX_PLAUSIBLE_LATENCY_S:
        return now + offset
    return now


