"""Render jobs (a clip, its augmentation, its label) to front-end embeddings, cached on disk by a hash of the inputs.

A job is a plain dict, so its hash is the hash of its JSON (plus the source file's size and time, and FEATURE_VERSION).
Jobs run in shards of SHARD_SIZE across worker processes; each shard's embeddings land in one .npz under
<cache>/features/, so a rerun computes only what changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicecoach.listening.spotter.model import CHUNK_SAMPLES, SAMPLE_RATE, FrontEnd
from voicecoach.training import augmentation, sources, synthesis

_LOGGER = logging.getLogger(__name__)

FEATURE_VERSION = 5
"""Bump when rendering changes in a way the job dicts do not show."""
SHARD_SIZE = 64
STREAM_PIECE_S = 45.0
"""Long narration is rendered in pieces of about this length (one job each)."""


@dataclass
class Features:
    """Embeddings of many rendered clips, concatenated, with one row of metadata per clip."""

    embeddings: np.ndarray
    """(total frames, 96) float16."""
    offsets: np.ndarray
    """Start row of each clip; clip i is embeddings[offsets[i]:offsets[i] + lengths[i]]."""
    lengths: np.ndarray
    word_start_s: np.ndarray
    """Where the command phrase starts in the rendered clip (NaN for negatives)."""
    word_end_s: np.ndarray
    meta: list[dict[str, Any]]
    """Each job's label, split, tag and group."""


def job_hash(job: dict[str, Any]) -> str:
    """The hash of everything the rendering of this job depends on (a source file by its contents, not its time:
    a data folder copied or mounted anew keeps its cache)."""
    key = dict(job, _version=FEATURE_VERSION)
    source = job.get("path")
    if source:
        key["_file"] = file_digest(Path(source))
    if job.get("paths"):
        key["_files"] = [file_digest(Path(p)) for p in job["paths"]]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


@functools.cache
def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (each file read once a process)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Worker:
    """Per-process state: the front end, the augmenter, the narration pool."""

    def __init__(self, data_dir: Path, cache_dir: Path, narration_pool: Path | None) -> None:
        self.cache_dir = cache_dir
        self.front_end = FrontEnd()
        rooms = augmentation.write_synthetic_rooms(cache_dir / "rooms", seed=1)
        noise, rirs = sources.noise_files(data_dir), sources.rir_files(data_dir)
        self.augmenters = {strength: augmentation.Augmenter(noise, rirs, rooms, strength)
                           for strength in ("full", "mild")}  # fmt: skip
        self.pool = np.load(narration_pool) if narration_pool and narration_pool.is_file() else None

    def source(self, job: dict[str, Any]) -> np.ndarray:
        if "path" in job:
            from voicecoach.training.clips import read_wav

            return read_wav(Path(job["path"]))
        if "paths" in job:
            return composite(job["paths"], job.get("gap_s", 0.2))
        if "texts" in job:
            return narration_stream(self.cache_dir, job["texts"], job["seed"], job.get("timing"))
        voice = synthesis.Voice(**job["voice"])
        return synthesis.cached_synthesis(self.cache_dir, voice, job["text"])

    def render(self, job: dict[str, Any]) -> tuple[np.ndarray, float, float]:
        """(int16 audio, word start s, word end s) of a job."""
        samples = self.source(job)
        rng = random.Random(job["seed"])
        if "texts" in job:
            return self._render_stream(job, samples), float("nan"), float("nan")
        echo_db = job.get("echo_db")
        layout = augmentation.lay_out(
            samples, rng, speed=tuple(job.get("speed", (1.0, 1.0))), pre_s=(0.25, 0.9), post_s=(0.7, 1.0),
            level_db=(-26.0, -26.0) if echo_db is not None else (-40.0, -16.0),
        )  # fmt: skip
        audio = layout.samples
        if job.get("strength", "none") != "none":
            audio = self.augmenters[job["strength"]](audio, job["seed"])
        if echo_db is not None and self.pool is not None:
            lead_s = augmentation.echo_lead_s(rng)
            need = len(audio) + int(lead_s * SAMPLE_RATE) + 320
            at = rng.randrange(0, max(1, len(self.pool) - need))
            audio = augmentation.echo_residue(audio, self.pool[at : at + need], echo_db, job["seed"],
                                              lead_s=lead_s).astype(np.float32)  # fmt: skip
        start, end = layout.word_start / SAMPLE_RATE, layout.word_end / SAMPLE_RATE
        return augmentation.to_int16(audio), start, end

    def _render_stream(self, job: dict[str, Any], narration: np.ndarray) -> np.ndarray:
        echo_db = job.get("echo_db")
        if echo_db is None:
            audio = augmentation.at_level(narration, job.get("level_db", -26.0))
            if job.get("strength", "none") != "none":
                audio = self.augmenters[job["strength"]](audio, job["seed"])
            return augmentation.to_int16(audio)
        lead = int(augmentation.ECHO_LEAD_S * SAMPLE_RATE)
        person = np.zeros(max(0, len(narration) - lead), np.float32)
        return augmentation.echo_residue(person, narration, echo_db, job["seed"], snr_db=job.get("snr_db", 20.0))

    def embed(self, job: dict[str, Any]) -> tuple[np.ndarray, float, float]:
        audio, start, end = self.render(job)
        if job.get("floor_dbfs") is not None:  # --noise-floor: as the pipeline hears it (the key is in the hash)
            audio = augmentation.with_floor(audio, float(job["floor_dbfs"]), int(job.get("seed", 0)) + 7)
        audio = np.concatenate([audio, np.zeros((-len(audio)) % CHUNK_SAMPLES, np.int16)])
        return self.front_end.embed_clip(audio).astype(np.float16), start, end


