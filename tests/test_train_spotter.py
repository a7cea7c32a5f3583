"""The training script's smoke run: a tiny subset, seconds, a head the runtime loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicecoach.listening.spotter.model import SpotterModel
from voicecoach.training.sources import DEFAULT_DATA_DIR

pytestmark = pytest.mark.engine

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_spotter.py"


def test_tiny_training_run_writes_a_loadable_head_and_card(tmp_path: Path) -> None:
    if not DEFAULT_DATA_DIR.is_dir():
        pytest.skip(f"the team's recordings are not here ({DEFAULT_DATA_DIR}); see ../shared/data/README.md")
    for module in ("torch", "audiomentations", "tqdm"):
        pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[train]'")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--out", str(out)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    model = SpotterModel.load(out / "head.npz")
    assert "stop" in model.commands and model.window_frames == 16
    card = (out / "MODEL.md").read_text()
    assert "arXiv:1804.03209" in card and "--tiny" in card and "Seed 1" in card
    assert (out / "head.npz").stat().st_size < 2_000_000
    # the second detector of stop and too much, from the in-context recipe, beside that head
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--out", str(out), "--in-context", "--safety-head", "0.9"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "clips firing" in result.stdout and " -> " in result.stdout  # alone -> with the safety head
    safety = SpotterModel.load(out / "safety_head.npz")
    assert safety.metadata["role"] == "safety" and safety.thresholds["stop"] == pytest.approx(0.9)
    assert all(t > 1 for c, t in safety.thresholds.items() if c not in ("stop", "too_much"))
    card = (out / "SAFETY_HEAD.md").read_text()
    assert "--safety-head 0.9" in card and "--in-context" in card and "with the safety head" in card
    assert "arXiv:1804.03209" in card and "CC BY 4.0" in card  # Speech Commands credited in the card itself
    assert SpotterModel.load(out / "head.npz").metadata.get("role") != "safety"  # the main head left as it was
    # an existing pair of heads measured on the run's clips: the head alone, then with the safety head beside it
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--in-context", "--baseline", str(out / "head.npz"), "--baseline-safety", str(out / "safety_head.npz")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    alone, _, paired = result.stdout.partition("beside it (alone -> with):")
    assert "recall " in alone and "false " in alone
    assert "false val human_word quiet: clips firing" in paired and " -> " in paired
    # one composite head: stop and too much from the head above, every other command from a run with another seed
    composite = tmp_path / "composite"
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--out", str(composite), "--set", "seed=5", "--safety-from", str(out / "head.npz"), "--fast-safety", "0.95",
         "--frames", "pause=3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "alone -> composite" in result.stdout
    source, both = SpotterModel.load(out / "head.npz"), SpotterModel.load(composite / "head.npz")
    assert len(both.networks()) == 2 * len(source.networks()) and both.class_weights is not None
    assert both.thresholds["stop"] == source.thresholds["stop"] and both.frames_for("too_much") == source.frames_for(
        "too_much")
    assert both.frames_for("pause") == 3 and "pause=3 is given (--frames)" in (composite / "MODEL.md").read_text()
    windows = np.random.default_rng(0).normal(0, 1, (4, 16, 96)).astype(np.float32)
    stop = both.labels.index("stop")
    np.testing.assert_allclose(both.probabilities(windows)[:, stop], source.probabilities(windows)[:, stop],
                               atol=5e-3)  # float16 weights  # fmt: skip
    assert both.fast_thresholds == pytest.approx({"stop": 0.95, "too_much": 0.95})  # the fast path, stored
    card = (composite / "MODEL.md").read_text()
    assert "--safety-from" in card and "fast path" in card and "a composite" in card
    assert "made by `nice -n 10 .venv/bin/python scripts/train_spotter.py --tiny" in card  # the source's own command
    # an existing head given a fast path: only the rule changes, the weights are stored as they were
    fast = tmp_path / "fast"
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--baseline", str(out / "head.npz"), "--fast-safety", "0.9", "--out", str(fast)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    given = SpotterModel.load(fast / "head.npz")
    assert given.fast_thresholds == pytest.approx({"stop": 0.9, "too_much": 0.9})
    assert given.thresholds == source.thresholds and given.command_frames == source.command_frames
    np.testing.assert_array_equal(given.probabilities(windows), source.probabilities(windows))
    card = (fast / "MODEL.md").read_text()
    assert card.startswith((out / "MODEL.md").read_text())  # the head's own card, then a section
    assert "## Fast path" in card and "--baseline" in card and "--fast-safety 0.9" in card and "recall " in card
    # the other way round: this run's stop and too much into that composite, in place of its own
    into = tmp_path / "into"
    result = subprocess.run(
        [sys.executable, str(_SCRIPT), "--tiny", "--quiet", "--workers", "1", "--cache", str(tmp_path / "cache"),
         "--out", str(into), "--set", "seed=7", "--set", "positive_from_s=-0.16", "--min-frames", "too_much=2",
         "--safety-into",
         str(composite / "head.npz")], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "-> composite (stop and too much from this run" in result.stdout
    swapped = SpotterModel.load(into / "head.npz")
    assert len(swapped.networks()) == len(both.networks())  # the composite's stop networks dropped, this run's in
    pause = both.labels.index("pause")
    np.testing.assert_allclose(swapped.probabilities(windows)[:, pause], both.probabilities(windows)[:, pause],
                               atol=1e-6)  # every other command exactly as it was  # fmt: skip
    assert not np.allclose(swapped.probabilities(windows)[:, stop], both.probabilities(windows)[:, stop], atol=1e-3)
    card = (into / "MODEL.md").read_text()
    assert "--safety-into" in card and "Only stop and too much are this run's" in card
    assert "from -0.16 s of its phrase's marked end" in card
    assert swapped.frames_for("too_much") >= 2 and "too_much=2 frames in a row at least" in card


def test_missing_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    pytest.importorskip("tqdm", reason="tqdm missing: pip install -e '.[train]'")
    result = subprocess.run([sys.executable, str(_SCRIPT), "--data", str(tmp_path / "nowhere"), "--tiny"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "data folder" in result.stderr and "Traceback" not in result.stderr


def test_training_echo_residue_is_what_the_products_echo_removal_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    # White "narration" through the room at 0 dB re the person: the product's EchoRemover (which the residue must
    # come through) takes it well down once adapted; a person added on top survives it.
    from voicecoach.echo import clean_mic
    from voicecoach.training import augmentation

    pytest.importorskip("audiomentations", reason="audiomentations missing: pip install -e '.[train]'")
    calls = []
    real = clean_mic.EchoRemover.clean
    monkeypatch.setattr(clean_mic.EchoRemover, "clean", lambda self, *a: calls.append(1) or real(self, *a))
    rng = np.random.default_rng(1)
    lead = int(augmentation.ECHO_LEAD_S * augmentation.SAMPLE_RATE)
    narration = (rng.standard_normal(lead + 16000 * 4) * 3000).astype(np.int16)
    quiet = np.zeros(16000 * 4, np.float32)
    residue = augmentation.echo_residue(quiet, narration, 0.0, seed=2, snr_db=40.0).astype(float)
    assert len(residue) == len(quiet) and calls, "the residue did not come through the product's EchoRemover"
    person_rms = 10 ** (augmentation.VOICE_DBFS / 20) * 32768
    late = np.sqrt(np.mean(residue[16000 * 2 :] ** 2))
    assert 20 * np.log10(person_rms / late) > 12.0, "the echo was not cancelled"
    voice = quiet.copy()
    voice[16000 * 2 : 16000 * 3] = rng.standard_normal(16000) * person_rms
    with_person = augmentation.echo_residue(voice, narration, 0.0, seed=2, snr_db=40.0).astype(float)
    kept = np.sqrt(np.mean(with_person[16000 * 2 : 16000 * 3] ** 2))
    assert kept == pytest.approx(person_rms, rel=0.3)


def test_human_boost_draws_real_peoples_command_windows_more_often() -> None:
    from voicecoach.training import train

    classes = np.array([0, 0, 1, 1])
    human = np.array([True, False, True, False])
    labels = ("stop", "pause", "none")
    assert train._positive_weights(classes, labels, train.ORIGINAL, human) is None
    boosted = train._positive_weights(classes, labels, train.TrainConfig(human_boost=3.0), human)
    assert boosted is not None
    np.testing.assert_allclose(boosted, np.array([3, 1, 3, 1]) / 8)


def test_a_source_file_is_cached_by_its_contents_not_its_time(tmp_path: Path) -> None:
    from voicecoach.training import features

    clip = tmp_path / "a.wav"
    clip.write_bytes(b"RIFF one")
    job = {"path": str(clip), "label": "stop"}
    first = features.job_hash(job)
    os.utime(clip, (1_000_000, 1_000_000))  # copied or mounted anew: a new time, the same bytes
    features.file_digest.cache_clear()
    assert features.job_hash(job) == first
    clip.write_bytes(b"RIFF two")
    features.file_digest.cache_clear()
    assert features.job_hash(job) != first
    assert features.job_hash({**job, "label": "go"}) != features.job_hash(job)


def test_talk_negatives_hold_no_command_phrase_and_keep_held_out_voices_for_testing() -> None:
    from voicecoach.training import plan, sources, synthesis

    phrases = [p for group in sources.command_phrases().values() for p in group]
    texts = plan.talk_texts()
    assert len(texts) > len(sources.TALK)  # the living-room lines and plain prose
    for text in texts:
        words = f" {' '.join(text.lower().replace(',', ' ').replace('.', ' ').split())} "
        assert not any(f" {p} " in words for p in phrases), text
    assert sources.without_commands(["Please stop by the shop.", "Let's start.", "A quiet part."]) == ["A quiet part."]
    jobs = plan.talk_jobs(plan.FULL, seed=1)
    held = {v.label for v in synthesis.held_out_voices()}
    assert held and {j["group"] for j in jobs if j["split"] == "test"} == held
    assert not held & {j["group"] for j in jobs if j["split"] != "test"}
    assert {j["label"] for j in jobs} == {"none"} and {j["batch"] for j in jobs} == {plan.TALK_BATCH}
    assert jobs == plan.talk_jobs(plan.FULL, seed=1)  # seeded


def test_homophones_of_a_command_are_set_aside_not_taught_as_negatives() -> None:
    from voicecoach.training import plan, sources

    jobs = plan.tts_jobs(plan.FULL, 1)
    meta = [{"label": j["label"], "split": j["split"]} for j in jobs]
    count = plan.set_aside(meta, jobs)
    homophone = [m for m, j in zip(meta, jobs, strict=True) if j["text"] in sources.HOMOPHONES]
    assert count == len(homophone) > 0
    assert all(m["split"] == plan.UNUSED_SPLIT for m in homophone)
    assert all(m["split"] != plan.UNUSED_SPLIT for m, j in zip(meta, jobs, strict=True) if j["text"] == "too much")
    # the other jobs keep their seeds (and cached renders): the homophones stay in the seeded list
    assert set(sources.HOMOPHONES) <= set(sources.CONFUSABLES)
    with pytest.raises(ValueError, match="out of order"):
        plan.set_aside(meta[1:] + meta[:1], jobs)


def test_commands_in_context_are_positives_of_their_command_and_their_opposites_are_set_aside() -> None:
    from voicecoach.training import plan, sources, synthesis

    jobs = plan.context_jobs(sources.DEFAULT_DATA_DIR, plan.FULL, seed=1)
    assert jobs == plan.context_jobs(sources.DEFAULT_DATA_DIR, plan.FULL, seed=1)  # seeded
    assert {j["batch"] for j in jobs} == {plan.CONTEXT_BATCH}
    tts = [j for j in jobs if j["tag"] == "tts_ctx"]
    for command, phrases in sources.IN_CONTEXT.items():
        assert {j["text"] for j in tts if j["label"] == command} == set(phrases)
        assert all(command.replace("_", " ") in p or command == "too_much" for p in phrases)
    held = {v.label for v in synthesis.held_out_voices()}
    assert {j["group"] for j in tts if j["split"] == "test"} == held
    assert not held & {j["group"] for j in jobs if j["split"] != "test"}
    people = [j for j in jobs if j["tag"] == "human_ctx"]
    assert people and all(j["label"] == "stop" and len(j["paths"]) == 2 for j in people)
    for job in people:  # one speaker's two clips, the second a stop; the split is the speaker's
        first, second = (p.rsplit("/", 1)[1].split("_nohash_")[0] for p in job["paths"])
        assert first == second == job["group"] and "/stop/" in job["paths"][1]
        assert job["split"] == ("val" if sources.held_out(job["group"], 1) else "train")
    assert any("/no/" in j["paths"][0] for j in people) and any("/stop/" in j["paths"][0] for j in people)
    # the confusables holding the word itself are set aside with this recipe, the others stay negatives
    confusables = plan.tts_jobs(plan.FULL, 1)
    meta = [{"label": j["label"], "split": j["split"]} for j in confusables]
    count = plan.set_aside(meta, confusables, sources.CONTAINS_COMMAND)
    aside = [m for m, j in zip(meta, confusables, strict=True) if m["split"] == plan.UNUSED_SPLIT]
    assert count == len(aside) > 0
    assert all(j["text"] in sources.CONTAINS_COMMAND for m, j in zip(meta, confusables, strict=True)
               if m["split"] == plan.UNUSED_SPLIT)  # fmt: skip
    assert all(j["text"] not in sources.HOMOPHONES for m, j in zip(meta, confusables, strict=True)
               if m["split"] == plan.UNUSED_SPLIT)  # fmt: skip


def test_a_composite_is_the_two_clips_speech_with_the_pause_between(tmp_path: Path) -> None:
    import soundfile

    from voicecoach.training import features

    rate = 16000
    t = np.arange(rate // 4) / rate
    word = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    silence = np.zeros(rate // 2, np.float32)
    paths = []
    for name in ("first", "second"):
        path = tmp_path / f"{name}.wav"
        soundfile.write(path, np.concatenate([silence, word, silence]), rate)
        paths.append(str(path))
    audio = features.composite(paths, gap_s=0.3)
    # each word kept with 10 ms either side (20 ms frames round the speech outwards a little), the gap between
    assert abs(len(audio) - (2 * (len(word) + 320) + int(0.3 * rate))) <= 2 * 640
    frames = audio[: len(audio) // 160 * 160].astype(np.float64).reshape(-1, 160)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 1000  # 10 ms frames
    edges = np.flatnonzero(np.diff(loud.astype(int)))
    assert len(edges) == 4 and not loud[0] and not loud[-1]  # the 10 ms kept, a word, the pause, a word, 10 ms
    gap = (edges[2] - edges[1]) * 160 / rate  # the pause and the 10 ms kept after and before the words
    assert 0.3 + 0.02 - 0.021 <= gap <= 0.3 + 0.02 + 0.021
    key = {"paths": paths, "gap_s": 0.3, "label": "stop", "split": "train", "tag": "human_ctx", "group": "x"}
    before = features.job_hash(key)
    soundfile.write(paths[1], np.concatenate([silence, word[::-1], silence]), rate)
    features.file_digest.cache_clear()
    assert features.job_hash(key) != before  # the cache key follows both files' contents


def test_set_seed_seeds_the_networks_alone_and_later_settings_win() -> None:
    from tests.support.scripts import load_script

    script = load_script("train_spotter")
    args = script._parser().parse_args(["--set", "seed=2", "--set", "members=3", "--epochs", "5"])
    config = script._config(args)
    assert (config.seed, config.members, config.epochs) == (2, 3, 5)
    assert args.seed == 1  # the clips, their split and renders keep --seed
    assert script._config(script._parser().parse_args(["--seed", "4"])).seed == 4
    with pytest.raises(SystemExit, match="no training setting 'sede'"):
        script._config(script._parser().parse_args(["--set", "sede=2"]))


def test_a_command_heard_before_the_marked_end_of_its_phrase_counts_as_heard() -> None:
    """A real recording's marked end takes in what follows the word; a clear stop fires before it. It counts from
    the phrase's start on (it used to count only through its own second detection a second later, which the rule
    no longer makes); before the start, or a wrong command first, it does not."""
    from voicecoach.listening.spotter.model import Detection
    from voicecoach.training.evaluate import _outcome

    meta = {"label": "stop"}
    early = [Detection("stop", "stop", 0.99, 1.00)]  # the phrase runs from 0.8 s to a marked 1.6 s
    assert _outcome(early, meta, 1.6, 0.8)["hit"] and _outcome(early, meta, 1.6, 0.8)["latency_frames"] == -8
    assert not _outcome(early, meta, 1.6)["hit"], "without a start: only from 0.3 s before the end"
    assert not _outcome([Detection("stop", "stop", 0.99, 0.70)], meta, 1.6, 0.8)["hit"], "before the phrase"
    wrong_first = [Detection("start", "start", 0.9, 1.0), Detection("stop", "stop", 0.99, 1.1)]
    assert not _outcome(wrong_first, meta, 1.6, 0.8)["hit"]


def test_positive_from_s_moves_where_a_commands_windows_start_and_keeps_old_recipes_keys() -> None:
    """A command clip's windows are the command from positive_from_s of its phrase's end, "none" before its start;
    the setting enters a run's cache key only when it is not 0, so every earlier recipe keeps its cached head."""
    from voicecoach.training.features import Features
    from voicecoach.training.train import ORIGINAL, WINDOW_FRAMES, TrainConfig, label_windows

    frames = 25  # frame j's window ends at (j + 1) * 80 ms; the phrase runs from 0.80 to 1.20 s
    feats = Features(np.zeros((frames, 96), np.float16), np.array([0]), np.array([frames]), np.array([0.8]),
                     np.array([1.2]), [{"label": "stop", "split": "train", "tag": "human_cmd"}])  # fmt: skip
    labels = ("stop", "none")
    starts = np.array([WINDOW_FRAMES - 1])

    def positive_ends(from_s: float) -> list[float]:
        windows = label_windows(feats, starts, labels, "train", from_s)
        return [round((f + 1) * 0.08, 2) for f, c in zip(windows.frame, windows.labels, strict=True) if c == 0]

    assert positive_ends(0.0) == [1.2, 1.28, 1.36, 1.44, 1.52, 1.6, 1.68, 1.76]
    assert positive_ends(-0.16)[:3] == [1.04, 1.12, 1.2] and positive_ends(-0.16)[-1] == 1.76
    windows = label_windows(feats, starts, labels, "train", -0.16)
    assert max(round((f + 1) * 0.08, 2) for f, c in zip(windows.frame, windows.labels, strict=True) if c == 1) == 0.8
    assert "positive_from_s" not in ORIGINAL.recipe()
    assert TrainConfig(positive_from_s=-0.16).recipe()["positive_from_s"] == -0.16


