"""The echo-cancelled microphone signal: each block lined up with what the speaker played, the echo taken out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from voicecoach.echo.aligner import AlignerSettings, PlayedAudio, ReferenceAligner
from voicecoach.echo.near_end import NearEndDetector, NearEndSettings
from voicecoach.echo.speex import EchoCancellerUnavailable, EchoSettings, PassThroughEchoCanceller, SpeexEchoCanceller

_LOGGER = logging.getLogger(__name__)

_DIVERGED_BLOCKS = 50
"""Consecutive blocks in which cancelling added energy before the echo canceller is reset (50 x 20 ms)."""


class EchoRemover:
    """Takes the narrator's own playback out of microphone blocks (the speaker's playback log is the reference)."""

    def __init__(self, sample_rate: int = 16000, enabled: bool = True, near_end: NearEndSettings | None = None) -> None:
        self._aligner = ReferenceAligner(AlignerSettings(sample_rate=sample_rate))
        self._near_end = NearEndDetector(near_end) if near_end is not None else None
        self.near_end = False
        """The last block carried sound the echo does not explain: the person speaking over the narrator (only
        watched when near_end settings are given)."""
        self._canceller: Any = PassThroughEchoCanceller()
        self._louder_blocks = 0
        self.resets = 0
        """Times the canceller diverged and was reset."""
        if enabled:
            try:
                self._canceller = SpeexEchoCanceller(EchoSettings(sample_rate=sample_rate, residual_suppression=False))
            except EchoCancellerUnavailable as exc:
                _LOGGER.warning("echo cancellation off: %s", exc)

    @property
    def delay_s(self) -> float:
        """The acoustic delay the aligner estimated so far."""
        return self._aligner.delay_s

    def clean(self, pcm: np.ndarray, capture_s: float, played: Iterable[PlayedAudio]) -> np.ndarray:
        """One int16 block captured at capture_s (time.monotonic() timeline), with the played audio's echo removed."""
        self._aligner.sync(played)
        reference = self._aligner.align(pcm, capture_s)
        cleaned = self._do_no_harm(pcm, np.asarray(self._canceller.process(pcm, reference), dtype=np.int16))
        if self._near_end is not None and len(cleaned):
            power = float(np.mean(cleaned.astype(np.float64) ** 2))
            self.near_end = self._near_end.update(power, float(np.mean(reference.astype(np.float64) ** 2)))
        return cleaned

    def _do_no_harm(self, pcm: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
        """The cleaned block, unless cancelling made it louder: then the filter is wrong (no echo path, or it
        adapted during double talk) and would add phantom narration; pass the microphone through, and reset
        the filter once that has lasted a while."""
        before = float(np.dot(pcm.astype(np.float64), pcm))
        after = float(np.dot(cleaned.astype(np.float64), cleaned))
        if after <= before:
            self._louder_blocks = 0
            return cleaned
        self._louder_blocks += 1
        if self._louder_blocks >= _DIVERGED_BLOCKS:
            _LOGGER.info("echo canceller diverged: reset")
            self._canceller.reset()
            if self._near_end is not None:
                self._near_end.reset()
            self._louder_blocks = 0
            self.resets += 1
        return pcm
