"""Which clips are rendered how: the job list of a training run (seeded), and the narration it needs.

Splits: "train"; "val" (speakers, files and narration texts held out: thresholds are chosen here, figures reported);
"test" (held-out TTS voices and the whole lower-back narration rendered through other rooms: reported only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicecoach.listening.spotter.model import NONE_LABEL
from voicecoach.training import sources, synthesis
from voicecoach.training.features import STREAM_PIECE_S

ECHO_LEVELS_DB = (-6.0, 0.0, 6.0)
_WORDS_PER_S = 165 / 60


@dataclass(frozen=True)
class Scale:
    """How much of everything a run renders."""

    name: str
    tts_voices: int
    """Training voices per command phrase (plus Flite and Festival ones)."""
    confusable_voices: int
    human_renders: int
    """Augmented renders of each training clip of a real person saying a command."""
    human_other_share: float
    """Share of the other real-person clips used."""
    narration_words: int
    """Words of ordinary text and narration-like lines read by the narrator, besides the routine."""
    tiny: bool = False


FULL = Scale("full", tts_voices=36, confusable_voices=10, human_renders=8, human_other_share=1.0,
             narration_words=5200)  # fmt: skip
TINY = Scale("tiny", tts_voices=2, confusable_voices=1, human_renders=1, human_other_share=0.01, narration_words=60,
             tiny=True)  # fmt: skip


def _voice_dict(voice: synthesis.Voice) -> dict[str, Any]:
    out = {"engine": voice.engine, "name": voice.name, "rate_wpm": voice.rate_wpm, "pitch": voice.pitch}
    return out | ({"f0_hz": voice.f0_hz} if voice.f0_hz else {})


def _aug(rng: random.Random, echo_share: float) -> dict[str, Any]:
    """A random condition: quiet with full augmentation, or under the narrator's echo residue."""
    if rng.random() < echo_share:
        return {"strength": "mild", "echo_db": rng.choice(ECHO_LEVELS_DB), "speed": (0.9, 1.1)}
    return {"strength": "full", "speed": (0.85, 1.15)}


def tts_jobs(scale: Scale, seed: int) -> list[dict[str, Any]]:
    """Command phrases and confusable words in training voices (train) and held-out voices (test)."""
    rng = random.Random(seed)
    jobs: list[dict[str, Any]] = []
    commands = sources.command_phrases()
    voices = synthesis.training_voices(scale.tts_voices, seed)
    for command, phrases in commands.items():
        for phrase in phrases if not scale.tiny else phrases[:1]:
            for voice in voices if not scale.tiny else voices[:2]:
                split = "val" if sources.held_out(voice.label, seed, 0.15) else "train"
                for _ in range(2 if command in ("stop", "too_much") and split == "train" else 1):
                    jobs.append({"text": phrase, "voice": _voice_dict(voice), "label": command, "split": split,
                                 "tag": "tts_cmd", "group": voice.label, "seed": rng.getrandbits(31),
                                 **_aug(rng, 0.35)})  # fmt: skip
    confusable_voices = synthesis.training_voices(scale.confusable_voices, seed + 1)
    for word in sources.CONFUSABLES if not scale.tiny else sources.CONFUSABLES[:3]:
        for voice in confusable_voices:
            jobs.append({"text": word, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": "train",
                         "tag": "tts_confusable", "group": voice.label, "seed": rng.getrandbits(31),
                         **_aug(rng, 0.25)})  # fmt: skip
    if scale.tiny:
        return jobs
    for voice in synthesis.held_out_voices():
        if voice.engine == "piper":  # its test clips come with plan.more_voice_jobs (a batch of their own)
            continue
        jobs += [{**job, "seed": rng.getrandbits(31)} for job in _test_voice_jobs(voice, commands)]
    return jobs


