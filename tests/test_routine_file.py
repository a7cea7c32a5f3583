"""Tests for loading and checking routine files, and for finding routines by name."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voicecoach.core.routine import Sides
from voicecoach.files import library
from voicecoach.files.library import RoutineRef, find_routine, list_routines, user_routines_dir
from voicecoach.files.routine_file import Problem, RoutineFileError, load_routine_file, parse_routine

_FAKE_PACKAGE = "fake_voicecoach_routines"

# Line numbers of MINIMAL: 1 name, 2 title, 3 description, 4 exercises, 5 first exercise, 9 hold_s.
MINIMAL = """\
name: lower-back
title: Lower back stretches
description: Gentle stretches for a stiff back.
exercises:
  - name: Two knee twist
    position: lying on your back
    steps:
      - Bend your knees.
    hold_s: 20
"""

FULL = """\
name: full-routine
title: Full
description: Every field.
language: de
intro:
  - Move gently.
  - Stop if it hurts.
outro: [Well done.]
exercises:
  - name: Towel hamstring
    position: lying on your back
    equipment: [towel or band, mat]
    cautions: [Keep the other knee bent.]
    steps:
      - Loop the towel around your foot.
      - >
        Straighten the leg
        slowly.
    hold_cue: Breathe slowly.
    hold_s: 25
    max_hold_s: 45
    reps: 3
    sides: both
    rest_s: 15
  - name: Cat cow
    position: on hands and knees
    steps: [Round your back.]
    hold_s: 5
