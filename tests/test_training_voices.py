"""The training voices: every engine speaks for real, the held-out voices never reach training, new job batches
leave the cached shards of the earlier recipe as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicecoach.training import features, plan, synthesis

pytestmark = pytest.mark.engine

_ENGINES = ("rhvoice", "pico", "festival", "piper")
_INSTALL = "scripts/bootstrap.sh --test installs it (Pico and RHVoice from Debian's non-free component)"


def _speech_seconds(samples: np.ndarray) -> float:
    frames = samples[: len(samples) // 320 * 320].astype(np.float64).reshape(-1, 320)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)
    return float(np.sum(db > db.max() - 30) * 0.02)


@pytest.mark.parametrize("engine", _ENGINES)
def test_each_other_engine_speaks_a_command_at_16khz(engine: str) -> None:
    if not synthesis.engine_installed(engine):
        pytest.skip(f"{engine} is not installed here: {_INSTALL}")
    voice = next(v for v in [*synthesis.more_voices(1, seed=1), *synthesis.held_out_voices()] if v.engine == engine)
    samples = synthesis.synthesize(voice, "please stop")
    assert samples.dtype == np.int16
    assert 0.3 < _speech_seconds(samples) < 2.5, voice.label
    assert np.abs(samples).max() > 3000


@pytest.mark.parametrize("engine", ("rhvoice", "pico", "festival"))
def test_a_slower_rate_gives_longer_speech(engine: str) -> None:
    if not synthesis.engine_installed(engine):
        pytest.skip(f"{engine} is not installed here: {_INSTALL}")
    name = next(v.name for v in synthesis.more_voices(1, seed=1) if v.engine == engine)
    slow = synthesis.synthesize(synthesis.Voice(engine, name, rate_wpm=120), "please stop the routine")
    fast = synthesis.synthesize(synthesis.Voice(engine, name, rate_wpm=220), "please stop the routine")
    assert _speech_seconds(slow) > 1.3 * _speech_seconds(fast)


def test_held_out_voices_never_speak_a_training_clip() -> None:
    jobs = plan.tts_jobs(plan.FULL, seed=1) + plan.more_voice_jobs(plan.FULL, seed=1)
    held = {(engine, name) for engine, name in synthesis.HELD_OUT_VOICES}
    trained = {(j["voice"]["engine"], j["voice"]["name"]) for j in jobs if j["split"] != "test"}
    assert not trained & held
    assert ("festival", "kal_diphone") in held and ("piper", "joe") in held
    names = {j["voice"]["name"] for j in jobs if j["split"] == "train"}
    assert not names & {"evgeniy-eng", "lyubov"}  # RHVoice's CC BY-NC-ND voices
    if synthesis.engine_installed("piper"):
        assert any(j["voice"]["engine"] == "piper" and j["split"] == "test" for j in jobs)


def test_more_voice_jobs_are_their_own_batch_and_leave_earlier_shards_as_they_were(tmp_path: Path) -> None:
    earlier = plan.tts_jobs(plan.TINY, seed=1)
    more = plan.more_voice_jobs(plan.FULL, seed=1)
    if not more:
        pytest.skip(f"no other training voice is installed here: {_INSTALL}")
    assert {j["batch"] for j in more} == {plan.MORE_VOICES_BATCH}
    before = features.shard_list(earlier, tmp_path)
    after = features.shard_list(earlier + more, tmp_path)
    assert after[: len(before)] == before
    assert all(job.get("batch") == plan.MORE_VOICES_BATCH for _, shard in after[len(before) :] for job in shard)
    labels = {j["label"] for j in more if j["split"] == "train"}
    assert {"stop", "too_much", "none"} <= labels
