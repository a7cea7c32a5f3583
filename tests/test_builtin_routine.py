"""The built-in lower-back routine: the article's ten exercises, in order, in our own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecoach.core.commands import load_vocabulary, normalize
from voicecoach.core.routine import Routine, Sides
from voicecoach.files.library import find_routine
from voicecoach.files.routine_file import load_routine_file

_SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "lower_back_stretches.txt"
_RUN = 5
"""Words in a row that would count as copying a sentence."""


@pytest.fixture(scope="module")
def routine() -> Routine:
    return load_routine_file(find_routine("lower-back"))


def spoken_texts(routine: Routine) -> list[str]:
    texts = [*routine.intro, *routine.outro]
    for exercise in routine.exercises:
        texts += [*exercise.steps, *exercise.cautions, exercise.hold_cue]
    return [t for t in texts if t]


def test_ten_exercises_in_the_articles_order(routine: Routine) -> None:
    names = [e.name.lower() for e in routine.exercises]
    expected = ["two knee twist", "torso twist", "press-up", "hamstring", "wall sit", "plank", "bird dog",
                "bridge", "pelvic tilt", "legs up the wall"]
    assert len(names) == 10
    for name, key in zip(names, expected, strict=True):
        assert key in name


def test_sided_movements_are_done_on_both_sides(routine: Routine) -> None:
    sided = {e.name for e in routine.exercises if e.sides is Sides.BOTH}
    for key in ("Two knee twist", "Bird dog", "Kneeling pelvic tilt"):
        assert key in sided


def test_beginner_holds_with_room_to_grow(routine: Routine) -> None:
    for exercise in routine.exercises:
        assert 5 <= exercise.hold_s <= 60
        assert exercise.max_hold_s is not None and exercise.max_hold_s > exercise.hold_s


def test_safety_advice_is_spoken_at_the_start(routine: Routine) -> None:
    intro = " ".join(routine.intro).lower()
    assert "pace" in intro and "ease off" in intro


def test_no_sentence_of_the_article_is_spoken(routine: Routine) -> None:
    if not _SEED.exists():
        pytest.skip(f"the seed article is not beside this checkout ({_SEED})")
    article = normalize(_SEED.read_text("utf-8"))
    copied = {tuple(article[i : i + _RUN]) for i in range(len(article) - _RUN + 1)}
    for text in spoken_texts(routine):
        words = normalize(text)
        runs = {tuple(words[i : i + _RUN]) for i in range(len(words) - _RUN + 1)}
        assert not runs & copied, f"copied from the article: {text!r}"


def test_spoken_steps_avoid_command_words(routine: Routine) -> None:
    vocabulary = load_vocabulary("en")
    with_commands = [t for t in spoken_texts(routine) if vocabulary.find_all(t)]
    assert with_commands == ["Say stop or too much at any moment and I will fall silent."]
