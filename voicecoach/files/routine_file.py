"""Routine files: load and check a routine written in YAML (finding them is files/library.py).

Longer than most modules (about 530 lines): one checker walks the YAML node tree once, with a small function per
kind of value, so that every problem carries its line; splitting the value checkers from the walk would only
thread the checker through two files.

Every problem in a file is reported at once, each as `FILE:LINE: field: what is wrong (what was expected)`.
Field paths count list items from 1, as people do: `exercises[3].hold_s` is in the third exercise.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from voicecoach.core.routine import Exercise, Routine, Sides
from voicecoach.files.problems import FILE_FIELD, FileProblems, Problem, read_text_file

_LOGGER = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
"""Routine files larger than this are refused before they are read: the largest routine the checker accepts (50
exercises of 12 steps of 300 characters) is about a quarter of it, and parsing megabytes of YAML takes seconds."""

_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}")
_DEFAULT_LANGUAGE = "en"
_MAX_SPOKEN_CHARS = 300
_MAX_SECONDS = 600.0
_EQUIPMENT = ("mat", "towel or band", "wall", "chair", "pillow")
_SIDES = tuple(sides.value for sides in Sides)

_ROUTINE_FIELDS = ("name", "title", "description", "language", "intro", "outro", "exercises")
_EXERCISE_FIELDS = (
    "name",
    "position",
    "equipment",
    "cautions",
    "steps",
    "hold_cue",
    "hold_s",
    "max_hold_s",
    "reps",
    "sides",
    "rest_s",
)
_ROUTINE_SHAPE = "a mapping with name:, title:, description: and exercises:"
_EXERCISE_SHAPE = "an exercise: a mapping with name:, position:, steps: and hold_s:"
_SPOKEN = f"a spoken sentence of at most {_MAX_SPOKEN_CHARS} characters"
_NAME_RULE = "an id of 1 to 40 lowercase letters, digits and hyphens, starting with a letter or digit"
_LANGUAGE_RULE = "a language code of 2 or 3 lowercase letters, such as en"
_MERGE_KEY = "<<"

_TAG_PREFIX = "tag:yaml.org,2002:"
_NULL_TAG = _TAG_PREFIX + "null"
_STR_TAG = _TAG_PREFIX + "str"
_NUMBER_TAGS = frozenset({_TAG_PREFIX + "int", _TAG_PREFIX + "float"})
_STANDARD_TAGS = frozenset(
    _TAG_PREFIX + t for t in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)
_SCALAR_KINDS = {
    _TAG_PREFIX + "bool": "the yes/no value",
    _TAG_PREFIX + "int": "the number",
    _TAG_PREFIX + "float": "the number",
    _TAG_PREFIX + "timestamp": "the date",
}


# --- public types -------------------------------------------------------------------------------


class RoutineFileError(FileProblems):
    """A routine file, or a routine name, that cannot be used; carries every problem found."""


# --- loading ------------------------------------------------------------------------------------


def load_routine_file(path: Path) -> Routine:
    """Load and check a routine file; raise RoutineFileError listing every problem."""
    source = str(path)
    text = read_text_file(path, source, RoutineFileError, kind="a routine file", max_bytes=MAX_FILE_BYTES)
    routine = parse_routine(text, source)
    _LOGGER.debug("Loaded routine %s (%d exercises) from %s", routine.name, len(routine.exercises), source)
    return routine


def parse_routine(text: str, source: str) -> Routine:
    """Check a routine written in YAML; `source` names it in problems."""
    checker = _Checker(source)
    root = _compose(checker, text)
    routine = _routine(checker, root) if root is not None else None
    if checker.problems or routine is None:
        raise RoutineFileError(sorted(checker.problems, key=lambda problem: problem.line))
    return routine


class _Checker:
    """Collects the problems found in one routine file and builds scalar values."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._loader = yaml.SafeLoader("")

    def add(self, where: Node | int, field: str, message: str) -> None:
        """Record a problem at a node's first line, or at a line number."""
        line = where if isinstance(where, int) else where.start_mark.line + 1
        self.problems.append(Problem(self.source, line, field, message))

    def number(self, node: ScalarNode) -> int | float | None:
        """The int or float a number-tagged scalar stands for; None if it cannot be read."""
        try:
            value = self._loader.construct_object(node)
        except ValueError:
            return None
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _compose(checker: _Checker, text: str) -> Node | None:
    """The YAML node tree of the text, or None after recording why there is none."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        checker.add(_error_line(exc.problem_mark or exc.context_mark), FILE_FIELD, _syntax_message(exc))
        return None
    except yaml.reader.ReaderError as exc:
        checker.add(text.count("\n", 0, exc.position) + 1, FILE_FIELD, _character_message(exc.character))
        return None
    except RecursionError:
        checker.add(1, FILE_FIELD, "is nested too deeply (expected a routine of lists and mappings)")
        return None
    if root is None:
        checker.add(1, FILE_FIELD, f"is empty (expected {_ROUTINE_SHAPE})")
    return root


def _error_line(mark: yaml.Mark | None) -> int:
    """The 1-based line of a YAML error mark, 0 without one."""
    return mark.line + 1 if mark is not None else 0


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's account of a syntax error, as a problem message."""
    context = exc.context or ""
    context_line, problem_line = _error_line(exc.context_mark), _error_line(exc.problem_mark)
    if context and context_line and context_line != problem_line:
        context += f" (from line {context_line})"
    what = ", ".join(part for part in (context, exc.problem or "") if part)
    return f"not valid YAML: {what} (expected YAML: check the indentation, colons, dashes and quotes)"


