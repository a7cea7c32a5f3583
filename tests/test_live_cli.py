"""The voice commands of the command line: listen --wav, devices, a missing device, the engine choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_cli import run_cli

from voicecoach.audio.virtual_server import VirtualAudio
from voicecoach.audio.wavfile import resample
from voicecoach.narration.stand_in_voices import FLITE_VOICES, concat, pad, synthesize, write_wav

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
