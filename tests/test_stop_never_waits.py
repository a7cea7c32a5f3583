"""A stop never waits behind playback: not behind a play() that blocks, nor behind a device reopen."""

from __future__ import annotations

import threading

import numpy as np

from voicecoach.narration.narrator import SoundNarrator
from voicecoach.narration.synthesis import Speech


class _ToneSynthesizer:
    """Half a second of tone for any text."""

    sample_rate = 16000

    def synthesize(self, text: str) -> np.ndarray:
        return np.full(8000, 1000, dtype=np.int16)

    def synthesize_words(self, text: str) -> Speech:
        return Speech(self.synthesize(text))


class _StuckSpeaker:
    """A speaker whose play() blocks until released, as one reopening a replugged device does."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.in_play = threading.Event()
        self.release = threading.Event()
        self.aborts = 0
        self.plays = 0

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self.plays += 1
        self.in_play.set()
        self.release.wait(30.0)

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.aborts == 0

    def abort(self) -> None:
        self.aborts += 1


def test_stop_aborts_while_play_is_still_blocked() -> None:
    speaker = _StuckSpeaker()
    finished: list[int] = []
    narrator = SoundNarrator(_ToneSynthesizer(), speaker, finished.append)  # type: ignore[arg-type]
    narrator.say(1, "Breathe in slowly.")
    assert speaker.in_play.wait(10.0), "play() was never called"

    stopper = threading.Thread(target=narrator.stop)
    stopper.start()
    stopper.join(10.0)
    try:
        assert not stopper.is_alive(), "stop() waited for the blocked play()"
        assert not speaker.release.is_set(), "play() was released before the abort"
        assert speaker.aborts >= 1, "stop() did not abort the speaker"
        assert narrator.idle()
    finally:
        speaker.release.set()
        narrator.close()
    assert finished == [], "a stopped utterance reported finished"


def test_an_utterance_whose_play_was_overtaken_by_stop_is_silenced_again() -> None:
    speaker = _StuckSpeaker()
    narrator = SoundNarrator(_ToneSynthesizer(), speaker, lambda _: None)  # type: ignore[arg-type]
    narrator.say(1, "Breathe out.")
    assert speaker.in_play.wait(10.0)
    narrator.stop()
    aborts_during_play = speaker.aborts
    speaker.release.set()
    narrator.close()
    assert speaker.aborts > aborts_during_play, "play() returned after a stop() and was not aborted again"