def composite(paths: list[str], gap_s: float) -> np.ndarray:
    """Real-person clips one after another, each cut to its speech (10 ms either side), with gap_s of silence
    between (a person saying "no ... stop")."""
    from voicecoach.training.clips import read_wav

    pieces = []
    for index, path in enumerate(paths):
        clip = read_wav(Path(path))
        start, end = augmentation.speech_span(clip.astype(np.float32))
        if index:
            pieces.append(np.zeros(int(gap_s * SAMPLE_RATE), np.int16))
        pieces.append(clip[max(0, start - 160) : end + 160])
    return np.concatenate(pieces)


def narration_stream(cache_dir: Path, texts: list[str], seed: int,
                     timing: list[list[float]] | None = None) -> np.ndarray:  # fmt: skip
    """The narrator reading texts one after another (int16): with short pauses, or as `timing` says.

    timing: per text, [after_end_s, after_start_s]: the next text starts after_end_s after this one ends, or
    after_start_s after it started, whichever is later (a countdown is [0.1, 1.0]: a word a second)."""
    rng = random.Random(seed)
    pieces = []
    for index, text in enumerate(texts):
        speech = synthesis.cached_synthesis(cache_dir, synthesis.NARRATOR, text)
        pieces.append(speech)
        if timing is None:
            pause_s = rng.uniform(0.25, 0.9)
        else:
            after_end_s, after_start_s = timing[index]
            pause_s = max(after_end_s, after_start_s - len(speech) / SAMPLE_RATE)
        pieces.append(np.zeros(int(pause_s * SAMPLE_RATE), np.int16))
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int16)


_WORKER: list[_Worker] = []


def _init_worker(data_dir: Path, cache_dir: Path, pool: Path | None) -> None:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER.append(_Worker(data_dir, cache_dir, pool))


def _run_shard(args: tuple[Path, list[dict[str, Any]]]) -> Path:
    path, jobs = args
    worker = _WORKER[0]
    results = [worker.embed(job) for job in jobs]
    tmp = path.with_suffix(".tmp.npz")
    with open(tmp, "wb") as out:
        np.savez(
            out,
            embeddings=np.concatenate([r[0] for r in results]) if results else np.zeros((0, 96), np.float16),
            lengths=np.array([len(r[0]) for r in results]),
            word_start_s=np.array([r[1] for r in results]),
            word_end_s=np.array([r[2] for r in results]),
        )
    tmp.replace(path)
    return path


def shard_list(jobs: list[dict[str, Any]], folder: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Jobs in shards of SHARD_SIZE; a job group (its "batch" key, absent in the original recipe) starts a shard.

    So job groups appended to the list leave every earlier shard, and its cache file, as it was, and a group can be
    computed on its own.
    """
    shards = []
    at = 0
    while at < len(jobs):
        batch = jobs[at].get("batch")
        end = at
        while end < len(jobs) and end - at < SHARD_SIZE and jobs[end].get("batch") == batch:
            end += 1
        part = jobs[at:end]
        digest = hashlib.sha256("".join(job_hash(job) for job in part).encode()).hexdigest()[:32]
        shards.append((folder / f"{digest}.npz", part))
        at = end
    return shards


def compute(jobs: list[dict[str, Any]], *, data_dir: Path, cache_dir: Path, workers: int,
            narration_pool: Path | None, progress: bool = True) -> Features:  # fmt: skip
    """Embeddings of every job, from the cache where present; shards run on `workers` processes."""
    from tqdm import tqdm

    folder = cache_dir / "features"
    folder.mkdir(parents=True, exist_ok=True)
    shards = shard_list(jobs, folder)
    todo = [shard for shard in shards if not shard[0].is_file()]
    # The slow shards (long narration pieces) first, so that no worker is left with one at the end.
    todo.sort(key=lambda shard: -sum(len(job.get("texts", ())) for job in shard[1]))
    _LOGGER.info("features: %d jobs in %d shards, %d to compute", len(jobs), len(shards), len(todo))
    if todo:
        bar = tqdm(total=len(todo), desc="features", unit="shard", disable=not progress)
        if workers <= 1:
            _init_worker(data_dir, cache_dir, narration_pool)
            for shard in todo:
                _run_shard(shard)
                bar.update()
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, _init_worker, (data_dir, cache_dir, narration_pool)) as pool:
                for _ in pool.imap_unordered(_run_shard, todo):
                    bar.update()
        bar.close()
    return _load(shards)


def _meta(job: dict[str, Any]) -> dict[str, Any]:
    """A clip's metadata row: snr_db only where its job has one (the quiet-room residue)."""
    row = {k: job.get(k) for k in ("label", "split", "tag", "group", "echo_db")}
    return {**row, "snr_db": job["snr_db"]} if "snr_db" in job else row


def _load(shards: Iterable[tuple[Path, list[dict[str, Any]]]]) -> Features:
    embeddings, lengths, starts, ends, meta = [], [], [], [], []
    for path, jobs in shards:
        with np.load(path) as data:
            embeddings.append(data["embeddings"])
            lengths.append(data["lengths"])
            starts.append(data["word_start_s"])
            ends.append(data["word_end_s"])
        meta += [_meta(job) for job in jobs]
    length = np.concatenate(lengths).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    return Features(np.concatenate(embeddings), offsets, length, np.concatenate(starts), np.concatenate(ends), meta)
