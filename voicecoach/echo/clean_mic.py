"""The echo-cancelled microphone signal: each block lined up with what the speaker played, the echo taken out."""

from __future__ import annotations

import collections
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
_SETTLED_DB = 20.0
"""Echo removed over the last second of playback at which the canceller counts as settled (it removes 20 to 45 dB
once it has learned the room; about nothing before the delay is known, about 10 dB in its first seconds). At 10 dB,
live, two of 30 trials were still stopped by the narrator's residue after it counted as settled; at 20, none."""
_SETTLE_WINDOW_BLOCKS = 50
"""Blocks with playback over which the echo removed is measured (50 x 20 ms)."""
_SETTLE_MAX_BLOCKS = 750
"""Blocks with playback after which the canceller counts as settled whatever it removes (15 s of narration at 20 ms
blocks): a room it cannot cancel that well must not keep the start-up caution on for long."""
_PLAYBACK_FLOOR = (32768 * 10 ** (-50 / 20)) ** 2
"""Mean square of a reference block below which nothing is playing (-50 dBFS)."""
_NO_ECHO_POWER = (32768 * 10 ** (-60 / 20)) ** 2
"""Mean square of the microphone over the settling window of playback below which no echo reaches it (-60 dBFS, a
quiet USB microphone's own noise): nothing to learn, and nothing of the narrator for the spotter to hear, so the
canceller counts as settled at once. Without it a microphone that does not hear the speaker (headphones, a virtual
device) kept the start-up caution for the whole 15 s, and a person's stop needed 0.9 all that time."""


class EchoRemover:
    """Takes the narrator's own playback out of microphone blocks (the speaker's playback log is the reference)."""

    def __init__(self, sample_rate: int = 16000, enabled: bool = True, near_end: NearEndSettings | None = None) -> None:
        self._aligner = ReferenceAligner(AlignerSettings(sample_rate=sample_rate))
        self._near_end = NearEndDetector(near_end) if near_end is not None else None
        self.near_end = False
        """The last block carried sound the echo does not explain: the person speaking over the narrator (only
        watched when near_end settings are given)."""
        self._canceller: Any = PassThroughEchoCanceller()
        self._enabled = False
        self._energies: collections.deque[tuple[float, float]] = collections.deque(maxlen=_SETTLE_WINDOW_BLOCKS)
        self._playback_blocks = 0
        self._settled = False
        self._louder_blocks = 0
        self.resets = 0
        """Times the canceller diverged and was reset."""
        if enabled:
            try:
                self._canceller = SpeexEchoCanceller(EchoSettings(sample_rate=sample_rate, residual_suppression=False))
                self._enabled = True
            except EchoCancellerUnavailable as exc:
                _LOGGER.warning("echo cancellation off: %s", exc)

    @property
    def delay_s(self) -> float:
        """The acoustic delay the aligner estimated so far."""
        return self._aligner.delay_s

    @property
    def settled(self) -> bool:
        """The canceller has learned the echo path: it removed _SETTLED_DB over the last second of playback, or the
        microphone heard no echo in that second (under _NO_ECHO_POWER), or it has heard _SETTLE_MAX_BLOCKS of
        playback since it started or was reset. Always true when it is off (nothing
        to wait for: no canceller, or the audio server's own)."""
        return self._settled or not self._enabled

    def clean(self, pcm: np.ndarray, capture_s: float, played: Iterable[PlayedAudio]) -> np.ndarray:
        """One int16 block captured at capture_s (time.monotonic() timeline), with the played audio's echo removed."""
        self._aligner.sync(played)
        reference = self._aligner.align(pcm, capture_s)
        cleaned = self._do_no_harm(pcm, np.asarray(self._canceller.process(pcm, reference), dtype=np.int16))
        if not self._settled and len(reference):
            self._watch_settling(pcm, reference, cleaned)
        if self._near_end is not None and len(cleaned):
            power = float(np.mean(cleaned.astype(np.float64) ** 2))
            self.near_end = self._near_end.update(power, float(np.mean(reference.astype(np.float64) ** 2)))
        return cleaned

    def _watch_settling(self, pcm: np.ndarray, reference: np.ndarray, cleaned: np.ndarray) -> None:
        if float(np.mean(reference.astype(np.float64) ** 2)) < _PLAYBACK_FLOOR:
            return
        self._playback_blocks += 1
        self._energies.append((float(np.dot(pcm.astype(np.float64), pcm)),
                               float(np.dot(cleaned.astype(np.float64), cleaned))))  # fmt: skip
        mic, left = (sum(pair) for pair in zip(*self._energies, strict=True))
        removed_db = 10 * np.log10((mic + 1.0) / (left + 1.0))
        full = len(self._energies) == _SETTLE_WINDOW_BLOCKS
        no_echo = full and mic / (_SETTLE_WINDOW_BLOCKS * len(pcm)) < _NO_ECHO_POWER
        if (full and (removed_db >= _SETTLED_DB or no_echo)) or self._playback_blocks >= _SETTLE_MAX_BLOCKS:
            self._settled = True
            _LOGGER.debug("echo canceller settled after %d blocks of playback (%.1f dB removed%s)",
                          self._playback_blocks, removed_db, "; no echo reaches the microphone" if no_echo else "")

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
            self._settled, self._playback_blocks = False, 0
            self._energies.clear()
        return pcm
