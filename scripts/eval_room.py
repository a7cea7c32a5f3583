#!/usr/bin/env python3
"""Closed-loop evaluation in the virtual living room: stops over the narration, and false commands on it.

Pass 1 (barge-in): the person says "stop" (real people: Speech Commands speakers held out from the spotter's
training, by its own seeded split) every --every-s seconds over the lower-back routine; the narration echoes at
--echo-db re the person with noise at --snr-db; "resume" is said --auto-resume seconds after each stop, so every stop
is a fresh barge-in. A stop counts as heard when STOP or TOO_MUCH arrives within 1.5 s of the end of the word; latency
is from the end of the word to the command, and to the moment the narration stops reaching the microphone.
Pass 2 (own voice): the whole routine with nobody speaking: every command heard is a false one.

    scripts/eval_room.py --engine auto --echo-db 0 --snr-db 20
Prints tables; exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voicecoach.audio.acoustics import RATE, RoomSettings
from voicecoach.audio.wavfile import read_wav, resample
from voicecoach.core.commands import load_vocabulary
from voicecoach.core.session import Session
from voicecoach.files.library import find_routine
from voicecoach.files.routine_file import load_routine_file
from voicecoach.listening.pipeline import ListeningPipeline
from voicecoach.narration.speech_store import StoredSynthesizer
from voicecoach.narration.stand_in_voices import write_wav
from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer
from voicecoach.runtime.room import RoomRun, run_room
from voicecoach.runtime.transcript import Transcript
from voicecoach.settings import ENGINES, ListeningSettings, NarratorSettings, RecognizerSettings

_ROOT = Path(__file__).resolve().parents[1]
_DATA = _ROOT.parent / "shared" / "data"
_SAFETY = ("stop", "too_much")
_WINDOW_S = 1.5


def held_out_stops(folder: Path, seed: int, limit: int) -> list[Path]:
    """Clips of speakers the spotter's training held out (its seeded split), sorted."""
    from voicecoach.training.sources import held_out

    clips = [p for p in sorted(folder.glob("*.wav")) if held_out(p.name.split("_nohash_")[0], seed)]
    return clips[:limit]


def word_end_s(samples: np.ndarray) -> float:
    """The end of the spoken word: the last 10 ms frame within 30 dB of the loudest and 10 dB over the clip's
    noise floor (its quietest fifth)."""
    frames = samples[: len(samples) - len(samples) % 160].astype(float).reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    floor = float(np.percentile(power, 20))
    loud = np.flatnonzero(power >= max(power.max() * 10 ** (-30 / 10), floor * 10))
    return (loud[-1] + 1) * 160 / RATE


def person_track(clips: list[Path], every_s: float, first_s: float) -> tuple[np.ndarray, list[float]]:
    """The clips laid every every_s seconds from first_s; the track and each word's end."""
    track = np.zeros(round((first_s + every_s * len(clips) + 3) * RATE), np.int16)
    ends = []
    for i, path in enumerate(clips):
        samples, rate = read_wav(path)
        samples = resample(samples, rate, RATE)
        at = round((first_s + i * every_s) * RATE)
        track[at : at + len(samples)] = samples
        ends.append(at / RATE + word_end_s(samples))
    return track, ends


def room_pass(engine: str, person: Path | None, settings: RoomSettings, auto_resume: float | None
              ) -> tuple[Transcript, float, float]:  # fmt: skip
    """The routine in the room; its transcript, the audio seconds and the CPU seconds."""
    vocabulary = load_vocabulary("en")
    pipeline = ListeningPipeline.from_settings(ListeningSettings(RecognizerSettings(engine=engine)), vocabulary)
    voice = NarratorSettings()
    synthesizer = CachedSynthesizer(StoredSynthesizer(Pyttsx3Synthesizer(voice), f"pyttsx3 {voice.voice} "
                                                      f"{voice.rate_wpm} {voice.volume}"))  # fmt: skip
    routine = load_routine_file(find_routine("lower-back"))
    transcript = Transcript()
    cpu = time.process_time()
    room = run_room(Session(routine), vocabulary, pipeline, synthesizer, RoomRun(person, None, auto_resume, settings),
                    transcript)  # fmt: skip
    return transcript, room.position / RATE, time.process_time() - cpu


