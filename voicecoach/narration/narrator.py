"""The narrator: speaks queued utterances in order through the speaker, and stops at once when told."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voicecoach.audio.devices import AudioDeviceError
from voicecoach.core.events import Chime, Say, StopSpeech
from voicecoach.narration.synthesis import CachedSynthesizer, Speech, Synthesizer, TtsError, WordTiming, speech_for

_LOGGER = logging.getLogger(__name__)

_CHIME_S = 0.12
_CHIME_PEAK = 0.18
"""Of full scale: soft, well under speech."""
_CHIME_FADE_S = 0.01
_CHIMES_HZ: dict[str, tuple[float, ...]] = {
    "ding": (880.0,),
    "start": (660.0, 990.0),
    "done": (523.25, 659.25, 783.99),
    "pause": (440.0,),
}
"""Partials of each chime; several partials sound one after another within the chime."""
_WAIT_MARGIN_S = 5.0
"""How much longer than a buffer's duration the speaker may take before it counts as stalled."""


class AudioOutput(Protocol):
    """What the narrator plays through (voicecoach.audio.Speaker, or a fake)."""

    sample_rate: int

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        """Start playing a buffer."""
        ...

    def wait(self, timeout_s: float | None = None) -> bool:
        """True when it played to its end, False when aborted."""
        ...

    def abort(self) -> None:
        """Silence now."""
        ...


class PlaybackObserver(Protocol):
    """Told what the narrator sounded and when (the listening pipeline's own-voice filter is one)."""

    def record(self, start_s: float, text: str, words: tuple[WordTiming, ...], duration_s: float) -> None:
        """An utterance started playing at start_s (time.monotonic()), with its word timings."""
        ...

    def cut(self, at_s: float) -> None:
        """Whatever was playing stopped at at_s."""
        ...


def chime_samples(name: str, sample_rate: int) -> np.ndarray:
    """A soft ~120 ms chime (sine partials in sequence, faded in and out) as int16 mono."""
    if name not in _CHIMES_HZ:
        raise ValueError(f"unknown chime {name!r}; known: {', '.join(_CHIMES_HZ)}")
    partials = _CHIMES_HZ[name]
    part_frames = round(_CHIME_S * sample_rate / len(partials))
    fade = np.sin(np.linspace(0.0, np.pi / 2, round(_CHIME_FADE_S * sample_rate))) ** 2
    pieces = []
    for frequency_hz in partials:
        piece = np.sin(2 * np.pi * frequency_hz * np.arange(part_frames) / sample_rate)
        piece[: len(fade)] *= fade
        piece[len(piece) - len(fade) :] *= fade[::-1]
        pieces.append(piece)
    return np.round(np.concatenate(pieces) * _CHIME_PEAK * 32767).astype(np.int16)


@dataclass(frozen=True)
class _Item:
    """One queued sound."""

    generation: int
    """The stop() count when it was queued; items from before the latest stop() are dropped."""
    utterance_id: int | None
    """None for chimes."""
    text: str = ""
    cacheable: bool = False
    chime: str | None = None


