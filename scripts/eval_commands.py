#!/usr/bin/env python3
"""Evaluate the commands in the closed-loop living room: the product's room (voicecoach/runtime/room.py), the
product's narrator audio and its one listening pipeline, on virtual time, faster than real time.

Closed loop: a person's recording is laid out from clips (held-out speakers of ../shared/data, by the spotter's own
seeded split; held-out synthetic voices saying every command; any `<word>/*.wav` folder, where words that are not
commands are distractors) and goes into the room with the lower-back routine, exactly as `voicecoach run lower-back
--room --person WAV --auto-resume S --echo-db DB --snr-db DB --seed N` does: the narration echoes at DB re the
person, the session reacts (a stop cuts the narration, a rising stop score fades it), and "resume" follows every
stop. The clips are cut into runs of about --chunk-s seconds, each a fresh session (the routine starting at another
exercise each time; an "end workout" clip is always the last of its run).
Narration only: the whole routine in the room with nobody speaking, at each --narration-echo level: every command is
false.

    scripts/eval_commands.py                                  # spotter (auto): quiet, -6/20, 0/20, +6/20 and narration
    scripts/eval_commands.py --engine auto --engine pocketsphinx --jobs 2 --json /tmp/eval_out/room.json
    scripts/eval_commands.py --conditions 0/20 --words stop --no-tts   # human stops only (eval_room.py is this)
    scripts/eval_commands.py --engine vosk --model DIR --language ko --quick
    scripts/eval_commands.py --quick                          # a few clips, a few seconds of narration

A condition is "quiet" (the speaker muted, no noise) or ECHO_DB/SNR_DB ("0/20": echo as loud as the person, noise
20 dB under the person). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from voicecoach.audio.acoustics import RATE, RoomSettings, active_level, speech_bounds  # noqa: E402
from voicecoach.audio.wavfile import read_wav, resample  # noqa: E402
from voicecoach.core.commands import Vocabulary, load_vocabulary  # noqa: E402
from voicecoach.core.events import Command  # noqa: E402
from voicecoach.settings import YieldSettings  # noqa: E402

_DATA = _ROOT.parent / "shared" / "data"
_HEAD = _ROOT / "voicecoach" / "listening" / "spotter" / "head.npz"
_PERSON_LEVEL = 3000.0
"""Active speech level every clip is brought to: the room's reference level when there is no person."""
_WINDOW_S = 2.0
"""A command up to this long after a clip's word ends belongs to that clip."""
_GAP_S = (3.2, 5.0)
"""Seconds from one clip's end to the next one's start (seeded, random in this range)."""
_FIRST_S = 6.0
"""Where the first clip of a run starts (the narrator has begun the introduction)."""
_QUIET_DB = -20.0
"""A fade at least this deep counts as quiet."""


# --- conditions and clips ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """The room: the narrator's echo re the person and the noise; echo None is the quiet room (speaker muted)."""

    echo_db: float | None
    snr_db: float | None

    @property
    def label(self) -> str:
        """'quiet' or 'echo +0 dB, SNR 20 dB'."""
        if self.echo_db is None:
            return "quiet" if self.snr_db is None else f"no narration, SNR {self.snr_db:g} dB"
        return f"echo {self.echo_db:+g} dB, " + ("no noise" if self.snr_db is None else f"SNR {self.snr_db:g} dB")


def parse_condition(text: str) -> Condition:
    """'quiet' or ECHO_DB/SNR_DB, where '-' is none ('-/20': no narration; '0/-': no noise)."""
    text = text.strip()
    if text == "quiet":
        return Condition(None, None)
    echo, sep, snr = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return Condition(None if echo == "-" else float(echo), None if snr == "-" else float(snr))
    except ValueError:
        expected = "expected 'quiet' or ECHO_DB/SNR_DB such as 0/20"
        raise argparse.ArgumentTypeError(f"condition {text!r}: {expected}") from None


@dataclass(frozen=True)
class Clip:
    """One word or phrase the person says: 16 kHz int16 at the person's level, trimmed around its speech."""

    label: str
    """The command ('stop', 'resume', ...), or '' for a distractor."""
    text: str
    source: str
    """'people', 'wake words', 'sentences' or 'tts'."""
    samples: np.ndarray = field(repr=False)
    word_start_s: float
    word_end_s: float
    """Where the speech starts and ends within the clip."""
    name: str = ""

    @property
    def group(self) -> str:
        """'safety', 'other' or 'distractor'."""
        return "distractor" if not self.label else "safety" if Command(self.label).is_safety else "other"