def test_echo_validation_adds_real_peoples_validation_negatives_under_echo_and_nothing_to_training() -> None:
    from voicecoach.training import plan

    jobs = [
        {"path": "a.wav", "label": "none", "split": "val", "tag": "human_word", "strength": "none", "seed": 1},
        {"path": "b.wav", "label": "none", "split": "val", "tag": "wake", "strength": "none", "seed": 2},
        {"path": "c.wav", "label": "none", "split": "train", "tag": "human_word", "strength": "full", "seed": 3},
        {"path": "d.wav", "label": "stop", "split": "val", "tag": "human_cmd", "strength": "none", "seed": 4},
        {"path": "e.wav", "label": "none", "split": "val", "tag": "sentence", "strength": "none", "echo_db": 6.0},
        {"text": "top", "label": "none", "split": "val", "tag": "tts_confusable", "strength": "none", "seed": 5},
    ]
    added = plan.echo_validation_jobs(jobs, seed=1)
    assert [j["path"] for j in added] == ["a.wav", "b.wav"]
    assert all(j["echo_db"] == 0.0 and j["split"] == "val" and j["batch"] == plan.ECHO_VALIDATION_BATCH
               for j in added)  # fmt: skip
    assert added == plan.echo_validation_jobs(jobs, seed=1) and added[0]["seed"] != jobs[0]["seed"]


