"""Text to speech: pyttsx3 driving eSpeak-NG into a buffer (never its own playback), word timings, a phrase cache.

pyttsx3 is not thread-safe and eSpeak-NG is one global engine per process, so every pyttsx3 call runs on one
dedicated thread for the whole process; `Pyttsx3Synthesizer.synthesize()` may be called from any thread.

Word timings come from eSpeak-NG itself: its word events carry the word's position in the text and its start in
the audio (`audio_position`, ms from the first sample). pyttsx3 passes on only the text position, so the engine
wraps pyttsx3's synth callback to read the events first. Each word's span is then narrowed to where it sounds:
eSpeak-NG's pauses are digital silence, so leading and trailing zeros are cut off.

Longer than most modules (about 420 lines): the one-thread pyttsx3 engine, its word events and the WAV it writes
are one unit of fragile engine handling; the phrase cache at the end is small and shares its types.
"""

from __future__ import annotations

import bisect
import collections
import logging
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from voicecoach.settings import MAX_RATE_WPM, MIN_RATE_WPM, NarratorSettings

_LOGGER = logging.getLogger(__name__)

_ESPEAK_SAMPLE_RATE = 22050
"""Hz; pyttsx3 2.99 writes every WAV at this rate (eSpeak-NG's own voices all use it)."""
_SYNTHESIS_TIMEOUT_S = 30.0
_WAV_COMPLETE_TIMEOUT_S = 2.0
_SETTLE_TIMEOUT_S = 5.0
_DEFAULT_CACHE_ENTRIES = 256
_ESPEAK_WORD_EVENT = 1
_ESPEAK_LIST_TERMINATED = 0
_SILENCE = 64
"""Sample magnitude below which a word's edges count as silent (eSpeak-NG's pauses are exact zeros)."""
_WORD_EDGE_PUNCTUATION = ' \t\r\n.,;:!?"()[]{}\u2014\u2013-\u2026\u201c\u201d'

_T = TypeVar("_T")


class TtsError(RuntimeError):
    """Speech could not be synthesized (engine missing, unknown voice, engine failure): one clear line."""


@dataclass(frozen=True)
class WordTiming:
    """One word of an utterance and when it sounds, relative to the utterance's first sample."""

    text: str
    """As written (e.g. "Let's"), edge punctuation removed."""
    start_s: float
    """Seconds from the first sample."""
    end_s: float
    """Seconds from the first sample."""


@dataclass(frozen=True)
class Speech:
    """Synthesized speech and, where the synthesizer knows them, its words' timings."""

    samples: np.ndarray
    """int16 mono."""
    words: tuple[WordTiming, ...] = ()
    """In order; empty when the synthesizer gives no timings."""


class Synthesizer(Protocol):
    """Text in, int16 mono samples out."""

    sample_rate: int
    """Hz of the samples synthesize() returns."""

    def synthesize(self, text: str) -> np.ndarray:
        """The speech for this text, int16 mono."""
        ...


def speech_for(synthesizer: Synthesizer, text: str) -> Speech:
    """The speech with word timings if the synthesizer has synthesize_words(), else without."""
    with_words = getattr(synthesizer, "synthesize_words", None)
    if callable(with_words):
        speech = with_words(text)
        if isinstance(speech, Speech):
            return speech
    return Speech(synthesizer.synthesize(text))


def spread_words(text: str, duration_s: float) -> tuple[WordTiming, ...]:
    """Estimated timings: the text's words spread over the duration in proportion to their characters."""
    words = [word for word in (raw.strip(_WORD_EDGE_PUNCTUATION) for raw in text.split()) if word]
    total = sum(len(word) + 1 for word in words)
    timings, used = [], 0
    for word in words:
        start_s = duration_s * used / total
        used += len(word) + 1
        timings.append(WordTiming(word, start_s, duration_s * (used - 1) / total))
    return tuple(timings)


# --- the one pyttsx3 thread ---------------------------------------------------------------------


