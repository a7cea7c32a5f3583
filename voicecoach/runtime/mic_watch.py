"""Noticing a microphone that stopped delivering audio, and reopening it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from voicecoach.core.events import DeviceProblem

_LOGGER = logging.getLogger(__name__)
_MIC_SILENT_S = 3.0
"""Seconds without a block before the microphone counts as gone."""


class MicWatch:
    """Notices a microphone that stopped delivering audio, reports it, reopens it, and reports when it is back."""

    def __init__(self, mic: Any, report: Callable[[DeviceProblem], None], silent_limit_s: float = _MIC_SILENT_S
                 ) -> None:
        self._mic = mic
        self._report = report
        self._limit_s = silent_limit_s
        self._last_block_s = time.monotonic()
        self._down = False
        self._next_try_s = 0.0

    def read_block(self, timeout_s: float | None = None) -> Any:
        """The microphone's next block; while it is down, try to reopen it now and then."""
        block = self._mic.read_block(timeout_s)
        now = time.monotonic()
        if block is not None:
            self._last_block_s = now
            if self._down:
                self._down = False
                self._report(DeviceProblem("the microphone is back", recovered=True))
            return block
        if not self._down and now - self._last_block_s > self._limit_s:
            self._down = True
            self._report(DeviceProblem(f"no sound from the microphone for {self._limit_s:g} seconds"))
        if self._down and now >= self._next_try_s:
            self._next_try_s = now + self._limit_s
            try:
                self._mic.reopen()
            except Exception as exc:  # still unplugged: keep trying
                _LOGGER.info("microphone reopen failed: %s", exc)
        return None
