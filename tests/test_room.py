"""The closed-loop living room: the real narrator's audio echoing into a virtual microphone with a person saying
"stop", through the one listening pipeline, the session reacting."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio.acoustics import RATE, RoomAcoustics, RoomSettings
from voicecoach.core.commands import load_vocabulary
from voicecoach.core.routine import Exercise, Routine, Sides
from voicecoach.core.session import Session, State
from voicecoach.echo.clipping import ClipGuardSettings
from voicecoach.listening.pipeline import ListeningPipeline
from voicecoach.narration.speech_store import StoredSynthesizer
from voicecoach.narration.stand_in_voices import Voice, synthesize, write_wav
from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer
from voicecoach.runtime.room import RoomRun, run_room
from voicecoach.runtime.transcript import Transcript
from voicecoach.settings import ListeningSettings, NarratorSettings, RecognizerSettings

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(ctypes.util.find_library("espeak-ng") is None, reason="eSpeak-NG not installed"),
]

ENGINE = "auto"
ECHO_DB = -30.0
"""Narrator echo re the person: low, so these tests check the loop itself; the figures over louder echo come from
scripts/eval_room.py."""
PERSON = Voice("espeak-ng", "en-us+m3")
"""Stands in for the person (the spotter misses flite's voices more often: see its MODEL.md)."""
"""The engine the room tests listen with."""
_LONG_STEP = ("Lie on your back with both knees bent and your feet flat, then slowly let your knees fall to one "
              "side while your shoulders stay down on the mat and you breathe out.")  # fmt: skip
STOP_AT_S = 5.0


def _routine() -> Routine:
    step = Exercise("Twist", "lying face up", (_LONG_STEP,), 10, 1, Sides.NONE, 0)
    return Routine("room", "Room test", "For tests.", (step,), (), ())


def _person(tmp_path: Path) -> tuple[Path, float]:
    """A person (eSpeak-NG en-us+m3) saying stop at STOP_AT_S, in a 9 s recording; the file and the end of the word."""
    word = synthesize(PERSON, "stop")
    track = np.zeros(RATE * 9, np.int16)
    start = round(STOP_AT_S * RATE)
    track[start : start + len(word)] = word
    again = start + len(word) + round(0.3 * RATE)  # people say it again when nothing happens
    track[again : again + len(word)] = word
    path = tmp_path / "person.wav"
    write_wav(path, track, RATE)
    loud = np.flatnonzero(np.abs(word) > 500)
    return path, STOP_AT_S + loud[-1] / RATE  # the end of the first "stop"


def _run(tmp_path: Path, seed: int = 3) -> tuple[Session, Transcript, object]:
    vocabulary = load_vocabulary("en")
    pipeline = ListeningPipeline.from_settings(ListeningSettings(RecognizerSettings(engine=ENGINE)), vocabulary)
    person, _ = _person(tmp_path)
    stored = StoredSynthesizer(Pyttsx3Synthesizer(NarratorSettings(rate_wpm=165)), "test", tmp_path / "speech")
    synthesizer = CachedSynthesizer(stored)
    run = RoomRun(person=person, acoustics=RoomSettings(echo_db=ECHO_DB, snr_db=30.0, seed=seed))
    session, transcript = Session(_routine()), Transcript()
    room = run_room(session, vocabulary, pipeline, synthesizer, run, transcript)
    return session, transcript, room


def test_a_stop_in_the_room_stops_the_session_and_cuts_the_narration(tmp_path: Path) -> None:
    session, transcript, room = _run(tmp_path)
    _, word_end_s = _person(tmp_path)
    heard = [r for r in transcript.records if r["kind"] == "heard" and r.get("command") == "stop"]
    assert heard, f"no stop heard: {transcript.records}"
    assert word_end_s < heard[0]["t"] < word_end_s + 3.0
    assert session.state is State.STOPPED
    cut = [b for b in room.played if b.aborted]  # type: ignore[attr-defined]
    assert cut and cut[0].start_s == pytest.approx(3.0, abs=1.0), "the step being spoken was not cut"
    assert abs(cut[0].start_s + cut[0].duration_s - heard[0]["t"]) < 0.05
    quiet = [r for r in transcript.records if r["kind"] == "quiet"]
    assert quiet and quiet[0]["t"] == pytest.approx(heard[0]["t"] + 0.045, abs=0.001)


def test_the_same_seed_gives_the_same_events(tmp_path: Path) -> None:
    first = _run(tmp_path, seed=5)[1].records
    second = _run(tmp_path, seed=5)[1].records
    assert first == second
    assert any(r["kind"] == "heard" for r in first)


def test_the_echo_comes_at_the_level_and_delay_asked_for() -> None:
    rng = np.random.default_rng(0)
    person = np.zeros(RATE * 2)
    person[RATE // 2 : RATE] = rng.standard_normal(RATE // 2) * 3000  # speech level 3000
    played = np.zeros(RATE * 2)
    played[: RATE // 4] = rng.standard_normal(RATE // 4) * 6000  # the narrator at its level, 6000
    acoustics = RoomAcoustics(RoomSettings(echo_db=-6.0, snr_db=None, delay_ms=45.0), person, 6000.0,
                              np.array([1.0]))  # fmt: skip
    mic = np.concatenate([acoustics.mic_block(i, 320, played) for i in range(0, RATE * 2, 320)]).astype(float)
    delay = round(0.045 * RATE)
    assert np.all(mic[:delay] == 0), "echo before the delay"
    echo = mic[delay : delay + RATE // 4]
    assert np.sqrt(np.mean(echo**2)) == pytest.approx(3000 * 10 ** (-6 / 20), rel=0.05)
    assert np.all(mic[delay + RATE // 4 : RATE // 2] == 0), "echo after the playback ended"


def test_the_room_response_is_causal_the_direct_sound_first_then_its_reflections() -> None:
    # A click through a room whose response is the direct sound and one reflection 10 ms later at half its
    # amplitude: the microphone hears the click at the delay, then the reflection; never the reflection first
    # (a time-reversed response puts the direct sound a whole response length late).
    response = np.zeros(800)
    response[0], response[160] = 1.0, 0.5
    played = np.zeros(RATE)
    played[100] = 1000.0
    acoustics = RoomAcoustics(RoomSettings(echo_db=0.0, snr_db=None, delay_ms=45.0), np.zeros(RATE), 3000.0, response)
    mic = np.concatenate([acoustics.mic_block(i, 320, played) for i in range(0, RATE, 320)]).astype(float)
    delay = round(0.045 * RATE)
    loud = np.flatnonzero(np.abs(mic) > 1.0)
    assert list(loud) == [100 + delay, 100 + delay + 160]
    assert mic[100 + delay + 160] == pytest.approx(0.5 * mic[100 + delay], rel=0.01)


def test_the_whole_microphone_track_at_once_equals_it_block_by_block() -> None:
    rng = np.random.default_rng(3)
    person = np.zeros(RATE * 2)
    person[RATE // 2 : RATE] = rng.standard_normal(RATE // 2) * 2000
    played = rng.standard_normal(RATE) * 4000
    acoustics = RoomAcoustics(RoomSettings(echo_db=3.0, snr_db=25.0, delay_ms=60.0, seed=4), person, 4000.0)
    blocks = np.concatenate([acoustics.mic_block(i, 320, played) for i in range(0, RATE * 2, 320)])
    whole = acoustics.mic_track(RATE * 2, played)
    assert np.max(np.abs(blocks.astype(int) - whole.astype(int))) <= 1  # rounding of two summation orders


def test_the_pipeline_sees_the_playback_log_as_a_speaker_shows_it_never_the_future() -> None:
    from voicecoach.audio.speaker import PlayedBuffer
    from voicecoach.runtime.room import _played_by

    buffer = PlayedBuffer(1.0, 16000, np.arange(16000, dtype=np.int16))
    assert len(_played_by(buffer, 1.25).samples) == 4000
    assert _played_by(buffer, 3.0) is buffer
    assert len(_played_by(buffer, 0.5).samples) == 0


class _ShownReference:
    """A stand-in pipeline that keeps every sample of playback it was shown, by timeline position."""

    def __init__(self) -> None:
        self.shown: dict[int, int] = {}
        self.changed: list[int] = []
        self.own_voice = self

    def record(self, *args: object) -> None:
        """The own-voice log (not needed here)."""

    def process(self, block: np.ndarray, start_s: float, played: list) -> list:
        for buffer in played:
            first = round(buffer.start_s * RATE)
            for index, value in enumerate(buffer.samples.tolist()):
                if self.shown.setdefault(first + index, value) != value:
                    self.changed.append(first + index)
        return []


def test_a_fade_in_the_room_never_rescales_playback_the_pipeline_was_already_shown() -> None:
    """A real speaker fades what it has not yet handed over; the room must too, or the echo canceller is given a
    reference (30 ms at full level, say) that the room then plays 25 dB down."""
    from voicecoach.runtime.clock import EventQueue, VirtualClock
    from voicecoach.runtime.room import Room

    acoustics = RoomAcoustics(RoomSettings(echo_db=0.0, snr_db=None, delay_ms=45.0), np.zeros(RATE * 3), 3000.0)
    pipeline = _ShownReference()
    room = Room(acoustics, pipeline, EventQueue(VirtualClock()), Transcript(), auto_resume_s=None)
    speech = np.where(np.sin(np.arange(RATE * 2) / 7.0) >= 0, 3000.0, -3000.0)
    room.play(0, speech, "a line", ())
    for _ in range(20):
        room.advance()
    room.fade(-25.0)
    for _ in range(20):
        room.advance()
    room.fade(0.0)
    for _ in range(20):
        room.advance()
    assert pipeline.changed == []
    faded = np.flatnonzero(np.abs(room.timeline[: room.position]) < 3000 * 10 ** (-20 / 20))
    ahead = round(0.03 * RATE)  # the playback handed over beyond the microphone's position
    assert (faded[0], faded[-1] + 1, len(faded)) == (20 * 320 + ahead, 40 * 320 + ahead, 20 * 320)
    played = np.array([pipeline.shown[i] for i in range(room.position)])
    assert np.max(np.abs(played - room.timeline[: room.position])) <= 20  # int16 rounding of each rescaling


def test_turning_down_in_the_room_lowers_what_is_not_yet_handed_over_and_every_later_line() -> None:
    from voicecoach.runtime.clock import EventQueue, VirtualClock
    from voicecoach.runtime.room import Room

    acoustics = RoomAcoustics(RoomSettings(echo_db=0.0, snr_db=None, delay_ms=45.0), np.zeros(RATE * 4), 3000.0)
    pipeline = _ShownReference()
    transcript = Transcript()
    room = Room(acoustics, pipeline, EventQueue(VirtualClock()), transcript, auto_resume_s=None)
    speech = np.where(np.sin(np.arange(RATE) / 7.0) >= 0, 3000.0, -3000.0)
    room.play(0, speech, "a line", ())
    room.play(RATE, speech, "a queued line", ())  # already on the timeline: turned down too
    for _ in range(20):
        room.advance()
    room.turn_down(6.0)
    room.fade(-20.0)  # a fade after it is relative to the lowered level...
    room.fade(0.0)  # ...and comes back to it
    for _ in range(150):
        room.advance()
    room.play(room.position, speech, "a later line", ())
    for _ in range(20):
        room.advance()
    assert pipeline.changed == []
    ahead = 20 * 320 + round(0.03 * RATE)  # the playback handed over beyond the microphone's position at the step
    level = np.abs(room.timeline[: room.position])
    assert np.all(level[:ahead] == 3000)
    assert np.allclose(level[ahead : 2 * RATE], 3000 * 10 ** (-6 / 20), atol=1.0)
    assert np.allclose(level[170 * 320 :], 3000 * 10 ** (-6 / 20), atol=1.0)
    assert [r["text"] for r in transcript.records if r["kind"] == "quieter"] == ["-6 dB"]


def _loud_person(tmp_path: Path) -> Path:
    """A loud person (active speech at -15.7 dBFS): the room sets the narrator's echo by the person's level, so at
    +6 dB echo the narrator's peaks pass full scale. The one word comes after the narration."""
    from voicecoach.audio.acoustics import active_level

    word = synthesize(PERSON, "hello").astype(np.float64)
    word *= 32768 * 10 ** (-15.7 / 20) / active_level(word)
    track = np.zeros(RATE * 40)
    track[RATE * 38 : RATE * 38 + len(word)] = word
    path = tmp_path / "loud.wav"
    write_wav(path, np.round(track).astype(np.int16), RATE)
    return path


class _Deaf:
    """A recognizer that hears nothing: the narration plays out alike with and without the guard (with the spotter, a
    false stop on the clipped echo cut it short in one run of the whole suite, and with it the clipping to compare)."""

    name = "deaf"
    sample_rate = RATE

    def accept(self, pcm: bytes) -> list:  # type: ignore[type-arg]
        return []

    def flush(self) -> list:  # type: ignore[type-arg]
        return []

    def reset(self) -> None:
        """Nothing to forget."""


_GUARD_SETTLED_S = 5
"""Seconds into the run after which the guard has had its say: what clips before its first steps take hold (half
a second of clipping, then a second's hold each) it cannot prevent, and how much that is depends on the narrator's
first lines (87 to 203 samples in different test orders: the narrator's first lines came out a few samples
different after other tests had used the one pyttsx3 engine)."""


def test_a_narrator_that_clips_the_microphone_is_turned_down_and_clips_it_far_less(tmp_path: Path) -> None:
    vocabulary = load_vocabulary("en")
    stored = StoredSynthesizer(Pyttsx3Synthesizer(NarratorSettings(rate_wpm=165)), "test", tmp_path / "speech")
    run = RoomRun(person=_loud_person(tmp_path), acoustics=RoomSettings(echo_db=6.0, snr_db=20.0, seed=1))
    clipped, later = {}, {}
    for guard in (True, False):
        pipeline = ListeningPipeline(_Deaf(), vocabulary, clip_guard=ClipGuardSettings() if guard else None)
        transcript = Transcript()
        room = run_room(Session(_routine()), vocabulary, pipeline, CachedSynthesizer(stored), run, transcript)
        at_full_scale = np.abs(room.microphone().astype(np.int32)) >= 32767  # type: ignore[attr-defined]
        clipped[guard] = int(np.count_nonzero(at_full_scale))
        later[guard] = int(np.count_nonzero(at_full_scale[RATE * _GUARD_SETTLED_S :]))
        steps = [r["text"] for r in transcript.records if r["kind"] == "quieter"]
        if guard:
            assert steps and steps[-1] == f"-{3 * len(steps)} dB" and len(steps) <= 4, steps
            assert pipeline.clip_guard is not None and pipeline.clip_guard.down_db == 3 * len(steps)
        else:
            assert steps == []
    assert later[False] > 1000, "the room did not clip: the test no longer tests the guard"
    assert later[True] < later[False] / 10, (clipped, later)


def test_the_rooms_auto_resume_says_resume_once_per_stop(tmp_path: Path) -> None:
    vocabulary = load_vocabulary("en")
    pipeline = ListeningPipeline.from_settings(ListeningSettings(RecognizerSettings(engine=ENGINE)), vocabulary)
    person, _ = _person(tmp_path)
    stored = StoredSynthesizer(Pyttsx3Synthesizer(NarratorSettings(rate_wpm=165)), "test", tmp_path / "speech")
    run = RoomRun(person=person, auto_resume_s=2.0, acoustics=RoomSettings(echo_db=ECHO_DB, snr_db=30.0, seed=3))
    transcript = Transcript()
    room = run_room(Session(_routine()), vocabulary, pipeline, CachedSynthesizer(stored), run, transcript)
    stops = [r["t"] for r in transcript.records if r["kind"] == "heard" and r.get("command") == "stop"]
    resumes = [r["t"] for r in transcript.records if r["kind"] == "heard" and r.get("command") == "resume"]
    assert stops, "no stop heard"
    assert room.auto_resumes == resumes  # type: ignore[attr-defined]
    assert len(resumes) == len(stops), (stops, resumes)
    assert not [r for r in transcript.records if r["kind"] == "ignored" and "resume" in r["text"]]