def make_clip(label: str, text: str, source: str, samples: np.ndarray, rate: int, name: str = "") -> Clip:
    """The clip at 16 kHz, from 0.1 s before its speech to 0.2 s after, at the person's level."""
    samples = resample(samples, rate, RATE).astype(np.float64)
    start_s, end_s = speech_bounds(samples)
    first = max(0, round((start_s - 0.1) * RATE))
    samples = samples[first : round((end_s + 0.2) * RATE)]
    samples *= _PERSON_LEVEL / (active_level(samples) or 1.0)
    pcm = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    return Clip(label, text, source, pcm, start_s - first / RATE, end_s - first / RATE, name)


def label_of(word: str, vocabulary: Vocabulary) -> str:
    """The command a folder's word is when it is a whole command phrase; '' (a distractor) otherwise."""
    found = vocabulary.match(word)
    return found.command.value if found is not None and found.phrase == word else ""


def _capped(items: list[Any], cap: int | None, rng: random.Random) -> list[Any]:
    """A seeded sample of at most cap items, in their order."""
    if cap is None or len(items) <= cap:
        return items
    keep = set(rng.sample(range(len(items)), cap))
    return [x for i, x in enumerate(items) if i in keep]


def data_clips(data_dir: Path, vocabulary: Vocabulary, options: argparse.Namespace) -> list[Clip]:
    """Every held-out real person of the data folder (the spotter's validation split), commands in full, at most
    --per-word distractors of each word."""
    from voicecoach.training.sources import held_out, human_clips

    by_word: dict[str, list[Any]] = {}
    for clip in human_clips(data_dir):
        if options.all_speakers or held_out(clip.speaker, options.train_seed):
            by_word.setdefault(clip.word.removeprefix("wake:").replace("_", " "), []).append(clip)
    rng = random.Random(options.seed)
    clips = []
    for word, found in sorted(by_word.items()):
        label = "" if word == "sentence" else label_of(word, vocabulary)
        if options.words and word not in options.words:
            continue
        cap = options.per_command if label else options.per_word
        for human in _capped(found, cap, rng):
            source = {"wake_words": "wake words", "sentences": "sentences"}.get(human.corpus, "people")
            samples, rate = read_wav(human.path)
            clips.append(make_clip(label, word, source, samples, rate, f"{human.corpus}/{human.path.name}"))
    return clips


def folder_clips(folder: Path, vocabulary: Vocabulary, options: argparse.Namespace) -> list[Clip]:
    """Every `<word>/*.wav` of a folder; Speech Commands names (SPEAKER_nohash_N) keep to held-out speakers."""
    from voicecoach.training.sources import held_out

    rng = random.Random(options.seed)
    clips = []
    for word_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        word = word_dir.name.replace("_", " ")
        label = label_of(word, vocabulary)
        if options.words and word not in options.words:
            continue
        paths = [p for p in sorted(word_dir.glob("*.wav")) if options.all_speakers or "_nohash_" not in p.name
                 or held_out(p.name.split("_nohash_")[0], options.train_seed)]  # fmt: skip
        for path in _capped(paths, options.per_command if label else options.per_word, rng):
            samples, rate = read_wav(path)
            clips.append(make_clip(label, word, "people", samples, rate, f"{word_dir.name}/{path.name}"))
    return clips


def tts_clips(vocabulary: Vocabulary, options: argparse.Namespace) -> list[Clip]:
    """Command phrases in the synthetic voices the spotter never trained on: the first phrase of each command and
    every safety phrase (--all-phrases: every phrase).

    Kept on disk (--tts-cache): Piper's voice never says a phrase the same way twice, and one clip of another length
    moves every later clip of its run against the narration, so an evaluation would not repeat."""
    from voicecoach.training.synthesis import cached_synthesis, held_out_voices

    clips = []
    for voice in held_out_voices()[: options.tts_voices]:
        for command, phrases in vocabulary.phrases.items():
            for index, phrase in enumerate(phrases):
                if options.words and phrase not in options.words:
                    continue
                if index == 0 or command.is_safety or options.all_phrases:
                    samples = cached_synthesis(options.tts_cache, voice, phrase)
                    clips.append(make_clip(command.value, phrase, "tts", samples, RATE, voice.label))
    return clips


# --- runs in the room ----------------------------------------------------------------------------------------------


class Placed:
    """A clip on a run's timeline, from start_s: where its word starts and ends on it."""

    def __init__(self, clip: Clip, start_s: float) -> None:
        self.clip, self.start_s = clip, start_s
        self.word_start_s = start_s + clip.word_start_s
        self.word_end_s = start_s + clip.word_end_s


