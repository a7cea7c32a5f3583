"""End to end through real (virtual) audio devices: the narrator speaks, a person speaks, the session obeys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio.virtual_server import VirtualAudio, recording_start_s, rms
from voicecoach.audio.wavfile import resample
from voicecoach.core.commands import load_vocabulary
from voicecoach.core.events import Command, CommandHeard
from voicecoach.core.routine import Exercise, Routine
from voicecoach.core.session import Phase, Session, State
from voicecoach.narration.stand_in_voices import FLITE_VOICES, Voice, pad, synthesize, write_wav
from voicecoach.narration.synthesis import Pyttsx3Synthesizer
from voicecoach.runtime.clock import EventQueue, RealClock
from voicecoach.runtime.player import Player
from voicecoach.runtime.rig import VoiceRig, open_rig
from voicecoach.runtime.transcript import Transcript
from voicecoach.settings import ListeningSettings, NarratorSettings, RecognizerSettings, VoiceSettings

pytestmark = pytest.mark.engine

_LONG_STEP = (
    "Lie face up on the mat with both knees bent and your feet flat, then let your arms rest by your sides, "
    "soften your shoulders, and notice how your lower spine settles a little more with each slow breath out, "
    "and keep that easy rhythm while your whole body grows heavy and calm against the floor."
)
_LOUD = 1200
_PERSON = FLITE_VOICES[0]
"""The person's voice: a TTS engine and voice the narrator does not use."""
_OTHER_PERSON = FLITE_VOICES[1]
"""A second person (flite kal) says "resume". Both people are voices the spotter trained on (at their default
settings): these tests are about the pipeline, the devices and the session, and a person repeats a missed command
here as at home; accuracy on voices and people it never heard is measured by the eval scripts. kal's "pause" is not
used: the packaged head scores it 0.59-0.84 for pause depending on where it falls in the 80 ms frame grid (heard at
5 of 8 offsets in quiet, and never over the narration, where other commands need 0.9), so a test saying it three
times failed about one run in ten; the first person's "pause" scores 0.74-0.93 and is heard at every offset."""

ENGINE = "auto"
"""The engine the end-to-end voice tests listen with: the default (the keyword spotter)."""


def long_routine(hold_s: float = 30.0, step: str = _LONG_STEP) -> Routine:
    """One exercise: a long spoken step (something to interrupt), then a hold."""
    exercise = Exercise("Knee rest", "lying face up", (step,), hold_s, 1)
    return Routine("e2e", "Test routine", "For end-to-end tests.", (exercise,))


@dataclass
class LiveRun:
    """A player running in a thread on the virtual devices."""

    rig: VoiceRig
    session: Session
    events: EventQueue
    transcript: Transcript
    thread: threading.Thread

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll until condition holds; return time.monotonic() then."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return time.monotonic()
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; transcript: {self.transcript.records}")

    def heard(self) -> list[str]:
        """Commands the player received."""
        return [str(r.get("command")) for r in self.transcript.records if r["kind"] == "heard"]

    def finish(self) -> None:
        """End the workout and wait for the player to wind down."""
        self.events.post(CommandHeard(Command.QUIT, "end workout"))
        self.events.post(CommandHeard(Command.STOP, "stop"))  # silence the summary too
        self.thread.join(timeout=20)
        self.rig.close()


@pytest.fixture
def live(virtual_audio: VirtualAudio) -> Iterator[Callable[[Routine], LiveRun]]:
    started: list[LiveRun] = []

    def start(routine: Routine) -> LiveRun:
        settings = VoiceSettings(narrator=NarratorSettings(rate_wpm=170),
                                 listening=ListeningSettings(RecognizerSettings(engine=ENGINE)))  # fmt: skip
        vocabulary = load_vocabulary("en")
        events = EventQueue(RealClock())
        rig = open_rig(settings, vocabulary, events)
        session = Session(routine)
        transcript = Transcript()
        player = Player(session, rig.narrator, events, vocabulary, transcript)
        rig.mic.start()
        rig.listener.start()
        thread = threading.Thread(target=player.run, name="player", daemon=True)
        run = LiveRun(rig, session, events, transcript, thread)
        started.append(run)
        thread.start()
        return run

    yield start
    for run in started:
        if run.thread.is_alive():
            run.finish()


def spoken_clip(tmp_path: Path, text: str, voice: Voice = _PERSON) -> tuple[Path, float]:
    """A WAV of the person saying text, with 0.3 s of silence before; and where the speech ends (seconds)."""
    samples = pad(synthesize(voice, text), 0.3, 0.8)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 500)
    return write_wav(tmp_path / f"{text.replace(' ', '_')}.wav", samples), float(loud[-1]) / 16000


