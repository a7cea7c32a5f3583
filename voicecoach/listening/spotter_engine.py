"""The keyword spotter behind the recognizer protocol: each detection is a final hypothesis of its phrase."""

from __future__ import annotations

import numpy as np

from voicecoach.core.commands import Vocabulary
from voicecoach.listening.recognizer import Hypothesis, RecognizerError

SAMPLE_RATE = 16000


class SpotterRecognizer:
    """The trained spotter (listening/spotter) as an engine: final hypotheses of the command phrases it heard."""

    name = "spotter"
    sample_rate = SAMPLE_RATE

    def __init__(self, vocabulary: Vocabulary, head: object | None = None) -> None:
        from voicecoach.listening.spotter.model import SpotterModel, SpotterModelError, StreamingSpotter

        if vocabulary.language != "en":
            raise RecognizerError(f"the spotter is trained for English; for {vocabulary.language!r} use --engine vosk")
        try:
            model = SpotterModel.load(head)  # type: ignore[arg-type]
            self._spotter = StreamingSpotter(model)
        except (SpotterModelError, OSError) as exc:
            raise RecognizerError(f"the keyword spotter cannot load: {exc}") from None
        self.model = model

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        """Feed int16 PCM; a final hypothesis per detection."""
        samples = np.frombuffer(pcm, dtype="<i2")
        return [Hypothesis(d.phrase, final=True, end_s=d.end_s, confidence=d.score)
                for d in self._spotter.accept(samples)]  # fmt: skip

    def flush(self) -> list[Hypothesis]:
        """Nothing is pending: every 80 ms frame is decided as it completes."""
        return []

    def reset(self) -> None:
        """Start again from silence."""
        self._spotter.reset()

    def scores(self) -> dict[str, float]:
        """The latest per-command scores (for yielding the floor on a rising safety score)."""
        return self._spotter.scores()