"""


def _with_exercise_line(line: str) -> str:
    """MINIMAL with a hold_s line replacing the one at line 9, or any other line added at line 10."""
    if line.startswith("hold_s:"):
        return MINIMAL.replace("    hold_s: 20\n", f"    {line}\n")
    return MINIMAL + f"    {line}\n"


def _problems(text: str) -> list[Problem]:
    """The problems parse_routine reports for the text."""
    with pytest.raises(RoutineFileError) as caught:
        parse_routine(text, "routine.yaml")
    return caught.value.problems


def _only_problem(text: str) -> Problem:
    """The one problem parse_routine reports for the text."""
    problems = _problems(text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --- valid routines ---------------------------------------------------------------------------


def test_minimal_routine_loads_with_defaults() -> None:
    routine = parse_routine(MINIMAL, "mini.yaml")
    assert (routine.name, routine.title, routine.source) == (
        "lower-back",
        "Lower back stretches",
        "mini.yaml",
    )
    assert routine.description == "Gentle stretches for a stiff back."
    assert (routine.language, routine.intro, routine.outro) == ("en", (), ())
    (exercise,) = routine.exercises
    assert (exercise.name, exercise.position, exercise.steps) == (
        "Two knee twist",
        "lying on your back",
        ("Bend your knees.",),
    )
    assert (exercise.hold_s, exercise.reps, exercise.sides, exercise.rest_s) == (20.0, 1, Sides.NONE, 0.0)
    assert (exercise.equipment, exercise.cautions, exercise.hold_cue, exercise.max_hold_s) == (
        (),
        (),
        "",
        None,
    )
    assert exercise.line == 5
    assert isinstance(exercise.hold_s, float)


def test_full_routine_loads_every_field() -> None:
    routine = parse_routine(FULL, "full.yaml")
    assert routine.language == "de"
    assert routine.intro == ("Move gently.", "Stop if it hurts.")
    assert routine.outro == ("Well done.",)
    towel, cat = routine.exercises
    assert towel.equipment == ("towel or band", "mat")
    assert towel.cautions == ("Keep the other knee bent.",)
    assert towel.steps == ("Loop the towel around your foot.", "Straighten the leg slowly.")
    assert (towel.hold_cue, towel.hold_s, towel.max_hold_s) == ("Breathe slowly.", 25.0, 45.0)
    assert (towel.reps, towel.sides, towel.rest_s) == (3, Sides.BOTH, 15.0)
    assert (towel.line, cat.line) == (10, 25)


@pytest.mark.parametrize(
    ("field_line", "attribute", "expected"),
    [
        ("language: no", "language", "no"),  # stays text, not the YAML 1.1 boolean false
        ("title: Yes", "title", "Yes"),
        ("description: 2024-01-01", "description", "2024-01-01"),
    ],
)
def test_text_fields_keep_what_was_written(field_line: str, attribute: str, expected: str) -> None:
    key = field_line.split(":")[0]
    lines = [line for line in MINIMAL.splitlines() if not line.startswith(key + ":")]
    routine = parse_routine("\n".join([field_line, *lines]), "r.yaml")
    assert getattr(routine, attribute) == expected


@pytest.mark.parametrize(
    ("line", "attribute", "expected"),
    [
        ("max_hold_s: 20", "max_hold_s", 20.0),
        ("max_hold_s: 600", "max_hold_s", 600.0),
        ("rest_s: 0", "rest_s", 0.0),
        ("reps: 20", "reps", 20),
        ("sides: Both", "sides", Sides.BOTH),
        ("hold_cue: ~", "hold_cue", ""),
        ("equipment: []", "equipment", ()),
    ],
)
def test_exercise_edge_values_are_accepted(line: str, attribute: str, expected: object) -> None:
    (exercise,) = parse_routine(_with_exercise_line(line), "r.yaml").exercises
    assert getattr(exercise, attribute) == expected


# --- one problem each -------------------------------------------------------------------------

TOP_PROBLEMS = [
    # (id, text, line, field, part of the message)
    ("typo", MINIMAL + "langauge: en\n", 10, "langauge", "unknown field (expected one of: name, title,"),
    ("typo suggestion", MINIMAL + "langauge: en\n", 10, "langauge", "; did you mean language?)"),
    ("bad name", MINIMAL.replace("lower-back", "Lower Back"), 1, "name", '"Lower Back" is not valid'),
    ("long name", MINIMAL.replace("lower-back", "a" * 41), 1, "name", "1 to 40 lowercase letters"),
    ("bad language", MINIMAL + "language: english\n", 10, "language", '"english" is not valid'),
    ("empty title", MINIMAL.replace("Lower back stretches", '""'), 2, "title", "is empty (expected"),
    ("null title", MINIMAL.replace("Lower back stretches", ""), 2, "title", "has no value (expected"),
    ("list title", MINIMAL.replace("Lower back stretches", "[a, b]"), 2, "title", "a list is not text"),
    (
        "no description",
        MINIMAL.replace("description: Gentle stretches for a stiff back.\n", ""),
        1,
        "description",
        "is missing (expected",
    ),
    ("intro not list", MINIMAL + "intro: Be careful.\n", 10, "intro", 'the text "Be careful." is not a list'),
    (
        "intro too long",
        MINIMAL + "intro:\n  - ok\n  - " + "x" * 301 + "\n",
        12,
        "intro[2]",
        "is 301 characters long (expected a spoken sentence of at most 300 characters",
    ),
    ("outro empty", MINIMAL + "outro: ['']\n", 10, "outro[1]", "is empty"),
    (
        "no exercises",
        MINIMAL.split("exercises:")[0],
        1,
        "exercises",
        "is missing (expected a list of 1 to 50",
    ),
    (
        "empty exercises",
        MINIMAL.split("exercises:")[0] + "exercises: []\n",
        4,
        "exercises",
        "has 0 exercises (expected a list of 1 to 50 exercises",
    ),
    (
        "exercise not mapping",
        MINIMAL + "  - Cat cow\n",
        10,
        "exercises[2]",
        'the text "Cat cow" is not an exercise',
    ),
    (
        "duplicate key",
        MINIMAL + "title: Again\n",
        10,
        "title",
        "appears twice (expected each field once; first at line 2)",
    ),
    ("merge key", MINIMAL + "<<: {intro: [a]}\n", 10, "<<", "merge keys are not supported"),
    ("list as key", MINIMAL + "? [a, b]\n: c\n", 10, "?", "a list is used as a key"),
    (
        "unsafe tag",
        MINIMAL + "intro: [!!python/object/apply:os.system [ls]]\n",
        10,
        "intro[1]",
        "the tag !!python/object/apply:os.system is not supported",
    ),
    (
        "custom tag",
        MINIMAL.replace("title: Lower", "title: !shout Lower"),
        2,
        "title",
        "the tag !shout is not supported",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [case[1:] for case in TOP_PROBLEMS],
    ids=[case[0] for case in TOP_PROBLEMS],
)
def test_routine_problem(text: str, line: int, field: str, message: str) -> None:
    problem = _only_problem(text)
    assert (problem.file, problem.line, problem.field) == ("routine.yaml", line, field), str(problem)
    assert message in problem.message


NUMBER_EXPECTED = {
    "hold_s": "seconds from 1 to 600",
    "max_hold_s": "seconds from 20 to 600, not less than hold_s",
    "reps": "a whole number from 1 to 20",
    "rest_s": "seconds from 0 to 600",
}
"""What each number field of MINIMAL's exercise expects (its hold_s is 20), as its problems say."""
NUMBER_PROBLEMS = [
    # (line added to the first exercise at line 10, or replacing its hold_s at line 9; what is wrong)
    ("hold_s: 0", "0 is out of range"),
    ("hold_s: 1200", "1200 is out of range"),
    ("hold_s: -5", "-5 is out of range"),
    ("hold_s: .inf", ".inf is out of range"),
    ("hold_s: .nan", ".nan is out of range"),
    ("hold_s: yes", "the yes/no value yes is not a number"),
    ("hold_s: true", "the yes/no value true is not a number"),
    ('hold_s: "20"', 'the text "20" is not a number'),
    ("hold_s: 20s", 'the text "20s" is not a number'),
    ("hold_s: [20]", "a list is not a number"),
    ("hold_s:", "has no value"),
    ("hold_s: 20.5", "20.5 is not a whole number of seconds"),
    ("max_hold_s: 10", "10 is out of range"),
    ("max_hold_s: 601", "601 is out of range"),
    ("max_hold_s: false", "the yes/no value false is not a number"),
    ("max_hold_s: 30.5", "30.5 is not a whole number of seconds"),
    ("reps: 0", "0 is out of range"),
    ("reps: 21", "21 is out of range"),
    ("reps: 2.5", "2.5 is not a whole number"),
    ("reps: true", "the yes/no value true is not a whole number"),
    ("rest_s: -1", "-1 is out of range"),
    ("rest_s: no", "the yes/no value no is not a number"),
    ("rest_s: 2.5", "2.5 is not a whole number of seconds"),
]