def runs_of(clips: list[Clip], chunk_s: float, seed: int) -> list[list[Clip]]:
    """The clips in a seeded order, cut into runs of about chunk_s seconds; each "end workout" ends its run."""
    order = clips[:]
    random.Random(seed).shuffle(order)
    quits = [c for c in order if c.label == Command.QUIT.value]
    rest = [c for c in order if c.label != Command.QUIT.value]
    mean_s = statistics.mean(len(c.samples) / RATE + sum(_GAP_S) / 2 for c in clips) if clips else 1.0
    count = max(len(quits), round(len(clips) * mean_s / chunk_s), 1)
    runs: list[list[Clip]] = [rest[i::count] for i in range(count)]
    for i, clip in enumerate(quits):
        runs[i].append(clip)
    return [r for r in runs if r]


def person_track(clips: list[Clip], seed: int) -> tuple[np.ndarray, list[Placed]]:
    """The clips one after another from _FIRST_S with seeded gaps: the recording and where each clip is."""
    rng = random.Random(seed)
    placed, clock = [], _FIRST_S
    for clip in clips:
        placed.append(Placed(clip, round(clock * RATE) / RATE))
        clock += len(clip.samples) / RATE + rng.uniform(*_GAP_S)
    track = np.zeros(round((clock + 1.0) * RATE), np.int16)
    for p in placed:
        at = round(p.start_s * RATE)
        track[at : at + len(p.clip.samples)] = p.clip.samples
    return track, placed


@dataclass(frozen=True)
class Job:
    """One engine in one condition: a closed-loop pass over clips, or the narration alone."""

    engine: str
    model: str | None
    language: str
    condition: Condition
    kind: str
    """'closed loop' or 'narration'."""
    runs: tuple[tuple[Clip, ...], ...] = ()
    until_s: float | None = None
    """Narration pass: stop the routine here (None: the whole routine)."""
    auto_resume_s: float = 2.0
    seed: int = 0
    routine: str = "lower-back"
    yield_floor: bool = YieldSettings().enabled
    """The pipeline fades the narrator on a rising stop score (default: as the product does)."""
    safety_head: str | None = None
    """With --engine spotter --model HEAD: the safety head run beside it (None: none)."""

    @property
    def name(self) -> str:
        """The engine, and ', no yield' when the narrator does not fade."""
        return self.engine + ("" if self.yield_floor else ", no yield")


@dataclass
class RoomResult:
    """One room run, as an evaluation reads it."""

    records: list[dict[str, Any]]
    placed: list[Placed]
    auto_resumes: list[float]
    played: list[tuple[float, float]]
    """(start, end) of what reached the microphone from the speaker, s."""
    delay_s: float
    room_s: float
    cpu_s: float
    counters: dict[str, int]


def _routine(name: str, turn: int) -> Any:
    """The routine, starting at exercise `turn` (and going round)."""
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import load_routine_file

    routine = load_routine_file(find_routine(name))
    k = turn % len(routine.exercises)
    return dataclasses.replace(routine, exercises=routine.exercises[k:] + routine.exercises[:k])


def room_run(job: Job, turn: int, clips: tuple[Clip, ...]) -> RoomResult:
    """One run of `voicecoach run ROUTINE --room` in-process: the person's clips as a WAV, the room, the pipeline."""
    from voicecoach.core.session import Session
    from voicecoach.listening.pipeline import ListeningPipeline
    from voicecoach.narration.speech_store import StoredSynthesizer
    from voicecoach.narration.stand_in_voices import write_wav
    from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer
    from voicecoach.runtime.room import RoomRun, run_room
    from voicecoach.runtime.transcript import Transcript
    from voicecoach.settings import ListeningSettings, NarratorSettings, RecognizerSettings, YieldSettings

    vocabulary = load_vocabulary(job.language)
    model = Path(job.model) if job.model else None
    safety = Path(job.safety_head) if job.safety_head else None
    recognizer = RecognizerSettings(engine=job.engine, model_dir=model, language=job.language, safety_head=safety)
    settings = ListeningSettings(recognizer, yield_floor=YieldSettings(enabled=job.yield_floor))
    pipeline = ListeningPipeline.from_settings(settings, vocabulary)
    voice = NarratorSettings()
    identity = f"pyttsx3 {voice.voice} {voice.rate_wpm} {voice.volume}"  # the CLI's store, shared with run --room
    synthesizer = CachedSynthesizer(StoredSynthesizer(Pyttsx3Synthesizer(voice), identity))
    echo_db = job.condition.echo_db
    acoustics = RoomSettings(0.0 if echo_db is None else echo_db, job.condition.snr_db, 45.0, job.seed + turn)
    track, placed = person_track(list(clips), job.seed + turn)
    until_s = job.until_s if not clips else placed[-1].word_end_s + _WINDOW_S + 0.5
    transcript = Transcript()
    with tempfile.TemporaryDirectory() as folder:
        person = write_wav(Path(folder) / "person.wav", track, RATE) if clips else None
        run = RoomRun(person, None, job.auto_resume_s, acoustics, until_s=until_s, muted=echo_db is None)
        cpu = time.process_time()
        room = run_room(Session(_routine(job.routine, turn)), vocabulary, pipeline, synthesizer, run, transcript)
        cpu_s = time.process_time() - cpu
    delay_s = acoustics.delay_ms / 1000
    played = [(b.start_s + delay_s, b.start_s + b.duration_s + delay_s) for b in room.played]
    counters = {k: int(getattr(pipeline, k)) for k in ("fades", "false_fades", "ignored_own_voice")}
    guard = pipeline.clip_guard
    counters["turn_downs"] = round(guard.down_db / guard.settings.step_db) if guard is not None else 0
    counters["clipped"] = guard.clipped_samples if guard is not None else 0
    return RoomResult(transcript.records, placed, room.auto_resumes, played, delay_s, room.position / RATE, cpu_s,
                      counters)  # fmt: skip


