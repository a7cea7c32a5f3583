"""The keyword spotter behind the recognizer protocol: each detection is a final hypothesis of its phrase."""

from __future__ import annotations

import numpy as np

from voicecoach.core.commands import Vocabulary
from voicecoach.listening.recognizer import Hypothesis, RecognizerError

SAMPLE_RATE = 16000
_FLUSH_S = 1.0
"""Digital silence fed after the last sample at the end of input, as a microphone would go on hearing the room:
the head decides a word over the frames after it ends (median one 80 ms frame, p95 six, and some commands need two
or three in a row), so a recording that ends with the word needs them. On Speech Commands' one-second clips, which
often end within 100 ms of the word, 0.5 s of it already gave every detection 2.0 s gave (MODEL.md)."""


class SpotterRecognizer:
    """The trained spotter (listening/spotter) as an engine: final hypotheses of the command phrases it heard."""

    name = "spotter"
    sample_rate = SAMPLE_RATE
    hears_words = False
    """Its hypotheses name the command (its first phrase), not the words said: the own-voice filter takes every
    phrase of the command the narrator said as its echo."""
    noise_floor_dbfs = -70.0
    """The listening pipeline lays seeded white noise at this level (about a cheap USB microphone's own noise) under
    every block before the spotter hears it. A real microphone never gives digital silence, nor the narrator's echo
    residue 60 dB down with nothing beside it; the spotter trained mostly on noisy audio, and its mel front end,
    whose log floor follows the loudest frame, hears such residue as speech. Live through the virtual devices
    (whose microphone is exactly 0 between the narrator's lines) the main head's too much fired twice in each of two
    5-minute runs of the routine (scripts/bench_stop_latency.py --narration-only 300 --echo-db 0), all four times
    within 400 ms of such silence, on the residue of a line's first words. Scored again offline, 35 minutes of live
    cleaned signal (four runs) fired 12 false commands bare (9 too much, 2 stop, a repeat), 5 with this floor (3 too
    much, a stop, a repeat; four in a run's first 15 s while the canceller removed only 32-40 dB). On 15 of those
    minutes: a repeat with each of 3 seeds at -90 dBFS, 0-2 at -80, none at -70, 0-1 at -60; a floor
    following the echo's level was worse (docs/eval/room-eval.md). Under speech at -26 dBFS it is 44 dB down.
    PocketSphinx and Vosk ask for none (PocketSphinx heard words in it)."""

    def __init__(self, vocabulary: Vocabulary, head: object | None = None, safety_head: object | None = None) -> None:
        """head: a head file (default: the packaged one). safety_head: the second stop/too-much detector's file
        (default: the packaged one with the packaged head, none with another head)."""
        from voicecoach.listening.spotter.model import (
            SpotterModel,
            SpotterModelError,
            StreamingSpotter,
            load_safety_head,
        )

        if vocabulary.language != "en":
            raise RecognizerError(f"the spotter is trained for English; for {vocabulary.language!r} use --engine vosk")
        try:
            model = SpotterModel.load(head)  # type: ignore[arg-type]
            second = load_safety_head(safety_head) if head is None or safety_head is not None else None  # type: ignore[arg-type]
            self._spotter = StreamingSpotter(model, safety_head=second)
            self.safety_head = second
        except (SpotterModelError, OSError) as exc:
            raise RecognizerError(f"the keyword spotter cannot load: {exc}") from None
        self.model = model

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        """Feed int16 PCM; a final hypothesis per detection."""
        samples = np.frombuffer(pcm, dtype="<i2")
        return [Hypothesis(d.phrase, final=True, end_s=d.end_s, confidence=d.score)
                for d in self._spotter.accept(samples)]  # fmt: skip

    def flush(self) -> list[Hypothesis]:
        """End of input: the decision over the last word, completed on a second of silence (see _FLUSH_S); then the
        spotter starts again from silence."""
        hyps = self.accept(np.zeros(int(_FLUSH_S * SAMPLE_RATE), dtype="<i2").tobytes())
        self._spotter.reset()
        return hyps

    def reset(self) -> None:
        """Start again from silence."""
        self._spotter.reset()

    def set_floors(self, other: float, safety: float = 0.0) -> None:
        """From now on a detection needs a score of at least `other` (commands but stop and too much) or `safety`
        (those two), as well as its own threshold: the frame that reaches it fires, not the first over the
        threshold."""
        self._spotter.set_floors(other, safety)

    def scores(self) -> dict[str, float]:
        """The latest per-command scores (for yielding the floor on a rising safety score)."""
        return self._spotter.scores()
