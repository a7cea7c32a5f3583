"""The narrator: real speech through a real output stream into the virtual speaker, and its fakes."""

from __future__ import annotations

import ctypes.util
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from voicecoach.audio.speaker import Speaker
from voicecoach.audio.virtual_server import SPEAKER_RATE, VirtualAudio, last_loud, recording_start_s, rms
from voicecoach.core.events import Chime, Say, StopSpeech
from voicecoach.narration.narrator import RecordingNarrator, SoundNarrator, chime_samples
from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer
from voicecoach.settings import NarratorSettings

pytestmark = pytest.mark.engine

_LONG = (
    "Sit tall on the floor with your legs straight out in front of you, then slowly fold forward from the hips "
    "and let your hands slide toward your feet while you keep breathing."
)
_LOUD = 1500
"""Sample magnitude that counts as sound (eSpeak-NG speech peaks near 20000; silence is 0)."""

needs_espeak = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None, reason="eSpeak-NG not installed (apt-get install espeak-ng)"
)


class Finished:
    """Collects on_finished calls, and waits for them."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self._changed = threading.Condition()

    def __call__(self, utterance_id: int) -> None:
        with self._changed:
            self.ids.append(utterance_id)
            self._changed.notify_all()

    def wait_for(self, utterance_id: int, timeout_s: float = 20.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: utterance_id in self.ids, timeout_s)


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll until condition() is true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def synthesizer() -> CachedSynthesizer:
    if ctypes.util.find_library("espeak-ng") is None:
        pytest.skip("eSpeak-NG not installed (apt-get install espeak-ng)")
    return CachedSynthesizer(Pyttsx3Synthesizer(NarratorSettings(voice="en-us", rate_wpm=170)))


@pytest.fixture
def speaker(virtual_audio: VirtualAudio) -> Iterator[Speaker]:
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        yield speaker


@pytest.fixture
def finished() -> Finished:
    return Finished()


@pytest.fixture
def narrator(synthesizer: CachedSynthesizer, speaker: Speaker, finished: Finished) -> Iterator[SoundNarrator]:
    """The real narrator on eSpeak-NG and the virtual speaker; the tests close it before reading what played."""
    narrator = SoundNarrator(synthesizer, speaker, finished)
    yield narrator
    narrator.close()


@needs_espeak
def test_stop_cuts_speech_at_once_and_the_next_utterance_plays(
    virtual_audio: VirtualAudio, synthesizer: CachedSynthesizer, speaker: Speaker, narrator: SoundNarrator,
    finished: Finished,
) -> None:
    recording = virtual_audio.start_recording()
    narrator.say(1, _LONG)
    assert wait_until(lambda: bool(speaker.played())), "playback did not start"
    time.sleep(1.0)
    stop_s = time.monotonic()
    narrator.stop()
    time.sleep(0.8)
    narrator.say(2, "Relax.", cacheable=True)
    assert finished.wait_for(2)
    narrator.close()
    samples, rate = recording.stop_and_read()
    cut, relax = speaker.played()[-2:]

    assert finished.ids == [2]  # never 1: it was cut off
    assert cut.aborted and 0.7 < cut.duration_s < 1.5 and not relax.aborted
    start_s = recording_start_s(samples, rate, cut, _LOUD)

    def at(t_s: float) -> int:
        """The recording index of a time.monotonic() time."""
        return round((t_s - start_s) * rate)

    assert rms(samples[at(stop_s - 0.8) : at(stop_s)]) > 1000, "speech before the stop"
    last = last_loud(samples, _LOUD, at(stop_s - 0.5), at(relax.start_s - 0.1))  # the gap is 0.8 s
    assert last is not None and start_s + last / rate - stop_s < 0.3, "silence within 300 ms (here ~5 ms)"
    assert rms(samples[at(stop_s + 0.3) : at(relax.start_s - 0.1)]) < 1.0, "nothing more of the cut sentence"
    heard = samples[at(relax.start_s) : at(relax.start_s + relax.duration_s)]
    sound_s = relax.duration_s - relax.stalled_s  # a loaded machine can make the device fall behind
    assert rms(heard) > 1000 and abs(sound_s - len(synthesizer.synthesize("Relax.")) / 22050) < 0.01


@needs_espeak
def test_utterances_and_chimes_play_in_order(
    virtual_audio: VirtualAudio, synthesizer: CachedSynthesizer, speaker: Speaker, narrator: SoundNarrator,
    finished: Finished,
) -> None:
    texts = {11: "Three.", 12: "Two.", 13: "One, and relax."}
    recording = virtual_audio.start_recording()
    narrator.say(11, texts[11], cacheable=True)
    narrator.chime("ding")
    narrator.say(12, texts[12], cacheable=True)
    narrator.say(13, texts[13])
    assert not narrator.idle()
    assert finished.wait_for(13)
    assert wait_until(narrator.idle, 2.0)
    narrator.close()
    samples, rate = recording.stop_and_read()
    played = speaker.played()[-4:]

    assert finished.ids == [11, 12, 13]
    expected_s = [len(synthesizer.synthesize(texts[11])) / 22050, 0.12] + [
        len(synthesizer.synthesize(texts[k])) / 22050 for k in (12, 13)
    ]
    sound_s = [p.duration_s - p.stalled_s for p in played]  # stalls of a loaded machine are logged as silence
    assert sound_s == pytest.approx(expected_s, abs=0.1)  # eSpeak-NG varies a little
    starts = [p.start_s for p in played]
    ends = [p.start_s + p.duration_s for p in played]
    assert all(end <= start + 0.02 for end, start in zip(ends, starts[1:], strict=False)), "one after another"
    start_s = recording_start_s(samples, rate, played[0], _LOUD)
    for entry in played:  # each is in the recording where the log says it was played
        begin = round((entry.start_s - start_s) * rate)
        assert rms(samples[begin : begin + len(entry.samples)]) > 0.5 * rms(entry.samples)


@needs_espeak
def test_stop_drops_everything_queued(speaker: Speaker, narrator: SoundNarrator, finished: Finished) -> None:
    narrator.say(21, _LONG)
    narrator.say(22, "Second.")
    narrator.chime("done")
    narrator.say(23, "Third.")
    assert wait_until(lambda: bool(speaker.played()))
    time.sleep(0.3)
    narrator.stop()
    assert narrator.idle()
    time.sleep(1.0)
    count = len(speaker.played())
    narrator.close()
    assert finished.ids == []
    assert count == 1 and speaker.played()[-1].aborted


class FakeSpeaker:
    """Plays nothing: a buffer 'lasts' 1/100 of its duration; abort() ends it at once."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []
        self._done = threading.Event()
        self._aborted = False

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self.buffers.append(samples)
        self._aborted = False
        self._done.clear()
        threading.Timer(len(samples) / sample_rate / 100, self._done.set).start()

    def wait(self, timeout_s: float | None = None) -> bool:
        self._done.wait(timeout_s)
        return not self._aborted

    def abort(self) -> None:
        self._aborted = True
        self._done.set()