def test_min_frames_and_frames_take_command_and_count_or_say_what_they_expected() -> None:
    from tests.support.scripts import load_script

    script = load_script("train_spotter")
    args = script._parser().parse_args(["--min-frames", "too_much=2", "--min-frames", "stop=3"])
    assert script._min_frames(args) == {"too_much": 2, "stop": 3}
    for bad in ("tooo_much=2", "too_much=4", "too_much"):
        with pytest.raises(SystemExit, match=f"--min-frames {bad}: expected COMMAND=N"):
            script._min_frames(script._parser().parse_args(["--min-frames", bad]))
    pinned = script._parser().parse_args(["--frames", "too_much=1", "--frames", "back=1", "--frames", "quit=3"])
    assert script._pinned_frames(pinned) == {"too_much": 1, "back": 1, "quit": 3}
    with pytest.raises(SystemExit, match="--frames stop=3: stop waits at most 2 frames in a row"):
        script._pinned_frames(script._parser().parse_args(["--frames", "stop=3"]))
    with pytest.raises(SystemExit, match="--frames pause=0: expected COMMAND=N"):
        script._pinned_frames(script._parser().parse_args(["--frames", "pause=0"]))


def test_noise_floor_lays_the_pipelines_floor_under_every_clip_in_its_own_cache_shards(tmp_path: Path) -> None:
    from voicecoach.training import augmentation, features

    silence = np.zeros(16000, np.int16)
    floored = augmentation.with_floor(silence, -70.0, seed=3)
    level_dbfs = 10 * np.log10(np.mean(floored.astype(np.float64) ** 2) / 32768**2)
    assert -71.0 < level_dbfs < -69.0 and np.count_nonzero(floored) > 15000, "no digital silence left"
    assert np.array_equal(floored, augmentation.with_floor(silence, -70.0, seed=3)), "seeded"
    loud = np.full(16000, 32767, np.int16)
    assert augmentation.with_floor(loud, -70.0, seed=3).max() == 32767, "clipped to int16, not wrapped"
    job = {"text": "stop", "label": "stop", "seed": 5}
    assert features.job_hash({**job, "floor_dbfs": -70.0}) != features.job_hash(job)