class _Engine:
    """The process's pyttsx3 engine; used only on the pyttsx3 thread.

    pyttsx3 2.99 runs eSpeak-NG asynchronously: property changes wait in eSpeak's command queue, and runAndWait()
    cancels whatever eSpeak is still doing, which can drop a rate change and leave pyttsx3 set to cancel the
    next utterance. So: wait for eSpeak to be idle after every change, and prime the engine once (its first
    runAndWait() would otherwise run queued property changes right before that cancel).
    """

    def __init__(self) -> None:
        self.engine, library = _init_pyttsx3()
        self._is_playing: Callable[[], int] = library.IsPlaying
        self.finished = threading.Event()
        self.completed = False
        self.word_events: list[tuple[int, int, int]] = []
        """(text position from 1, length in characters, audio position in ms) of each word of the utterance."""
        self.timed = _watch_word_events(self.engine, library, self.word_events)
        """True if eSpeak-NG's word events reach word_events."""
        self.engine.connect("finished-utterance", self._on_finished)
        self.applied: tuple[str | None, int, float] | None = None
        self.settle()
        self.engine.runAndWait()

    def settle(self) -> None:
        """Wait until eSpeak-NG has worked through its command queue."""
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while self._is_playing():
            if time.monotonic() > deadline:
                raise TtsError(f"eSpeak-NG stayed busy for {_SETTLE_TIMEOUT_S:.0f} s")
            time.sleep(0.001)

    def _on_finished(self, name: str | None = None, completed: bool = True) -> None:
        """eSpeak-NG's thread: the WAV file has been written and closed (or the utterance was cancelled)."""
        self.completed = bool(completed)
        self.finished.set()


_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyttsx3")
_ENGINE: list[_Engine] = []
"""Holds the engine once created (touched only on the pyttsx3 thread)."""


def _on_engine_thread(function: Callable[..., _T], *args: Any, timeout_s: float = _SYNTHESIS_TIMEOUT_S) -> _T:
    """Run function(engine, *args) on the pyttsx3 thread and return its result."""

    def task() -> _T:
        if not _ENGINE:
            _ENGINE.append(_Engine())
        return function(_ENGINE[0], *args)

    return _EXECUTOR.submit(task).result(timeout=timeout_s)


def _init_pyttsx3() -> tuple[Any, Any]:
    """pyttsx3's eSpeak-NG engine (quietened) and its eSpeak-NG binding module; TtsError if either is missing."""
    try:
        import pyttsx3
        import pyttsx3.drivers._espeak as espeak_library
        import pyttsx3.drivers.espeak as espeak_driver

        engine = pyttsx3.init("espeak")
    except (ImportError, OSError, RuntimeError) as exc:
        raise TtsError(f"eSpeak-NG is not usable ({exc}); install it: apt-get install espeak-ng") from exc
    # pyttsx3 2.99 prints "Audio saved to <path>" for every file; shadow print in its module with a debug log.
    espeak_driver.print = lambda *args, **kwargs: _LOGGER.debug(" ".join(map(str, args)))  # type: ignore[attr-defined]
    return engine, espeak_library


def _watch_word_events(engine: Any, library: Any, word_events: list[tuple[int, int, int]]) -> bool:
    """Wrap pyttsx3's synth callback so that eSpeak-NG's word events are appended to word_events first.

    pyttsx3 2.99 reads eSpeak's events in its driver's `_onSynth` and passes on only text positions; the audio
    positions are in the same events. False (no timings, nothing changed) if the driver is not the one expected.
    """
    on_synth = getattr(getattr(getattr(engine, "proxy", None), "_driver", None), "_onSynth", None)
    if on_synth is None or not hasattr(library, "SetSynthCallback"):
        _LOGGER.warning("pyttsx3's eSpeak-NG driver has changed: no word timings (they will be estimated)")
        return False

    def on_synth_with_words(wav: Any, numsamples: int, events: Any) -> int:
        """eSpeak-NG's thread: note the word events of this buffer, then hand it to pyttsx3."""
        try:
            i = 0
            while events[i].type != _ESPEAK_LIST_TERMINATED:
                event = events[i]
                if event.type == _ESPEAK_WORD_EVENT:
                    word_events.append((event.text_position, event.length, event.audio_position))
                i += 1
        except Exception:  # an exception must not escape into eSpeak-NG's C thread
            _LOGGER.exception("reading eSpeak-NG's word events failed")
        return int(on_synth(wav, numsamples, events))

    library.SetSynthCallback(on_synth_with_words)
    return True


def _list_voices(state: _Engine) -> list[tuple[str, str]]:
    """(id, name) of every voice; settings are applied again afterwards (listing disturbs eSpeak's state)."""
    state.applied = None
    return [(str(v.id), str(v.name)) for v in state.engine.getProperty("voices")]