class ToneSynthesizer:
    """One second of tone per word."""

    sample_rate = 16000

    def synthesize(self, text: str) -> np.ndarray:
        return np.full(16000 * len(text.split()), 1000, dtype=np.int16)


def test_sound_narrator_with_fakes_reports_in_order() -> None:
    finished = Finished()
    speaker = FakeSpeaker()
    narrator = SoundNarrator(ToneSynthesizer(), speaker, finished)
    for utterance_id, text in enumerate(["one", "two words", "three more words"], start=1):
        narrator.say(utterance_id, text)
    assert finished.wait_for(3, timeout_s=5.0)
    narrator.close()
    assert finished.ids == [1, 2, 3]
    assert [len(b) for b in speaker.buffers] == [16000, 32000, 48000]


def test_chime_is_short_soft_and_known() -> None:
    ding = chime_samples("ding", 48000)
    assert ding.dtype == np.int16 and abs(len(ding) / 48000 - 0.12) < 0.005
    assert 3000 < np.abs(ding.astype(np.int32)).max() < 8000
    assert abs(int(ding[0])) < 100 and abs(int(ding[-1])) < 100  # faded: no click
    with pytest.raises(ValueError, match="unknown chime"):
        chime_samples("gong", 48000)


def test_recording_narrator_records_and_finishes_when_told() -> None:
    finished: list[int] = []
    narrator = RecordingNarrator(finished.append)
    narrator.say(1, "Hello.")
    narrator.chime("ding")
    narrator.say(2, "Breathe.", cacheable=True)
    assert not narrator.idle() and finished == []
    narrator.finish()
    assert finished == [1]
    narrator.stop()
    assert narrator.idle()
    assert narrator.calls == [Say(1, "Hello."), Chime("ding"), Say(2, "Breathe.", True), StopSpeech()]
    assert narrator.spoken == ["Hello.", "Breathe."]


def test_recording_narrator_can_finish_immediately() -> None:
    finished: list[int] = []
    narrator = RecordingNarrator(finished.append, finish_immediately=True)
    narrator.say(5, "Go.")
    assert finished == [5] and narrator.idle()