class SoundNarrator:
    """Synthesizes and plays utterances in order on one worker thread; stop() cuts them off at once.

    Given a PlaybackObserver, it tells it every utterance it plays, with its word timings, on the time.monotonic()
    timeline, starting when play() returned (within a few ms of the DAC time the speaker logs for the first sample).
    The lock guards only the queue counters, never a device call: stop() never waits behind play() (which may be
    reopening a replugged device).
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        speaker: AudioOutput,
        on_finished: Callable[[int], None],
        on_error: Callable[[str], None] | None = None,
        observer: PlaybackObserver | None = None,
    ) -> None:
        self._cache = synthesizer if isinstance(synthesizer, CachedSynthesizer) else CachedSynthesizer(synthesizer)
        self._plain: Synthesizer = self._cache.inner
        self._speaker = speaker
        self._on_finished = on_finished
        self._on_error = on_error
        self._observer = observer
        self._lock = threading.Lock()
        self._generation = 0
        self._pending = 0
        """Items queued since the last stop() and not yet done."""
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="narrator", daemon=True)
        self._worker.start()

    def say(self, utterance_id: int, text: str, cacheable: bool = False) -> None:
        """Queue an utterance (returns at once); cacheable phrases are synthesized once."""
        self._enqueue(utterance_id, text=text, cacheable=cacheable)

    def chime(self, name: str = "ding") -> None:
        """Queue a short soft tone (one of 'ding', 'start', 'done', 'pause')."""
        if name not in _CHIMES_HZ:
            raise ValueError(f"unknown chime {name!r}; known: {', '.join(_CHIMES_HZ)}")
        self._enqueue(None, chime=name)

    def stop(self) -> None:
        """Silence now and drop everything queued; none of it reports on_finished."""
        with self._lock:
            self._generation += 1
            self._pending = 0
        self._speaker.abort()
        if self._observer is not None:
            self._observer.cut(time.monotonic())

    def fade(self, gain_db: float) -> None:
        """Play on at gain_db (0 dB: full level again); the next utterance starts at full level. Never waits."""
        fade = getattr(self._speaker, "fade", None)
        if callable(fade):
            fade(gain_db)

    def turn_down(self, step_db: float) -> None:
        """Play quieter by step_db from now on, the utterance playing now included (the microphone clipped on the
        narrator's voice: see voicecoach.echo.clipping). Never waits."""
        turn_down = getattr(self._speaker, "turn_down", None)
        if callable(turn_down):
            turn_down(step_db)

    def idle(self) -> bool:
        """True when nothing is playing or queued."""
        with self._lock:
            return self._pending == 0

    def close(self) -> None:
        """Stop, end the worker and wait for it."""
        self.stop()
        self._queue.put(None)
        self._worker.join(timeout=5.0)

    def _enqueue(
        self, utterance_id: int | None, text: str = "", cacheable: bool = False, chime: str | None = None
    ) -> None:
        """Queue an item, stamped with the current generation."""
        with self._lock:
            self._pending += 1
            self._queue.put(_Item(self._generation, utterance_id, text, cacheable, chime))

    def _run(self) -> None:
        """Worker: play queued items in order until close()."""
        while (item := self._queue.get()) is not None:
            finished = False
            try:
                finished = self._perform(item)
            except (AudioDeviceError, TtsError) as exc:
                _LOGGER.error("narrator: %s", exc)
                self._report(str(exc))
            except Exception:
                _LOGGER.exception("narrator: unexpected error")
                self._report("narrator failed; see the log")
            with self._lock:
                current = item.generation == self._generation
                if current:
                    self._pending -= 1
            if finished and current and item.utterance_id is not None:
                self._call_on_finished(item.utterance_id)

    def _perform(self, item: _Item) -> bool:
        """Synthesize, play and wait for one item unless a stop() came first; True if it played to its end."""
        if item.generation != self._generation:
            return False
        speech, rate = self._render(item)
        duration_s = len(speech.samples) / rate
        if item.generation != self._generation:
            return False
        self._speaker.play(speech.samples, rate)
        if item.generation != self._generation:  # stop() came while play() was starting (or reopening) the device
            self._speaker.abort()
            return False
        if self._observer is not None and item.chime is None:
            self._observer.record(time.monotonic(), item.text, speech.words, duration_s)
        finished = self._speaker.wait(duration_s + _WAIT_MARGIN_S)
        if not finished and self._observer is not None:
            self._observer.cut(time.monotonic())  # stop() already cut it, unless the speaker aborted by itself
        return finished

    def _call_on_finished(self, utterance_id: int) -> None:
        """Report a finished utterance; a failing callback is logged, never kills the worker."""
        try:
            self._on_finished(utterance_id)
        except Exception:
            _LOGGER.exception("narrator: on_finished(%d) failed", utterance_id)

    def _render(self, item: _Item) -> tuple[Speech, int]:
        """The sound of an item (with word timings where the synthesizer gives them) and its rate."""
        if item.chime is not None:
            return Speech(chime_samples(item.chime, self._speaker.sample_rate)), self._speaker.sample_rate
        if item.cacheable:
            return self._cache.synthesize_words(item.text), self._cache.sample_rate
        return speech_for(self._plain, item.text), self._plain.sample_rate

    def _report(self, message: str) -> None:
        """Pass a problem to on_error, if given."""
        if self._on_error is not None:
            self._on_error(message)


class RecordingNarrator:
    """A fake narrator for tests and dry runs: records calls; utterances finish when told (or at once)."""

    def __init__(self, on_finished: Callable[[int], None], finish_immediately: bool = False) -> None:
        self.on_finished = on_finished
        self.finish_immediately = finish_immediately
        self.calls: list[Say | Chime | StopSpeech] = []
        """Every call, as the action it carries out, in order."""
        self.pending: list[int] = []
        """Utterance ids said and not yet finished or stopped, oldest first."""

    @property
    def spoken(self) -> list[str]:
        """The texts said, in order."""
        return [call.text for call in self.calls if isinstance(call, Say)]

    def say(self, utterance_id: int, text: str, cacheable: bool = False) -> None:
        """Record; finish at once if so configured."""
        self.calls.append(Say(utterance_id, text, cacheable))
        self.pending.append(utterance_id)
        if self.finish_immediately:
            self.finish(utterance_id)

    def chime(self, name: str = "ding") -> None:
        """Record."""
        self.calls.append(Chime(name))

    def stop(self) -> None:
        """Record and forget the pending utterances."""
        self.calls.append(StopSpeech())
        self.pending.clear()

    def finish(self, utterance_id: int | None = None) -> None:
        """Finish the oldest pending utterance (or the given one) and report it."""
        if not self.pending:
            raise ValueError("no utterance is pending")
        chosen = self.pending[0] if utterance_id is None else utterance_id
        self.pending.remove(chosen)
        self.on_finished(chosen)

    def idle(self) -> bool:
        """True when no utterance is pending."""
        return not self.pending

    def close(self) -> None:
        """Nothing to release."""