# --- scoring -------------------------------------------------------------------------------------------------------


@dataclass
class Score:
    """What one engine did in one condition, summed over its runs."""

    inserted: Counter[str] = field(default_factory=Counter)
    """Per key: 'safety', 'other', 'distractor', 'GROUP/SOURCE', 'GROUP over narration', 'word:TEXT'."""
    detected: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    detect_ms: dict[str, list[float]] = field(default_factory=lambda: {"safety": [], "other": []})
    quiet_ms: dict[str, list[float]] = field(default_factory=lambda: {"safety": [], "other": []})
    false: list[dict[str, Any]] = field(default_factory=list)
    """Commands that belong to no clip (the narrator's voice, mostly)."""
    misses: list[str] = field(default_factory=list)
    room_s: float = 0.0
    narration_s: float = 0.0
    """Seconds the narrator's speech reached the microphone."""
    cpu_s: float = 0.0
    counters: Counter[str] = field(default_factory=Counter)


def _person_commands(result: RoomResult) -> list[dict[str, Any]]:
    """The commands heard from the microphone (not the auto-resume's "resume")."""
    pending = sorted(result.auto_resumes)
    heard = []
    for record in (r for r in result.records if r["kind"] == "heard" and r.get("command")):
        auto = next((a for a in pending if record["command"] == "resume" and a - 1e-3 <= record["t"] <= a + 0.05), None)
        if auto is not None:
            pending.remove(auto)
        else:
            heard.append(record)
    return heard


def _quiet_times(result: RoomResult) -> list[float]:
    """When the narration stopped reaching the microphone, or reached it faded by 20 dB or more."""
    times = [r["t"] for r in result.records if r["kind"] == "quiet" and "already" not in r["text"]]
    times += [r["t"] + result.delay_s for r in result.records
              if r["kind"] == "fade" and float(r["text"].split()[0]) <= _QUIET_DB]  # fmt: skip
    return sorted(times)


def _narrating(result: RoomResult, at_s: float) -> bool:
    """True if the narrator's speech reached the microphone at at_s."""
    return any(start <= at_s < end for start, end in result.played)


def score_run(score: Score, result: RoomResult) -> None:
    """Match each clip to the commands heard while it and the _WINDOW_S after it lasted; the rest are false."""
    heard = _person_commands(result)
    quiet = _quiet_times(result)
    used: set[int] = set()
    for p in result.placed:
        clip = p.clip
        window = [(i, r) for i, r in enumerate(heard) if p.start_s <= r["t"] <= p.word_end_s + _WINDOW_S]
        used.update(i for i, _ in window)
        if window:  # one word acted on twice (the second stop cuts the narrator's answer to the first)
            score.counters["heard again"] += sum(r["command"] == window[0][1]["command"] for _, r in window[1:])
        over = _narrating(result, p.word_start_s)
        keys = [clip.group, f"{clip.group}/{clip.source}", f"word:{clip.text}"]
        keys += [f"{clip.group} over narration"] if over else []
        score.inserted.update(keys)
        hit = next((r for _, r in window if r["command"] == clip.label), None) if clip.label else None
        if clip.label and hit is not None:
            score.detected.update(keys)
            score.detect_ms[clip.group].append(1000 * (hit["t"] - p.word_end_s))
            after = [q for q in quiet if q >= p.word_start_s] if over else []
            if after and after[0] <= hit["t"] + 1.0:
                score.quiet_ms[clip.group].append(1000 * (after[0] - p.word_end_s))
        elif window:
            (score.wrong if clip.label else score.detected).update(keys)
            score.misses.append(f"{clip.text!r} ({clip.source} {clip.name}) -> {window[0][1]['command']}")
        elif clip.label:
            score.misses.append(f"{clip.text!r} ({clip.source} {clip.name}) missed")
    score.false += [r for i, r in enumerate(heard) if i not in used]
    score.room_s += result.room_s
    score.narration_s += sum(min(end, result.room_s) - start for start, end in result.played if start < result.room_s)
    score.cpu_s += result.cpu_s
    score.counters.update(result.counters)


