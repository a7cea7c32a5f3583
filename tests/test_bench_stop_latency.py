"""The stop-latency bench's two measurements: where the word ends in the microphone, where the narration was cut."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from tests.support.scripts import load_script

RATE = 16000


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_stop_latency")


def _words(rng: np.random.Generator, rate: int, pattern: list[tuple[float, float]]) -> np.ndarray:
    """Noise "words" (on, off seconds in turn), about -12 dBFS while on, digital silence between."""
    out = []
    for on_s, off_s in pattern:
        word = rng.normal(0, 8000, int(on_s * rate)) * np.hanning(int(on_s * rate)) ** 0.2
        out += [word, np.zeros(int(off_s * rate))]
    return np.clip(np.concatenate(out), -32768, 32767).astype(np.int16)


def test_a_clip_under_as_loud_a_narration_is_found_to_the_millisecond(bench: ModuleType) -> None:
    rng = np.random.default_rng(3)
    clip = _words(rng, RATE, [(0.4, 0.3)])
    narration = _words(rng, RATE, [(0.5, 0.1)] * 6).astype(np.float64)
    mic = narration.copy()
    at = int(0.737 * RATE)
    mic[at : at + len(clip)] += clip
    found = bench.locate_clip(mic, 10.0, clip, 0.4, RATE)
    assert found == pytest.approx(10.0 + 0.737 + 0.4, abs=0.001)
    assert bench.locate_clip(narration, 10.0, clip, 0.4, RATE) is None  # not there: no guess


def test_a_cut_inside_a_word_is_bracketed_within_a_frame(bench: ModuleType) -> None:
    rate = 48000
    rng = np.random.default_rng(4)
    sentence = _words(rng, rate, [(0.3, 0.1), (0.5, 0.2), (0.4, 0.1)])
    monitor = np.zeros(3 * rate, np.int16)
    at = int(0.5 * rate)  # the sentence is due 0.5 s into the recording (the speaker's log says 0.498)
    cut = int(0.6 * rate)  # inside the second word (0.4 to 0.9 s)
    monitor[at : at + cut] = (sentence[:cut] * 0.5).astype(np.int16)
    lo, hi = bench.cut_bracket(monitor, 100.0, rate, sentence, 100.498, 102.5)
    assert lo == pytest.approx(100.0 + 0.5 + 0.6, abs=0.006)
    assert hi == pytest.approx(100.0 + 0.5 + 0.6, abs=0.006)


def test_a_cut_in_a_pause_is_bracketed_by_the_words_around_it_and_a_fade_counts_as_silence(bench: ModuleType) -> None:
    rate = 48000
    rng = np.random.default_rng(5)
    sentence = _words(rng, rate, [(0.3, 0.2), (0.5, 0.1)])
    monitor = np.zeros(2 * rate, np.int16)
    cut = int(0.4 * rate)  # in the pause from 0.3 to 0.5 s
    monitor[:cut] = sentence[:cut]
    monitor[cut : len(sentence)] = (sentence[cut:] * 10 ** (-25 / 20)).astype(np.int16)  # faded 25 dB, not cut
    lo, hi = bench.cut_bracket(monitor, 0.0, rate, sentence, 0.1, 1.9)
    assert lo == pytest.approx(0.3, abs=0.006)
    assert hi == pytest.approx(0.5, abs=0.006)


def test_a_monitor_that_does_not_hold_the_sentence_is_not_measured(bench: ModuleType) -> None:
    rate = 48000
    rng = np.random.default_rng(6)
    sentence = _words(rng, rate, [(0.5, 0.1)] * 3)
    other = _words(rng, rate, [(0.5, 0.1)] * 4)
    assert isinstance(bench.cut_bracket(other, 0.0, rate, sentence, 0.1, 2.0), str)


def test_a_fade_the_narrator_came_back_from_is_not_the_cut(bench: ModuleType) -> None:
    """Yielding the floor to a sound that was no command: faded a moment, back to full level, then cut for good."""
    rate = 48000
    rng = np.random.default_rng(7)
    sentence = _words(rng, rate, [(0.6, 0.1)] * 4)
    monitor = np.zeros(4 * rate, np.int16)
    monitor[: len(sentence)] = sentence
    fade, back, cut = int(0.1 * rate), int(0.6 * rate), int(1.6 * rate)  # faded half a second: most of a word
    monitor[fade:back] = (sentence[fade:back] * 10 ** (-25 / 20)).astype(np.int16)
    monitor[cut:] = 0
    lo, hi = bench.cut_bracket(monitor, 0.0, rate, sentence, 0.1, 3.5)
    assert lo == pytest.approx(1.6, abs=0.006)
    assert hi == pytest.approx(1.6, abs=0.006)


@pytest.mark.engine
def test_narration_only_reads_the_routine_through_the_virtual_devices_and_counts_what_it_heard(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--narration-only: the real narrator, devices and listener, nobody speaking; it reports the speech it played
    and every command heard (each one false), and with --save-cleaned keeps what the echo canceller left, which
    `voicecoach listen --wav` scores again."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from voicecoach.audio.wavfile import read_wav

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_stop_latency.py"
    cleaned = tmp_path / "cleaned.wav"
    result = subprocess.run([sys.executable, str(script), "--narration-only", "8", "--echo-db", "0", "--save-cleaned",
                             str(cleaned)], capture_output=True, text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    head = re.search(r"narration only, lower-back routine, engine auto, echo \+0 dB: ([\d.]+) min of routine, "
                     r"([\d.]+) min of narrator speech", result.stdout)  # fmt: skip
    assert head and float(head.group(1)) >= 0.1 and float(head.group(2)) > 0.0, result.stdout
    found = re.search(r"false commands: (\d+) ", result.stdout)
    assert found and len(re.findall(r"^  false ", result.stdout, re.M)) == int(found.group(1))
    assert "of real time" in result.stdout
    samples, rate = read_wav(cleaned)
    assert rate == 16000 and len(samples) >= 0.8 * float(head.group(1)) * 60 * rate, (len(samples), result.stdout)
    assert np.abs(samples.astype(np.int32)).max() > 30  # the narrator's residue, not silence alone
    again = subprocess.run([sys.executable, "-m", "voicecoach", "listen", "--wav", str(cleaned)], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    bad = subprocess.run([sys.executable, str(script), "--narration-only", "1", "--save-cleaned",
                          str(tmp_path / "no" / "such.wav")], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "there is no folder" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.engine
def test_fresh_rig_opens_a_new_rig_for_each_trial_and_reports_every_trial() -> None:
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_stop_latency.py"
    result = subprocess.run([sys.executable, str(script), "--trials", "2", "--echo-db", "0", "--fresh-rig"],
                            capture_output=True, text=True, timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(re.findall(r"^trial +\d+: ", result.stdout, re.M)) == 2, result.stdout
    summary = re.search(r"engine auto, a new rig a trial, echo 0.0 dB: (\d)/2 stops heard", result.stdout)
    assert summary, result.stdout
    # Each rig's listener thread was counted: CPU over the whole bench, not the last rig's alone.
    cpu = re.search(r"listener CPU: ([\d.]+) s over ([\d.]+) s", result.stdout)
    assert cpu and float(cpu.group(1)) > 0.02 * float(cpu.group(2)), result.stdout


def test_the_room_mark_keeps_the_quiet_release_the_bench_mark_leaves_out(bench: ModuleType, capsys) -> None:  # type: ignore[no-untyped-def]
    from voicecoach.audio.acoustics import speech_bounds

    rng = np.random.default_rng(5)
    vowel = rng.normal(0, 8000, int(0.3 * RATE))
    release = rng.normal(0, 8000 * 10 ** (-20 / 20), int(0.08 * RATE))  # a /p/ 20 dB under the vowel
    noise = rng.normal(0, 8, int(0.2 * RATE))
    spoken = np.concatenate([noise, vowel, np.zeros(int(0.05 * RATE)), release, noise])
    bench_end = bench.word_end_s(spoken)
    room_start, room_end = speech_bounds(spoken)
    assert bench_end == pytest.approx(0.5, abs=0.011)  # the vowel's end
    assert room_end == pytest.approx(0.63, abs=0.011)  # the release's end
    assert room_start == pytest.approx(0.2, abs=0.011)
    # The report gives the latencies from both marks.
    trial = bench.Trial(word_end_s=10.0, silent_s=10.3, last_heard_s=10.25, heard=True, stopped_s=10.2,
                        room_mark_s=room_end - bench_end)  # fmt: skip
    bench._print_room_mark([trial, bench.Trial(heard=False)])
    out = capsys.readouterr().out
    assert "a median 130 ms later): silence median 170 ms" in out, out
    assert "decision median 70 ms" in out, out


def test_missed_clips_are_named_with_how_often_each_was_played(bench: ModuleType, capsys) -> None:  # type: ignore[no-untyped-def]
    trials = [bench.Trial(heard=False, clip="a_nohash_0.wav"), bench.Trial(heard=True, clip="b_nohash_0.wav"),
              bench.Trial(heard=False, clip="a_nohash_0.wav"), bench.Trial(heard=True, clip="c_nohash_1.wav"),
              bench.Trial(heard=False, clip="c_nohash_1.wav"),
              bench.Trial(heard=False, clip="b_nohash_0.wav", false_stop="too much")]  # fmt: skip
    bench._print_missed(trials)
    assert capsys.readouterr().out.strip() == "missed, by clip: a_nohash_0.wav 2 of 2, c_nohash_1.wav 1 of 2"
