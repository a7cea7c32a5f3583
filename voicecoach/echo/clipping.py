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
steps. The level a session ends at is remembered for its devices (voicecoach.store.levels), and the next session
starts one step louder than that: see first_step_db and ClipGuard.level_to_keep.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

CLIPPED = 32700
"""An int16 sample at or beyond this magnitude counts as clipped (full scale is 32767; some converters saturate a
little short of it)."""
SAMPLE_RATE = 16000
"""The rate of the blocks fed (the listening pipeline's)."""


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
    proof_s: float = 60.0
    """A session that started a step louder than the last one ended counts as proof that the louder level no longer
    clips only after this much narration without a step (a session stopped after a few seconds proves nothing)."""

    def first_step_db(self, remembered_db: float) -> float:
        """How far down a session starts when the last one on the same devices ended remembered_db down: one step
        louder (never below 0 dB, never past max_down_db)."""
        return min(self.max_down_db, max(0.0, remembered_db - self.step_db))


class ClipGuard:
    """Counts clipped microphone blocks while the narrator plays; says when to turn it down."""

    def __init__(self, settings: ClipGuardSettings | None = None) -> None:
        self.settings = settings or ClipGuardSettings()
        self.down_db = 0.0
        """How far it has asked for the narrator to be turned down so far, dB."""
        self.clipped_samples = 0
        """Clipped samples seen while the narrator played (for the run's counters)."""
        self.narrated_s = 0.0
        """Seconds of microphone blocks heard while the narrator played at the level it has now."""
        self._clipped_at: collections.deque[float] = collections.deque()
        self._hold_until_s = float("-inf")

    def feed(self, pcm: np.ndarray, now_s: float, narrating: bool) -> bool:
        """One int16 16 kHz microphone block ending at now_s; True if the narrator should be turned down a step now."""
        if not narrating:
            return False
        self.narrated_s += len(pcm) / SAMPLE_RATE
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
        self.narrated_s = 0.0
        return True

    def start_down(self, down_db: float) -> None:
        """The session starts down_db down (a remembered level; the narrator has been turned down by it)."""
        self.down_db = max(0.0, min(float(down_db), self.settings.max_down_db))

    def level_to_keep(self, remembered_db: float) -> float:
        """The level to remember for the next session: where this one ended, unless that is louder than
        remembered_db and the narrator has not played long enough at it (proof_s) to show it no longer clips."""
        if self.down_db < remembered_db and self.narrated_s < self.settings.proof_s:
            return remembered_db
        return self.down_db
