"""The recognizer boundary: 16-bit mono PCM in, hypotheses out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RecognizerError(RuntimeError):
    """An engine or its model could not be used (one clear line for the user)."""


@dataclass(frozen=True)
class Hypothesis:
    """What the engine thinks was said so far (partial) or in a finished utterance (final)."""

    text: str
    """Words, lowercase, as the engine spelled them (may include '[unk]' style fillers)."""
    final: bool
    """True once the engine has endpointed the utterance."""
    end_s: float
    """Seconds of audio fed so far, when this hypothesis was produced."""
    confidence: float = 1.0
    """0 to 1, where the engine gives one."""


class Recognizer(Protocol):
    """A speech engine restricted to a command vocabulary."""

    name: str
    sample_rate: int
    """Hz of the PCM that accept() takes."""

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        """Feed little-endian int16 mono PCM; return any new hypotheses (partials and finals)."""
        ...

    def flush(self) -> list[Hypothesis]:
        """End of input: return the final hypothesis for audio still pending."""
        ...

    def reset(self) -> None:
        """Forget the current utterance (keep adaptation such as cepstral mean)."""
        ...
