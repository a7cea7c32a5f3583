"""The keyword spotter with its packaged head: real inference, streaming equals whole-clip scoring, the rules."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicecoach.listening.spotter.model import (
    FRAME_S,
    NONE_LABEL,
    SAMPLE_RATE,
    Detection,
    SpotterModel,
    SpotterModelError,
    StreamingSpotter,
    detect,
    score_clip,
    vocabulary_commands,
)

pytestmark = pytest.mark.engine

_NARRATION = (
    "Welcome. This session eases tension in your lower spine with ten gentle exercises. "
    "Say stop or too much at any moment and I will fall silent. "
    "Lie face up on your mat with your knees bent and your feet flat on the floor. "
    "Rest for 15 seconds. Coming up: Standing torso twist."
)
"""Narration, teaching line included: in the narrator's voice none of it is a command."""


def _espeak(text: str, voice: str, rate_wpm: int = 160) -> np.ndarray:
    """int16 mono 16 kHz speech from eSpeak-NG, with 0.5 s of silence before and 1 s after."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate_wpm), "--stdout", text], capture_output=True,
                         check=True).stdout  # fmt: skip
    rate = int.from_bytes(wav[24:28], "little")
    samples = np.frombuffer(wav[44 : 44 + (len(wav) - 44) // 2 * 2], dtype=np.int16).astype(np.float32)
    import soxr

    speech = soxr.resample(samples, rate, SAMPLE_RATE)
    out = np.concatenate([np.zeros(SAMPLE_RATE // 2), speech, np.zeros(SAMPLE_RATE)])
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def _narrator(text: str) -> np.ndarray:
    """The product's narrator voice (pyttsx3 default settings), 16 kHz."""
    from voicecoach.narration.synthesis import Pyttsx3Synthesizer

    synth = Pyttsx3Synthesizer()
    import soxr

    samples = soxr.resample(np.asarray(synth.synthesize(text), np.float32), synth.sample_rate, SAMPLE_RATE)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def model() -> SpotterModel:
    return SpotterModel.load()


@pytest.fixture(scope="module")
def slow(model: SpotterModel) -> SpotterModel:
    """The packaged head without its fast path: for the tests of the frames-in-a-row rule itself."""
    return dataclasses.replace(model, fast_thresholds={})


def test_the_packaged_head_fires_a_clear_stop_on_its_first_frame(model: SpotterModel) -> None:
    """The fast path (MODEL.md): stop needs two frames in a row at 0.65, or one at 0.9."""
    assert model.frames_for("stop") == 2 and model.fast_thresholds == pytest.approx({"stop": 0.9, "too_much": 0.9})
    assert [d.end_s for d in detect(model, _frames(model, {10: ("stop", 0.95)}, 30))] == [pytest.approx(11 * FRAME_S)]
    assert detect(model, _frames(model, {10: ("stop", 0.85)}, 30)) == []


@pytest.fixture(scope="module")
def plain(model: SpotterModel) -> SpotterModel:
    """The packaged head's networks as one plain ensemble (their mean for every class), for the ensemble tests."""
    return dataclasses.replace(model, class_weights=None)


def _stream(model: SpotterModel, samples: np.ndarray, block: int = 320, **kwargs: float) -> list[Detection]:
    spotter = StreamingSpotter(model, **kwargs)  # type: ignore[arg-type]
    found = []
    for at in range(0, len(samples), block):
        found += spotter.accept(samples[at : at + block])
    return found


def test_packaged_head_covers_the_vocabulary(model: SpotterModel) -> None:
    commands = vocabulary_commands()
    assert set(model.commands) == set(commands)
    assert model.labels[-1] == NONE_LABEL
    assert set(model.thresholds) == set(commands)
    assert all(0.0 < t <= 1.0 for t in model.thresholds.values())
    assert model.phrases["too_much"] == "too much"


def test_missing_and_corrupt_heads_are_one_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpotterModelError, match="not found"):
        SpotterModel.load(tmp_path / "absent.npz")
    corrupt = tmp_path / "head.npz"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(SpotterModelError, match="not readable"):
        SpotterModel.load(corrupt)
    np.savez(tmp_path / "other.npz", labels=np.array(["stop"]))
    with pytest.raises(SpotterModelError, match="not a spotter head"):
        SpotterModel.load(tmp_path / "other.npz")