def _character_message(character: int | str) -> str:
    """The problem message for a character YAML does not allow."""
    code = character if isinstance(character, int) else ord(character)
    return f"contains the control character U+{code:04X} (expected printable text)"


# --- the routine --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    """The known, non-duplicate fields of one YAML mapping."""

    node: MappingNode
    prefix: str
    """'' at the top level, 'exercises[2].' inside an exercise."""
    values: dict[str, Node]

    def path(self, key: str) -> str:
        """The field path of a key of this mapping."""
        return self.prefix + key


@dataclass(frozen=True)
class _Range:
    """The whole numbers a field accepts: seconds, or a count."""

    low: float
    high: float
    seconds: bool = True
    """False for a count, such as reps."""
    note: str = ""

    def describe(self) -> str:
        """What is expected, for a problem message."""
        unit = "seconds" if self.seconds else "a whole number"
        return f"{unit} from {self.low:g} to {self.high:g}{self.note}"

    def not_a_number(self) -> str:
        """What a value of the wrong type is not."""
        return "a number" if self.seconds else "a whole number"

    def not_whole(self) -> str:
        """What a value with a fraction is not. Times are whole seconds: the narrator says them ("hold for 20
        seconds") and counts them down, and progression steps by whole seconds; 20.5 would be announced as 20."""
        return "a whole number of seconds" if self.seconds else "a whole number"


@dataclass(frozen=True)
class _Count:
    """How many items a list field accepts."""

    low: int
    high: int | None
    noun: str

    def describe(self) -> str:
        """What is expected, for a problem message."""
        if self.high is None:
            return f"a list of {self.noun}"
        return f"a list of {self.low} to {self.high} {self.noun}"


_HOLD = _Range(1, _MAX_SECONDS)
_REST = _Range(0, _MAX_SECONDS)
_REPS = _Range(1, 20, seconds=False)
_EXERCISE_COUNT = _Count(1, 50, "exercises")
_STEP_COUNT = _Count(1, 12, "steps")
_SENTENCES = _Count(0, None, "spoken sentences")
_EQUIPMENT_LIST = _Count(0, None, f"equipment from: {', '.join(_EQUIPMENT)}")


