"""A device error in the audio layer while a session runs: it pauses, says so, and carries on after 'resume'."""

from __future__ import annotations

import threading
import time

import numpy as np
from support.sessionkit import small_routine

from voicecoach.audio.devices import AudioDeviceError
from voicecoach.audio.microphone import MicBlock
from voicecoach.core.commands import load_vocabulary
from voicecoach.core.events import Begin, Command, CommandHeard, DeviceProblem, Say, StopSpeech
from voicecoach.core.session import Session, State
from voicecoach.narration.narrator import SoundNarrator
from voicecoach.runtime.clock import EventQueue, RealClock
from voicecoach.runtime.mic_watch import MicWatch
from voicecoach.runtime.player import Player, SpeechDone
from voicecoach.runtime.transcript import Transcript


class UnpluggedOnce:
    """A speaker that fails like an unplugged USB device on one play, then works again."""

    sample_rate = 16000

    def __init__(self, fail_on_play: int) -> None:
        self.fail_on_play = fail_on_play
        self.plays = 0

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self.plays += 1
        if self.plays == self.fail_on_play:
            raise AudioDeviceError("Cannot play on the speaker: Unanticipated host error [PaErrorCode -9999]")

    def wait(self, timeout_s: float | None = None) -> bool:
        return True

    def abort(self) -> None:
        pass


class QuietSynthesizer:
    """Synthesizes 10 ms of silence per text."""

    sample_rate = 16000

    def synthesize(self, text: str) -> np.ndarray:
        return np.zeros(160, dtype=np.int16)


def test_a_speaker_error_mid_session_pauses_and_resume_carries_on() -> None:
    events = EventQueue(RealClock(speed=50.0))
    session = Session(small_routine())
    transcript = Transcript()
    narrator = SoundNarrator(QuietSynthesizer(), UnpluggedOnce(fail_on_play=4), SpeechDone(events),
                             on_error=lambda message: events.post(DeviceProblem(message)))  # fmt: skip
    player = Player(session, narrator, events, load_vocabulary("en"), transcript)
    thread = threading.Thread(target=player.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while session.state is not State.PAUSED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert session.state is State.PAUSED, transcript.records
    kinds = [r["kind"] for r in transcript.records]
    assert "device" in kinds
    assert any("sound device had a problem" in str(r["text"]) for r in transcript.records if r["kind"] == "say")
    events.post(CommandHeard(Command.RESUME, "resume"))
    thread.join(timeout=30)
    narrator.close()
    assert not thread.is_alive()
    assert transcript.records[-1]["kind"] == "finish"
    assert "You finished 2 of 2 exercises" in str(transcript.records[-1]["text"])


class FlakyMic:
    """A microphone that goes silent (unplugged) after some blocks and comes back after a reopen."""

    def __init__(self, blocks_before_unplug: int) -> None:
        self.left = blocks_before_unplug
        self.reopens = 0
        self.plugged = True

    def read_block(self, timeout_s: float | None = None) -> object | None:
        if self.left > 0 or (self.plugged and self.reopens):
            self.left -= 1
            return MicBlock(b"\0\0" * 320, time.monotonic())
        self.plugged = False
        time.sleep(timeout_s or 0.0)
        return None

    def reopen(self) -> None:
        self.reopens += 1
        if self.reopens < 2:
            raise AudioDeviceError("The microphone is still unavailable: no such device")
        self.plugged = True


def test_a_silent_microphone_is_reported_reopened_and_reported_back() -> None:
    mic = FlakyMic(blocks_before_unplug=3)
    reports: list[DeviceProblem] = []
    watch = MicWatch(mic, reports.append, silent_limit_s=0.05)
    got = [watch.read_block(0.01) for _ in range(40)]
    assert all(block is not None for block in got[:3]) and got[3] is None
    assert got[-1] is not None, "blocks flow again once it is back"
    assert [r.recovered for r in reports] == [False, True]
    assert "no sound from the microphone" in reports[0].message and mic.reopens == 2


def test_the_session_pauses_on_a_device_problem_and_says_when_it_is_back() -> None:
    session = Session(small_routine())
    session.handle(Begin())
    paused = session.handle(DeviceProblem("no sound from the microphone for 3 seconds"))
    assert session.state is State.PAUSED and any(isinstance(a, StopSpeech) for a in paused)
    back = session.handle(DeviceProblem("the microphone is back", recovered=True))
    assert [a.text for a in back if isinstance(a, Say)] == [
        "The sound device is working again. Say resume when you are ready."
    ]
    assert session.state is State.PAUSED, "it waits for the person to say resume"