@pytest.mark.parametrize("voice", ["en-us+m3", "en-gb-scotland+f2"])
def test_synthesized_stop_gives_stop(model: SpotterModel, voice: str) -> None:
    found = _stream(model, _espeak("stop", voice))
    assert [d.command for d in found] == ["stop"], found
    assert found[0].phrase == "stop" and 0.0 < found[0].score <= 1.0


def test_synthesized_too_much_gives_too_much(model: SpotterModel) -> None:
    found = _stream(model, _espeak("too much", "en-us+m3"))
    assert [d.command for d in found] == ["too_much"], found


def test_narration_in_the_narrators_voice_gives_nothing(model: SpotterModel) -> None:
    assert _stream(model, _narrator(_NARRATION)) == []


def test_streaming_over_20ms_blocks_equals_scoring_the_whole_clip(model: SpotterModel) -> None:
    samples = _espeak("please stop now, that is too much", "en-us+f3")
    whole = score_clip(model, samples)
    assert whole.shape == (len(samples) // 1280, len(model.labels))
    spotter = StreamingSpotter(model)
    rows = []
    for at in range(0, len(samples), 320):
        before = spotter.time_s
        spotter.accept(samples[at : at + 320])
        if spotter.time_s > before:
            scores = spotter.scores()
            rows.append([scores[c] for c in model.commands])
    assert len(rows) == len(whole)
    np.testing.assert_allclose(np.array(rows), whole[:, : len(model.commands)], atol=1e-4)
    if model.class_weights is None:
        np.testing.assert_allclose(whole.sum(axis=1), 1.0, atol=1e-5)
        return
    # a composite: each class from its own networks' softmax, so the classes from one group sum to at most one
    sources = np.argmax(model.class_weights > 0, axis=0)  # the first network of each class's group
    for source in set(sources.tolist()):
        assert np.all(whole[:, sources == source].sum(axis=1) <= 1.0 + 1e-5)
    assert np.all(whole >= 0.0)


def test_odd_block_sizes_give_the_same_detections(model: SpotterModel) -> None:
    samples = _espeak("stop", "en-us+m3")
    assert [(d.command, d.end_s) for d in _stream(model, samples, block=333)] == [
        (d.command, d.end_s) for d in _stream(model, samples, block=1280)
    ]


def test_a_threshold_above_one_silences_a_command(model: SpotterModel) -> None:
    assert _stream(model, _espeak("stop", "en-us+m3"), thresholds={"stop": 1.01}) == []  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown commands"):
        StreamingSpotter(model, thresholds={"halt": 0.5})


def _frames(model: SpotterModel, hot: dict[int, tuple[str, float]], count: int) -> np.ndarray:
    """Fake per-frame probabilities: 'none' everywhere except the given frames."""
    probabilities = np.zeros((count, len(model.labels)))
    probabilities[:, model.labels.index(NONE_LABEL)] = 1.0
    for frame, (command, score) in hot.items():
        probabilities[frame] = 0.0
        probabilities[frame, model.labels.index(command)] = score
        probabilities[frame, model.labels.index(NONE_LABEL)] = 1.0 - score
    return probabilities


def test_refractory_time_holds_back_a_second_detection(slow: SpotterModel) -> None:
    frames = slow.frames_for("stop")
    hot = {f: ("stop", 0.999) for f in range(10, 10 + frames)}
    hot |= {f: ("stop", 0.999) for f in range(18, 18 + frames)}  # 8 frames = 0.64 s later
    hot |= {f: ("pause", 0.999) for f in range(40, 40 + slow.frames_for("pause"))}  # 2.4 s later
    found = detect(slow, _frames(slow, hot, 60), refractory_s=1.0)
    assert [d.command for d in found] == ["stop", "pause"]
    assert found[0].end_s == pytest.approx((10 + frames) * FRAME_S)
    assert [d.command for d in detect(slow, _frames(slow, hot, 60), refractory_s=0.2)] == ["stop", "stop", "pause"]


def test_scores_below_threshold_or_too_brief_do_not_fire(slow: SpotterModel) -> None:
    low = {f: ("stop", slow.thresholds["stop"] * 0.9) for f in range(10, 20)}
    assert detect(slow, _frames(slow, low, 30)) == []
    if slow.frames_for("stop") > 1:
        brief = {10: ("stop", 0.999)}
        assert detect(slow, _frames(slow, brief, 30)) == []


def test_reset_starts_again_from_time_zero(model: SpotterModel) -> None:
    samples = _espeak("stop", "en-us+m3")
    spotter = StreamingSpotter(model)
    first = spotter.accept(samples)
    spotter.reset()
    assert spotter.time_s == 0.0 and all(v == 0.0 for v in spotter.scores().values())
    again = spotter.accept(samples)
    assert [(d.command, d.end_s) for d in again] == [(d.command, d.end_s) for d in first]


def test_the_spotter_engine_takes_another_head_file_when_named(tmp_path: Path) -> None:
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.listening.engines import make_recognizer
    from voicecoach.listening.recognizer import RecognizerError
    from voicecoach.settings import RecognizerSettings

    vocabulary = load_vocabulary("en")
    with pytest.raises(RecognizerError, match="cannot load"):
        make_recognizer(RecognizerSettings(engine="spotter", model_dir=tmp_path / "missing.npz"), vocabulary)
    packaged = make_recognizer(RecognizerSettings(engine="spotter"), vocabulary)
    assert packaged.name == "spotter"


def test_an_ensemble_scores_the_mean_of_its_members_and_survives_a_save(tmp_path: Path,
                                                                       plain: SpotterModel) -> None:
    from voicecoach.listening.spotter.model import ensemble, save_head

    model = plain

    rng = np.random.default_rng(3)
    other = dataclasses.replace(
        model, mean=model.mean + 0.3, scale=model.scale * 1.7,
        layers=tuple(dataclasses.replace(lay, weight=lay.weight * 1.1 + rng.normal(0, 0.01, lay.weight.shape)
                                         .astype(np.float32)) for lay in model.layers))  # fmt: skip
    windows = rng.normal(0, 1, (64, model.window_frames, 96)).astype(np.float32) * model.scale + model.mean
    both = ensemble([model, other])
    expected = (model.probabilities(windows) + other.probabilities(windows)) / 2
    np.testing.assert_allclose(both.probabilities(windows), expected, atol=2e-5)
    save_head(tmp_path / "head.npz", both)
    loaded = SpotterModel.load(tmp_path / "head.npz")
    assert len(loaded.networks()) == 2 * len(model.networks()) and loaded.thresholds == model.thresholds
    np.testing.assert_allclose(loaded.probabilities(windows), expected, atol=2e-5)
    np.testing.assert_allclose(SpotterModel.load(tmp_path / "head.npz").probabilities(windows[:1]),
                               expected[:1], atol=2e-5)  # fmt: skip


def _perturbed(model: SpotterModel, seed: int) -> SpotterModel:
    """Another network of the same shape: a head that scores differently."""
    rng = np.random.default_rng(seed)
    return dataclasses.replace(
        model, layers=tuple(dataclasses.replace(lay, weight=lay.weight * 1.2 + rng.normal(0, 0.05, lay.weight.shape)
                                                .astype(np.float32)) for lay in model.layers))  # fmt: skip


def test_a_composite_head_takes_each_command_from_its_own_head_and_survives_a_save(tmp_path: Path,
                                                                                  plain: SpotterModel) -> None:
    from voicecoach.listening.spotter.model import compose, ensemble, save_head

    model = plain

    base = ensemble([model, _perturbed(model, 1)])
    other = dataclasses.replace(_perturbed(model, 2), thresholds={c: 0.77 for c in model.commands},
                                command_frames={c: 3 for c in model.commands})  # fmt: skip
    rng = np.random.default_rng(4)
    windows = rng.normal(0, 1, (32, model.window_frames, 96)).astype(np.float32) * model.scale + model.mean
    mine, theirs = base.probabilities(windows), other.probabilities(windows)
    assert not np.allclose(mine, theirs, atol=1e-3)
    both = compose(base, other, ["pause", "resume"])
    for path in (None, tmp_path / "head.npz"):
        if path is not None:
            save_head(path, both)
            both = SpotterModel.load(path)
        scores = both.probabilities(windows)
        for column, label in enumerate(model.labels):
            expected = theirs if label in ("pause", "resume") else mine
            np.testing.assert_allclose(scores[:, column], expected[:, column], atol=2e-5, err_msg=label)
        assert both.thresholds["pause"] == pytest.approx(0.77) and both.frames_for("resume") == 3
        assert both.thresholds["stop"] == base.thresholds["stop"] and both.frames_for("stop") == base.frames_for("stop")
    with pytest.raises(ValueError, match="composite"):
        ensemble([both, model])
    with pytest.raises(ValueError, match="commands"):
        compose(base, other, ["dance"])
    # new networks for the composite's own second commands replace the old ones; every other class is untouched
    third = dataclasses.replace(_perturbed(model, 3), thresholds={c: 0.66 for c in model.commands},
                                command_frames={c: 2 for c in model.commands})  # fmt: skip
    again = compose(both, third, ["pause", "resume"])
    assert len(again.networks()) == len(base.networks()) + len(third.networks())  # third's in place of other's
    scores, new = again.probabilities(windows), third.probabilities(windows)
    for column, label in enumerate(model.labels):
        expected = new if label in ("pause", "resume") else mine
        np.testing.assert_allclose(scores[:, column], expected[:, column], atol=2e-5, err_msg=label)
    assert again.thresholds["pause"] == pytest.approx(0.66) and again.frames_for("resume") == 2
    assert "then pause,resume" in again.metadata["composed"]
    with pytest.raises(ValueError, match="composite"):
        compose(base, both, ["pause"])
    np.savez(tmp_path / "bad.npz", **{**dict(np.load(tmp_path / "head.npz")), "class_weights": np.ones((1, 2))})
    with pytest.raises(SpotterModelError, match="class_weights"):
        SpotterModel.load(tmp_path / "bad.npz")


def test_a_per_command_rule_fires_stop_on_one_frame_and_others_on_three(tmp_path: Path,
                                                                       model: SpotterModel) -> None:
    from voicecoach.listening.spotter.model import save_head

    ruled = dataclasses.replace(model, consecutive_frames=3, command_frames={"stop": 1})
    assert ruled.frames_for("stop") == 1 and ruled.frames_for("pause") == 3
    one = {10: ("stop", 0.9999)}
    assert [(d.command, d.end_s) for d in detect(ruled, _frames(ruled, one, 30))] == [("stop", 11 * FRAME_S)]
    pause = {f: ("pause", 0.9999) for f in (10, 11)}
    assert detect(ruled, _frames(ruled, pause, 30)) == []  # two frames: not enough for pause
    pause[12] = ("pause", 0.9999)
    assert [d.command for d in detect(ruled, _frames(ruled, pause, 30))] == ["pause"]
    save_head(tmp_path / "head.npz", ruled)
    loaded = SpotterModel.load(tmp_path / "head.npz")
    assert loaded.frames_for("stop") == 1 and loaded.frames_for("pause") == 3
    assert [d.end_s for d in detect(loaded, _frames(loaded, one, 30))] == [11 * FRAME_S]
    assert SpotterModel.load().command_frames == model.command_frames  # a head without the field loads as before


def test_a_confident_frame_fires_at_once_on_the_fast_path_and_survives_a_save(tmp_path: Path,
                                                                             slow: SpotterModel) -> None:
    from voicecoach.listening.spotter.model import save_head

    ruled = dataclasses.replace(slow, thresholds={**slow.thresholds, "stop": 0.65}, command_frames={"stop": 2})
    confident, unsure = {10: ("stop", 0.95)}, {10: ("stop", 0.85)}
    assert detect(ruled, _frames(ruled, confident, 30)) == []  # one frame: the two-frame rule waits
    fast = dataclasses.replace(ruled, fast_thresholds={"stop": 0.9})
    assert [(d.command, d.end_s) for d in detect(fast, _frames(fast, confident, 30))] == [("stop", 11 * FRAME_S)]
    assert detect(fast, _frames(fast, unsure, 30)) == []  # below the fast threshold the rule is as before
    two = {10: ("stop", 0.95), 11: ("stop", 0.95)}
    assert len(detect(fast, _frames(fast, two, 30))) == 1  # one detection, then the refractory time
    assert detect(fast, _frames(fast, confident, 30), thresholds={"stop": 2.0}) == []  # a command turned off
    save_head(tmp_path / "head.npz", fast)
    loaded = SpotterModel.load(tmp_path / "head.npz")
    assert loaded.fast_thresholds == pytest.approx({"stop": 0.9})
    save_head(tmp_path / "slow.npz", slow)
    assert SpotterModel.load(tmp_path / "slow.npz").fast_thresholds == {}  # none stored: none at all


def test_a_rising_safety_command_is_never_pre_empted_by_a_quicker_one(model: SpotterModel) -> None:
    ruled = dataclasses.replace(model, consecutive_frames=1, command_frames={"stop": 2},
                                thresholds={**model.thresholds, "stop": 0.5, "start": 0.3})  # fmt: skip
    probabilities = _frames(ruled, {}, 30)
    stop, start, none = (ruled.labels.index(c) for c in ("stop", "start", NONE_LABEL))
    for frame in (10, 11):  # "stop" rising, "start" above its lower threshold a frame earlier than stop is ready
        probabilities[frame, [stop, start, none]] = [0.55, 0.40, 0.05]
    assert [(d.command, d.end_s) for d in detect(ruled, probabilities)] == [("stop", 12 * FRAME_S)]
    probabilities[11, [stop, start, none]] = [0.1, 0.85, 0.05]  # stop fell back: start fires once stop lets go
    assert [(d.command, d.end_s) for d in detect(ruled, probabilities)] == [("start", 12 * FRAME_S)]
    probabilities[10, [stop, start, none]] = [0.1, 0.85, 0.05]  # start alone, nothing rising: fires at once
    assert [(d.command, d.end_s) for d in detect(ruled, probabilities)] == [("start", 11 * FRAME_S)]


def test_another_commands_refractory_time_does_not_hold_back_a_stop(model: SpotterModel) -> None:
    ruled = dataclasses.replace(model, consecutive_frames=1, command_frames={})
    hot = {10: ("start", 0.999), 13: ("stop", 0.999), 15: ("pause", 0.999), 20: ("stop", 0.999)}
    found = detect(ruled, _frames(ruled, hot, 40), refractory_s=1.0)
    # start fires; stop 0.24 s later still fires; then the stop's refractory holds back pause and the second stop
    assert [(d.command, d.end_s) for d in found] == [("start", 11 * FRAME_S), ("stop", 14 * FRAME_S)]


def test_the_front_end_runs_on_xnnpack_and_agrees_with_the_default_kernels() -> None:
    from pyopen_wakeword import openwakeword as oww

    from voicecoach.listening.spotter.model import FrontEnd, _Interpreter

    front_end = FrontEnd()
    assert front_end._embedding.accelerated and front_end._mel.accelerated  # the x86_64 and aarch64 wheels have it
    plain = _Interpreter(front_end._loader.lib, Path(oww.__file__).parent / "models" / "embedding_model.tflite",
                         xnnpack=False)  # fmt: skip
    assert not plain.accelerated
    mels = front_end.mels(_espeak("stop", "en-us+m3").astype(np.float32))
    windows = np.lib.stride_tricks.sliding_window_view(mels, (76, 32))[::8, 0][:, :, :, None]
    fast = front_end._embedding.run(windows)
    slow = plain.run(windows)
    plain.close()
    front_end.close()
    assert fast.shape == slow.shape and len(windows) > 3
    assert np.max(np.abs(fast - slow)) < 1e-3 * np.max(np.abs(slow))


def test_the_libraries_own_notes_stay_off_the_terminal() -> None:
    # In a process of its own: the library says it once a process, when the first delegate is made.
    code = "from voicecoach.listening.spotter.model import FrontEnd; FrontEnd().close(); print('loaded')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "loaded", out
    assert out.stderr == "", out.stderr


# --- the safety head beside the main head -----------------------------------------------------------


@pytest.fixture(scope="module")
def safety_head() -> SpotterModel:
    from voicecoach.listening.spotter.model import load_safety_head

    head = load_safety_head()
    assert head is not None, "safety_head.npz is packaged (scripts/train_spotter.py ... --safety-head)"
    return head


def _flite(voice: str, text: str) -> np.ndarray:
    from voicecoach.training.synthesis import Voice, synthesize

    if shutil.which("flite") is None:
        pytest.skip("flite not installed (apt-get install flite)")
    speech = synthesize(Voice("flite", voice), text)
    return np.concatenate([np.zeros(SAMPLE_RATE // 4, np.int16), speech, np.zeros(SAMPLE_RATE, np.int16)])


def test_the_safety_head_only_ever_fires_stop_or_too_much(safety_head: SpotterModel) -> None:
    from voicecoach.listening.spotter.model import NEVER

    assert safety_head.thresholds["stop"] < 1.0 and safety_head.thresholds["too_much"] < 1.0
    assert all(t == NEVER for c, t in safety_head.thresholds.items() if c not in ("stop", "too_much"))
    assert safety_head.metadata.get("role") == "safety"


@pytest.mark.parametrize(("voice", "text", "command"), [("rms", "please stop", "stop"), ("awb", "okay stop", "stop"),
                                                       ("kal16", "that's too much", "too_much")])  # fmt: skip
def test_a_command_inside_a_phrase_is_heard_by_the_safety_head_where_the_main_head_misses_it(
        model: SpotterModel, safety_head: SpotterModel, voice: str, text: str, command: str) -> None:  # fmt: skip
    samples = _flite(voice, text)  # held-out voices: never trained on
    assert _stream(model, samples) == []
    assert [d.command for d in _stream(model, samples, safety_head=safety_head)] == [command]  # type: ignore[arg-type]


def test_with_the_safety_head_the_narration_still_gives_nothing(model: SpotterModel, safety_head: SpotterModel) -> None:
    assert _stream(model, _narrator(_NARRATION), safety_head=safety_head) == []  # type: ignore[arg-type]


def test_streaming_with_the_safety_head_equals_the_fused_rule_over_whole_clip_scores(
        model: SpotterModel, safety_head: SpotterModel) -> None:  # fmt: skip
    from voicecoach.listening.spotter.model import detect_fused

    samples = np.concatenate([_flite("rms", "please stop"), _espeak("stop", "en-us+m3"), _flite("awb", "okay stop")])
    streamed = _stream(model, samples, safety_head=safety_head)  # type: ignore[arg-type]
    offline = detect_fused(model, score_clip(model, samples), safety_head, score_clip(safety_head, samples))
    assert [(d.command, round(d.end_s, 2)) for d in streamed] == [(d.command, round(d.end_s, 2)) for d in offline]
    assert [d.command for d in streamed] == ["stop", "stop", "stop"]


def test_whichever_head_fires_first_holds_the_other_for_the_refractory_time(
        slow: SpotterModel, safety_head: SpotterModel) -> None:  # fmt: skip
    from voicecoach.listening.spotter.model import detect_fused

    need = max(slow.frames_for("stop"), safety_head.frames_for("stop"))
    main = {f: ("stop", 0.999) for f in range(10, 10 + need)}
    second = {f: ("stop", 0.999) for f in range(11, 13 + need)}  # the same word, a frame later in the other head
    second |= {f: ("pause", 0.999) for f in range(30, 40)}  # the safety head never fires another command
    found = detect_fused(slow, _frames(slow, main, 60), safety_head, _frames(safety_head, second, 60))
    assert [d.command for d in found] == ["stop"] and found[0].end_s == pytest.approx((10 + slow.frames_for("stop"))
                                                                                      * FRAME_S)  # fmt: skip
    alone = detect_fused(slow, _frames(slow, {}, 60), safety_head, _frames(safety_head, second, 60))
    assert [d.command for d in alone] == ["stop"] and alone[0].phrase == slow.phrases["stop"]
    later = {f: ("stop", 0.999) for f in range(14, 14 + need)}  # the main head a frame after the safety head fired
    both = detect_fused(slow, _frames(slow, later, 60), safety_head, _frames(safety_head, second, 60))
    assert [d.command for d in both] == ["stop"]


def test_the_packaged_engine_runs_the_safety_head_and_a_named_head_runs_alone(tmp_path: Path) -> None:
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.listening.spotter.model import save_head
    from voicecoach.listening.spotter_engine import SpotterRecognizer

    vocabulary = load_vocabulary("en")
    assert SpotterRecognizer(vocabulary).safety_head is not None
    named = tmp_path / "head.npz"
    save_head(named, SpotterModel.load())
    assert SpotterRecognizer(vocabulary, head=named).safety_head is None
    # A candidate head measured as the product would run it: the packaged safety head beside it, by the settings.
    from voicecoach.listening.engines import make_recognizer
    from voicecoach.listening.spotter.model import SAFETY_HEAD
    from voicecoach.settings import RecognizerSettings

    paired = make_recognizer(RecognizerSettings(engine="spotter", model_dir=named, safety_head=SAFETY_HEAD), vocabulary)
    assert paired.safety_head is not None and paired.safety_head.metadata.get("role") == "safety"


def test_a_half_precision_save_loads_as_the_rounded_head(tmp_path: Path, safety_head: SpotterModel) -> None:
    from voicecoach.listening.spotter.model import half_precision, save_head

    path = tmp_path / "half.npz"
    save_head(path, safety_head, weights_dtype=np.float16)
    loaded = SpotterModel.load(path)
    windows = np.random.default_rng(0).normal(0, 1, (3, safety_head.window_frames, 96)).astype(np.float32)
    np.testing.assert_array_equal(loaded.probabilities(windows), half_precision(safety_head).probabilities(windows))
    full = tmp_path / "full.npz"
    save_head(full, safety_head)
    assert path.stat().st_size < 0.8 * full.stat().st_size  # float32 of the same (rounded) weights


def _ending_with_the_word(text: str, voice: str) -> np.ndarray:
    """Speech that ends where the word ends, as many recordings (Speech Commands' one-second clips among them) do."""
    from voicecoach.training.augmentation import speech_span

    samples = _espeak(text, voice)
    return samples[: speech_span(samples.astype(np.float32))[1]]


@pytest.mark.parametrize("voice", ["en-us+m3", "en-gb-scotland+f2"])
def test_end_of_input_completes_the_decision_over_the_last_word(voice: str) -> None:
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.listening.spotter_engine import SpotterRecognizer

    engine = SpotterRecognizer(load_vocabulary("en"))
    clip = _ending_with_the_word("stop", voice)
    assert engine.accept(clip.tobytes()) == []  # the frames after the word have not come yet
    assert [h.text for h in engine.flush()] == ["stop"]
    assert engine.flush() == []  # nothing pending: silence alone gives nothing, and the stream starts again
    assert engine.accept(np.zeros(SAMPLE_RATE // 2, np.int16).tobytes()) == []


def test_a_recording_that_ends_with_stop_is_heard_by_listen_wav(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "stop.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(_ending_with_the_word("stop", "en-us+m3").tobytes())
    run = subprocess.run([sys.executable, "-m", "voicecoach", "listen", "--wav", str(path)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "stop" in run.stdout, (run.stdout, run.stderr)


def _ruled(rule: object, probabilities: np.ndarray) -> list:
    """What a decision rule fires over per-frame probabilities."""
    found = [rule.step(row, (i + 1) * FRAME_S) for i, row in enumerate(probabilities)]  # type: ignore[attr-defined]
    return [d for d in found if d is not None]


def test_a_floor_waits_for_the_sure_frame_of_a_rising_command(model: SpotterModel) -> None:
    """Over the narration the listener asks for 0.9: a command rising from its threshold to 0.97 fires on the 0.97
    frame, not on its first frame over the threshold (which the listener would set aside, and whose refractory time
    would then hold back the sure frame)."""
    from voicecoach.listening.spotter.model import DecisionRule

    command = next(c for c in model.commands if c not in ("stop", "too_much") and model.thresholds[c] < 0.8)
    frames = model.frames_for(command)
    rising = {f: (command, 0.82) for f in range(10, 10 + frames)}
    rising |= {f: (command, 0.97) for f in range(10 + frames, 14 + frames)}
    probabilities = _frames(model, rising, 30)
    rule = DecisionRule(model, None, refractory_s=1.0)
    assert [(d.command, d.score) for d in _ruled(rule, probabilities)] == [(command, pytest.approx(0.82))]
    rule = DecisionRule(model, None, refractory_s=1.0)
    rule.set_floors(0.9)
    sure = _ruled(rule, probabilities)
    assert [(d.command, d.score) for d in sure] == [(command, pytest.approx(0.97))]
    assert sure[0].end_s == pytest.approx((10 + 2 * frames) * FRAME_S)
    # stop and too much keep their own thresholds unless a safety floor is given
    stop = _frames(model, {f: ("stop", 0.8) for f in range(10, 10 + model.frames_for("stop"))}, 30)
    rule.reset()
    assert [d.command for d in _ruled(rule, stop)] == ["stop"]
    rule.reset()
    rule.set_floors(0.9, safety=0.9)
    assert _ruled(rule, stop) == []
    rule.set_floors(0.0, 0.0)  # back to the head's own thresholds
    rule.reset()
    assert [d.score for d in _ruled(rule, probabilities)] == [pytest.approx(0.82)]


def test_a_word_that_stays_in_view_past_the_refractory_time_fires_once(model: SpotterModel) -> None:
    """The head sees 1.28 s: a clear stop scores 1.0 for longer than the 1 s refractory time. It fired again
    1.04 s after the first detection, in the room, and cut the narrator's answer to the stop."""
    from voicecoach.listening.spotter.model import DecisionRule, _fuse

    held = {f: ("stop", 0.999) for f in range(10, 26)}  # 16 frames: the word, in view all the while
    assert [d.command for d in detect(model, _frames(model, held, 40), refractory_s=1.0)] == ["stop"]
    again = held | {f: ("stop", 0.999) for f in range(30, 33)}  # it fell, then a second stop
    assert [d.command for d in detect(model, _frames(model, again, 40), refractory_s=1.0)] == ["stop", "stop"]
    # the safety head's rule, held by the main head's stop, does not fire on the same word either
    main, second = DecisionRule(model, None, 1.0), DecisionRule(model, None, 1.0)
    fired = []
    for i, row in enumerate(_frames(model, held, 40)):
        end_s = (i + 1) * FRAME_S
        found = _fuse(model, main, main.step(row, end_s), second, second.step(row, end_s), end_s)
        if found is not None:
            fired.append(found.command)
    assert fired == ["stop"]


def test_the_other_heads_score_rising_after_the_hold_is_still_the_same_word(slow: SpotterModel) -> None:
    """The main head fires (on its fast path, say) before the safety head's score reaches its threshold. That
    score then rises during the hold, and stays up while the word is in view: it used to fire a second stop as the
    refractory time ended (the room heard 5 of 21 people's stops twice with a fast path), and cut the narrator's
    answer. Anything above its threshold while held must fall before it may fire again."""
    from voicecoach.listening.spotter.model import DecisionRule, _fuse

    main_rows = _frames(slow, {f: ("stop", 0.999) for f in range(10, 26)}, 50)
    late = _frames(slow, {f: ("stop", 0.999) for f in range(10 + slow.frames_for("stop"), 27)}, 50)
    main, second = DecisionRule(slow, None, 1.0), DecisionRule(slow, None, 1.0)
    fired = []
    for i, (row, other) in enumerate(zip(main_rows, late, strict=True)):
        end_s = (i + 1) * FRAME_S
        found = _fuse(slow, main, main.step(row, end_s), second, second.step(other, end_s), end_s)
        if found is not None:
            fired.append((found.command, round(end_s, 2)))
    assert fired == [("stop", round((10 + slow.frames_for("stop")) * FRAME_S, 2))]
    # once it fell, a new word fires again
    second.reset()
    again = _frames(slow, {f: ("stop", 0.999) for f in (*range(5, 20), *range(30, 34))}, 50)
    fired_again = [second.step(row, (i + 1) * FRAME_S) for i, row in enumerate(again)]
    assert [d.command for d in fired_again if d is not None] == ["stop", "stop"]


_RESIDUE_AFTER_SILENCE = Path(__file__).parent / "data" / "narrator_residue_after_digital_silence.wav"
"""Two seconds the product's echo canceller left of its own narrator, live through the virtual devices at 0 dB
echo (scripts/bench_stop_latency.py --narration-only): exact digital silence between two lines, then the first
300 ms of "Now switch to the right side..." as residue at -65 to -85 dBFS."""


def test_the_narrators_residue_after_digital_silence_fires_nothing_through_the_pipeline() -> None:
    from voicecoach.audio.wavfile import read_wav
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.listening.pipeline import ListeningPipeline
    from voicecoach.listening.spotter_engine import SpotterRecognizer

    samples, rate = read_wav(_RESIDUE_AFTER_SILENCE)
    assert rate == SAMPLE_RATE and np.mean(samples == 0) > 0.5
    vocabulary = load_vocabulary("en")
    pipeline = ListeningPipeline(SpotterRecognizer(vocabulary), vocabulary, echo_cancel=False)
    assert [c.command for c in pipeline.run_samples(samples, rate).commands] == []
    # The condition is real: heard as it came, without the spotter's noise floor, the main head's too much fires on it.
    bare = SpotterRecognizer(vocabulary)
    heard = bare.accept(samples.tobytes()) + bare.flush()
    assert [h.text for h in heard] == ["too much"], "the recording no longer shows the condition (a new head?)"
