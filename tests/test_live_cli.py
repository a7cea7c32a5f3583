"""The voice commands of the command line: listen --wav, devices, a missing device, the engine choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_cli import run_cli

from voicecoach.audio.virtual_server import VirtualAudio
from voicecoach.audio.wavfile import resample
from voicecoach.narration.stand_in_voices import FLITE_VOICES, Voice, concat, pad, synthesize, write_wav

pytestmark = pytest.mark.engine


def test_listen_to_a_wav_file_of_another_rate_prints_each_command_with_its_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voice = FLITE_VOICES[0]
    speech = concat(pad(synthesize(voice, "next"), 0.5, 0.0), synthesize(voice, "too much"), gap_s=1.5)
    mic_44k = resample(pad(speech, 0.0, 1.0), 16000, 44100)
    stereo_44k = np.stack([mic_44k, np.zeros_like(mic_44k)], axis=1)  # (microphone, what was played: nothing)
    path = tmp_path / "commands.wav"
    write_wav_stereo(path, stereo_44k, 44100)
    code, out, err = run_cli(["listen", "--wav", str(path), "--engine", "pocketsphinx"], capsys)
    lines = out.splitlines()
    assert code == 0, err
    assert [line.split()[1] for line in lines] == ["next", "too_much"]
    times = [float(line.split()[0].rstrip("s")) for line in lines]
    assert 0.5 < times[0] < 2.5 and times[1] > times[0] + 1.0
    assert "real-time factor" in err


def write_wav_stereo(path: Path, samples: np.ndarray, rate: int) -> None:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())


def test_listen_to_a_file_that_is_not_audio_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    code, out, err = run_cli(["listen", "--wav", str(path), "--engine", "pocketsphinx"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "notes.wav" in err


def test_vosk_without_a_model_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICECOACH_MODELS", str(tmp_path))
    wav = write_wav(tmp_path / "silence.wav", np.zeros(16000, np.int16))
    code, _, err = run_cli(["listen", "--wav", str(wav), "--engine", "vosk"], capsys)
    assert code == 2 and "voicecoach model download" in err


def test_devices_lists_the_virtual_devices(virtual_audio: VirtualAudio, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["devices"], capsys)
    assert code == 0 and "pulse" in out


def test_a_missing_device_names_the_devices_that_exist(
    virtual_audio: VirtualAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["run", "lower-back", "--input-device", "Blue Yeti", "--engine", "pocketsphinx"], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Blue Yeti" in err and "pulse" in err


def test_listen_with_a_reference_that_is_missing_or_wrong_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mic = tmp_path / "mic.wav"
    write_wav(mic, pad(synthesize(FLITE_VOICES[0], "next"), 0.5, 0.5), 16000)
    code, _, err = run_cli(["listen", "--wav", str(mic), "--reference", str(tmp_path / "nope.wav"),
                            "--engine", "pocketsphinx"], capsys)  # fmt: skip
    assert code == 2 and "nope.wav: cannot read" in err and "Traceback" not in err
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(0, np.int16), 16000)
    code, _, err = run_cli(["listen", "--wav", str(mic), "--reference", str(silent), "--engine", "pocketsphinx"],
                           capsys)  # fmt: skip
    assert code == 2 and "silent.wav: the reference holds no audio" in err
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    code, _, err = run_cli(["listen", "--wav", str(mic), "--reference", str(text), "--engine", "pocketsphinx"],
                           capsys)  # fmt: skip
    assert code == 2 and "notes.wav: not a WAV file" in err
    code, _, err = run_cli(["listen", "--reference", str(mic), "--engine", "pocketsphinx"], capsys)
    assert code == 2 and "--reference goes with --wav" in err


def test_listen_with_a_reference_cancels_the_narrators_echo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voicecoach.echo.scenes import echo_scene

    # The narrator's voice and its echo through a room. (The scene's own speech-like narration, harmonic syllables,
    # fired too much at 0.9-0.96 in the canceller's first 1.5 s once any noise at -70 to -50 dBFS lay under it, at
    # the microphone or as the spotter's noise floor: the spotter never heard such sounds.)
    narration = synthesize(Voice("espeak-ng", "en-us"), "Lie on your back with your knees bent and your feet flat "
                           "on the floor. Breathe in slowly, and let your lower back relax into the mat.")  # fmt: skip
    scene = echo_scene(seed=2, seconds=8.0, echo_db=0.0, reference=pad(narration, 0.0, 2.0)[: 8 * 16000])
    person = pad(synthesize(Voice("espeak-ng", "en-us+m3"), "stop"), 5.5, 0.0)[: len(scene.mic)]
    mic = np.clip(scene.mic.astype(np.int32) + np.pad(person, (0, len(scene.mic) - len(person))), -32768, 32767)
    mic_path, played_path = tmp_path / "mic.wav", tmp_path / "played.wav"
    write_wav(mic_path, mic.astype(np.int16), 16000)
    write_wav(played_path, scene.reference, 16000)
    code, out, err = run_cli(["listen", "--wav", str(mic_path), "--reference", str(played_path)], capsys)
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == ["stop"]


def test_record_test_writes_the_microphone_and_what_was_played(
    virtual_audio: VirtualAudio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicecoach.audio.wavfile import read_wav_channels

    out = tmp_path / "test.wav"
    code, printed, err = run_cli(["record-test", str(out), "--seconds", "3"], capsys)
    assert code == 0, err
    assert f"listen --wav {out}" in printed
    assert "The microphone did not clip on the narrator's voice." in printed
    (mic, played), rate = read_wav_channels(out)
    assert rate == 16000 and len(mic) == len(played) and len(mic) > 3 * rate
    loud = np.flatnonzero(np.abs(played) > 1000)
    assert len(loud) > rate, "the reference channel holds no narration"
    assert np.abs(mic).max() < 100, "the virtual microphone hears nothing of the speaker (no loopback here)"