def run_job(job: Job) -> tuple[Job, Score]:
    """Every run of a job (in a worker process when --jobs > 1)."""
    score = Score()
    for turn, clips in enumerate(job.runs or ((),)):
        score_run(score, room_run(job, turn, clips))
    return job, score


# --- report --------------------------------------------------------------------------------------------------------


def _ratio(score: Score, key: str) -> str:
    n = score.inserted.get(key, 0)
    return f"{score.detected.get(key, 0)}/{n} ({100 * score.detected.get(key, 0) / n:.0f}%)" if n else "-"


def percentiles(values: list[float]) -> str:
    """'median / p95' of milliseconds (p95 by linear interpolation), or '-'."""
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {float(np.percentile(values, 95)):.0f}"


def _per_hour(count: float, seconds: float) -> str:
    return f"{count * 3600 / seconds:.1f}" if seconds else "-"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(lines[0].split(" | ")))
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _false_rate(s: Score) -> str:
    """False commands and their rate an hour of narration (of room time, where nothing was narrated)."""
    if s.narration_s:
        return f"{len(s.false)} ({_per_hour(len(s.false), s.narration_s)})"
    return f"{len(s.false)} ({_per_hour(len(s.false), s.room_s)} per h of room, no narration)"


def closed_loop_table(results: list[tuple[Job, Score]]) -> str:
    """A row per engine and condition."""
    header = ("engine", "condition", "stop/too much heard", "... over narration", "other commands heard",
              "wrong command", "one word heard twice", "distractors -> command", "false commands (per h of narration)",
              "fades / false fades per h of narration", "end of word to command, ms med / p95 (stop; others)",
              "end of word to quiet, ms med / p95 (stop; others)", "CPU x real time")  # fmt: skip
    rows = []
    for job, s in results:
        c = s.counters
        rows.append((job.name, job.condition.label, _ratio(s, "safety"), _ratio(s, "safety over narration"),
                     _ratio(s, "other"), str(s.wrong["safety"] + s.wrong["other"]), str(c["heard again"]),
                     _ratio(s, "distractor"),
                     _false_rate(s),
                     f"{_per_hour(c['fades'], s.narration_s)} / {_per_hour(c['false_fades'], s.narration_s)}",
                     f"{percentiles(s.detect_ms['safety'])}; {percentiles(s.detect_ms['other'])}",
                     f"{percentiles(s.quiet_ms['safety'])}; {percentiles(s.quiet_ms['other'])}",
                     f"{s.cpu_s / s.room_s:.3f}" if s.room_s else "-"))  # fmt: skip
    return _table(header, rows)


def source_table(results: list[tuple[Job, Score]]) -> str:
    """Detected (commands) or turned into a command (distractors), per source."""
    keys = sorted({k for _, s in results for k in s.inserted if "/" in k})
    rows = [(job.name, job.condition.label, *(_ratio(s, k) for k in keys)) for job, s in results]
    return _table(("engine", "condition", *keys), rows)


def narration_table(results: list[tuple[Job, Score]]) -> str:
    """A row per engine and echo level: every command is false."""
    header = ("engine", "condition", "routine min", "narrator speech min", "false commands",
              "per h of routine / of speech", "fades (per h of speech)", "false fades (per h of speech)",
              "dropped as own voice", "clipped samples over narration / narrator turned down, steps",
              "CPU x real time")  # fmt: skip
    rows = []
    for job, s in results:
        c = s.counters
        which = ", ".join(f"{r['command']}@{r['t']:.0f}s" for r in s.false)
        rows.append((job.name, job.condition.label, f"{s.room_s / 60:.1f}", f"{s.narration_s / 60:.1f}",
                     f"{len(s.false)}" + (f": {which}" if which else ""),
                     f"{_per_hour(len(s.false), s.room_s)} / {_per_hour(len(s.false), s.narration_s)}",
                     f"{c['fades']} ({_per_hour(c['fades'], s.narration_s)})",
                     f"{c['false_fades']} ({_per_hour(c['false_fades'], s.narration_s)})", str(c["ignored_own_voice"]),
                     f"{c['clipped']} / {c['turn_downs']}",
                     f"{s.cpu_s / s.room_s:.3f}" if s.room_s else "-"))  # fmt: skip
    return _table(header, rows)


