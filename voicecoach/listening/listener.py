"""From recognizer hypotheses to CommandHeard: the spotting rules, the listener thread, and a WAV-file run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from voicecoach.core.commands import Match, Vocabulary, normalize
from voicecoach.core.events import Command, CommandHeard
from voicecoach.listening.recognizer import Hypothesis, Recognizer
from voicecoach.audio.wavfile import read_wav, resample

_LOGGER = logging.getLogger(__name__)

_FILLERS = frozenset({"unk", "noise", "speech", "sil", "laugh", "cough", "breath"})
"""Words (after normalize) that engines use for non-words: '[unk]', '<unk>', '[noise]' ..."""


@dataclass(frozen=True)
class SpotterSettings:
    """When hypotheses become commands."""

    stable_partials: int = 2
    """Consecutive partials that must name the same one-word safety command."""
    stable_partials_multiword: int = 1
    """The same for a safety phrase of two or more words (harder to hit by chance)."""
    min_coverage: float = 0.5
    """Share of an utterance's real words that the command phrase must cover, for non-safety commands."""
    max_unknown: int = 2
    """Runs of unknown speech ('[unk]') an utterance may hold and still be a non-safety command."""


class CommandSpotter:
    """Decides which hypotheses are commands: safety ones from stable partials, others from short finals."""

    def __init__(self, vocabulary: Vocabulary, settings: SpotterSettings | None = None) -> None:
        self.vocabulary = vocabulary
        self.settings = settings or SpotterSettings()
        self._run_command: Command | None = None
        self._run_length = 0
        self._fired = False

    def reset(self) -> None:
        """Forget the current utterance."""
        self._run_command, self._run_length, self._fired = None, 0, False

    def feed(self, hyp: Hypothesis) -> list[CommandHeard]:
        """One hypothesis in; the commands it completes (at most one)."""
        heard = self._final(hyp) if hyp.final else self._partial(hyp)
        if hyp.final:
            self.reset()
        return [heard] if heard is not None else []

    def _partial(self, hyp: Hypothesis) -> CommandHeard | None:
        """A safety command that has stayed put for enough partials, once per utterance."""
        match = self._safety_match(hyp.text)
        command = match.command if match else None
        self._run_length = self._run_length + 1 if command is not None and command == self._run_command else 1
        self._run_command = command
        if match is None or self._fired:
            return None
        multiword = len(match.phrase.split()) > 1
        needed = self.settings.stable_partials_multiword if multiword else self.settings.stable_partials
        if self._run_length < needed:
            return None
        self._fired = True
        return _heard(match, hyp)

    def _final(self, hyp: Hypothesis) -> CommandHeard | None:
        """A safety command the partials missed, or a non-safety command that is most of the utterance."""
        if self._fired:
            return None
        safety = self._safety_match(hyp.text)
        if safety is not None:
            return _heard(safety, hyp)
        match = self.vocabulary.match(hyp.text)
        if match is None or not self._is_mostly_command(hyp.text, match):
            return None
        return _heard(match, hyp)

    def _safety_match(self, text: str) -> Match | None:
        """The first safety phrase in the text."""
        return next((m for m in self.vocabulary.find_all(text) if m.command.is_safety), None)

    def _is_mostly_command(self, text: str, match: Match) -> bool:
        """True when the utterance is essentially the command (a command word inside a sentence is not)."""
        words = normalize(text)
        real = [w for w in words if w not in _FILLERS]
        unknown_runs = sum(1 for i, w in enumerate(words) if w == "unk" and (i == 0 or words[i - 1] != "unk"))
        if not real or unknown_runs > self.settings.max_unknown:
            return False
        return len(match.phrase.split()) / len(real) >= self.settings.min_coverage


def _heard(match: Match, hyp: Hypothesis) -> CommandHeard:
    """The event for a match in a hypothesis."""
    return CommandHeard(match.command, hyp.text, hyp.confidence, hyp.end_s)


