"""Is the person speaking over the narrator? Sound in the echo-cancelled signal that the echo does not explain.

After the canceller, what is left of the narrator is a fairly steady fraction of what was played (the residue);
the person's voice is not tied to the reference at all. So per block: the cleaned power is compared with what
the residue and the room's noise floor would give on their own, both learnt by minimum tracking (they follow a
quieter room or a better-converged filter at once, and a louder one only slowly, so a person's word cannot teach
the detector that speech is normal). A few loud blocks in a row mean near-end speech: the pipeline then fades the
narrator at once (yielding the floor) and decides on the word with the echo 25 dB down.

Evaluated, not on by default (YieldSettings.near_end): at 0 dB echo the canceller leaves too little room between
its residue and a person's word for an early, reliable call; see scripts/eval_near_end.py.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

# Mean squares are in int16 units. The reference counts as playing above _REFERENCE_ACTIVE (about -50 dBFS). The
# noise floor moves _FALL of the way down to a lower reading per block, rises at most _RISE_DB_PER_S, and never goes
# below _FLOOR_MIN (about -90 dBFS), so it can rise again from digital silence. The residue estimate is the _QUANTILE
# quantile of the residue-to-reference ratio, moved by steps of up to _STEP_DB a block (from the raw echo to 20 dB of
# cancellation in about 2 s); during a loud block it only creeps up by _CREEP_DB (a person's word: under 1 dB).
_REFERENCE_ACTIVE, _FLOOR_MIN = 1e4, 1.0
_FALL, _RISE_DB_PER_S, _BLOCK_S = 0.2, 1.0, 0.02
_QUANTILE, _STEP_DB, _CREEP_DB = 0.9, 2.0, 0.05


@dataclass(frozen=True)
class NearEndSettings:
    """When the cleaned microphone counts as the person speaking."""

    margin_db: float = 15.0
    """Cleaned power must exceed the residue plus the noise floor by this much..."""
    blocks: int = 6
    """...in this many 20 ms blocks in a row (scripts/eval_near_end.py has the figures behind both)."""
    tail_blocks: int = 15
    """The residue is judged against the loudest reference block of the last this many (300 ms): the room's tail
    keeps echoing what played a moment ago (the Geigel double-talk rule, after the canceller)."""


class NearEndDetector:
    """Block by block: True while the cleaned signal carries sound that neither the residue nor the noise explains."""

    def __init__(self, settings: NearEndSettings | None = None) -> None:
        self.settings = settings or NearEndSettings()
        self._margin = 10 ** (self.settings.margin_db / 10)
        self._rise = 10 ** (_RISE_DB_PER_S * _BLOCK_S / 10)
        self.reset()

    def reset(self) -> None:
        """Forget the room: no residue learnt yet (the raw echo is assumed), no noise floor."""
        self._floor: float | None = None
        self._ratio = 1.0
        self._run = 0
        self._recent: collections.deque[float] = collections.deque(maxlen=self.settings.tail_blocks)

    @property
    def residue_db(self) -> float:
        """The residue learnt so far, in dB relative to the reference (0: nothing cancelled)."""
        return 10 * math.log10(max(self._ratio, 1e-12))

    def update(self, cleaned_power: float, reference_power: float) -> bool:
        """Feed one block's mean squares (int16 units); True if the person seems to be speaking now."""
        self._recent.append(reference_power)
        reference_power = max(self._recent)
        playing = reference_power > _REFERENCE_ACTIVE
        floor = self._floor if self._floor is not None else max(cleaned_power, _FLOOR_MIN)
        expected = floor + (self._ratio * reference_power if playing else 0.0)
        loud = cleaned_power > self._margin * expected
        self._run = self._run + 1 if loud else 0
        if not playing:  # the noise floor is learnt while nothing plays: a minimum that rises slowly
            reading = max(cleaned_power, _FLOOR_MIN)
            floor = floor + _FALL * (reading - floor) if reading < floor else min(reading, floor * self._rise)
        self._floor = floor
        if playing:
            self._ratio = self._tracked_ratio(cleaned_power / reference_power, loud)
        return self._run >= self.settings.blocks

    def _tracked_ratio(self, reading: float, loud: bool) -> float:
        """The residue's upper decile (in dB steps): most residue blocks stay under it; a person's word barely
        moves it (while a block is loud it only creeps up, in case the echo path really got louder)."""
        estimate_db = 10 * math.log10(max(self._ratio, 1e-12))
        reading_db = 10 * math.log10(max(reading, 1e-12))
        if loud:
            estimate_db += _CREEP_DB
        elif reading_db > estimate_db:
            estimate_db += _QUANTILE * _STEP_DB
        else:
            estimate_db -= (1 - _QUANTILE) * _STEP_DB
        return float(min(10 ** (estimate_db / 10), 1.0))
