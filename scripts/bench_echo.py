#!/usr/bin/env python3
"""Measure the Speex echo canceller: ERLE and CPU per 10 ms frame, by filter length, with and without suppression.

Scenes are the synthetic ones of voicecoach.echo.scenes (speech-like reference, echo delayed and through a 50 ms room,
noise 45 dB down); with espeak-ng installed, a synthesized narration is measured as the reference too.
Run: .venv/bin/python scripts/bench_echo.py [--trials N]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import time
import wave
from dataclasses import dataclass

import numpy as np

from voicecoach.echo.aligner import AlignerSettings, ReferenceAligner
from voicecoach.echo.delay import estimate_delay
from voicecoach.echo.scenes import BLOCK, RATE, EchoScene, echo_scene, energy_db, to_int16
from voicecoach.echo.speex import EchoSettings, SpeexEchoCanceller

_FILTERS_MS = (100, 200, 400)
_DELAYS_S = (0.012, 0.037, 0.075)
_SCENE_S = 10.0
_EARLY_S = (1.0, 3.0)
"""Window showing how fast the filter converges."""
_CONVERGED_S = 3.0
_FRAME_S = 0.01
_NARRATION = (
    "Lie on your back with your knees bent. Slowly bring your right knee towards your chest. "
    "Hold it there and breathe. Twenty seconds. Now lower it gently, and switch to the left side."
)


@dataclass(frozen=True)
class Row:
    """One configuration's figures."""

    erle_db: float
    """Median ERLE after convergence over the synthetic scenes."""
    early_erle_db: float
    """Median ERLE in the early window."""
    espeak_erle_db: float | None
    cpu_ms_per_frame: float
    """Median thread CPU time per 10 ms frame."""


def run_canceller(scene: EchoScene, settings: EchoSettings) -> tuple[np.ndarray, float]:
    """The cancelled mic (latency removed) and the thread CPU seconds per 10 ms frame."""
    blocks = []
    with SpeexEchoCanceller(settings) as canceller:
        started = time.thread_time()
        for i in range(0, len(scene.mic), BLOCK):
            blocks.append(canceller.process(scene.mic[i : i + BLOCK], scene.reference[i : i + BLOCK]))
        cpu_s = time.thread_time() - started
        latency = canceller.latency_samples
    out = np.concatenate(blocks).astype(np.float64)
    frames = len(scene.mic) / (_FRAME_S * RATE)
    return np.concatenate([out[latency:], np.zeros(latency)]), cpu_s / frames


def erle(scene: EchoScene, out: np.ndarray, start_s: float, end_s: float | None = None) -> float:
    """mic power over output power between two times, in dB."""
    span = slice(round(start_s * RATE), None if end_s is None else round(end_s * RATE))
    return energy_db(scene.mic[span]) - energy_db(out[span])


