"""WAV files in, mono int16 out, at whatever sample rate the recognizer needs."""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

_LOGGER = logging.getLogger(__name__)

_INT16_MAX = 32767
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class AudioFileError(ValueError):
    """A file is not a WAV we can read (one clear line for the user)."""


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV (integer PCM 8/16/24/32-bit or float 32/64-bit, any channels) as mono int16 and its rate in Hz."""
    frames, rate = _read_frames(path)
    mono = frames.mean(axis=1) if frames.shape[1] > 1 else frames[:, 0]
    return _to_int16(mono), rate


def read_wav_channels(path: str | Path) -> tuple[list[np.ndarray], int]:
    """Read a WAV as one int16 array per channel, and its rate in Hz."""
    frames, rate = _read_frames(path)
    return [_to_int16(frames[:, channel]) for channel in range(frames.shape[1])], rate


def _read_frames(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples as float64 in the int16 range, one column per channel, and the rate."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    fmt, raw = _chunks(data, str(path))
    samples = _decode_float(raw, fmt.width) if fmt.floating else _decode(raw, fmt.width, str(path))
    usable = len(samples) - len(samples) % fmt.channels
    return samples[:usable].reshape(-1, fmt.channels), fmt.rate


class _Format(NamedTuple):
    """The parts of a WAV 'fmt ' chunk we use: a record of header fields, as struct unpacks them."""

    channels: int
    rate: int
    """Hz."""
    width: int
    """Bytes per sample."""
    floating: bool = False
    """IEEE float samples (-1 to 1) rather than integers."""


def _chunks(data: bytes, where: str) -> tuple[_Format, bytes]:
    """The format and the sample bytes of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFileError(f"{where}: not a WAV file (no RIFF/WAVE header)")
    fmt: _Format | None = None
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if kind == b"fmt ":
            fmt = _parse_format(body, where)
        elif kind == b"data":
            if fmt is None:
                raise AudioFileError(f"{where}: data chunk before fmt chunk")
            return fmt, body[: len(body) - len(body) % (fmt.width * fmt.channels)]
        pos += 8 + size + (size & 1)
    raise AudioFileError(f"{where}: no {'data' if fmt else 'fmt'} chunk")


def _parse_format(body: bytes, where: str) -> _Format:
    """Check a 'fmt ' chunk is integer PCM and read it."""
    if len(body) < 16:
        raise AudioFileError(f"{where}: truncated fmt chunk")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]
    if tag not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT):
        raise AudioFileError(f"{where}: WAV format tag {tag} (expected integer PCM or IEEE float)")
    if channels < 1 or rate <= 0:
        raise AudioFileError(f"{where}: {channels} channels at {rate} Hz (expected at least 1 channel)")
    if tag == _WAVE_FORMAT_FLOAT:
        if bits not in (32, 64):
            raise AudioFileError(f"{where}: {bits}-bit float samples (expected 32 or 64-bit float)")
        return _Format(channels, rate, bits // 8, floating=True)
    if bits not in (8, 16, 24, 32):
        raise AudioFileError(f"{where}: {bits}-bit samples (expected 8, 16, 24 or 32-bit PCM)")
    return _Format(channels, rate, bits // 8)


def _decode(raw: bytes, width: int, where: str) -> np.ndarray:
    """PCM bytes of one sample width as float64 in the int16 range."""
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        triplets = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        padded = np.zeros((len(triplets), 4), dtype=np.uint8)
        padded[:, 1:] = triplets
        return padded.view("<i4")[:, 0].astype(np.float64) / 65536.0
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    raise AudioFileError(f"{where}: {8 * width}-bit samples (expected 8, 16, 24 or 32-bit PCM)")


def _decode_float(raw: bytes, width: int) -> np.ndarray:
    """IEEE float bytes (full scale 1.0) as float64 in the int16 range."""
    values = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
    return np.nan_to_num(values) * 32768.0


def _to_int16(samples: np.ndarray) -> np.ndarray:
    """Round and clip to int16."""
    return np.clip(np.rint(samples), -_INT16_MAX - 1, _INT16_MAX).astype(np.int16)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Change the sample rate of mono int16 samples (soxr, high quality)."""
    if from_rate <= 0 or to_rate <= 0:
        raise AudioFileError(f"cannot resample from {from_rate} Hz to {to_rate} Hz (expected positive rates)")
    if from_rate == to_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.int16)
    import soxr

    _LOGGER.debug("Resampling %d samples from %d Hz to %d Hz", len(samples), from_rate, to_rate)
    out = soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality="HQ")
    return _to_int16(out)