def test_quiet_residue_jobs_are_narration_negatives_in_quiet_rooms_in_their_own_shards() -> None:
    from voicecoach.training import evaluate, features, plan

    jobs = plan.quiet_residue_jobs(plan.FULL, seed=1)
    assert jobs == plan.quiet_residue_jobs(plan.FULL, seed=1), "seeded"
    assert all(j["label"] == "none" and "texts" in j and j["batch"] == plan.QUIET_RESIDUE_BATCH for j in jobs)
    assert {j["snr_db"] for j in jobs if j["split"] != "test"} == set(plan.QUIET_SNRS_DB)
    assert {(j["split"], j["tag"]) for j in jobs} == {("train", "narr_routine"), ("train", "narr_other"),
                                                      ("val", "narr_other"), ("test", "narr_lower_back_quiet")}
    routine = [j for j in jobs if j["tag"] == "narr_routine"]
    assert {j["echo_db"] for j in routine} == set(plan.ECHO_LEVELS_DB)
    assert all(j["echo_db"] == 0.0 for j in jobs if j["split"] in ("val", "test"))
    # The same text at 20 dB (the original narration jobs' residue) is another clip, with its own cache key.
    quiet = routine[0]
    plain = {k: v for k, v in quiet.items() if k != "snr_db"}
    assert features.job_hash(quiet) != features.job_hash(plain)
    condition = f"echo {quiet['echo_db']:+g} dB, SNR {quiet['snr_db']:g} dB"
    assert evaluate._condition(features._meta(quiet), None) == condition
    row = features._meta(quiet)
    assert row["snr_db"] == quiet["snr_db"] and "snr_db" not in features._meta(plain)