@pytest.mark.parametrize(("added", "wrong"), NUMBER_PROBLEMS, ids=[c[0] for c in NUMBER_PROBLEMS])
def test_number_problem(added: str, wrong: str) -> None:
    field = added.split(":")[0]
    problem = _only_problem(_with_exercise_line(added))
    line = 9 if field == "hold_s" else 10
    message = f"{wrong} (expected {NUMBER_EXPECTED[field]})"
    assert (problem.line, problem.field, problem.message) == (line, f"exercises[1].{field}", message)


EXERCISE_PROBLEMS = [
    # (line added to the first exercise at line 10, field, exact message)
    ("sides: left", "sides", '"left" is not known (expected one of: none, both)'),
    ("sides: bothe", "sides", '"bothe" is not known (expected one of: none, both; did you mean both?)'),
    (
        "equipment: mat",
        "equipment",
        'the text "mat" is not a list (expected a list of equipment from: mat, towel or band, wall, chair, '
        "pillow; one '- ' item per line)",
    ),
    (
        "equipment: [mats]",
        "equipment[1]",
        '"mats" is not known (expected one of: mat, towel or band, wall, chair, pillow; did you mean mat?)',
    ),
    ("hold_cue: ''", "hold_cue", "is empty (expected a spoken sentence of at most 300 characters)"),
    (
        "hold_cue: " + "y" * 301,
        "hold_cue",
        "is 301 characters long (expected a spoken sentence of at most 300 characters: split it into shorter"
        " sentences)",
    ),
    (
        "cautions: [{Careful: your knees}]",
        "cautions[1]",
        "a mapping is not text (expected a spoken sentence of at most 300 characters; "
        "put text that contains ': ' in quotes)",
    ),
    (
        "hodl_s: 20",
        "hodl_s",
        "unknown field (expected one of: name, position, equipment, cautions, steps, hold_cue, hold_s, "
        "max_hold_s, reps, sides, rest_s; did you mean hold_s?)",
    ),
    ("position: sitting", "position", "appears twice (expected each field once; first at line 6)"),
]


@pytest.mark.parametrize(
    ("added", "field", "message"), EXERCISE_PROBLEMS, ids=[c[0] for c in EXERCISE_PROBLEMS]
)
def test_exercise_problem(added: str, field: str, message: str) -> None:
    problem = _only_problem(_with_exercise_line(added))
    line = 9 if added.startswith("hold_s:") else 10
    assert (problem.line, problem.field, problem.message) == (line, f"exercises[1].{field}", message)


