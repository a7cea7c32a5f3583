"""The speaker's playback log (the echo canceller's reference) follows the device when it falls behind.

The real Speaker runs on a fake stream: the test plays the PortAudio thread, calling the callback with the DAC times
a device would report, including an underrun that delays the rest of the buffer.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from voicecoach.audio import speaker as speaker_module
from voicecoach.audio.speaker import Speaker

RATE = 48000
FRAMES = 256


class FakeStream:
    latency = 0.01

    def start(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def speaker(monkeypatch: pytest.MonkeyPatch) -> Speaker:
    monkeypatch.setattr(speaker_module, "open_stream", lambda *args, **kwargs: FakeStream())
    monkeypatch.setattr(speaker_module, "callback_monotonic", lambda dac_s, now_s: dac_s)  # the device's DAC clock
    return Speaker(sample_rate=RATE, block_frames=FRAMES)


def callback(speaker: Speaker, dac_s: float) -> np.ndarray:
    """One PortAudio callback whose first frame is due at dac_s (monotonic); what it wrote."""
    out = np.zeros((FRAMES, 1), dtype=np.int16)
    times = SimpleNamespace(outputBufferDacTime=dac_s, currentTime=0.0)
    speaker._callback(out, FRAMES, times, SimpleNamespace(output_underflow=False))
    return out[:, 0].copy()


def test_an_underrun_is_logged_as_silence_where_the_device_fell_behind(speaker: Speaker) -> None:
    samples = (np.arange(20 * FRAMES) % 2000 - 1000).astype(np.int16)
    speaker.play(samples, RATE)
    start_s = speaker_module.time.monotonic() + 0.02
    for block in range(10):
        callback(speaker, start_s + block * FRAMES / RATE)
    late_s = start_s + 10 * FRAMES / RATE + 0.3  # the device stalled 300 ms, then went on with frame 10 * FRAMES
    for block in range(10):
        callback(speaker, late_s + block * FRAMES / RATE)
    (entry,) = speaker.played()
    gap = round((late_s - start_s) * RATE) - 10 * FRAMES
    assert entry.start_s == pytest.approx(start_s, abs=1e-3) and not entry.aborted
    assert entry.stalled_s == pytest.approx(gap / RATE)
    assert gap == round(0.3 * RATE)
    assert np.array_equal(entry.samples[: 10 * FRAMES], samples[: 10 * FRAMES])
    assert not entry.samples[10 * FRAMES : 10 * FRAMES + gap].any(), "the stall is silence"
    assert np.array_equal(entry.samples[10 * FRAMES + gap :], samples[10 * FRAMES :])


def test_small_timing_jitter_is_no_gap_and_an_abort_cuts_after_the_gap(speaker: Speaker) -> None:
    samples = np.full(40 * FRAMES, 500, dtype=np.int16)
    speaker.play(samples, RATE)
    start_s = speaker_module.time.monotonic() + 0.02
    jitter = np.random.default_rng(3).uniform(-0.003, 0.003, 8)
    for block in range(8):
        callback(speaker, start_s + block * FRAMES / RATE + jitter[block])
    late_s = start_s + 8 * FRAMES / RATE + 0.1
    for block in range(4):
        callback(speaker, late_s + block * FRAMES / RATE)
    (entry,) = speaker.played()
    gap = len(entry.samples) - 12 * FRAMES
    assert abs(gap - round(0.1 * RATE)) <= 0.004 * RATE, "jitter under 10 ms is no gap; the 100 ms stall is"
    speaker_module.time.sleep(max(0.0, late_s + 0.005 - speaker_module.time.monotonic()))
    speaker.abort()
    (cut,) = speaker.played()
    assert cut.aborted and cut.start_s == entry.start_s
    after_gap = len(cut.samples) - 8 * FRAMES - gap
    assert 0 < after_gap <= 4 * FRAMES and cut.samples[-1] == 500


class RunningStream(FakeStream):
    """A stream that stays active once started, and counts its starts and aborts."""

    def __init__(self) -> None:
        self.active = False
        self.starts = 0
        self.aborts = 0

    def start(self) -> None:
        self.active = True
        self.starts += 1

    def abort(self) -> None:
        self.active = False
        self.aborts += 1


def test_buffers_follow_on_one_running_stream_and_a_stop_silences_it_without_restarting(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # Restarting the stream for every utterance (or after every stop) shifts the true output delay a little each
    # time, and each shift undoes the echo canceller's learning: one stream runs on, and silence is sent instead.
    stream = RunningStream()
    monkeypatch.setattr(speaker_module, "open_stream", lambda *args, **kwargs: stream)
    monkeypatch.setattr(speaker_module, "callback_monotonic", lambda dac_s, now_s: dac_s)
    speaker = Speaker(sample_rate=RATE, block_frames=FRAMES)
    first = np.full(4 * FRAMES, 300, dtype=np.int16)
    speaker.play(first, RATE)
    start_s = speaker_module.time.monotonic() + 0.01
    for block in range(6):  # the buffer, then silence
        callback(speaker, start_s + block * FRAMES / RATE)
    assert speaker.wait(timeout_s=1.0)
    assert (stream.starts, stream.aborts) == (1, 1)  # play() aborts an inactive stream before starting it
    second = np.full(40 * FRAMES, -300, dtype=np.int16)
    speaker.play(second, RATE)
    assert (stream.starts, stream.aborts) == (1, 1), "a follow-on buffer restarted the stream"
    for block in range(6, 9):
        wrote = callback(speaker, start_s + block * FRAMES / RATE)
        assert np.all(wrote == -300), "the running stream plays the next buffer from its next block"
    speaker.abort()  # the stop: silence from the next block, on the same stream
    assert np.all(callback(speaker, start_s + 9 * FRAMES / RATE) == 0)
    assert (stream.starts, stream.aborts) == (1, 1) and stream.active
    logged = speaker.played()
    assert [len(b.samples) for b in logged] == [4 * FRAMES, 3 * FRAMES], "what was handed over is heard and logged"
    assert logged[1].aborted and logged[1].start_s == pytest.approx(start_s + 6 * FRAMES / RATE)
    assert not speaker.wait(timeout_s=0.1)
    speaker.play(first, RATE)  # after a stop, the next utterance goes on the same stream too
    assert np.all(callback(speaker, start_s + 10 * FRAMES / RATE) == 300)
    assert (stream.starts, stream.aborts) == (1, 1)
    speaker.close()
    assert stream.aborts == 2 and not stream.active


def test_dac_times_drifting_from_the_count_do_not_move_the_log_but_a_jump_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Live the DAC times drift about 300 ppm from the frame count while the audio stays locked to the mic's: a
    # bound on the total drift re-anchored every 35 s and moved the echo path 10 ms under the canceller.
    monkeypatch.setattr(speaker_module, "open_stream", lambda *args, **kwargs: RunningStream())
    monkeypatch.setattr(speaker_module, "callback_monotonic", lambda dac_s, now_s: dac_s)
    speaker = Speaker(sample_rate=RATE, block_frames=FRAMES)
    start_s = speaker_module.time.monotonic() + 0.02
    blocks = 20 * RATE // FRAMES  # 20 s of callbacks
    drift_s = -3000e-6 * np.arange(2 * blocks + 2) * FRAMES / RATE  # 60 ms over the 20 s (300 ppm live: 200 s)
    jitter_s = np.random.default_rng(8).uniform(-0.002, 0.002, 2 * blocks + 2)
    sentence = np.full((blocks - 2) * FRAMES, 700, dtype=np.int16)
    speaker.play(sentence, RATE)
    for block in range(blocks):
        callback(speaker, start_s + block * FRAMES / RATE + drift_s[block] + jitter_s[block])
    speaker.play(sentence, RATE)
    for block in range(blocks, blocks + 10):
        callback(speaker, start_s + block * FRAMES / RATE + drift_s[block] + jitter_s[block])
    late_s = 0.03  # an underrun: from here the device plays 30 ms later than the drift says
    for block in range(blocks + 10, 2 * blocks):
        callback(speaker, start_s + block * FRAMES / RATE + drift_s[block] + jitter_s[block] + late_s)
    speaker.play(sentence[: 4 * FRAMES], RATE)
    callback(speaker, start_s + 2 * blocks * FRAMES / RATE + drift_s[2 * blocks] + jitter_s[2 * blocks] + late_s)
    first, second, third = speaker.played()[-3:]
    assert first.start_s == start_s + jitter_s[0]
    assert second.start_s == pytest.approx(first.start_s + blocks * FRAMES / RATE, abs=1e-9), (
        "60 ms of slow drift leaves the next buffer on the frame count"
    )
    assert third.start_s == pytest.approx(first.start_s + 2 * blocks * FRAMES / RATE + late_s, abs=0.003), (
        "the underrun moves the count by its own length, the drift still not followed"
    )
    assert second.stalled_s == pytest.approx(late_s, abs=0.003), "and is logged as silence where it began"


def test_one_callbacks_dac_time_far_off_moves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speaker_module, "open_stream", lambda *args, **kwargs: RunningStream())
    monkeypatch.setattr(speaker_module, "callback_monotonic", lambda dac_s, now_s: dac_s)
    speaker = Speaker(sample_rate=RATE, block_frames=FRAMES)
    start_s = speaker_module.time.monotonic() + 0.02
    speaker.play(np.full(30 * FRAMES, 700, dtype=np.int16), RATE)
    for block in range(30):
        callback(speaker, start_s + block * FRAMES / RATE + (0.025 if block == 12 else 0.0))
    (entry,) = speaker.played()[-1:]
    assert entry.start_s == start_s and entry.stalled_s == 0.0, "a glitch in one callback's DAC time is no underrun"
    speaker.play(np.full(4 * FRAMES, 700, dtype=np.int16), RATE)
    callback(speaker, start_s + 30 * FRAMES / RATE)
    assert speaker.played()[-1].start_s == pytest.approx(start_s + 30 * FRAMES / RATE, abs=1e-9)


def test_buffers_on_a_running_stream_are_stamped_by_its_frame_count_not_by_one_callbacks_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(speaker_module, "open_stream", lambda *args, **kwargs: RunningStream())
    monkeypatch.setattr(speaker_module, "callback_monotonic", lambda dac_s, now_s: dac_s)
    speaker = Speaker(sample_rate=RATE, block_frames=FRAMES)
    jitter = np.random.default_rng(5).uniform(-0.002, 0.002, 40)
    start_s = speaker_module.time.monotonic() + 0.02
    sentence = np.full(10 * FRAMES, 700, dtype=np.int16)
    speaker.play(sentence, RATE)
    for block in range(12):  # the sentence, then two blocks of silence on the same stream
        callback(speaker, start_s + block * FRAMES / RATE + jitter[block])
    speaker.play(sentence, RATE)  # the next sentence follows on the running stream
    for block in range(12, 24):
        callback(speaker, start_s + block * FRAMES / RATE + jitter[block])
    first, second = speaker.played()
    assert first.start_s == start_s + jitter[0]  # the first callback anchors the stream's clock
    assert second.start_s == pytest.approx(first.start_s + 12 * FRAMES / RATE, abs=1e-9), (
        "the second buffer is placed by the frame count, its own callback's 2 ms of jitter ignored"
    )


def test_turn_down_lowers_the_buffer_playing_and_every_later_one_and_fades_are_relative_to_it(speaker: Speaker) -> None:
    samples = np.full(40 * FRAMES, 10000, np.int16)
    speaker.play(samples, RATE)
    start_s = speaker_module.time.monotonic() + 0.02
    out = [callback(speaker, start_s + block * FRAMES / RATE) for block in range(4)]
    speaker.turn_down(6.0)
    assert speaker.level_db == pytest.approx(-6.0)
    out += [callback(speaker, start_s + block * FRAMES / RATE) for block in range(4, 8)]
    speaker.fade(-20.0)
    out += [callback(speaker, start_s + block * FRAMES / RATE) for block in range(8, 12)]
    speaker.fade(0.0)  # back to the turned-down level, not to full scale
    out += [callback(speaker, start_s + block * FRAMES / RATE) for block in range(12, 16)]
    written = np.concatenate(out)
    half, faded = round(10000 * 10 ** (-6 / 20)), round(10000 * 10 ** (-26 / 20))
    assert [int(written[i * FRAMES - 1]) for i in (4, 8, 12, 16)] == [10000, half, faded, half]
    (entry,) = speaker.played()
    assert np.array_equal(entry.samples[: len(written)], written), "the log (the canceller's reference) is what played"
    speaker.play(samples, RATE)  # the next utterance starts at the level
    later = [callback(speaker, start_s + 1.0 + block * FRAMES / RATE) for block in range(2)]
    assert int(later[1][-1]) == half
