"""The echo-cancelled microphone signal: each block lined up with what the speaker played, the echo taken out."""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from voicecoach.echo.aligner import AlignerSettings, PlayedAudio, ReferenceAligner, played_within
from voicecoach.echo.near_end import NearEndDetector, NearEndSettings
from voicecoach.echo.speex import EchoCancellerUnavailable, EchoSettings, PassThroughEchoCanceller, SpeexEchoCanceller

_LOGGER = logging.getLogger(__name__)

_DIVERGED_BLOCKS = 50
"""Consecutive blocks in which cancelling added energy before the echo canceller is reset (50 x 20 ms)."""
_SETTLE_WINDOW_BLOCKS = 50
"""Blocks with playback over which what the canceller leaves is measured (50 x 20 ms)."""
_SETTLE_MAX_BLOCKS = 750
"""Blocks with playback after which the canceller counts as settled whatever it removes (15 s of narration at 20 ms
blocks): a room it cannot cancel that well must not keep the start-up caution on for long."""
_PLAYBACK_FLOOR = (32768 * 10 ** (-50 / 20)) ** 2
"""Mean square of a reference block below which nothing is playing (-50 dBFS)."""
_NO_ECHO_POWER = (32768 * 10 ** (-60 / 20)) ** 2
"""-60 dBFS, a quiet USB microphone's own noise, as a mean square. A microphone under it over the settling window of
playback hears no echo: nothing to learn, and nothing of the narrator for the spotter to hear, so the canceller
counts as settled at once (what it leaves is no louder). Without that, a microphone that does not hear the speaker
(headphones, a virtual device) kept the start-up caution for the whole 15 s, and a person's stop needed 0.9 all
that time."""
_QUIET_POWER = _NO_ECHO_POWER
"""Mean square of what the canceller left over the settling window of playback under which it counts as settled: no
louder than a quiet USB microphone's own noise (-60 dBFS), or than 6 dB over this room's own noise (measured between
the narrator's lines, see _BACKGROUND_BLOCKS) if that is louder. Until then the spotter hears more of the narrator
than it was trained on. This replaced "20 dB removed" (2026-12-07): live on the virtual devices at 0 dB echo that
came after 4 s of narration, with the residue still at -38 dBFS; the residue then came down a few dB a second to
-60 at about 15 s, and the spotter's false too much and repeat (0.59 to 0.96) came at 9 to 15 s over residue at -48
to -60 dBFS. And in a noisy room no canceller removes 20 dB of an echo less than 20 dB over the noise, so there it
had always waited for the cap; now it waits until the residue is lost in the room's noise. A microphone that hears
no echo (under -60 dBFS: headphones, a virtual device) is quiet at once."""
_BACKGROUND_BLOCKS = 250
"""Microphone blocks with nothing playing whose quietest tenth is taken as the room's own noise (the last 5 s of
them; the quietest tenth leaves out the narrator's echo tail just after a line)."""
_BACKGROUND_AFTER_S = 1.0
"""A block counts as the room alone only when nothing was played from this long before it until it was captured,
by the playback log's own times: the narrator's echo lasts a little beyond its reference, and the aligned reference
is not to be trusted for this before the delay is known (live, a first version that took blocks whose aligned
reference was silent took -24 dBFS of echo for the room's noise)."""
_BACKGROUND_MIN_BLOCKS = 25
"""Blocks of the room alone (0.5 s) before its noise is trusted; until then only -60 dBFS counts as quiet."""


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
        self._background: collections.deque[float] = collections.deque(maxlen=_BACKGROUND_BLOCKS)
        """Mean squares of recent microphone blocks with nothing playing (the room's own noise)."""
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
        """The canceller has learned the echo path: what it left over the last second of playback is quiet
        (_QUIET_POWER: under a quiet microphone's own noise, or lost in the room's; a microphone that hears no echo
        at all is quiet at once), or it has heard _SETTLE_MAX_BLOCKS of
        playback since it started or was reset. Always true when it is off (nothing
        to wait for: no canceller, or the audio server's own)."""
        return self._settled or not self._enabled

    def clean(self, pcm: np.ndarray, capture_s: float, played: Iterable[PlayedAudio]) -> np.ndarray:
        """One int16 block captured at capture_s (time.monotonic() timeline), with the played audio's echo removed."""
        played = list(played)
        self._aligner.sync(played)
        reference = self._aligner.align(pcm, capture_s)
        cleaned = self._do_no_harm(pcm, np.asarray(self._canceller.process(pcm, reference), dtype=np.int16))
        if not self._settled:
            room_alone = not played_within(played, capture_s, _BACKGROUND_AFTER_S)
            self._watch_settling(pcm, reference, cleaned, room_alone)
        if self._near_end is not None and len(cleaned):
            power = float(np.mean(cleaned.astype(np.float64) ** 2))
            self.near_end = self._near_end.update(power, float(np.mean(reference.astype(np.float64) ** 2)))
        return cleaned

    def _watch_settling(self, pcm: np.ndarray, reference: np.ndarray, cleaned: np.ndarray, room_alone: bool) -> None:
        if room_alone:
            self._background.append(float(np.mean(pcm.astype(np.float64) ** 2)))
        if not len(reference) or float(np.mean(reference.astype(np.float64) ** 2)) < _PLAYBACK_FLOOR:
            return
        self._playback_blocks += 1
        self._energies.append((float(np.dot(pcm.astype(np.float64), pcm)),
                               float(np.dot(cleaned.astype(np.float64), cleaned))))  # fmt: skip
        mic, left = (sum(pair) for pair in zip(*self._energies, strict=True))
        full = len(self._energies) == _SETTLE_WINDOW_BLOCKS
        heard_room = len(self._background) >= _BACKGROUND_MIN_BLOCKS
        background = float(np.quantile(self._background, 0.1)) if heard_room else 0.0
        quiet = full and left / (_SETTLE_WINDOW_BLOCKS * len(pcm)) < max(_QUIET_POWER, 4.0 * background)
        if quiet or self._playback_blocks >= _SETTLE_MAX_BLOCKS:
            self._settled = True
            _LOGGER.debug("echo canceller settled after %d blocks of playback (%.1f dB removed, %.1f dBFS left; the "
                          "room's own noise %.1f dBFS)", self._playback_blocks,
                          10 * np.log10((mic + 1.0) / (left + 1.0)),
                          10 * np.log10(left / (_SETTLE_WINDOW_BLOCKS * len(pcm)) / 32768**2 + 1e-12),
                          10 * np.log10(background / 32768**2 + 1e-12))  # fmt: skip

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