def _routine(checker: _Checker, root: Node) -> Routine | None:
    """The routine at the top of the file; problems are recorded in the checker."""
    if not isinstance(root, MappingNode) or root.tag not in _STANDARD_TAGS:
        checker.add(root, FILE_FIELD, f"the top level is {_describe(root)} (expected {_ROUTINE_SHAPE})")
        return None
    fields = _fields(checker, root, "", _ROUTINE_FIELDS)
    return Routine(
        name=_identifier(checker, fields, "name", _NAME_PATTERN, _NAME_RULE, required=True) or "",
        title=_required_text(checker, fields, "title", "the routine's title"),
        description=_required_text(checker, fields, "description", "a short description of the routine"),
        language=_identifier(checker, fields, "language", _LANGUAGE_PATTERN, _LANGUAGE_RULE, required=False)
        or _DEFAULT_LANGUAGE,
        intro=_sentences(checker, fields, "intro", _SENTENCES),
        outro=_sentences(checker, fields, "outro", _SENTENCES),
        exercises=_exercises(checker, fields),
        source=checker.source,
    )


def _exercises(checker: _Checker, fields: _Fields) -> tuple[Exercise, ...]:
    """The checked exercises of the routine."""
    items = _list(checker, fields, "exercises", _EXERCISE_COUNT)
    found = [_exercise(checker, item, f"exercises[{index}]") for index, item in enumerate(items, start=1)]
    _check_unique_names(checker, items)
    return tuple(exercise for exercise in found if exercise is not None)


def _exercise(checker: _Checker, node: Node, path: str) -> Exercise | None:
    """One checked exercise; None if it is not a mapping."""
    if not isinstance(node, MappingNode) or node.tag not in _STANDARD_TAGS:
        checker.add(node, path, f"{_describe(node)} is not an exercise (expected {_EXERCISE_SHAPE})")
        return None
    fields = _fields(checker, node, path + ".", _EXERCISE_FIELDS)
    hold_s = _number(checker, fields, "hold_s", _HOLD, required=True)
    reps = _number(checker, fields, "reps", _REPS, required=False)
    sides = _choice(checker, fields, "sides", _SIDES)
    return Exercise(
        name=_required_text(checker, fields, "name", "the exercise's name"),
        position=_required_text(
            checker, fields, "position", "the starting position, such as lying on your back"
        ),
        steps=_sentences(checker, fields, "steps", _STEP_COUNT),
        hold_s=float(hold_s or 0),
        reps=int(reps or 1),
        sides=Sides(sides or Sides.NONE.value),
        rest_s=float(_number(checker, fields, "rest_s", _REST, required=False) or 0),
        equipment=_equipment(checker, fields),
        cautions=_sentences(checker, fields, "cautions", _SENTENCES),
        hold_cue=_optional_spoken(checker, fields, "hold_cue"),
        max_hold_s=_max_hold(checker, fields, hold_s),
        line=node.start_mark.line + 1,
    )


def _check_unique_names(checker: _Checker, items: Sequence[Node]) -> None:
    """Record exercises whose name (ignoring case) an earlier exercise already has."""
    first_lines: dict[str, int] = {}
    for index, item in enumerate(items, start=1):
        node = _mapping_value(item, "name")
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            continue
        key = " ".join(node.value.split()).casefold()
        line = node.start_mark.line + 1
        if key in first_lines:
            first = first_lines[key]
            message = f"{quoted(node.value)} is used twice (expected a unique name; first at line {first})"
            checker.add(node, f"exercises[{index}].name", message)
        else:
            first_lines[key] = line


def _mapping_value(node: Node, key: str) -> Node | None:
    """The value of the first plain `key` in a mapping node."""
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return value_node
    return None


# --- mappings -----------------------------------------------------------------------------------


