"""Measure how fast Speaker.abort() silences the speaker, through real PortAudio and a virtual PulseAudio speaker.

Each trial plays a 1 kHz tone, aborts it after a random 0.25 to 0.6 s, and measures from the abort() call to the
tone's last loud sample in two recordings of the speaker (spk.monitor), each put on the time.monotonic() clock its
own way: an in-process PortAudio capture by its ADC times (independent of the speaker), and a parecord recording
through the speaker's playback log (the DAC time of each buffer's first sample). Needs pulseaudio,
pulseaudio-utils, libportaudio2 and libasound2-plugins.

    .venv/bin/python scripts/bench_stop_cut.py [--trials 20]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicecoach.audio.speaker import PlayedBuffer, Speaker  # noqa: E402
from voicecoach.audio.virtual_server import (  # noqa: E402
    SPEAKER_RATE,
    MonitorCapture,
    VirtualAudio,
    first_loud,
    last_loud,
    recording_start_s,
)

_TONE_HZ = 1000.0
_PEAK = 8000
_LOUD = 2000
"""A sample above this is the tone (its peak is 8000; silence is 0)."""
_SEARCH_S = 0.05
"""How far from where the log puts it a buffer's onset is looked for in the recording."""
_WINDOW_S = 0.3
"""After an abort, how long the tone's end is looked for (the next tone starts 0.35 s after it)."""


@dataclass(frozen=True)
class Trial:
    """One abort."""

    abort_s: float
    """time.monotonic() just before abort() was called."""
    call_ms: float
    """How long abort() took to return."""


def run_trials(speaker: Speaker, trials: int, rng: random.Random) -> list[Trial]:
    """Play and abort a tone `trials` times."""
    tone = np.round(_PEAK * np.sin(2 * np.pi * _TONE_HZ * np.arange(3 * SPEAKER_RATE) / SPEAKER_RATE))
    done = []
    for _ in range(trials):
        speaker.play(tone.astype(np.int16), SPEAKER_RATE)
        time.sleep(rng.uniform(0.25, 0.6))
        abort_s = time.monotonic()
        speaker.abort()
        done.append(Trial(abort_s, (time.monotonic() - abort_s) * 1e3))
        time.sleep(0.35)
    return done


def log_aligned_start_s(samples: np.ndarray, rate: int, played: list[PlayedBuffer]) -> tuple[float, float]:
    """time.monotonic() of a recording's first sample, from the playback log (median over buffers); and its spread."""
    first_s = recording_start_s(samples, rate, played[0], _LOUD)
    starts_s = []
    for entry in played:
        predicted = round((entry.start_s - first_s) * rate)
        onset = first_loud(samples, _LOUD, max(0, predicted - round(_SEARCH_S * rate)))
        if onset is None or abs(onset - predicted) > _SEARCH_S * rate:
            raise SystemExit(f"buffer at {entry.start_s:.3f} s not found in the recording")
        starts_s.append(entry.start_s - onset / rate)
    return statistics.median(starts_s), max(starts_s) - min(starts_s)


def cuts_ms(samples: np.ndarray, rate: int, start_s: float, trials: list[Trial]) -> list[float]:
    """Per trial: from the abort() call to the tone's last loud sample, in ms."""
    found = []
    for trial in trials:
        around = round((trial.abort_s - start_s) * rate)
        last = last_loud(samples, _LOUD, max(0, around - round(0.2 * rate)), around + round(_WINDOW_S * rate))
        if last is None:
            raise SystemExit(f"the tone aborted at {trial.abort_s:.3f} s is not in the recording")
        found.append((start_s + last / rate - trial.abort_s) * 1e3)
    return found


def report(trials: list[Trial], by_capture: list[float], by_log: list[float], spread_ms: float) -> None:
    """Print each trial and the summary."""
    print("trial  abort() returned  last sound after the call: capture / parecord+log")
    for number, (trial, cut, logged) in enumerate(zip(trials, by_capture, by_log, strict=True), start=1):
        print(f"{number:5d}  {trial.call_ms:13.1f} ms  {cut:21.1f} ms / {logged:.1f} ms")
    calls = [t.call_ms for t in trials]
    print(f"abort() call: median {statistics.median(calls):.1f} ms, worst {max(calls):.1f} ms")
    median_ms, worst_ms = statistics.median(by_capture), max(by_capture)
    print(f"abort() to silence, in-process capture of spk.monitor (ADC times): median {median_ms:.1f} ms, "
          f"worst {worst_ms:.1f} ms over {len(trials)} trials")  # fmt: skip
    print(
        f"abort() to silence, parecord aligned by the playback log: median {statistics.median(by_log):.1f} ms, "
        f"worst {max(by_log):.1f} ms (alignment spread {spread_ms:.1f} ms; the log's DAC times run a few ms early)"
    )


def main() -> int:
    """Run the benchmark and print what it measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    audio = VirtualAudio(Path(tempfile.mkdtemp(prefix="vc-bench-")))
    audio.start()
    try:
        with Speaker(sample_rate=SPEAKER_RATE) as speaker:
            recording, capture = audio.start_recording("bench"), MonitorCapture()
            trials = run_trials(speaker, args.trials, random.Random(args.seed))
            time.sleep(0.2)
            captured, rate, captured_start_s = capture.stop()
            recorded, _ = recording.stop_and_read()
            played = speaker.played()[-len(trials) :]
            print(f"speaker: {rate} Hz, PortAudio output latency {speaker.latency_s * 1e3:.1f} ms, "
                  f"underflows {speaker.underflows}")  # fmt: skip
    finally:
        audio.stop()
        shutil.rmtree(audio.root, ignore_errors=True)
    recorded_start_s, spread_s = log_aligned_start_s(recorded, rate, played)
    by_capture = cuts_ms(captured, rate, captured_start_s, trials)
    by_log = cuts_ms(recorded, rate, recorded_start_s, trials)
    report(trials, by_capture, by_log, spread_s * 1e3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