def report(results: list[tuple[Job, Score]], verbose: bool) -> str:
    """The markdown tables."""
    closed = [r for r in results if r[0].kind == "closed loop"]
    narration = [r for r in results if r[0].kind == "narration"]
    parts = []
    if closed:
        parts += ["## Closed loop: the person over the narration", closed_loop_table(closed),
                  "### By source (commands: heard as themselves; distractors: turned into a command)",
                  source_table(closed)]  # fmt: skip
    if narration:
        parts += ["## Narration only: the routine with nobody speaking", narration_table(narration)]
    if verbose:
        for job, s in results:
            parts.append(f"### {job.name}, {job.condition.label}, {job.kind}: misses and false commands")
            parts.append("\n".join([f"- {m}" for m in s.misses] +
                                   [f"- false {r['command']} at {r['t']:.1f} s" for r in s.false]) or "-")
    return "\n\n".join(parts)


def figures(job: Job, s: Score) -> dict[str, Any]:
    """The figures of one job, for --json."""
    return {"engine": job.engine, "yield_floor": job.yield_floor, "kind": job.kind, "condition": job.condition.label,
            "echo_db": job.condition.echo_db, "snr_db": job.condition.snr_db, "inserted": dict(s.inserted),
            "detected": dict(s.detected), "wrong": dict(s.wrong), "detect_ms": s.detect_ms, "quiet_ms": s.quiet_ms,
            "false": s.false, "misses": s.misses, "room_s": s.room_s, "narration_s": s.narration_s, "cpu_s": s.cpu_s,
            "counters": dict(s.counters), "runs": len(job.runs) or 1}  # fmt: skip


def load_figures(paths: list[Path]) -> list[tuple[Job, Score]]:
    """The jobs of saved --json files, to report again."""
    results = []
    for path in paths:
        for f in json.loads(path.read_text())["jobs"]:
            job = Job(f["engine"], None, "", Condition(f["echo_db"], f["snr_db"]), f["kind"],
                      yield_floor=f.get("yield_floor", True))  # fmt: skip
            score = Score(Counter(f["inserted"]), Counter(f["detected"]), Counter(f["wrong"]), f["detect_ms"],
                          f["quiet_ms"], f["false"], f["misses"], f["room_s"], f["narration_s"], f["cpu_s"],
                          Counter(f["counters"]))  # fmt: skip
            results.append((job, score))
    return results