def _find_voice(state: _Engine, spec: str | None) -> str | None:
    """The id of the voice an id or name substring names, keeping a '+variant' suffix (None: eSpeak's default)."""
    if spec is None or not spec.strip():
        return None
    base, plus, variant = spec.strip().partition("+")
    voices = _list_voices(state)
    wanted = base.strip().lower()
    by_id = [vid for vid, _ in voices if vid.lower() == wanted or vid.lower().endswith("/" + wanted)]
    by_name = [vid for vid, name in voices if wanted in name.lower()]
    exact_name = [vid for vid, name in voices if wanted == name.lower()]
    for found in (by_id, exact_name, by_name):
        if len(found) == 1:
            return found[0] + plus + variant  # eSpeak-NG ignores an unknown variant
    if not by_name:
        raise TtsError(f"No eSpeak-NG voice matches {base!r} (list them with: espeak-ng --voices)")
    names = ", ".join(f"{name} ({vid})" for vid, name in voices if vid in by_name[:8])
    raise TtsError(f"{base!r} matches several voices: {names}; give a voice id")


def _apply(state: _Engine, voice_id: str | None, settings: NarratorSettings) -> None:
    """Set voice, rate and volume if they differ from the last ones applied."""
    wanted = (voice_id, settings.rate_wpm, settings.volume)
    if state.applied == wanted:
        return
    if voice_id is not None:
        state.engine.setProperty("voice", voice_id)
    state.engine.setProperty("rate", settings.rate_wpm)
    state.engine.setProperty("volume", settings.volume)
    state.settle()
    state.applied = wanted


def _synthesize_on_engine(state: _Engine, text: str, voice_id: str | None, settings: NarratorSettings) -> Speech:
    """Synthesize with the given settings (on the pyttsx3 thread); retry once if eSpeak-NG cancelled it."""
    _apply(state, voice_id, settings)
    for _attempt in range(2):
        samples = _synthesize_once(state, text)
        if samples is not None:
            words = _word_timings(text, state.word_events, samples) if state.timed else ()
            return Speech(samples, words)
        _LOGGER.warning("eSpeak-NG cancelled an utterance; synthesizing it again: %r", text[:40])
        state.settle()
    raise TtsError(f"eSpeak-NG cancelled the utterance twice: {text[:40]!r}")


def _synthesize_once(state: _Engine, text: str) -> np.ndarray | None:
    """Synthesize to a temporary WAV and read it back; None if eSpeak-NG cancelled the utterance."""
    with tempfile.TemporaryDirectory(prefix="voicecoach-tts-") as folder:
        path = Path(folder) / "utterance.wav"
        state.finished.clear()
        state.word_events.clear()
        state.engine.save_to_file(text, str(path))
        state.engine.runAndWait()  # pyttsx3 2.99 may return before eSpeak-NG has even started writing
        if not state.finished.wait(_SYNTHESIS_TIMEOUT_S):
            raise TtsError(f"eSpeak-NG did not finish synthesizing within {_SYNTHESIS_TIMEOUT_S:.0f} s: {text[:40]!r}")
        return _read_complete_wav(path) if state.completed else None


def _read_complete_wav(path: Path) -> np.ndarray:
    """int16 mono samples of a 16-bit WAV, once its header and data agree."""
    deadline = time.monotonic() + _WAV_COMPLETE_TIMEOUT_S
    while True:
        try:
            with wave.open(str(path), "rb") as wav:
                expected = wav.getnframes() * wav.getsampwidth() * wav.getnchannels()
                frames = wav.readframes(wav.getnframes())
                if len(frames) == expected and wav.getsampwidth() == 2:
                    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, wav.getnchannels())[:, 0]
                    return samples.astype(np.int16)
        except (FileNotFoundError, EOFError, wave.Error):
            pass
        if time.monotonic() > deadline:
            raise TtsError(f"eSpeak-NG's WAV file {path} was not complete after {_WAV_COMPLETE_TIMEOUT_S:.0f} s")
        time.sleep(0.005)


def _word_timings(text: str, events: Sequence[tuple[int, int, int]], samples: np.ndarray) -> tuple[WordTiming, ...]:
    """Each word eSpeak-NG reported, from its start to the next word's start, narrowed to where it sounds."""
    spans = _word_spans(text, events)
    starts = [min(len(samples), round(ms * _ESPEAK_SAMPLE_RATE / 1000)) for _, ms in spans]
    timings = []
    for i, (word, _) in enumerate(spans):
        end = starts[i + 1] if i + 1 < len(spans) else len(samples)
        first, last = _sounding(samples, starts[i], max(end, starts[i]))
        timings.append(WordTiming(word, first / _ESPEAK_SAMPLE_RATE, last / _ESPEAK_SAMPLE_RATE))
    return tuple(timings)