def _fields(checker: _Checker, node: MappingNode, prefix: str, known: tuple[str, ...]) -> _Fields:
    """The known fields of a mapping, recording unknown, duplicate and non-text keys."""
    values: dict[str, Node] = {}
    first_lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            checker.add(
                key_node, prefix + "?", f"{_describe(key_node)} is used as a key (expected a field name)"
            )
            continue
        key, line = key_node.value, key_node.start_mark.line + 1
        if key in first_lines:
            message = f"appears twice (expected each field once; first at line {first_lines[key]})"
            checker.add(key_node, prefix + key, message)
            continue
        first_lines[key] = line
        if key in known:
            values[key] = value_node
        else:
            checker.add(key_node, prefix + key, _unknown_field_message(key, known))
    return _Fields(node, prefix, values)


def _unknown_field_message(key: str, known: tuple[str, ...]) -> str:
    """Why a key is not accepted, with the closest known field."""
    if key == _MERGE_KEY:
        return "merge keys are not supported (expected the fields written out)"
    return f"unknown field (expected one of: {', '.join(known)}{suggestion(key, known)})"


def suggestion(word: str, choices: Iterable[str]) -> str:
    """'; did you mean X?' for the closest choice, or ''."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _get(checker: _Checker, fields: _Fields, key: str, expected: str, required: bool) -> Node | None:
    """A field's value node; None (recording a problem if required) when absent or empty."""
    node = fields.values.get(key)
    if node is None:
        if required:
            checker.add(fields.node, fields.path(key), f"is missing (expected {expected})")
        return None
    if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
        if required:
            checker.add(node, fields.path(key), f"has no value (expected {expected})")
        return None
    return node


def _list(checker: _Checker, fields: _Fields, key: str, count: _Count) -> list[Node]:
    """The items of a list field, recording a wrong type or a wrong number of items."""
    expected = count.describe()
    node = _get(checker, fields, key, expected, required=count.low > 0)
    if node is None:
        return []
    path = fields.path(key)
    if not isinstance(node, SequenceNode) or node.tag not in _STANDARD_TAGS:
        checker.add(
            node, path, f"{_describe(node)} is not a list (expected {expected}; one '- ' item per line)"
        )
        return []
    items = list(node.value)
    if len(items) < count.low or (count.high is not None and len(items) > count.high):
        checker.add(node, path, f"has {len(items)} {count.noun} (expected {expected})")
    return items


# --- values -------------------------------------------------------------------------------------


def _describe(node: Node) -> str:
    """What a node is, for a problem message: 'a list', 'the number 3', 'the text "20"'."""
    if node.tag not in _STANDARD_TAGS:
        return f"a value tagged {_tag_name(node.tag)}"
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "an empty value"
    if node.tag == _STR_TAG:
        return f"the text {quoted(node.value)}"
    return f"{_SCALAR_KINDS[node.tag]} {node.value}"


def quoted(text: str) -> str:
    """Text in double quotes, shortened if long."""
    return f'"{text}"' if len(text) <= 40 else f'"{text[:37]}..."'


def _tag_name(tag: str) -> str:
    """A tag as it is written in YAML."""
    return "!!" + tag.removeprefix(_TAG_PREFIX) if tag.startswith(_TAG_PREFIX) else tag


def _text(checker: _Checker, node: Node, path: str, expected: str) -> str | None:
    """A scalar's text as written, whitespace collapsed (so `language: no` stays 'no', not false)."""
    if node.tag not in _STANDARD_TAGS:
        checker.add(node, path, f"the tag {_tag_name(node.tag)} is not supported (expected {expected})")
        return None
    if not isinstance(node, ScalarNode):
        hint = "; put text that contains ': ' in quotes" if isinstance(node, MappingNode) else ""
        checker.add(node, path, f"{_describe(node)} is not text (expected {expected}{hint})")
        return None
    text = " ".join(node.value.split()) if node.tag != _NULL_TAG else ""
    if not text:
        checker.add(node, path, f"is empty (expected {expected})")
        return None
    return text


def _required_text(checker: _Checker, fields: _Fields, key: str, expected: str) -> str:
    """A required text field; '' after recording a problem."""
    node = _get(checker, fields, key, expected, required=True)
    return (_text(checker, node, fields.path(key), expected) if node is not None else None) or ""