def spotter_head(named: str | None = None, beside: str | None = None) -> str:
    """The spotter head measured (the packaged one, or one named with --model, and the safety head beside it): its
    file hash and its last commit."""
    path = Path(named) if named else _HEAD
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "missing"
    if named:
        safety = Path(beside) if beside else None
        return f"{path} sha256 {digest}" + (
            f"; {safety} sha256 {hashlib.sha256(safety.read_bytes()).hexdigest()[:12]} beside it" if safety else "")
    try:
        commit = subprocess.run(["git", "-C", str(_ROOT), "log", "-1", "--format=%h", "--", str(_HEAD)],
                                capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    safety = _HEAD.with_name("safety_head.npz")
    beside = (f"; safety_head.npz sha256 {hashlib.sha256(safety.read_bytes()).hexdigest()[:12]} beside it"
              if safety.is_file() else "; no safety head")  # fmt: skip
    return f"head.npz sha256 {digest}, git {commit or 'unknown'}{beside}"


# --- main ----------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", action="append", choices=("auto", "spotter", "pocketsphinx", "vosk"),
                   help="engine (repeatable; default auto, the spotter)")
    p.add_argument("--model", help="Vosk model folder (needed with --engine vosk); with --engine spotter, a head")
    p.add_argument("--safety-head", metavar="HEAD|packaged",
                   help="with --engine spotter --model HEAD: run this safety head beside it, as the product runs "
                        "its own beside the packaged head (packaged: the package's safety_head.npz); default none")
    p.add_argument("--language", default="en", help="vocabulary language (ko with the Korean Vosk model)")
    p.add_argument("--conditions", default="quiet,-6/20,0/20,6/20", help="closed loop: quiet or ECHO_DB/SNR_DB, "
                   "comma-separated (default %(default)s)")  # fmt: skip
    p.add_argument("--narration-echo", default="-6,0,6", help="narration-only echo levels, dB (default %(default)s)")
    p.add_argument("--narration-snr", type=float, default=20.0)
    p.add_argument("--narration-s", type=float, help="narration only: stop the routine here (default: all of it)")
    p.add_argument("--no-narration-pass", action="store_true")
    p.add_argument("--no-closed-loop", action="store_true")
    p.add_argument("--data", type=Path, default=_DATA, help="the team's recordings (default %(default)s)")
    p.add_argument("--no-data", action="store_true", help="leave the data folder out")
    p.add_argument("--clips", type=Path, action="append", default=[], help="a folder of <word>/*.wav (repeatable)")
    p.add_argument("--words", type=lambda t: set(t.replace("_", " ").split(",")), help="only these words/phrases")
    p.add_argument("--no-tts", action="store_true", help="no synthetic voices")
    p.add_argument("--tts-voices", type=int, default=None, help="at most this many held-out synthetic voices")
    p.add_argument("--tts-cache", type=Path, default=Path.home() / ".cache" / "voicecoach-eval",
                   help="where the synthetic voices' clips are kept, so that runs repeat (default %(default)s)")
    p.add_argument("--all-phrases", action="store_true", help="every phrase of every command in the synthetic voices")
    p.add_argument("--per-word", type=int, default=3, help="distractor clips per word (default %(default)s)")
    p.add_argument("--per-command", type=int, default=None, help="people's command clips per word (default all)")
    p.add_argument("--all-speakers", action="store_true", help="also the speakers the spotter trained on")
    p.add_argument("--train-seed", type=int, default=1, help="the spotter training's seed (its speaker split)")
    p.add_argument("--chunk-s", type=float, default=300.0, help="seconds of clips per room run (default %(default)s)")
    p.add_argument("--yield", dest="yield_floor", action=argparse.BooleanOptionalAction, default=None,
                   help="fade the narrator on a rising stop score, or never (default: as the product does)")
    p.add_argument("--auto-resume", type=float, default=2.0, help="resume this long after each stop")
    p.add_argument("--seed", type=int, default=0, help="clip order, gaps, room and noise")
    p.add_argument("--quick", action="store_true", help="three clips and 20 s of narration at 0 dB: a smoke run")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--export-clips", type=Path, help="write the clips as <word>/*.wav here, and stop")
    p.add_argument("--report", type=Path, action="append", help="print the tables of a saved --json file, and stop")
    p.add_argument("-v", "--verbose", action="store_true", help="list every miss and false command")
    return p


def _quick(options: argparse.Namespace) -> None:
    """A smoke run: a clip a word (stop, go and dog, unless --clips), 0 dB, 20 s of narration."""
    options.conditions, options.narration_echo = options.conditions if options.conditions_given else "0/20", "0"
    options.narration_s = options.narration_s or 20.0
    if not options.clips:
        options.words = options.words or {"stop", "go", "dog"}
    options.per_word, options.per_command, options.tts_voices = 1, 1, 1


def gather_clips(options: argparse.Namespace, vocabulary: Vocabulary) -> list[Clip]:
    """The clips the options ask for."""
    clips = [] if options.no_tts else tts_clips(vocabulary, options)
    if not options.no_data:
        if not options.data.is_dir():
            raise SystemExit(f"eval_commands: {options.data} is missing (it is ../shared/data; or give --no-data)")
        clips += data_clips(options.data, vocabulary, options)
    for folder in options.clips:
        if not folder.is_dir():
            raise SystemExit(f"eval_commands: clip folder {folder} does not exist (expected <word>/*.wav)")
        clips += folder_clips(folder, vocabulary, options)
    return clips


def export_clips(clips: list[Clip], folder: Path) -> None:
    """Each clip as folder/<word>/<n>.wav (words with '_' for spaces)."""
    from voicecoach.narration.stand_in_voices import write_wav

    for n, clip in enumerate(clips):
        word = clip.text.replace(" ", "_")
        (folder / word).mkdir(parents=True, exist_ok=True)
        write_wav(folder / word / f"{n:05d}_{clip.source.replace(' ', '-')}.wav", clip.samples, RATE)


def make_jobs(options: argparse.Namespace, clips: list[Clip]) -> list[Job]:
    """Closed-loop jobs per condition and engine, then narration-only jobs per echo level and engine (in the order
    given: the first ones finish first)."""
    engines = options.engine or ["auto"]
    conditions = [] if options.no_closed_loop else [parse_condition(c) for c in options.conditions.split(",")]
    runs = tuple(tuple(r) for r in runs_of(clips, options.chunk_s, options.seed))
    yield_floor = YieldSettings().enabled if options.yield_floor is None else options.yield_floor
    common = {"auto_resume_s": options.auto_resume, "seed": options.seed, "yield_floor": yield_floor,
              "safety_head": _safety_head(options)}
    jobs = [Job(e, options.model, options.language, c, "closed loop", runs, None, **common)
            for c in conditions for e in engines if runs]  # fmt: skip
    if not options.no_narration_pass:
        levels = [float(x) for x in options.narration_echo.split(",")]
        jobs += [Job(e, options.model, options.language, Condition(db, options.narration_snr), "narration", (),
                     options.narration_s, **common)
                 for db in levels for e in engines]  # fmt: skip
    return jobs


def _safety_head(options: argparse.Namespace) -> str | None:
    """The safety head file --safety-head names ("packaged": the package's), or None."""
    if options.safety_head == "packaged":
        return str(_HEAD.with_name("safety_head.npz"))
    return options.safety_head


def _indexed(item: tuple[int, Job]) -> tuple[int, tuple[Job, Score]]:
    return item[0], run_job(item[1])


def run_all(jobs: list[Job], workers: int, on_result: Any) -> list[tuple[Job, Score]]:
    """Every job, in worker processes when workers > 1; after each job, on_result(results so far, that job's)."""
    done: dict[int, tuple[Job, Score]] = {}
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for index, result in pool.imap_unordered(_indexed, enumerate(jobs)):
                done[index] = result
                on_result([done[i] for i in sorted(done)], done[index])
    else:
        for index, job in enumerate(jobs):
            done[index] = run_job(job)
            on_result([done[i] for i in sorted(done)], done[index])
    return [done[i] for i in sorted(done)]


def _save(path: Path | None, argv: list[str], head: str, results: list[tuple[Job, Score]],
          finished: tuple[Job, Score]) -> None:  # fmt: skip
    """The figures so far, to --json (rewritten after every job, so a cut-short run keeps what it did)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"argv": argv, "spotter": head, "jobs": [figures(j, s) for j, s in results]},
                                   indent=1))  # fmt: skip
    last, score = finished
    print(f"<!-- done {len(results)}: {last.name}, {last.condition.label}, {last.kind}, "
          f"{score.room_s:.0f} s in {score.cpu_s:.0f} s CPU -->", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    options = parser.parse_args(argv)
    options.conditions_given = any(a.startswith("--conditions") for a in argv)
    if options.safety_head and (options.engine != ["spotter"] or not options.model):
        parser.error("--safety-head goes with --engine spotter --model HEAD (the packaged head has its own beside it)")
    if options.safety_head and options.safety_head != "packaged" and not Path(options.safety_head).is_file():
        parser.error(f"--safety-head {options.safety_head}: no such file (expected a head .npz, or packaged)")
    if "vosk" in (options.engine or []) and not options.model:
        parser.error("--engine vosk needs --model DIR (a Vosk model folder)")
    if options.report:
        print(report(load_figures(options.report), options.verbose))
        return 0
    if options.quick:
        _quick(options)
    try:
        vocabulary = load_vocabulary(options.language)
        clips = [] if options.no_closed_loop else gather_clips(options, vocabulary)
        jobs = make_jobs(options, clips)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if options.export_clips:
        export_clips(clips, options.export_clips)
        print(f"{len(clips)} clips written to {options.export_clips}")
        return 0
    if not jobs:
        parser.error("nothing to evaluate: no clips and no narration pass")
    started = time.monotonic()
    named = options.model if "vosk" not in (options.engine or []) else None
    sources = ", ".join(f"{k} {v}" for k, v in sorted(Counter(c.source for c in clips).items()))
    beside = _safety_head(options)
    head = spotter_head(named, beside)
    print(f"# Commands in the room\n\n{len(clips)} clips ({sources or 'none'}) in {len(jobs[0].runs)} runs; "
          f"{len(jobs)} jobs on {options.jobs} processes; spotter {head}\n", flush=True)
    results = run_all(jobs, options.jobs, lambda done, last: _save(options.json, argv, head, done, last))
    print(report(results, options.verbose))
    print(f"\nwall time {time.monotonic() - started:.0f} s; CPU {sum(s.cpu_s for _, s in results):.0f} s in the room")
    if spotter_head(named, beside) != head:
        print(f"warning: the spotter head changed during the run (now {spotter_head(named, beside)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