def test_stop_cuts_the_narration_mid_sentence(
    live: Callable[[Routine], LiveRun], virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    clip, word_end_s = spoken_clip(tmp_path, "stop")
    recording = virtual_audio.start_recording("e2e-stop")
    run = live(long_routine())
    run.wait_for(lambda: any(b.duration_s > 3.0 for b in run.rig.speaker.played()), 20, "the long step to play")
    # A person says it again if the coach did not hear it: flite slt's "stop" alone in silence is heard at 11 of 16
    # offsets 5 ms apart against the spotter's 80 ms frames (with its noise floor or without), so one try in three
    # is missed and two tries failed about one run in ten; three, about one in thirty.
    for tries in (1, 2, 3):
        played_at = time.monotonic()
        virtual_audio.play_into_mic(clip, wait=False)
        try:
            stopped_at = run.wait_for(lambda: run.session.state is State.STOPPED, 3.0, "the session to stop")
            break
        except AssertionError:
            if tries == 3:
                raise
    time.sleep(1.0)
    run.finish()
    recorded, recorded_rate = recording.stop_and_read()
    rate = run.rig.speaker.sample_rate
    samples = resample(recorded, recorded_rate, rate)

    assert "stop" in run.heard()
    long = max(run.rig.speaker.played(), key=lambda b: b.duration_s)
    full_s = len(_synthesized_long(run)) / 22050
    assert long.aborted and long.duration_s - long.stalled_s < full_s - 2.0, "the long step was cut, not played out"
    cut_s = long.start_s + long.duration_s
    word_end = played_at + word_end_s
    assert word_end - 0.1 < cut_s < word_end + 1.5, (cut_s - word_end, stopped_at - word_end)
    start_s = recording_start_s(samples, rate, run.rig.speaker.played()[0], _LOUD)  # the recording began first
    cut = int((cut_s - start_s) * rate)
    assert rms(samples[cut - int(0.6 * rate) : cut - int(0.05 * rate)]) > 300, "narration right up to the cut"
    before = int(0.8 * rate)
    assert _contour_match(samples[cut - before : cut], long.samples[-before:], rate) > 0.8, "the step, up to the cut"
    # What follows the cut is the calm line alone, not the rest of the long step: the recording's loudness contour
    # there follows the calm line's and not the step's continuation (the contour, as the level of the two differs).
    calm = min((b for b in run.rig.speaker.played() if b.start_s >= cut_s - 0.01), key=lambda b: b.start_s)
    at = int((calm.start_s - start_s) * rate)
    span = min(len(calm.samples), int(0.8 * rate))
    heard_after = samples[at : at + span]
    position = len(long.samples) - int(long.stalled_s * rate)
    continuation = resample(_synthesized_long(run), 22050, rate)[position : position + span]
    with_calm = _contour_match(heard_after, calm.samples[:span], rate)
    with_step = _contour_match(heard_after, continuation, rate)
    assert calm.start_s - cut_s < 0.5 and with_calm > 0.8 and with_step < 0.5, (
        "after the cut only the calm line is heard",
        calm.start_s - cut_s,
        with_calm,
        with_step,
    )


def _contour_match(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    """Correlation of two signals' loudness contours in 20 ms frames (dB), at the best lag within 40 ms."""
    frame = rate // 50

    def contour(x: np.ndarray) -> np.ndarray:
        n = len(x) // frame
        power = np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
        return 10 * np.log10(power + 1e3)

    ca, cb = contour(a), contour(b)
    best = -1.0
    for lag in (-2, -1, 0, 1, 2):
        x, y = (ca[lag:], cb) if lag >= 0 else (ca, cb[-lag:])
        n = min(len(x), len(y))
        if n > 5 and np.std(x[:n]) > 0 and np.std(y[:n]) > 0:
            best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def _synthesized_long(run: LiveRun) -> np.ndarray:
    """The long step as the narrator's voice says it in full."""
    return Pyttsx3Synthesizer(NarratorSettings(rate_wpm=170)).synthesize(_LONG_STEP)


def narrator_quiet(run: LiveRun, for_s: float = 0.3) -> bool:
    """True when the speaker has played nothing for for_s (the buffer in flight counts as playing until now)."""
    played = run.rig.speaker.played()
    return not played or time.monotonic() - (played[-1].start_s + played[-1].duration_s) > for_s


def say_until(run: LiveRun, audio: VirtualAudio, clip: Path, state: State, what: str) -> int:
    """Play the person's words until the session reaches `state`; a person repeats a command that was missed.

    Returns how many tries it took (at most three); the recognizer's accuracy is measured by the eval scripts.
    """
    for tries in (1, 2, 3):
        audio.play_into_mic(clip)
        try:
            run.wait_for(lambda: run.session.state is state, 3.0, what)
            return tries
        except AssertionError:
            if tries == 3:
                raise
    return 3


def test_pause_then_resume_keeps_the_hold(
    live: Callable[[Routine], LiveRun], virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    pause, _ = spoken_clip(tmp_path, "pause")
    resume, _ = spoken_clip(tmp_path, "resume", _OTHER_PERSON)
    run = live(long_routine(hold_s=40.0, step="Lie down."))
    run.wait_for(lambda: run.session.status().phase is Phase.TIMING, 20, "the hold to start")
    run.wait_for(lambda: narrator_quiet(run), 10, "the hold's announcement to end")  # a pause in the quiet hold
    say_until(run, virtual_audio, pause, State.PAUSED, "the session to pause")
    frozen = run.session.status().remaining_s
    time.sleep(1.5)
    assert run.session.status().remaining_s == frozen, "no hold time runs while paused"
    say_until(run, virtual_audio, resume, State.RUNNING, "the session to resume")
    time.sleep(1.0)
    remaining = run.session.status().remaining_s
    assert frozen is not None and remaining is not None and remaining < frozen - 0.5
    run.finish()
    heard = [h for h in run.heard() if h in ("pause", "resume")]
    assert heard[:2] == ["pause", "resume"] and "stop" not in run.heard()[:-1]