class AudioSource(Protocol):
    """Where PCM blocks come from (a microphone queue, a WAV-file microphone)."""

    def read(self, timeout: float) -> bytes | None:
        """The next block of little-endian int16 mono PCM, or None if none came within timeout seconds."""
        ...


class Listener:
    """A thread: audio source -> recognizer -> spotter -> on_command."""

    def __init__(
        self,
        source: AudioSource,
        recognizer: Recognizer,
        vocabulary: Vocabulary,
        on_command: Callable[[CommandHeard], None],
        settings: SpotterSettings | None = None,
        read_timeout_s: float = 0.1,
    ) -> None:
        self._source = source
        self._recognizer = recognizer
        self._spotter = CommandSpotter(vocabulary, settings)
        self._on_command = on_command
        self._read_timeout_s = read_timeout_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voicecoach-listener", daemon=True)
        self.errors = 0
        """Errors caught and logged so far."""

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to end and wait for it."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread.is_alive()

    def _run(self) -> None:
        """Read, recognize, spot, report; log and carry on after any error."""
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception:
                self.errors += 1
                _LOGGER.exception("Listener error (carrying on)")
                self._stopping.wait(0.05)

    def _step(self) -> None:
        """One block through the chain."""
        block = self._source.read(self._read_timeout_s)
        if not block:
            return
        for hyp in self._recognizer.accept(block):
            for heard in self._spotter.feed(hyp):
                self._report(heard)

    def _report(self, heard: CommandHeard) -> None:
        """Hand a command on; a failing callback is logged and does not lose the rest of the block."""
        _LOGGER.info("Heard %s (%r at %.2f s)", heard.command.value, heard.text, heard.audio_time_s or 0.0)
        try:
            self._on_command(heard)
        except Exception:
            self.errors += 1
            _LOGGER.exception("on_command failed for %s (carrying on)", heard.command.value)


@dataclass(frozen=True)
class SpotResult:
    """What a run over recorded audio found, and how fast."""

    commands: tuple[CommandHeard, ...]
    hypotheses: tuple[Hypothesis, ...]
    audio_s: float
    """Seconds of audio."""
    cpu_s: float
    """Seconds of this thread's CPU time spent recognizing."""

    @property
    def real_time_factor(self) -> float:
        """CPU seconds per audio second."""
        return self.cpu_s / self.audio_s if self.audio_s else 0.0


def spot_samples(
    samples: np.ndarray,
    rate: int,
    recognizer: Recognizer,
    vocabulary: Vocabulary,
    block_ms: int = 20,
    settings: SpotterSettings | None = None,
) -> SpotResult:
    """Run mono int16 samples through the recognizer and spotter, as fast as the CPU allows."""
    pcm = resample(samples, rate, recognizer.sample_rate).astype("<i2").tobytes()
    block = max(2, int(recognizer.sample_rate * block_ms / 1000) * 2)
    spotter = CommandSpotter(vocabulary, settings)
    recognizer.reset()
    hyps: list[Hypothesis] = []
    start = time.thread_time()
    for offset in range(0, len(pcm), block):
        hyps.extend(recognizer.accept(pcm[offset : offset + block]))
    hyps.extend(recognizer.flush())
    cpu_s = time.thread_time() - start
    commands = [heard for hyp in hyps for heard in spotter.feed(hyp)]
    return SpotResult(tuple(commands), tuple(hyps), len(pcm) / 2 / recognizer.sample_rate, cpu_s)


def spot_file(
    path: str | Path,
    recognizer: Recognizer,
    vocabulary: Vocabulary,
    block_ms: int = 20,
    settings: SpotterSettings | None = None,
) -> SpotResult:
    """Run a WAV file (any rate, resampled) through the recognizer and spotter faster than real time."""
    samples, rate = read_wav(path)
    return spot_samples(samples, rate, recognizer, vocabulary, block_ms, settings)