@pytest.mark.parametrize(
    ("steps", "line", "field", "message"),
    [
        ("steps: []", 7, "steps", "has 0 steps (expected a list of 1 to 12 steps)"),
        (
            "steps: [" + ", ".join(["Go."] * 13) + "]",
            7,
            "steps",
            "has 13 steps (expected a list of 1 to 12 steps)",
        ),
        ("steps: Bend your knees.", 7, "steps", 'the text "Bend your knees." is not a list'),
        ("steps:\n      - One.\n      - ''", 9, "steps[2]", "is empty"),
        ("steps:\n      - One.\n      - Bend: the knees", 9, "steps[2]", "a mapping is not text"),
    ],
)
def test_step_problems(steps: str, line: int, field: str, message: str) -> None:
    text = MINIMAL.replace("steps:\n      - Bend your knees.", steps)
    problem = _only_problem(text)
    assert (problem.line, problem.field) == (line, f"exercises[1].{field}")
    assert problem.message.startswith(message)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("    position: lying on your back\n", "", "position"),
        ("    hold_s: 20\n", "", "hold_s"),
        ("  - name: Two knee twist\n    position:", "  - position:", "name"),
    ],
)
def test_missing_exercise_field_points_at_the_exercise(old: str, new: str, field: str) -> None:
    problem = _only_problem(MINIMAL.replace(old, new))
    assert (problem.line, problem.field) == (5, f"exercises[1].{field}")
    assert problem.message.startswith("is missing (expected ")


# --- several problems, files and syntax -------------------------------------------------------


def test_misspelled_field_and_negative_hold_are_both_reported() -> None:
    text = MINIMAL.replace("hold_s: 20", "hold_s: -5") + "    rset_s: 10\n"
    problems = _problems(text)
    assert [str(p) for p in problems] == [
        "routine.yaml:9: exercises[1].hold_s: -5 is out of range (expected seconds from 1 to 600)",
        "routine.yaml:10: exercises[1].rset_s: unknown field (expected one of: name, position, equipment, "
        "cautions, steps, hold_cue, hold_s, max_hold_s, reps, sides, rest_s; did you mean rest_s?)",
    ]


def test_problems_in_several_exercises_use_one_based_paths() -> None:
    text = MINIMAL + "  - name: two KNEE twist\n    position: standing\n    steps: [Go.]\n    hold_s: 0\n"
    problems = _problems(text)
    assert [(p.line, p.field) for p in problems] == [(10, "exercises[2].name"), (13, "exercises[2].hold_s")]
    assert problems[0].message == ('"two KNEE twist" is used twice (expected a unique name; first at line 5)')


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "is empty (expected a mapping with name:, title:, description: and exercises:)"),
        ("# nothing here\n\n", 1, "is empty"),
        ("- a\n- b\n", 1, "the top level is a list (expected a mapping"),
        ("just words\n", 1, 'the top level is the text "just words"'),
        (
            "name: [x\ntitle: y\n",
            2,
            "not valid YAML: while parsing a flow sequence (from line 1), expected ','",
        ),
        ("name: x\n  title: y\n", 2, "not valid YAML: mapping values are not allowed here"),
        (
            "name: x\n\ttitle: y\n",
            2,
            "not valid YAML: while scanning for the next token, found character '\\t'",
        ),
        ("name: 'x\ntitle: y\n", 3, "not valid YAML: while scanning a quoted scalar (from line 1)"),
        ("name: x\n---\nname: y\n", 2, "not valid YAML: expected a single document in the stream"),
        ("name: *nowhere\n", 1, "not valid YAML: found undefined alias"),
        ("name: x\ntitle: a\x07b\n", 2, "contains the control character U+0007 (expected printable text)"),
        ("[" * 1000, 1, "is nested too deeply"),
    ],
)
def test_file_level_problem(text: str, line: int, message: str) -> None:
    problem = _only_problem(text)
    assert (problem.line, problem.field) == (line, "(file)")
    assert message in problem.message


def test_problem_str_is_file_line_field_message() -> None:
    problem = Problem(
        "routine.yaml", 12, "exercises[2].hold_s", "-5 is out of range (expected seconds from 1 to 600)"
    )
    assert (
        str(problem)
        == "routine.yaml:12: exercises[2].hold_s: -5 is out of range (expected seconds from 1 to 600)"
    )


def test_error_str_is_one_line_per_problem() -> None:
    error = RoutineFileError(
        [Problem("a.yaml", 1, "name", "x (expected y)"), Problem("a.yaml", 2, "title", "z")]
    )
    assert str(error) == "a.yaml:1: name: x (expected y)\na.yaml:2: title: z"


def test_aliases_are_followed() -> None:
    text = MINIMAL.replace(
        "    steps:\n      - Bend your knees.", "    steps: &steps\n      - Bend your knees."
    )
    text += "  - name: Again\n    position: standing\n    steps: *steps\n    hold_s: 10\n"
    assert parse_routine(text, "r.yaml").exercises[1].steps == ("Bend your knees.",)


