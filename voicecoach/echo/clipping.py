"""Is the narrator's own voice clipping the microphone? Then it must play quieter.

The echo canceller models the way from speaker to microphone as linear. When the narrator is loud at the
microphone (a speaker turned up, or standing close to it) the microphone's converter saturates on the voice's
peaks, and what it records is no longer a filtered copy of the reference: the canceller cannot remove the clipped
part, and its residue is loud, broadband and shaped like the narrator's words. In the closed-loop room at +6 dB echo
under a loud person (active speech at -15.7 dBFS, so the narrator's peaks pass full scale) the spotter heard 997
false stops and too much over the lower-back routine (each resume read the line again, and its clipped residue
fired again), the microphone clipping 936,000 samples; with this guard, 408 samples and none
(docs/eval/room-eval.md).

A person cannot hear that the microphone clips, and should not have to find the volume that avoids it, so the
guard does: samples at full scale in several blocks, spread over half a second or more, while the narrator plays,
turn it down one step. It stays down for the session (coming back up would clip again), and never more than a few
steps.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

CLIPPED = 32700
"""An int16 sample at or beyond this magnitude counts as clipped (full scale is 32767; some converters saturate a
little short of it)."""


@dataclass(frozen=True)
class ClipGuardSettings:
    """When clipping over the narration turns the narrator down, and by how much."""

    blocks: int = 3
    """Blocks with a clipped sample, while the narrator plays (one block can be a knock on the floor or a click)...
    """
    window_s: float = 2.0
    """...within this many seconds..."""
    min_span_s: float = 0.5
    """...from the first of them to the last at least this long, turn it down one step. A voice's peaks clip
    syllable after syllable; a person's loud word clips in a run of blocks (in the room at 0 dB echo one person's
    word clipped three blocks in a row, 60 ms, and without this it turned the narrator down)."""
    step_db: float = 3.0
    """One step. eSpeak-NG's peaks stand about 18 dB over its active speech level; a few steps bring them under full
    scale wherever the voice clipped only on its peaks."""
    max_down_db: float = 12.0
    """The narrator is never turned down more than this (it must stay clear to a person on the floor)."""
    hold_s: float = 1.0
    """After a step, clipping is not counted for this long: the quieter voice needs the speaker's and the
    microphone's latency to reach the microphone."""


class ClipGuard:
    """Counts clipped microphone blocks while the narrator plays; says when to turn it down."""

    def __init__(self, settings: ClipGuardSettings | None = None) -> None:
        self.settings = settings or ClipGuardSettings()
        self.down_db = 0.0
        """How far it has asked for the narrator to be turned down so far, dB."""
        self.clipped_samples = 0
        """Clipped samples seen while the narrator played (for the run's counters)."""
        self._clipped_at: collections.deque[float] = collections.deque()
        self._hold_until_s = float("-inf")

    def feed(self, pcm: np.ndarray, now_s: float, narrating: bool) -> bool:
        """One int16 microphone block ending at now_s; True if the narrator should be turned down one step now."""
        if not narrating:
            return False
        clipped = int(np.count_nonzero(np.abs(np.asarray(pcm, dtype=np.int32)) >= CLIPPED))
        if clipped == 0:
            return False
        self.clipped_samples += clipped
        s = self.settings
        if now_s < self._hold_until_s or self.down_db + s.step_db > s.max_down_db + 1e-9:
            return False
        self._clipped_at.append(now_s)
        while self._clipped_at and self._clipped_at[0] <= now_s - s.window_s:
            self._clipped_at.popleft()
        if len(self._clipped_at) < s.blocks or now_s - self._clipped_at[0] < s.min_span_s - 1e-9:
            return False
        self._clipped_at.clear()
        self._hold_until_s = now_s + s.hold_s
        self.down_db += s.step_db
        return True