def _word_spans(text: str, events: Sequence[tuple[int, int, int]]) -> list[tuple[str, int]]:
    """(word, audio ms) per word event, in order; a word runs to the next space or the next word.

    eSpeak-NG's own lengths stop at an apostrophe ("Don" of "Don't") or a hyphen, which would change how
    commands match; events for an empty or repeated position (numbers like "3.5") are skipped.
    """
    positions = sorted({position - 1 for position, length, _ in events if length > 0 and 0 < position <= len(text)})
    spans: list[tuple[str, int]] = []
    seen: set[int] = set()
    for position, length, audio_ms in events:
        start = position - 1
        if length <= 0 or not 0 <= start < len(text) or start in seen:
            continue
        seen.add(start)
        after = bisect.bisect_right(positions, start)
        limit = positions[after] if after < len(positions) else len(text)
        end = start + length
        while end < limit and not text[end].isspace():
            end += 1
        word = text[start : min(end, limit)].strip(_WORD_EDGE_PUNCTUATION)
        if word and (not spans or audio_ms >= spans[-1][1]):
            spans.append((word, audio_ms))
    return spans


def _sounding(samples: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """The part of samples[start:end] between its first and last non-silent sample (all of it if silent)."""
    loud = np.flatnonzero(np.abs(samples[start:end].astype(np.int32)) > _SILENCE)
    if loud.size == 0:
        return start, end
    return start + int(loud[0]), start + int(loud[-1]) + 1


def _check_settings(settings: NarratorSettings) -> None:
    """Rate and volume within eSpeak-NG's ranges (ValueError otherwise)."""
    if not MIN_RATE_WPM <= settings.rate_wpm <= MAX_RATE_WPM:
        raise ValueError(f"rate_wpm must be {MIN_RATE_WPM} to {MAX_RATE_WPM}, got {settings.rate_wpm}")
    if not 0.0 <= settings.volume <= 1.0:
        raise ValueError(f"volume must be 0 to 1, got {settings.volume}")


# --- synthesizers -------------------------------------------------------------------------------


class Pyttsx3Synthesizer:
    """eSpeak-NG through pyttsx3, synthesizing to a buffer; calls from any thread are served one at a time."""

    sample_rate: int = _ESPEAK_SAMPLE_RATE

    def __init__(self, settings: NarratorSettings | None = None) -> None:
        self.settings = settings or NarratorSettings()
        _check_settings(self.settings)
        self.voice_id: str | None = _on_engine_thread(_find_voice, self.settings.voice)
        """The eSpeak-NG voice id in use (None: its default)."""
        self.sample_rate = _ESPEAK_SAMPLE_RATE

    def synthesize(self, text: str) -> np.ndarray:
        """The speech for this text, int16 mono at sample_rate (empty for blank text)."""
        return self.synthesize_words(text).samples

    def synthesize_words(self, text: str) -> Speech:
        """The speech for this text with eSpeak-NG's word timings (no samples, no words for blank text)."""
        if not text.strip():
            return Speech(np.zeros(0, dtype=np.int16))
        started = time.perf_counter()
        speech = _on_engine_thread(
            _synthesize_on_engine, text, self.voice_id, self.settings, timeout_s=2 * _SYNTHESIS_TIMEOUT_S
        )
        _LOGGER.debug("synthesized %.2f s of speech (%d words timed) in %.0f ms: %r",
                      len(speech.samples) / self.sample_rate, len(speech.words),
                      (time.perf_counter() - started) * 1e3, text[:40])  # fmt: skip
        return speech

    @staticmethod
    def voices() -> list[tuple[str, str]]:
        """(id, name) of every eSpeak-NG voice."""
        return _on_engine_thread(_list_voices)


class CachedSynthesizer:
    """A Synthesizer with an LRU cache for fixed phrases (with their word timings); cached buffers are read-only
    and shared."""

    def __init__(self, inner: Synthesizer, max_entries: int = _DEFAULT_CACHE_ENTRIES) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._cache: collections.OrderedDict[str, Speech] = collections.OrderedDict()
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> np.ndarray:
        """The cached buffer for this text, synthesizing it on a miss."""
        return self.synthesize_words(text).samples

    def synthesize_words(self, text: str) -> Speech:
        """The cached speech for this text, with word timings if the inner synthesizer gives them."""
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                self.hits += 1
                return cached
            self.misses += 1
        speech = speech_for(self.inner, text)
        samples = np.array(speech.samples, dtype=np.int16)
        samples.flags.writeable = False
        speech = Speech(samples, speech.words)
        with self._lock:
            self._cache[text] = speech
            self._cache.move_to_end(text)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return speech

    def warm(self, texts: Iterable[str]) -> None:
        """Synthesize these phrases now so that later calls are instant."""
        for text in texts:
            self.synthesize(text)

    def __contains__(self, text: object) -> bool:
        with self._lock:
            return text in self._cache