def test_load_routine_file_uses_the_path_as_source(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    routine = load_routine_file(path)
    assert routine.source == str(path)
    assert routine.exercises[0].line == 5


def test_load_routine_file_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_routine_file(path).name == "lower-back"


def test_load_routine_file_reports_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL.replace("hold_s: 20", "hold_s: 0"), encoding="utf-8")
    with pytest.raises(RoutineFileError) as caught:
        load_routine_file(path)
    assert (
        str(caught.value)
        == f"{path}:9: exercises[1].hold_s: 0 is out of range (expected seconds from 1 to 600)"
    )


@pytest.mark.parametrize(
    ("make", "line", "message"),
    [
        (
            lambda p: p.write_bytes(b"name: x\ntitle: caf\xe9\n"),
            2,
            "byte 0xe9 is not UTF-8 (expected a text file",
        ),
        (lambda p: None, 0, "cannot be read: No such file or directory (expected a readable file)"),
        (lambda p: p.mkdir(), 0, "cannot be read: Is a directory"),
    ],
    ids=["not utf-8", "missing", "directory"],
)
def test_unusable_files(tmp_path: Path, make: Callable[[Path], object], line: int, message: str) -> None:
    path = tmp_path / "r.yaml"
    make(path)
    with pytest.raises(RoutineFileError) as caught:
        load_routine_file(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), line, "(file)")
    assert message in problem.message


# --- finding routines -------------------------------------------------------------------------


def test_user_routines_dir_prefers_the_voicecoach_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOICECOACH_ROUTINES", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_routines_dir() == tmp_path / "mine"


def test_user_routines_dir_uses_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICECOACH_ROUTINES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_routines_dir() == tmp_path / "data" / "voicecoach" / "routines"


def test_user_routines_dir_defaults_to_local_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICECOACH_ROUTINES", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_routines_dir() == tmp_path / ".local" / "share" / "voicecoach" / "routines"


@pytest.fixture
def fake_builtins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A stand-in package of built-in routines holding stretch.yaml and calm.yaml."""
    package = tmp_path / "site" / _FAKE_PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in ("stretch", "calm"):
        (package / f"{name}.yaml").write_text(MINIMAL)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(library, "_BUILTIN_PACKAGE", _FAKE_PACKAGE)
    yield package
    sys.modules.pop(_FAKE_PACKAGE, None)


@pytest.fixture
def user_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty user routines directory named by VOICECOACH_ROUTINES."""
    directory = tmp_path / "user"
    directory.mkdir()
    monkeypatch.setenv("VOICECOACH_ROUTINES", str(directory))
    return directory


def test_list_routines_merges_builtin_and_user(fake_builtins: Path, user_dir: Path) -> None:
    for name in ("calm.yaml", "neck.yml", "notes.txt", ".hidden.yaml"):
        (user_dir / name).write_text(MINIMAL)
    (user_dir / "folder.yaml").mkdir()
    assert list_routines() == [
        RoutineRef("calm", user_dir / "calm.yaml", builtin=False, shadows_builtin=True),
        RoutineRef("neck", user_dir / "neck.yml", builtin=False),
        RoutineRef("stretch", fake_builtins / "stretch.yaml", builtin=True),
    ]


def test_list_routines_without_a_user_dir(fake_builtins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICECOACH_ROUTINES", str(fake_builtins / "missing"))
    assert [(ref.name, ref.builtin) for ref in list_routines()] == [("calm", True), ("stretch", True)]


def test_find_routine_by_name_and_by_path(fake_builtins: Path, user_dir: Path, tmp_path: Path) -> None:
    (user_dir / "calm.yaml").write_text(MINIMAL)
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(MINIMAL)
    assert find_routine("stretch") == fake_builtins / "stretch.yaml"
    assert find_routine("calm") == user_dir / "calm.yaml"
    assert find_routine(str(elsewhere)) == elsewhere


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            "strech",
            'unknown routine "strech" (expected a file path or one of: calm, stretch; did you mean stretch?)',
        ),
        ("yoga", 'unknown routine "yoga" (expected a file path or one of: calm, stretch)'),
        ("my/yoga.yaml", 'no such file "my/yoga.yaml" (expected a routine file or one of: calm, stretch)'),
    ],
)
def test_find_routine_unknown(fake_builtins: Path, user_dir: Path, argument: str, message: str) -> None:
    with pytest.raises(RoutineFileError) as caught:
        find_routine(argument)
    (problem,) = caught.value.problems
    assert str(problem) == f"<command line>:0: routine: {message}"


def test_every_builtin_routine_loads(user_dir: Path) -> None:
    builtins = [ref for ref in list_routines() if ref.builtin]
    assert builtins, "no built-in routine files in voicecoach/routines"
    for ref in builtins:
        routine = load_routine_file(ref.path)
        assert routine.name == ref.name, f"{ref.path}: name: should be the file name, {ref.name}"
