"""The device boundary through real PortAudio, on a private PulseAudio server with virtual devices."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio.devices import AudioDeviceError, format_devices, list_devices, resolve_device
from voicecoach.audio.microphone import MicBlock, Microphone
from voicecoach.audio.speaker import Speaker
from voicecoach.audio.virtual_server import (
    SPEAKER_RATE,
    VirtualAudio,
    first_loud,
    last_loud,
    peak_frequency_hz,
    recording_start_s,
    rms,
)
from voicecoach.audio.wavfile import read_wav
from voicecoach.narration.stand_in_voices import write_wav

pytestmark = pytest.mark.engine


def tone(frequency_hz: float, seconds: float, rate: int, peak: int = 8000) -> np.ndarray:
    """A sine tone as int16."""
    t = np.arange(round(seconds * rate)) / rate
    return np.round(peak * np.sin(2 * np.pi * frequency_hz * t)).astype(np.int16)


def read_for(microphone: Microphone, seconds: float) -> list[MicBlock]:
    """The blocks that arrive in this many seconds."""
    blocks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        block = microphone.read_block(timeout_s=0.1)
        if block is not None:
            blocks.append(block)
    return blocks


def test_devices_include_pulse(virtual_audio: VirtualAudio) -> None:
    devices = list_devices()
    names = [d.name for d in devices]
    assert "pulse" in names
    pulse = devices[names.index("pulse")]
    assert pulse.input_channels > 0 and pulse.output_channels > 0
    assert sum(d.is_default_output for d in devices) == 1
    table = format_devices(devices)
    assert "pulse (ALSA)" in table and "<" in table


def test_resolve_by_substring_and_index(virtual_audio: VirtualAudio) -> None:
    pulse = next(d.index for d in list_devices() if d.name == "pulse")
    assert resolve_device("pulse", "output") == pulse
    assert resolve_device("PUL", "input") == pulse
    assert resolve_device(pulse, "output") == pulse
    assert resolve_device(str(pulse), "input") == pulse
    assert resolve_device(None, "output") is None


def test_unknown_device_lists_the_devices(virtual_audio: VirtualAudio) -> None:
    with pytest.raises(AudioDeviceError) as raised:
        resolve_device("no such card", "output")
    message = str(raised.value)
    assert "no such card" in message and "pulse" in message and "default" in message
    assert "\n" not in message
    with pytest.raises(AudioDeviceError, match="No input device has index 999"):
        resolve_device(999, "input")


def test_ambiguous_device_names_the_candidates(virtual_audio: VirtualAudio) -> None:
    with pytest.raises(AudioDeviceError, match=r"matches several output devices: .*pulse.*default"):
        resolve_device("alsa", "output")


def test_speaker_plays_a_tone_into_the_virtual_speaker(virtual_audio: VirtualAudio) -> None:
    recording = virtual_audio.start_recording()
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        speaker.play(tone(1000, 0.5, 22050), 22050)  # resampled to the stream's 48 kHz
        assert speaker.wait(timeout_s=5.0) is True
        played = speaker.played()
    time.sleep(0.2)
    samples, rate = read_wav(recording.stop())
    assert rate == SPEAKER_RATE
    start, end = first_loud(samples, 2000), last_loud(samples, 2000)
    assert start is not None and end is not None
    assert 0.45 < (end - start) / rate < 0.55
    assert abs(peak_frequency_hz(samples[start:end], rate) - 1000) < 10
    assert len(played) == 1 and not played[0].aborted
    assert played[0].sample_rate == SPEAKER_RATE and abs(len(played[0].samples) - 24000) < 10


def test_turn_down_lowers_what_the_virtual_speaker_plays_from_then_on(virtual_audio: VirtualAudio) -> None:
    recording = virtual_audio.start_recording()
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        speaker.play(tone(700, 1.2, SPEAKER_RATE), SPEAKER_RATE)
        time.sleep(0.5)
        speaker.turn_down(6.0)
        assert speaker.wait(timeout_s=5.0)
        speaker.play(tone(700, 0.4, SPEAKER_RATE), SPEAKER_RATE)  # the next sound plays at the lowered level
        assert speaker.wait(timeout_s=5.0)
        first = speaker.played()[-2]
    time.sleep(0.2)
    samples, rate = read_wav(recording.stop())
    at = first_loud(samples, 2000)
    assert at is not None
    before = rms(samples[at + rate // 10 : at + rate * 4 // 10])
    after = rms(samples[at + rate * 8 // 10 : at + rate * 11 // 10])
    later = rms(samples[at + rate * 13 // 10 : at + rate * 15 // 10])  # the second tone follows on the running stream
    assert 20 * np.log10(after / before) == pytest.approx(-6.0, abs=0.5)
    assert 20 * np.log10(later / before) == pytest.approx(-6.0, abs=0.5)
    logged = first.samples.astype(float)  # the log, the canceller's reference, says the same
    assert 20 * np.log10(rms(logged[-rate // 4 :]) / rms(logged[: rate // 4])) == pytest.approx(-6.0, abs=0.5)


def test_speaker_wait_ends_when_the_sound_ends(virtual_audio: VirtualAudio) -> None:
    recording = virtual_audio.start_recording()
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        speaker.play(tone(500, 0.4, SPEAKER_RATE), SPEAKER_RATE)
        assert speaker.wait(timeout_s=5.0)
        returned_s = time.monotonic()
        entry = speaker.played()[-1]
    samples, rate = read_wav(recording.stop())
    start_s = recording_start_s(samples, rate, entry, threshold=2000)
    end = last_loud(samples, 2000)
    assert end is not None
    assert abs(returned_s - (start_s + end / rate)) < 0.1  # typically within 5 ms here


def test_abort_silences_and_the_next_play_works(virtual_audio: VirtualAudio) -> None:
    recording = virtual_audio.start_recording()
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        speaker.play(tone(800, 3.0, SPEAKER_RATE), SPEAKER_RATE)
        time.sleep(0.5)
        abort_s = time.monotonic()
        speaker.abort()
        assert speaker.wait(timeout_s=1.0) is False
        time.sleep(0.5)
        speaker.play(tone(600, 0.3, SPEAKER_RATE), SPEAKER_RATE)
        assert speaker.wait(timeout_s=5.0) is True
        first, second = speaker.played()[-2:]
    samples, rate = read_wav(recording.stop())
    start_s = recording_start_s(samples, rate, first, threshold=2000)
    cut = last_loud(samples, 2000, stop=round((second.start_s - 0.1 - start_s) * rate))  # the gap is 0.5 s
    assert cut is not None
    assert start_s + cut / rate - abort_s < 0.3  # typically 2 to 6 ms here
    assert first.aborted and 0.3 < first.duration_s < 0.8
    assert not second.aborted and abs(second.duration_s - second.stalled_s - 0.3) < 0.01  # stalls: a loaded machine


def test_abort_from_another_thread_while_waiting(virtual_audio: VirtualAudio) -> None:
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        speaker.play(tone(700, 5.0, SPEAKER_RATE), SPEAKER_RATE)
        threading.Timer(0.3, speaker.abort).start()
        started = time.monotonic()
        assert speaker.wait(timeout_s=10.0) is False
        assert time.monotonic() - started < 2.0


def test_microphone_captures_what_is_played_into_micfeed(virtual_audio: VirtualAudio, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", tone(440, 0.6, 16000), 16000)
    with Microphone() as microphone:
        microphone.start()
        time.sleep(0.2)
        virtual_audio.play_into_mic(wav)
        blocks = read_for(microphone, 1.0)
    assert blocks and all(len(b.pcm) == 640 for b in blocks)  # 20 ms of int16 at 16 kHz
    samples = np.frombuffer(b"".join(b.pcm for b in blocks), dtype="<i2")
    start, end = first_loud(samples, 2000), last_loud(samples, 2000)
    assert start is not None and end is not None
    assert 0.5 < (end - start) / 16000 < 0.7
    assert abs(peak_frequency_hz(samples[start:end], 16000) - 440) < 10
    assert rms(samples[start:end]) > 3000
    times = [b.adc_s for b in blocks]
    assert times == sorted(times)


def test_microphone_block_times_follow_the_clock(virtual_audio: VirtualAudio) -> None:
    with Microphone() as microphone:
        microphone.start()
        assert microphone.read(timeout_s=1.0) is not None
        blocks = read_for(microphone, 1.0)
    spans = np.diff([b.adc_s for b in blocks])
    assert len(blocks) > 25  # about 50 blocks a second, delivered a few at a time
    assert 0.5 < blocks[-1].adc_s - blocks[0].adc_s < 1.5
    assert float(np.median(spans)) == pytest.approx(0.02, abs=0.005)
    assert microphone.dropped == 0


def test_abort_does_not_wait_for_a_device_reopen_and_the_overtaken_play_is_silenced(
    virtual_audio: VirtualAudio,
) -> None:
    with Speaker(sample_rate=SPEAKER_RATE) as speaker:
        in_reopen, release = threading.Event(), threading.Event()
        real_reopen = speaker._reopen_locked

        def slow_reopen() -> None:
            in_reopen.set()
            release.wait(30.0)
            real_reopen()

        speaker._reopen_locked = slow_reopen  # type: ignore[method-assign]
        speaker._broken = True  # as after an unplug: the next play() opens the device afresh
        tone = (np.sin(np.arange(SPEAKER_RATE * 2) * 0.05) * 8000).astype(np.int16)
        player = threading.Thread(target=speaker.play, args=(tone, SPEAKER_RATE))
        player.start()
        assert in_reopen.wait(10.0), "play() did not try to reopen the device"
        aborter = threading.Thread(target=speaker.abort)
        aborter.start()
        aborter.join(10.0)
        try:
            assert not aborter.is_alive(), "abort() waited for the device reopen"
            assert not release.is_set()
        finally:
            release.set()
            player.join(10.0)
        assert speaker.wait(5.0) is False, "the play() that the abort overtook went on playing"


def test_a_rig_on_real_devices_starts_the_narrator_at_the_level_remembered_for_them(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.runtime.clock import EventQueue, RealClock
    from voicecoach.runtime.rig import open_rig
    from voicecoach.settings import NarratorSettings, VoiceSettings
    from voicecoach.store.levels import Devices, LevelMemory

    memory = LevelMemory(tmp_path)
    listed = list_devices()
    speaker = next(d.name for d in listed if d.is_default_output)
    microphone = next(d.name for d in listed if d.is_default_input)
    devices = Devices(speaker, microphone, 1.0)
    memory.keep(devices, 6.0)
    rig = open_rig(VoiceSettings(), load_vocabulary("en"), EventQueue(RealClock()), memory)
    try:
        assert (rig.speaker.device_name, rig.mic.device_name) == (devices.speaker, devices.microphone)
        assert rig.speaker.level_db == pytest.approx(-3.0), "one step louder than the last session ended"
        recording = virtual_audio.start_recording()
        rig.speaker.play(tone(700, 0.6, SPEAKER_RATE), SPEAKER_RATE)
        assert rig.speaker.wait(timeout_s=5.0)
        time.sleep(0.2)
        samples, rate = read_wav(recording.stop())
    finally:
        rig.close()
    at = first_loud(samples, 2000)
    assert at is not None
    played = rms(samples[at + rate // 10 : at + rate * 4 // 10])
    assert 20 * np.log10(played / rms(tone(700, 0.6, SPEAKER_RATE).astype(float))) == pytest.approx(-3.0, abs=0.5)
    assert memory.recall(devices) == 6.0, "a session with no narration proves nothing: the level stays remembered"
    quieter = Devices(devices.speaker, devices.microphone, 0.5)
    half = VoiceSettings(narrator=NarratorSettings(volume=0.5))
    rig = open_rig(half, load_vocabulary("en"), EventQueue(RealClock()), memory)
    try:
        assert rig.speaker.level_db == 0.0, "another volume setting has a memory of its own"
    finally:
        rig.close()
    assert memory.recall(quieter) == 0.0

