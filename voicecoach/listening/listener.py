"""The listener thread: microphone blocks through the listening pipeline, on its own thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from voicecoach.core.events import CommandHeard
from voicecoach.echo.aligner import PlayedAudio
from voicecoach.listening.pipeline import ListeningPipeline

_LOGGER = logging.getLogger(__name__)


class BlockSource(Protocol):
    """Where microphone blocks come from (audio.microphone.Microphone, the mic watch, a fake)."""

    def read_block(self, timeout_s: float | None = None) -> Any:
        """The next block (with .pcm: int16 bytes and .adc_s: monotonic capture time), or None in time."""
        ...


def _nothing_played() -> Sequence[PlayedAudio]:
    return ()


class Listener:
    """A thread: block source -> listening pipeline -> on_command."""

    def __init__(
        self,
        source: BlockSource,
        pipeline: ListeningPipeline,
        on_command: Callable[[CommandHeard], None],
        played: Callable[[], Sequence[PlayedAudio]] = _nothing_played,
        read_timeout_s: float = 0.1,
    ) -> None:
        self._source = source
        self.pipeline = pipeline
        self._on_command = on_command
        self._played = played
        self._read_timeout_s = read_timeout_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voicecoach-listener", daemon=True)
        self.errors = 0
        """Errors caught and logged so far."""

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to end and wait for it."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread.is_alive()

    def _run(self) -> None:
        """Read, listen, report; log and carry on after any error."""
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception:
                self.errors += 1
                _LOGGER.exception("Listener error (carrying on)")
                self._stopping.wait(0.05)

    def _step(self) -> None:
        """One block through the pipeline."""
        block = self._source.read_block(self._read_timeout_s)
        if block is None or not block.pcm:
            return
        capture_s = block.adc_s if block.adc_s is not None else time.monotonic()
        pcm = np.frombuffer(block.pcm, dtype="<i2")
        for heard in self.pipeline.process(pcm, capture_s, self._played()):
            self._report(heard)

    def _report(self, heard: CommandHeard) -> None:
        """Hand a command on; a failing callback is logged and does not lose the rest of the block."""
        _LOGGER.info("Heard %s (%r at %.2f s)", heard.command.value, heard.text, heard.audio_time_s or 0.0)
        try:
            self._on_command(heard)
        except Exception:
            self.errors += 1
            _LOGGER.exception("on_command failed for %s (carrying on)", heard.command.value)