def barge_in(options: argparse.Namespace) -> None:
    clips = held_out_stops(options.clips, options.train_seed, options.stops)
    track, ends = person_track(clips, options.every_s, options.first_s)
    with tempfile.TemporaryDirectory() as folder:
        path = write_wav(Path(folder) / "person.wav", track, RATE)
        settings = RoomSettings(options.echo_db, options.snr_db, 45.0, options.seed)
        transcript, audio_s, cpu_s = room_pass(options.engine, path, settings, options.auto_resume)
    heard = [r for r in transcript.records if r["kind"] == "heard" and r.get("command")]
    quiet = [r["t"] for r in transcript.records if r["kind"] == "quiet"]
    hits, latency, quiet_latency, used = 0, [], [], set()
    for end in ends:
        match = next((i for i, r in enumerate(heard) if i not in used and r["command"] in _SAFETY
                      and end - 0.3 <= r["t"] <= end + _WINDOW_S), None)  # fmt: skip
        if match is None:
            continue
        used.add(match)
        hits += 1
        latency.append(heard[match]["t"] - end)
        after = [q for q in quiet if q >= heard[match]["t"] - 1e-6]
        if after:
            quiet_latency.append(after[0] - end)
    auto = {i for i, r in enumerate(heard) if r["command"] == "resume" and r.get("text") == "resume"}
    false = [r for i, r in enumerate(heard) if i not in used and i not in auto]
    print(f"## Barge-in: {len(clips)} held-out human stops over the narration, echo {options.echo_db:+g} dB, "
          f"SNR {options.snr_db:g} dB, engine {options.engine}")
    print("| figure | value |\n|---|---|")
    print(f"| stops heard | {hits}/{len(ends)} ({100 * hits / max(1, len(ends)):.1f}%) |")
    if latency:
        print(f"| end of word to command, median / p95 | {1000 * statistics.median(latency):.0f} / "
              f"{1000 * float(np.percentile(latency, 95)):.0f} ms |")
    if quiet_latency:
        median, p95 = statistics.median(quiet_latency), float(np.percentile(quiet_latency, 95))
        print(f"| end of word to narration quiet at the mic, median / p95 | {1000 * median:.0f} / {1000 * p95:.0f} ms |"
              )
    print(f"| other commands heard (false) | {len(false)}: {', '.join(sorted(r['command'] for r in false)) or '-'} |")
    print(f"| CPU of the whole room run (synthesis included) | {cpu_s / audio_s:.3f} x real time, {audio_s:.0f} s |")


def own_voice(options: argparse.Namespace) -> None:
    settings = RoomSettings(options.echo_db, options.snr_db, 45.0, options.seed)
    transcript, audio_s, cpu_s = room_pass(options.engine, None, settings, options.auto_resume)
    heard = [r for r in transcript.records if r["kind"] == "heard" and r.get("command")]
    print(f"\n## Own voice: the whole lower-back routine, nobody speaking, echo {options.echo_db:+g} dB, engine "
          f"{options.engine}")
    print("| figure | value |\n|---|---|")
    print(f"| narration | {audio_s / 60:.1f} min |")
    per_hour = len(heard) * 3600 / audio_s if audio_s else 0.0
    where = ", ".join(f"{r['command']}@{r['t']:.0f}s" for r in heard) or "-"
    print(f"| false commands | {len(heard)} ({per_hour:.1f} an hour): {where} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", default="auto", choices=list(ENGINES))
    parser.add_argument("--echo-db", type=float, default=0.0)
    parser.add_argument("--snr-db", type=float, default=20.0)
    parser.add_argument("--clips", type=Path, default=_DATA / "speech_commands_v2" / "stop")
    parser.add_argument("--stops", type=int, default=40, help="at most this many held-out clips")
    parser.add_argument("--train-seed", type=int, default=1, help="the spotter training's seed (its speaker split)")
    parser.add_argument("--every-s", type=float, default=9.0)
    parser.add_argument("--first-s", type=float, default=7.0)
    parser.add_argument("--auto-resume", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-own-voice", action="store_true")
    options = parser.parse_args(argv)
    if not options.clips.is_dir():
        print(f"eval_room: {options.clips} is missing (it is in ../shared/data, beside the project)", file=sys.stderr)
        return 2
    barge_in(options)
    if not options.skip_own_voice:
        own_voice(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