def espeak_narration() -> np.ndarray | None:
    """The narration synthesized by espeak-ng, at 16 kHz, repeated to the scene length (None without espeak-ng)."""
    if shutil.which("espeak-ng") is None:
        return None
    wav = subprocess.run(["espeak-ng", "--stdout", _NARRATION], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    import soxr

    resampled = np.asarray(soxr.resample(samples, rate, RATE), dtype=np.float64)
    return np.resize(resampled, round(_SCENE_S * RATE))


def measure(settings: EchoSettings, scenes: list[EchoScene], espeak: list[EchoScene]) -> Row:
    """Figures for one configuration."""
    erles, early, cpus = [], [], []
    for scene in scenes:
        out, cpu = run_canceller(scene, settings)
        erles.append(erle(scene, out, _CONVERGED_S))
        early.append(erle(scene, out, *_EARLY_S))
        cpus.append(cpu)
    espeak_erles = [erle(scene, run_canceller(scene, settings)[0], _CONVERGED_S) for scene in espeak]
    espeak_db = statistics.median(espeak_erles) if espeak_erles else None
    return Row(statistics.median(erles), statistics.median(early), espeak_db, statistics.median(cpus) * 1e3)


def bench_canceller(trials: int) -> None:
    """The ERLE / CPU table."""
    scenes = [echo_scene(seed, _SCENE_S, delay, echo_db)
              for seed in range(trials) for delay in _DELAYS_S for echo_db in (-6.0, 0.0)]  # fmt: skip
    narration = espeak_narration()
    espeak = [] if narration is None else [echo_scene(seed, _SCENE_S, 0.037, -6.0, reference=narration)
                                           for seed in range(trials)]  # fmt: skip
    delays = ", ".join(f"{delay_s * 1e3:.0f}" for delay_s in _DELAYS_S)
    print(f"{len(scenes)} synthetic scenes of {_SCENE_S:.0f} s (delays {delays} ms, echo -6 and 0 dB); "
          f"espeak-ng narration: {f'{len(espeak)} scenes' if espeak else 'not installed'}")  # fmt: skip
    print(f"{'filter':>7} {'suppression':>11} {'ERLE 3-10 s':>12} {'ERLE 1-3 s':>11} {'ERLE espeak':>12} "
          f"{'CPU/10 ms':>10}")  # fmt: skip
    for filter_ms in _FILTERS_MS:
        for suppression in (False, True):
            row = measure(EchoSettings(filter_ms=filter_ms, residual_suppression=suppression), scenes, espeak)
            espeak_text = "-" if row.espeak_erle_db is None else f"{row.espeak_erle_db:.1f} dB"
            print(f"{filter_ms:>4} ms {'on' if suppression else 'off':>11} {row.erle_db:>9.1f} dB "
                  f"{row.early_erle_db:>8.1f} dB {espeak_text:>12} {row.cpu_ms_per_frame:>7.3f} ms")  # fmt: skip


def bench_alignment(trials: int) -> None:
    """Delay estimation accuracy and cost, and the aligner's cost per 20 ms block."""
    errors_ms, costs_ms = [], []
    for seed in range(trials):
        for delay_s in _DELAYS_S + (0.2, 0.4):
            scene = echo_scene(seed, 3.0, delay_s)
            started = time.thread_time()
            found_s, _ = estimate_delay(scene.mic, scene.reference, RATE)
            costs_ms.append((time.thread_time() - started) * 1e3)
            errors_ms.append(abs(found_s - delay_s) * 1e3)
    print(f"estimate_delay on 3 s: error median {statistics.median(errors_ms):.3f} ms, max {max(errors_ms):.3f} ms; "
          f"CPU median {statistics.median(costs_ms):.1f} ms")  # fmt: skip
    for speaker_rate in (16000, 48000):
        for fixed in (0.05, None):
            cost = aligner_cost_ms(speaker_rate, fixed)
            label = "fixed delay" if fixed is not None else "estimating every 1 s"
            print(f"ReferenceAligner, {speaker_rate} Hz speaker, {label}: {cost:.3f} ms CPU per 20 ms block")


def aligner_cost_ms(speaker_rate: int, delay_s: float | None) -> float:
    """Thread CPU ms per 20 ms mic block for a growing playback log, as a live listener drives it."""
    played = to_int16(np.random.default_rng(0).standard_normal(speaker_rate * 10) * 3000)
    aligner = ReferenceAligner(AlignerSettings(delay_s=delay_s))
    silence = np.zeros(BLOCK, dtype=np.int16)
    blocks = range(0, 10 * RATE - BLOCK, BLOCK)
    started = time.thread_time()
    for i in blocks:
        aligner.add_played(100.0, played[: round((i / RATE + 0.03) * speaker_rate)], speaker_rate)
        aligner.align(silence, 100.0 + i / RATE)
    return (time.thread_time() - started) * 1e3 / len(blocks)


def main() -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="seeds per delay and echo level (default 3)")
    args = parser.parse_args()
    bench_canceller(args.trials)
    bench_alignment(args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