def _identifier(
    checker: _Checker, fields: _Fields, key: str, pattern: re.Pattern[str], rule: str, required: bool
) -> str | None:
    """A text field that must match a pattern."""
    node = _get(checker, fields, key, rule, required)
    text = _text(checker, node, fields.path(key), rule) if node is not None else None
    if node is None or text is None:
        return None
    if not pattern.fullmatch(text):
        checker.add(node, fields.path(key), f"{quoted(text)} is not valid (expected {rule})")
        return None
    return text


def _spoken(checker: _Checker, node: Node, path: str) -> str | None:
    """A sentence to speak: non-empty text of at most the maximum length."""
    text = _text(checker, node, path, _SPOKEN)
    if text is not None and len(text) > _MAX_SPOKEN_CHARS:
        message = f"is {len(text)} characters long (expected {_SPOKEN}: split it into shorter sentences)"
        checker.add(node, path, message)
        return None
    return text


def _optional_spoken(checker: _Checker, fields: _Fields, key: str) -> str:
    """An optional spoken sentence; '' when absent."""
    node = _get(checker, fields, key, _SPOKEN, required=False)
    return (_spoken(checker, node, fields.path(key)) if node is not None else None) or ""


def _sentences(checker: _Checker, fields: _Fields, key: str, count: _Count) -> tuple[str, ...]:
    """A list of spoken sentences."""
    items = _list(checker, fields, key, count)
    spoken = [
        _spoken(checker, item, f"{fields.path(key)}[{index}]") for index, item in enumerate(items, start=1)
    ]
    return tuple(text for text in spoken if text is not None)


def _one_of(checker: _Checker, node: Node, path: str, choices: tuple[str, ...]) -> str | None:
    """Text that must be one of the choices (ignoring case)."""
    expected = f"one of: {', '.join(choices)}"
    text = _text(checker, node, path, expected)
    if text is None:
        return None
    if text.lower() not in choices:
        checker.add(
            node, path, f"{quoted(text)} is not known (expected {expected}{suggestion(text, choices)})"
        )
        return None
    return text.lower()


def _choice(checker: _Checker, fields: _Fields, key: str, choices: tuple[str, ...]) -> str | None:
    """An optional field that must be one of the choices."""
    node = _get(checker, fields, key, "", required=False)
    return _one_of(checker, node, fields.path(key), choices) if node is not None else None


def _equipment(checker: _Checker, fields: _Fields) -> tuple[str, ...]:
    """The exercise's equipment, each one of the known kinds."""
    items = _list(checker, fields, "equipment", _EQUIPMENT_LIST)
    path = fields.path("equipment")
    found = [
        _one_of(checker, item, f"{path}[{index}]", _EQUIPMENT) for index, item in enumerate(items, start=1)
    ]
    return tuple(kind for kind in found if kind is not None)


def _number(checker: _Checker, fields: _Fields, key: str, limits: _Range, required: bool) -> float | None:
    """A number field within its range; None when absent or wrong."""
    expected = limits.describe()
    node = _get(checker, fields, key, expected, required)
    if node is None:
        return None
    path = fields.path(key)
    value = checker.number(node) if isinstance(node, ScalarNode) and node.tag in _NUMBER_TAGS else None
    if value is None:
        checker.add(node, path, f"{_describe(node)} is not {limits.not_a_number()} (expected {expected})")
        return None
    if not limits.low <= value <= limits.high:
        checker.add(node, path, f"{node.value} is out of range (expected {expected})")
        return None
    if not float(value).is_integer():
        checker.add(node, path, f"{node.value} is not {limits.not_whole()} (expected {expected})")
        return None
    return value


def _max_hold(checker: _Checker, fields: _Fields, hold_s: float | None) -> float | None:
    """The optional cap for progression: from hold_s (when valid) to the maximum."""
    low = hold_s if hold_s is not None else _HOLD.low
    limits = _Range(low, _MAX_SECONDS, note=", not less than hold_s")
    value = _number(checker, fields, "max_hold_s", limits, required=False)
    return float(value) if value is not None else None