def _test_voice_jobs(voice: synthesis.Voice, commands: dict[str, tuple[str, ...]], tag: str = "tts_cmd",
                     confusables: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """A held-out voice's test clips (without seeds): every command phrase quiet and at 0 dB echo, and (with
    confusables) half the confusables quiet."""
    jobs: list[dict[str, Any]] = []
    for command, phrases in commands.items():
        for phrase in phrases:
            for condition in ({"strength": "none"}, {"strength": "none", "echo_db": 0.0}):
                jobs.append({"text": phrase, "voice": _voice_dict(voice), "label": command, "split": "test",
                             "tag": tag, "group": voice.label, **condition})  # fmt: skip
    for word in sources.CONFUSABLES[::2] if confusables else ():
        jobs.append({"text": word, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": "test",
                     "tag": "tts_confusable", "group": voice.label, "strength": "none"})  # fmt: skip
    return jobs


def clean_copies(jobs: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """A plain render (no room, no noise: digital silence around it) of each training TTS text and voice.

    Listed after every other job, so that adding them left the other shards' cache keys as they were.
    """
    rng = random.Random(seed + 5)
    seen: set[tuple[str, str]] = set()
    copies = []
    for job in jobs:
        key = (job["text"], job["group"])
        if job["split"] != "train" or key in seen or (job["label"] == NONE_LABEL and rng.random() < 0.5):
            continue
        seen.add(key)
        copies.append({**{k: job[k] for k in ("text", "voice", "label", "split", "tag", "group")},
                       "strength": "none", "speed": (0.9, 1.1), "seed": rng.getrandbits(31)})  # fmt: skip
    return copies


def human_jobs(data_dir: Path, scale: Scale, seed: int) -> list[dict[str, Any]]:
    """Real people: commands rendered many times over (train), everything else once; held-out speakers plain."""
    rng = random.Random(seed + 2)
    jobs: list[dict[str, Any]] = []
    clips = sources.human_clips(data_dir)
    if scale.tiny:
        clips = [c for c in clips if c.label != NONE_LABEL][:4] + [c for c in clips if c.label == NONE_LABEL][::400]
    for clip in clips:
        split = "val" if sources.held_out(clip.speaker, seed) else "train"
        tag = {"sentences": "sentence", "wake_words": "wake"}.get(clip.corpus, "human_word")
        tag = "human_cmd" if clip.label != NONE_LABEL else tag
        base = {"path": str(clip.path), "label": clip.label, "split": split, "tag": tag, "group": clip.speaker}
        if split == "val":
            conditions: list[dict[str, Any]] = [{"strength": "none"}]
            if clip.label != NONE_LABEL:
                conditions += [{"strength": "full"}, *({"strength": "none", "echo_db": db} for db in ECHO_LEVELS_DB)]
            jobs += [{**base, **c, "seed": rng.getrandbits(31)} for c in conditions]
        elif clip.label != NONE_LABEL:
            jobs += [{**base, **_aug(rng, 0.4), "seed": rng.getrandbits(31)} for _ in range(scale.human_renders)]
        elif rng.random() < scale.human_other_share:
            renders = 2 if clip.corpus == "sentences" else 1
            jobs += [{**base, **_aug(rng, 0.3), "seed": rng.getrandbits(31)} for _ in range(renders)]
    return jobs


def _pieces(texts: list[str]) -> list[list[str]]:
    """Consecutive texts grouped into pieces of about STREAM_PIECE_S of speech."""
    pieces, current, words = [], [], 0.0
    for text in texts:
        current.append(text)
        words += len(text.split())
        if words / _WORDS_PER_S >= STREAM_PIECE_S:
            pieces.append(current)
            current, words = [], 0.0
    return pieces + ([current] if current else [])


def narration_texts(scale: Scale, seed: int) -> dict[str, list[str]]:
    """The narrator's texts: the routine, and other lines split into train and val."""
    rng = random.Random(seed + 3)
    routine = sources.routine_texts()
    other = sources.templated_narration(max(4, scale.narration_words // 40), seed) + sources.ordinary_sentences(
        scale.narration_words // 2)
    rng.shuffle(other)
    if scale.tiny:
        routine = routine[:4]
    cut = int(len(other) * 0.8)
    return {"routine": routine, "train": other[:cut], "val": other[cut:]}


def narration_jobs(scale: Scale, seed: int) -> list[dict[str, Any]]:
    """The narrator's voice as negatives: clean through a room, and its residue after the echo canceller."""
    rng = random.Random(seed + 4)
    texts = narration_texts(scale, seed)
    jobs: list[dict[str, Any]] = []

    def add(pieces: list[list[str]], split: str, tag: str, conditions: list[dict[str, Any]]) -> None:
        for piece in pieces:
            for condition in conditions:
                jobs.append({"texts": piece, "label": NONE_LABEL, "split": split, "tag": tag, "group": tag,
                             "seed": rng.getrandbits(31), **condition})  # fmt: skip

    clean = [{"strength": "mild", "level_db": -30.0}, {"strength": "full", "level_db": -22.0}]
    residues = [{"echo_db": db} for db in ECHO_LEVELS_DB]
    routine = _pieces(texts["routine"])
    if scale.tiny:
        clean, residues = clean[:1], residues[1:2]
    add(routine, "train", "narr_routine", clean + residues)
    add(_pieces(texts["train"]), "train", "narr_other", clean[:1] + [{"echo_db": rng.choice(ECHO_LEVELS_DB)}])
    add(_pieces(texts["val"]), "val", "narr_other", [{"strength": "none", "level_db": -26.0}, {"echo_db": 0.0}])
    if not scale.tiny:
        add(routine, "test", "narr_lower_back", [{"strength": "none", "level_db": -26.0}, *residues])
    return jobs


def pool_texts(scale: Scale, seed: int) -> list[str]:
    """Narration laid under the positives (training texts only)."""
    texts = narration_texts(scale, seed)
    return texts["train"] + texts["routine"]


UNUSED_SPLIT = "unused"


def set_aside(meta: list[dict[str, Any]], jobs: list[dict[str, Any]],
              texts: tuple[str, ...] = sources.HOMOPHONES) -> int:  # fmt: skip
    """Put the clips of these confusables (default: sources.HOMOPHONES) in the unused split; how many there were.

    meta is Features.meta, one row per job in the same order."""
    if len(meta) != len(jobs):
        raise ValueError(f"{len(meta)} rendered clips for {len(jobs)} jobs")
    count = 0
    for row, job in zip(meta, jobs, strict=True):
        if row["label"] != job["label"]:
            raise ValueError(f"clip and job out of order: {row} against {job}")
        if job.get("text") in texts and job["label"] == NONE_LABEL:
            row["split"] = UNUSED_SPLIT
            count += 1
    return count


EXTRA_BATCH = "extra-1"
"""The "batch" key of the extra jobs (they start their own shards: the original recipe's cache stays valid)."""


def extra_jobs(jobs: list[dict[str, Any]], data_dir: Path, scale: Scale, seed: int) -> list[dict[str, Any]]:
    """More training renders, appended after the original recipe's jobs (which they leave as they were).

    - every real person's command clip of the training speakers: once plain (as the validation "quiet" clips are
      heard), and `scale.human_renders` more times with wider speed, more echo and full augmentation;
    - every other real-person clip of the training speakers once more, plain (hard human negatives as heard);
    - four Flite variants (slt and kal at other rates and mean pitches; awb, rms and kal16 stay held out) for every
      command phrase and the confusables;
    - a plain render (digital silence around it, as the test voices are heard) of every training TTS text and voice,
      commands and confusables alike, so that clean speech is learned on both sides;
    - the routine and the training narration once more as echo residue, with other seeds.
    Validation and test jobs are untouched.
    """
    rng = random.Random(seed + 7)
    extra: list[dict[str, Any]] = []

    def add(job: dict[str, Any], **condition: Any) -> None:
        extra.append({**job, **condition, "seed": rng.getrandbits(31), "batch": EXTRA_BATCH})

    keys = ("path", "text", "voice", "texts", "label", "split", "tag", "group")
    human_cmd_seen: set[str] = set()
    human_other_seen: set[str] = set()
    for job in jobs:
        if job["split"] != "train" or "path" not in job:
            continue
        base = {k: job[k] for k in keys if k in job}
        if job["label"] != NONE_LABEL and job["path"] not in human_cmd_seen:
            human_cmd_seen.add(job["path"])
            add(base, strength="none")
            add(base, strength="none", speed=(0.85, 1.15))
            for _ in range(scale.human_renders if not scale.tiny else 1):
                if rng.random() < 0.5:
                    add(base, strength="mild", echo_db=rng.choice(ECHO_LEVELS_DB), speed=(0.85, 1.15))
                else:
                    add(base, strength="full", speed=(0.8, 1.2))
        elif job["label"] == NONE_LABEL and job["path"] not in human_other_seen:
            human_other_seen.add(job["path"])
            add(base, strength="none")
    commands = sources.command_phrases()
    flite = synthesis.flite_variants(4 if not scale.tiny else 1, seed + 8)
    for voice in flite:
        for command, phrases in commands.items():
            for phrase in phrases if not scale.tiny else phrases[:1]:
                base = {"text": phrase, "voice": _voice_dict(voice), "label": command, "split": "train",
                        "tag": "tts_cmd", "group": voice.label}  # fmt: skip
                add(base, **_aug(rng, 0.35))
                add(base, strength="none", speed=(0.9, 1.1))
        for word in (sources.CONFUSABLES if not scale.tiny else sources.CONFUSABLES[:3])[index_of(voice, flite) % 2::2]:
            base = {"text": word, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": "train",
                    "tag": "tts_confusable", "group": voice.label}  # fmt: skip
            add(base, **_aug(rng, 0.25))
            add(base, strength="none", speed=(0.9, 1.1))
    seen: set[tuple[str, str]] = set()
    for job in jobs:
        if job["split"] != "train" or "text" not in job or (job["text"], job["group"]) in seen:
            continue
        seen.add((job["text"], job["group"]))
        add({k: job[k] for k in keys if k in job}, strength="none", speed=(0.9, 1.1))
    if not scale.tiny:
        texts = narration_texts(scale, seed)
        for piece in _pieces(texts["routine"]):
            for db in ECHO_LEVELS_DB:
                add({"texts": piece, "label": NONE_LABEL, "split": "train", "tag": "narr_routine",
                     "group": "narr_routine"}, echo_db=db)  # fmt: skip
        for piece in _pieces(texts["train"]):
            add({"texts": piece, "label": NONE_LABEL, "split": "train", "tag": "narr_other", "group": "narr_other"},
                echo_db=rng.choice(ECHO_LEVELS_DB))  # fmt: skip
    return extra


QUIET_RESIDUE_BATCH = "quiet-1"
"""The "batch" key of the narrator's residue in quiet rooms (its own cache shards)."""
QUIET_SNRS_DB = (30.0, 40.0, 60.0)
"""Room noise under the person's voice, dB, for the quiet-room residue: every other residue is at 20 dB, where the
noise (about -46 dBFS) hides most of what the canceller leaves; in a quiet room, or live on a quiet microphone, the
residue stands 10-20 dB over the noise, and there the narrator's own words fired stop, too much and pause (the room
at SNR 30-60, docs/eval/room-eval.md)."""


def quiet_residue_jobs(scale: Scale, seed: int) -> list[dict[str, Any]]:
    """The narrator's echo residue in quiet rooms (room noise QUIET_SNRS_DB under the person's level, seeded):
    the routine at every echo level and the training narration at one (training); the validation narration at
    0 dB (validation, so the thresholds see it); the lower-back routine at 0 dB and SNR 40 (test)."""
    rng = random.Random(seed + 11)
    texts = narration_texts(scale, seed)
    jobs: list[dict[str, Any]] = []

    def add(piece: list[str], split: str, tag: str, echo_db: float, snr_db: float) -> None:
        jobs.append({"texts": piece, "label": NONE_LABEL, "split": split, "tag": tag, "group": tag,
                     "echo_db": echo_db, "snr_db": snr_db, "seed": rng.getrandbits(31),
                     "batch": QUIET_RESIDUE_BATCH})  # fmt: skip

    levels = ECHO_LEVELS_DB if not scale.tiny else ECHO_LEVELS_DB[1:2]
    for piece in _pieces(texts["routine"]):
        for db in levels:
            add(piece, "train", "narr_routine", db, rng.choice(QUIET_SNRS_DB))
    for piece in _pieces(texts["train"]):
        add(piece, "train", "narr_other", rng.choice(ECHO_LEVELS_DB), rng.choice(QUIET_SNRS_DB))
    for piece in _pieces(texts["val"]):
        add(piece, "val", "narr_other", 0.0, rng.choice(QUIET_SNRS_DB))
    if not scale.tiny:
        for piece in _pieces(texts["routine"]):
            add(piece, "test", "narr_lower_back_quiet", 0.0, 40.0)
    return jobs


HOLDS_BATCH = "holds-1"
"""The "batch" key of the narrator's holds as the session times them (their own cache shards)."""
COUNTDOWN = ("Five.", "Four.", "Three.", "Two.", "One.")


def _hold_piece(rng: random.Random, lines: list[str], holds: int) -> tuple[list[str], list[list[float]]]:
    """Holds as the session times them: a line, seconds of silence, "Halfway.", silence, a word a second from
    "Five." to "One.", "And release.", a pause (timing as features.narration_stream takes it)."""
    texts: list[str] = []
    timing: list[list[float]] = []
    for _ in range(holds):
        texts += [rng.choice(lines), "Halfway.", *COUNTDOWN, "And release."]
        timing += [[rng.uniform(2.0, 8.0), 0.0], [rng.uniform(2.0, 6.0), 0.0]]
        timing += [[0.1, 1.0]] * len(COUNTDOWN) + [[rng.uniform(0.3, 3.0), 0.0]]
    return texts, timing


def hold_jobs(scale: Scale, seed: int, quiet: bool = False) -> list[dict[str, Any]]:
    """The narrator's holds as the session times them, as echo residue (negatives): its lines, then long silences,
    "Halfway." and a countdown a word a second, which the other narration jobs (lines read back to back, the
    countdown once) hardly have; the residue of a short word out of silence is what fired most over the routine
    in the room (docs/eval/room-eval.md). Training: 16 pieces of 3 holds at each echo level; validation: 3 at
    0 dB. quiet: room noise QUIET_SNRS_DB under the person (seeded), else 20 dB as every other residue."""
    rng = random.Random(seed + 12 + (100 if quiet else 0))
    lines = [t for t in sources.routine_texts() if t not in COUNTDOWN and t != "Halfway."]
    jobs: list[dict[str, Any]] = []
    pieces = (1, 1) if scale.tiny else (16, 3)
    levels = ECHO_LEVELS_DB[1:2] if scale.tiny else ECHO_LEVELS_DB
    for split, count, dbs in (("train", pieces[0], levels), ("val", pieces[1], (0.0,))):
        for _ in range(count):
            texts, timing = _hold_piece(rng, lines, 3)
            for db in dbs:
                job = {"texts": texts, "timing": timing, "label": NONE_LABEL, "split": split, "tag": "narr_holds",
                       "group": "narr_holds", "echo_db": db, "seed": rng.getrandbits(31), "batch": HOLDS_BATCH}
                if quiet:
                    job["snr_db"] = rng.choice(QUIET_SNRS_DB)
                jobs.append(job)
    return jobs


MORE_VOICES_BATCH = "voices-1"
"""The "batch" key of the other installed voices' jobs (RHVoice, Pico, Festival rab and don; Piper joe held out)."""


def more_voice_jobs(scale: Scale, seed: int) -> list[dict[str, Any]]:
    """Every command phrase and half the confusables in the other installed voices (training), and Piper joe (test).

    Each training voice setting of `synthesis.more_voices` speaks each phrase once augmented and once plain (stop
    and too_much once more augmented), and every other confusable word once augmented. Piper joe, held out because
    the team evaluates on it, gives test clips as the other held-out voices do (quiet and at 0 dB echo).
    """
    rng = random.Random(seed + 9)
    jobs: list[dict[str, Any]] = []

    def add(base: dict[str, Any], **condition: Any) -> None:
        jobs.append({**base, **condition, "seed": rng.getrandbits(31), "batch": MORE_VOICES_BATCH})

    commands = sources.command_phrases()
    confusables = sources.CONFUSABLES if not scale.tiny else sources.CONFUSABLES[:3]
    voices = synthesis.more_voices(4 if not scale.tiny else 1, seed + 10)
    for index, voice in enumerate(voices if not scale.tiny else voices[:1]):
        for command, phrases in commands.items():
            for phrase in phrases if not scale.tiny else phrases[:1]:
                base = {"text": phrase, "voice": _voice_dict(voice), "label": command, "split": "train",
                        "tag": "tts_cmd", "group": voice.label}  # fmt: skip
                for _ in range(2 if command in ("stop", "too_much") else 1):
                    add(base, **_aug(rng, 0.35))
                add(base, strength="none", speed=(0.9, 1.1))
        for word in confusables[index % 2 :: 2]:
            base = {"text": word, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": "train",
                    "tag": "tts_confusable", "group": voice.label}  # fmt: skip
            add(base, **_aug(rng, 0.25))
    if scale.tiny:
        return jobs
    for voice in (v for v in synthesis.held_out_voices() if v.engine == "piper"):
        for job in _test_voice_jobs(voice, commands):
            add(job)
    return jobs


KOKORO_BATCH = "kokoro-1"
"""The "batch" key of the Kokoro voices' jobs (their own cache shards)."""
KOKORO_CONTEXT_BATCH = "kokoro-ctx-1"
"""The "batch" key of the Kokoro voices' in-context jobs (after the others, so these leave them as they are)."""
KOKORO_VOICES = 20
"""Kokoro voice settings (synthesis.kokoro_voices): the five packs and fifteen blends."""


def kokoro_jobs(scale: Scale, seed: int, in_context: bool = False) -> list[dict[str, Any]]:
    """Every command phrase and half the confusables in neural voices (Kokoro-82M packs and blends), training only.

    Each voice setting speaks each phrase once augmented and once plain (stop and too_much once more augmented), and
    every other confusable once augmented and once plain; with `in_context`, also the phrases of sources.IN_CONTEXT
    once augmented and once plain (a batch of their own, listed last). Validation and test clips are untouched, so
    a run with them pairs with one without, row for row.
    """
    voices = synthesis.kokoro_voices(KOKORO_VOICES if not scale.tiny else 1, seed + 18)
    commands = dict(sources.command_phrases())
    confusables = sources.CONFUSABLES if not scale.tiny else sources.CONFUSABLES[:2]
    jobs: list[dict[str, Any]] = []

    def phrase_jobs(rng: random.Random, batch: str, voice: synthesis.Voice, items: dict[str, tuple[str, ...]],
                    tag: str) -> None:  # fmt: skip
        for command, phrases in items.items():
            for phrase in phrases if not scale.tiny else phrases[:1]:
                base = {"text": phrase, "voice": _voice_dict(voice), "label": command, "split": "train",
                        "tag": tag, "group": voice.label, "batch": batch}  # fmt: skip
                for _ in range(2 if command in ("stop", "too_much") and tag == "tts_cmd" else 1):
                    jobs.append({**base, **_aug(rng, 0.35), "seed": rng.getrandbits(31)})
                jobs.append({**base, "strength": "none", "speed": (0.9, 1.1), "seed": rng.getrandbits(31)})

    rng = random.Random(seed + 17)
    for index, voice in enumerate(voices):
        phrase_jobs(rng, KOKORO_BATCH, voice, commands if not scale.tiny else {"stop": commands["stop"]}, "tts_cmd")
        for word in confusables[index % 2 :: 2]:
            base = {"text": word, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": "train",
                    "tag": "tts_confusable", "group": voice.label, "batch": KOKORO_BATCH}  # fmt: skip
            jobs.append({**base, **_aug(rng, 0.25), "seed": rng.getrandbits(31)})
            jobs.append({**base, "strength": "none", "speed": (0.9, 1.1), "seed": rng.getrandbits(31)})
    if in_context:
        rng = random.Random(seed + 19)
        for voice in voices:
            phrase_jobs(rng, KOKORO_CONTEXT_BATCH, voice, dict(sources.IN_CONTEXT), "tts_ctx")
    return jobs


def index_of(voice: synthesis.Voice, voices: list[synthesis.Voice]) -> int:
    """Position of a voice in a list (for alternating halves of the confusables)."""
    return voices.index(voice)


def every_training_voice(scale: Scale, seed: int) -> list[synthesis.Voice]:
    """Every training voice setting: those of `tts_jobs`, the Flite variants and the other installed voices (tiny:
    the first alone)."""
    voices = synthesis.training_voices(scale.tts_voices, seed)
    if scale.tiny:
        return voices[:1]
    return voices + synthesis.flite_variants(4, seed + 8) + synthesis.more_voices(4, seed + 10)


TALK_BATCH = "talk-1"
"""The "batch" key of other people's talk (its own cache shards)."""
TALK_PER_VOICE = 8
"""Talk lines each training voice setting speaks."""


def talk_texts() -> list[str]:
    """Other people's ordinary speech: the living-room lines, and short sentences of plain prose; never a command."""
    prose = [s for s in sources.ordinary_sentences(2600) if len(s.split()) <= 20]
    return sources.without_commands(list(sources.TALK) + prose)


def talk_jobs(scale: Scale, seed: int) -> list[dict[str, Any]]:
    """Other people talking in the room (negatives in voices other than the narrator's).

    Every training voice setting (eSpeak-NG, Flite and Festival of `tts_jobs`, the Flite variants, the other
    installed voices) speaks TALK_PER_VOICE seeded lines of `talk_texts`, augmented (a fifth of them under the
    narrator's echo residue); the voices of the validation share speak theirs plain, for the thresholds. Each
    held-out voice speaks every living-room line plain (test).
    """
    rng = random.Random(seed + 11)
    texts = talk_texts()
    if scale.tiny:
        texts = texts[:2]
    jobs: list[dict[str, Any]] = []
    for voice in every_training_voice(scale, seed):
        split = "val" if sources.held_out(voice.label, seed, 0.15) else "train"
        for text in rng.sample(texts, min(len(texts), TALK_PER_VOICE if not scale.tiny else 1)):
            condition = _aug(rng, 0.2) if split == "train" else {"strength": "none"}
            jobs.append({"text": text, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": split,
                         "tag": "talk", "group": voice.label, "seed": rng.getrandbits(31), "batch": TALK_BATCH,
                         **condition})  # fmt: skip
    if scale.tiny:
        return jobs
    for voice in synthesis.held_out_voices():
        for text in sources.TALK:
            jobs.append({"text": text, "voice": _voice_dict(voice), "label": NONE_LABEL, "split": "test",
                         "tag": "talk", "group": voice.label, "seed": rng.getrandbits(31), "batch": TALK_BATCH,
                         "strength": "none"})  # fmt: skip
    return jobs


CONTEXT_BATCH = "context-1"
"""The "batch" key of the in-context jobs (their own cache shards)."""
_CONTEXT_GAP_S = (0.05, 0.45)
"""Pause between the two real-person words of a composite ("no ... stop")."""


def context_jobs(data_dir: Path, scale: Scale, seed: int) -> list[dict[str, Any]]:
    """Stop and too much inside longer phrases (sources.IN_CONTEXT), as positives of their command.

    - every training voice setting (those of `tts_jobs`, the Flite variants, the other installed voices) speaks each
      phrase once augmented and once plain; the validation share of voices speaks them plain (for the thresholds);
    - real people: each speaker's "stop" after another word of the same speaker ("no" where there is one) and after
      another "stop" of theirs, two clips with a short pause between ("paths"); training speakers once plain and
      once augmented, validation speakers plain;
    - each held-out voice speaks every phrase quiet and at 0 dB echo (test, source "tts_ctx").
    """
    rng = random.Random(seed + 13)
    jobs: list[dict[str, Any]] = []

    def add(base: dict[str, Any], **condition: Any) -> None:
        jobs.append({**base, **condition, "seed": rng.getrandbits(31), "batch": CONTEXT_BATCH})

    for voice in every_training_voice(scale, seed):
        split = "val" if sources.held_out(voice.label, seed, 0.15) else "train"
        for command, phrases in sources.IN_CONTEXT.items():
            for phrase in phrases if not scale.tiny else phrases[:1]:
                base = {"text": phrase, "voice": _voice_dict(voice), "label": command, "split": split,
                        "tag": "tts_ctx", "group": voice.label}  # fmt: skip
                if split == "val":
                    add(base, strength="none")
                    continue
                add(base, **_aug(rng, 0.35))
                add(base, strength="none", speed=(0.9, 1.1))
    by_speaker: dict[str, dict[str, list[str]]] = {}
    for clip in sources.human_clips(data_dir):
        if clip.corpus.startswith("speech_commands"):
            by_speaker.setdefault(clip.speaker, {}).setdefault(clip.word, []).append(str(clip.path))
    speakers = sorted(s for s, words in by_speaker.items() if "stop" in words)
    for speaker in speakers if not scale.tiny else speakers[:2]:
        words = by_speaker[speaker]
        split = "val" if sources.held_out(speaker, seed) else "train"
        others = sorted(w for w in words if w not in sources.HUMAN_COMMAND_WORDS)
        firsts = [rng.choice(words["no"] if "no" in words else words[rng.choice(others)])] if others else []
        if len(words["stop"]) >= 2:
            firsts.append(words["stop"][1])
        for first in firsts:
            pair: dict[str, Any] = {"paths": [first, words["stop"][0]], "gap_s": round(rng.uniform(*_CONTEXT_GAP_S), 3),
                                    "label": "stop", "split": split, "tag": "human_ctx", "group": speaker}  # fmt: skip
            add(pair, strength="none")
            if split == "train":
                add(pair, **_aug(rng, 0.4))
    if scale.tiny:
        return jobs
    for voice in synthesis.held_out_voices():
        for job in _test_voice_jobs(voice, sources.IN_CONTEXT, tag="tts_ctx", confusables=False):
            add(job)
    return jobs


ECHO_VALIDATION_BATCH = "echo-val-1"
"""The "batch" key of the validation negatives under the narrator's echo (their own cache shards)."""


def echo_validation_jobs(jobs: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Every validation clip of a real person that is not a command (words, wake words, sentences) once more, under
    the residue of the narrator's echo at 0 dB: the thresholds then see what the room shows, where a word said while
    the narrator talks comes with the echo the canceller left (a head can be silent on these words in quiet and still
    turn "down", "two" or "dog" into stop over the narration). Validation only: training is untouched."""
    rng = random.Random(seed + 17)
    return [{**job, "strength": "none", "echo_db": 0.0, "seed": rng.getrandbits(31), "batch": ECHO_VALIDATION_BATCH}
            for job in jobs
            if job.get("split") == "val" and job.get("label") == NONE_LABEL and "path" in job
            and job.get("tag") in ("human_word", "wake", "sentence") and "echo_db" not in job]  # fmt: skip
