"""The speech store: each text synthesized once, read back the same, and writers that race never lose an entry."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from voicecoach.narration.speech_store import StoredSynthesizer


class _Counting:
    """A synthesizer that says how often it was asked (its samples depend on the text alone)."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0

    def synthesize(self, text: str) -> np.ndarray:
        self.calls += 1
        return np.full(400_000 + 10 * len(text), len(text), np.int16)


def test_a_text_is_synthesized_once_and_read_back_the_same(tmp_path: Path) -> None:
    inner = _Counting()
    store = StoredSynthesizer(inner, "fake", tmp_path)  # type: ignore[arg-type]
    first = store.synthesize("Lie on your back.")
    again = StoredSynthesizer(_Counting(), "fake", tmp_path).synthesize("Lie on your back.")  # type: ignore[arg-type]
    assert inner.calls == 1 and np.array_equal(first, again)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npz"]  # no partial file left behind


def _store_many(folder: str) -> int:
    logging.basicConfig(level=logging.WARNING)
    warnings = []
    handler = logging.Handler()
    handler.emit = warnings.append  # type: ignore[method-assign]
    logging.getLogger("voicecoach.narration.speech_store").addHandler(handler)
    for index in range(60):  # 0.8 MB a line: long enough writes that the writers overlap
        StoredSynthesizer(_Counting(), "fake", Path(folder)).synthesize(f"line {index % 3}")  # type: ignore[arg-type]
        for stored in Path(folder).glob("*.npz"):
            stored.unlink(missing_ok=True)  # every round writes anew, so the writers keep meeting
    return len(warnings)


def test_two_processes_storing_the_same_texts_at_once_never_fail_to_write(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        warnings = pool.map(_store_many, [str(tmp_path)] * 4)
    assert warnings == [0, 0, 0, 0]
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unwritable_store_only_costs_speed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "speech"
    blocked.write_text("a file where the folder should be")
    store = StoredSynthesizer(_Counting(), "fake", blocked / "inner")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        samples = store.synthesize("Breathe out.")
    assert len(samples) > 0 and "not writable" in caplog.text


def test_a_text_stored_meanwhile_by_another_writer_is_the_speech_both_use(tmp_path: Path) -> None:
    first = StoredSynthesizer(_Counting(), "fake", tmp_path)  # type: ignore[arg-type]

    class _Racing(_Counting):
        """Synthesizes other samples, and while it does, the other writer stores the text."""

        def synthesize(self, text: str) -> np.ndarray:
            first.synthesize(text)
            return np.zeros(1600, np.int16)

    second = StoredSynthesizer(_Racing(), "fake", tmp_path)  # type: ignore[arg-type]
    heard = second.synthesize("Hold for ten seconds.")
    assert np.array_equal(heard, _Counting().synthesize("Hold for ten seconds."))  # the first writer's, not its own
    assert np.array_equal(heard, StoredSynthesizer(_Counting(), "fake", tmp_path).synthesize("Hold for ten seconds."))