def test_a_narration_job_renders_its_residue_at_its_rooms_snr(monkeypatch: pytest.MonkeyPatch) -> None:
    from voicecoach.training import augmentation, features

    asked: list[float] = []
    monkeypatch.setattr(augmentation, "echo_residue",
                        lambda person, narration, echo_db, seed, snr_db=20.0: asked.append(snr_db) or person)
    worker = object.__new__(features._Worker)  # _render_stream needs none of the worker's state
    narration = np.zeros(16000 * 5, np.int16)
    worker._render_stream({"texts": ["x"], "echo_db": 0.0, "seed": 1, "snr_db": 40.0}, narration)
    worker._render_stream({"texts": ["x"], "echo_db": 0.0, "seed": 1}, narration)
    assert asked == [40.0, 20.0]


def test_hold_jobs_time_the_countdown_a_word_a_second_after_long_silences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicecoach.training import features, plan, synthesis

    jobs = plan.hold_jobs(plan.FULL, seed=1)
    assert jobs == plan.hold_jobs(plan.FULL, seed=1) and all(j["batch"] == plan.HOLDS_BATCH for j in jobs)
    assert {(j["split"], j["echo_db"]) for j in jobs} == {("train", db) for db in plan.ECHO_LEVELS_DB} | {("val", 0.0)}
    assert not any("snr_db" in j for j in jobs)
    assert {j["snr_db"] for j in plan.hold_jobs(plan.FULL, seed=1, quiet=True)} == set(plan.QUIET_SNRS_DB)
    texts = jobs[0]["texts"]
    at = texts.index("Five.")
    assert texts[at : at + 6] == [*plan.COUNTDOWN, "And release."] and texts[at - 1] == "Halfway."
    # The stream follows the timing: a countdown word starts every second, and a line is followed by silence.
    words = {"line": 1.5, "Halfway.": 0.5, "Five.": 0.4, "Four.": 0.4, "And release.": 0.6}
    monkeypatch.setattr(synthesis, "cached_synthesis",
                        lambda cache, voice, text: np.full(int(words[text] * 16000), 1000, np.int16))
    stream = features.narration_stream(tmp_path, ["line", "Halfway.", "Five.", "Four.", "And release."], 1,
                                       [[3.0, 0.0], [2.0, 0.0], [0.1, 1.0], [0.1, 1.0], [1.0, 0.0]])  # fmt: skip
    onsets = np.flatnonzero(np.diff(np.concatenate([[0], (stream != 0).astype(int)])) == 1) / 16000
    assert onsets == pytest.approx([0.0, 4.5, 7.0, 8.0, 9.0])
