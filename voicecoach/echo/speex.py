"""Acoustic echo cancellation: the narrator's own voice taken out of the microphone signal.

libspeexdsp (through ctypes) does the adaptive filtering. This module also finds the bulk delay between what the
speaker played and what the microphone heard (GCC-PHAT), and lines the played audio up with each microphone block
by monotonic time (`ReferenceAligner`), so the canceller's filter only has to model the room, not the device latencies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from dataclasses import dataclass

import numpy as np

_LOGGER = logging.getLogger(__name__)

_LIBRARY_NAME = "speexdsp"
_LIBRARY_FALLBACK = "libspeexdsp.so.1"
_INSTALL_HINT = "install it with: sudo apt-get install libspeexdsp1"
_SPEEX_ECHO_SET_SAMPLING_RATE = 24
_SPEEX_PREPROCESS_SET_DENOISE = 0
_SPEEX_PREPROCESS_SET_NOISE_SUPPRESS = 18
_SPEEX_PREPROCESS_SET_ECHO_SUPPRESS = 20
_SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE = 22
_SPEEX_PREPROCESS_SET_ECHO_STATE = 24



class EchoCancellerUnavailable(RuntimeError):
    """libspeexdsp cannot be loaded (one clear line for the user)."""



class PassThroughEchoCanceller:
    """The canceller to use when none is available: the microphone signal, unchanged."""

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """A copy of the mic block."""
        return np.array(mic, dtype=np.int16)

    def reset(self) -> None:
        """Nothing to forget."""


@dataclass(frozen=True)
class EchoSettings:
    """How the Speex echo canceller is set up."""

    sample_rate: int = 16000
    """Hz of both the microphone and the reference."""
    frame_ms: int = 10
    """Milliseconds per Speex frame; process() takes blocks of whole frames."""
    filter_ms: int = 200
    """Echo tail the adaptive filter models: room reverberation plus any delay error left after alignment."""
    residual_suppression: bool = True
    """Run the Speex preprocessor after the canceller: residual echo and noise suppression, one frame of latency."""
    echo_suppress_db: int = -40
    """Most the preprocessor attenuates residual echo, when the far end alone talks (negative dB)."""
    echo_suppress_active_db: int = -15
    """Most the preprocessor attenuates residual echo while the near end talks too (negative dB)."""
    noise_suppress_db: int = -15
    """Most the preprocessor attenuates stationary noise (negative dB)."""

    def __post_init__(self) -> None:
        if self.frame_samples <= 0 or self.filter_samples < self.frame_samples:
            raise ValueError(f"echo canceller: a {self.filter_ms} ms filter is shorter than a {self.frame_ms} ms frame")

    @property
    def frame_samples(self) -> int:
        """Samples per Speex frame."""
        return self.sample_rate * self.frame_ms // 1000

    @property
    def filter_samples(self) -> int:
        """Adaptive filter taps."""
        return self.sample_rate * self.filter_ms // 1000


@functools.cache
def _speexdsp() -> ctypes.CDLL:
    """libspeexdsp with the signatures we call declared."""
    name = ctypes.util.find_library(_LIBRARY_NAME) or _LIBRARY_FALLBACK
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise EchoCancellerUnavailable(f"libspeexdsp is not available ({exc}); {_INSTALL_HINT}") from None
    state, pointer, integer = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int
    signatures: dict[str, tuple[list[type], type | None]] = {
        "speex_echo_state_init": ([integer, integer], state),
        "speex_echo_ctl": ([state, integer, pointer], integer),
        "speex_echo_cancellation": ([state, pointer, pointer, pointer], None),
        "speex_echo_state_reset": ([state], None),
        "speex_echo_state_destroy": ([state], None),
        "speex_preprocess_state_init": ([integer, integer], state),
        "speex_preprocess_ctl": ([state, integer, pointer], integer),
        "speex_preprocess_run": ([state, pointer], integer),
        "speex_preprocess_state_destroy": ([state], None),
    }
    for function, (argtypes, restype) in signatures.items():
        getattr(lib, function).argtypes = argtypes
        getattr(lib, function).restype = restype
    return lib


class SpeexEchoCanceller:
    """libspeexdsp's multidelay-block-frequency echo canceller, optionally followed by its residual echo suppressor.

    Not thread-safe: one listener thread owns it. Free it with close() or a with block.
    """

    def __init__(self, settings: EchoSettings | None = None) -> None:
        self.settings = settings or EchoSettings()
        self._lib = _speexdsp()
        self._echo: int | None = None
        self._preprocess: int | None = None
        frame, rate = self.settings.frame_samples, self.settings.sample_rate
        self._echo = self._lib.speex_echo_state_init(frame, self.settings.filter_samples)
        if not self._echo:
            raise EchoCancellerUnavailable("libspeexdsp could not create an echo canceller state")
        self._lib.speex_echo_ctl(self._echo, _SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(ctypes.c_int(rate)))
        if self.settings.residual_suppression:
            self._preprocess = self._open_preprocessor()
        _LOGGER.debug("speex echo canceller: %d Hz, %d-sample frames, %d taps, residual suppression %s",
                      rate, frame, self.settings.filter_samples, self.settings.residual_suppression)  # fmt: skip

    def _open_preprocessor(self) -> int:
        """A Speex preprocessor tied to our echo state, with denoise on (it carries the echo suppression)."""
        state = self._lib.speex_preprocess_state_init(self.settings.frame_samples, self.settings.sample_rate)
        if not state:
            raise EchoCancellerUnavailable("libspeexdsp could not create a preprocessor state")
        settings = self.settings
        for request, value in (
            (_SPEEX_PREPROCESS_SET_DENOISE, 1),
            (_SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, settings.noise_suppress_db),
            (_SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, settings.echo_suppress_db),
            (_SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, settings.echo_suppress_active_db),
        ):
            self._lib.speex_preprocess_ctl(state, request, ctypes.byref(ctypes.c_int(value)))
        self._lib.speex_preprocess_ctl(state, _SPEEX_PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        return int(state)

    @property
    def latency_samples(self) -> int:
        """Samples by which the output lags the mic: one frame with the preprocessor (its overlap-add), else 0."""
        return self.settings.frame_samples if self._preprocess is not None else 0

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Mic int16 mono minus the echo of the aligned reference; both the same length, a whole number of frames."""
        if self._echo is None:
            raise RuntimeError("the echo canceller is closed")
        mic16, reference16 = int16_block(mic, "mic"), int16_block(reference, "reference")
        frame = self.settings.frame_samples
        if len(mic16) != len(reference16) or len(mic16) % frame:
            raise ValueError(f"mic ({len(mic16)}) and reference ({len(reference16)}) must be the same whole number "
                             f"of {frame}-sample frames")  # fmt: skip
        out = np.empty_like(mic16)
        step = frame * out.itemsize
        mic_at, reference_at, out_at = mic16.ctypes.data, reference16.ctypes.data, out.ctypes.data
        for offset in range(0, len(out) * out.itemsize, step):
            self._lib.speex_echo_cancellation(self._echo, mic_at + offset, reference_at + offset, out_at + offset)
            if self._preprocess is not None:
                self._lib.speex_preprocess_run(self._preprocess, out_at + offset)
        return out

    def reset(self) -> None:
        """Forget the learned echo path (the preprocessor keeps its noise estimate)."""
        if self._echo is not None:
            self._lib.speex_echo_state_reset(self._echo)

    def close(self) -> None:
        """Free the Speex states (idempotent)."""
        if self._preprocess is not None:
            self._lib.speex_preprocess_state_destroy(self._preprocess)
            self._preprocess = None
        if self._echo is not None:
            self._lib.speex_echo_state_destroy(self._echo)
            self._echo = None

    def __enter__(self) -> SpeexEchoCanceller:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lib", None) is not None:
            self.close()


def int16_block(samples: np.ndarray, what: str) -> np.ndarray:
    """A contiguous 1-D int16 array, or ValueError."""
    if samples.ndim != 1 or samples.dtype != np.int16:
        raise ValueError(f"{what}: expected 1-D int16 samples, got {samples.ndim}-D {samples.dtype}")
    return np.ascontiguousarray(samples)



