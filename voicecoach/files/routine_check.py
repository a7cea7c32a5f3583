"""Command words in a routine's narration: the microphone hears the narrator, so spoken text should not hold them.

The texts checked are the routine-file fields the narrator says (see `plan.py` and `session.py`): the title, intro and
outro lines, and each exercise's name (announced, and named again before it and in the summary), cautions, steps and
hold cue. The description and position are only shown, never spoken. The lines voicecoach writes itself ("Hold for 20
seconds.", "Left side.", "Say resume, next, or end workout.") are the program's business, not the author's.

A safety command ("stop", "too much") in the narration is a warning: voicecoach never takes one for its own voice, so
the narrator saying it can stop the session. A non-safety command is a note: the own-voice filter drops the commands the
narrator has just said. A line that names commands on purpose, to teach them, says so with a comment right after its
text, `# teaches: stop, too much`; those commands are then notes, as a reminder that the risk remains.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from voicecoach.core.commands import Match, Vocabulary, load_vocabulary
from voicecoach.core.events import Command
from voicecoach.core.routine import Routine
from voicecoach.files.problems import Finding, Level, read_text_file
from voicecoach.files.routine_file import MAX_FILE_BYTES, RoutineFileError, load_routine_file

_LOGGER = logging.getLogger(__name__)

_VOCAB_PACKAGE = "voicecoach.vocab"
_LANGUAGE_FIELD = "language"
_SPOKEN_FIELDS = ("title",)
_SPOKEN_LISTS = ("intro", "outro")
_EXERCISE_SPOKEN_FIELDS = ("name", "hold_cue")
_EXERCISE_SPOKEN_LISTS = ("cautions", "steps")

_TEACHES = re.compile(r"\s+#\s*teaches\s*:(?P<phrases>.*)$")
"""The opt-out comment, after a text on its line."""
_BLOCK_HEADER = re.compile(r"[|>][-+1-9]*")
"""The indicator that starts a block scalar (`>-`, `|`): its comment is on the indicator's line."""


@dataclass(frozen=True)
class SpokenText:
    """A routine-file text the narrator says, and where it is written."""

    field: str
    line: int
    text: str
    """Whitespace collapsed, as it is spoken."""
    teaches: str | None = None
    """The words after a `# teaches:` comment on the text's line; None without one."""


def check_routine(path: Path) -> tuple[Routine, list[Finding]]:
    """Load a routine file (RoutineFileError on problems) and find the command words its narrator would say."""
    routine = load_routine_file(path)
    text = read_text_file(path, str(path), RoutineFileError, kind="a routine file", max_bytes=MAX_FILE_BYTES)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, MappingNode):  # load_routine_file has checked the shape
        return routine, []
    named = _file_name_findings(path, root, routine)
    try:
        vocabulary = load_vocabulary(routine.language)
    except FileNotFoundError:
        return routine, [*named, _no_vocabulary(str(path), root, routine.language)]
    return routine, [*named, *command_words(str(path), spoken_texts(root, text.splitlines()), vocabulary)]


def _file_name_findings(path: Path, root: MappingNode, routine: Routine) -> list[Finding]:
    """A warning when the file's name is not the routine's `name:` (the library finds routines by file name)."""
    if path.stem == routine.name:
        return []
    line = next((key.start_mark.line + 1 for key, _ in root.value if isinstance(key, ScalarNode)
                 and key.value == "name"), 1)  # fmt: skip
    message = (f'"{routine.name}" is not the file\'s name "{path.name}" (expected {routine.name}.yaml: '
               f"`voicecoach run {routine.name}` finds a routine by its file name, and the history keeps it as "
               f"{routine.name}; rename the file or change the name)")  # fmt: skip
    return [Finding(str(path), line, "name", message, level=Level.WARNING)]


def command_words(source: str, texts: list[SpokenText], vocabulary: Vocabulary) -> list[Finding]:
    """A finding for each command phrase in each spoken text (once per phrase and text), in file order."""
    findings: list[Finding] = []
    for spoken in texts:
        matches = list(dict.fromkeys(vocabulary.find_all(spoken.text)))
        taught = {match.command for match in vocabulary.find_all(spoken.teaches or "")}
        findings += [_command_finding(source, spoken, match, match.command in taught) for match in matches]
        findings += [_built_on_finding(source, spoken, command, stem, word)
                     for command, stem, word in _built_on_safety_words(spoken.text, vocabulary)
                     if command not in taught]  # fmt: skip
        if spoken.teaches is not None and not taught & {match.command for match in matches}:
            message = (
                '"# teaches:" names no command this text says '
                '(expected the command phrases the text teaches, such as "# teaches: stop, too much")'
            )
            findings.append(Finding(source, spoken.line, spoken.field, message, Level.NOTE))
    _LOGGER.debug("%s: %d spoken texts, %d findings", source, len(texts), len(findings))
    return sorted(findings, key=lambda finding: finding.line)


def _command_finding(source: str, spoken: SpokenText, match: Match, taught: bool) -> Finding:
    """The finding for one command phrase in a spoken text: a warning for an untaught safety command."""
    level = Level.WARNING if match.command.is_safety and not taught else Level.NOTE
    message = f'says "{match.phrase}", the {match.command.name} command{_consequence(match.command, taught)}'
    return Finding(source, spoken.line, spoken.field, message, level, match.command, match.phrase)


def _built_on_safety_words(text: str, vocabulary: Vocabulary) -> list[tuple[Command, str, str]]:
    """Words built on a one-word safety phrase ("stopped", "stopping", "stops" on "stop"), once each, in text
    order: the recognizer does not match them, but the keyword spotter hears sounds, not words."""
    stems = [(c, p) for c, phrases in vocabulary.phrases.items() if c.is_safety for p in phrases if " " not in p]
    found = [(m.start(), c, stem, m.group(0)) for c, stem in stems
             for m in re.finditer(rf"\b{re.escape(stem)}\w+", text.lower())]  # fmt: skip
    return list(dict.fromkeys((c, stem, word) for _, c, stem, word in sorted(found, key=lambda f: f[0])))


def _built_on_finding(source: str, spoken: SpokenText, command: Command, stem: str, word: str) -> Finding:
    """The warning for a word built on a safety phrase."""
    message = (
        f'says "{word}", which sounds like "{stem}", the {command.name} command: the keyword spotter may take the '
        f'narrator\'s "{word}" for {stem} and stop the session (reword it; in a quiet room the echo of voicecoach\'s '
        f'own "I have stopped" did)'
    )
    return Finding(source, spoken.line, spoken.field, message, Level.WARNING, command, word)


def _consequence(command: Command, taught: bool) -> str:
    """What the narrator saying a command does, and what to do about it."""
    if taught and command.is_safety:
        return ", on purpose (# teaches): the session stops if the microphone hears it"
    if taught:
        return ", on purpose (# teaches); the own-voice filter drops it"
    if command.is_safety:
        return (
            ": the microphone would hear the narrator and stop the session "
            "(reword it; a safety command is never filtered out as the narrator's own voice)"
        )
    return (
        ": less severe, the own-voice filter drops a non-safety command the narrator has just said "
        "(reword it if you can; the microphone would hear the narrator say it)"
    )


def _no_vocabulary(source: str, root: MappingNode, language: str) -> Finding:
    """The warning for a routine whose language has no command vocabulary."""
    node = _value(root, _LANGUAGE_FIELD)
    line = node.start_mark.line + 1 if node is not None else 0
    known = sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files(_VOCAB_PACKAGE).iterdir()
        if entry.name.endswith(".toml")
    )
    message = (
        f'"{language}" has no command vocabulary, so command words are not checked and voice mode cannot run it '
        f"(expected one of: {', '.join(known)})"
    )
    return Finding(source, line, _LANGUAGE_FIELD, message, Level.WARNING)


# --- the spoken texts of a routine file ---------------------------------------------------------


def spoken_texts(root: MappingNode, lines: list[str]) -> list[SpokenText]:
    """Every text of a checked routine file's YAML tree that the narrator says, with its field and line."""
    texts = list(_fields(root, "", _SPOKEN_FIELDS, _SPOKEN_LISTS, lines))
    exercises = _value(root, "exercises")
    if isinstance(exercises, SequenceNode):
        for index, exercise in enumerate(exercises.value, start=1):
            if isinstance(exercise, MappingNode):
                prefix = f"exercises[{index}]."
                texts += _fields(exercise, prefix, _EXERCISE_SPOKEN_FIELDS, _EXERCISE_SPOKEN_LISTS, lines)
    return texts


def _fields(
    mapping: MappingNode, prefix: str, singles: tuple[str, ...], lists: tuple[str, ...], lines: list[str]
) -> Iterator[SpokenText]:
    """The spoken texts among a mapping's text fields and list-of-text fields."""
    for key in singles:
        node = _value(mapping, key)
        if node is not None:
            yield from _spoken(node, prefix + key, lines)
    for key in lists:
        node = _value(mapping, key)
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value, start=1):
                yield from _spoken(item, f"{prefix}{key}[{index}]", lines)


def _spoken(node: Node, field: str, lines: list[str]) -> Iterator[SpokenText]:
    """The text of a scalar node, if it has any."""
    if isinstance(node, ScalarNode):
        text = " ".join(node.value.split())
        if text:
            yield SpokenText(field, node.start_mark.line + 1, text, _teaches(node, lines))


def _teaches(node: ScalarNode, lines: list[str]) -> str | None:
    """The words of a `# teaches:` comment right after the node's text, or after its block indicator."""
    if node.style in ("|", ">"):
        mark = node.start_mark
        rest = _BLOCK_HEADER.sub("", _line_after(lines, mark.line, mark.column), count=1)
    else:
        rest = _line_after(lines, node.end_mark.line, node.end_mark.column)
    found = _TEACHES.match(rest)
    return found.group("phrases").strip() if found else None


def _line_after(lines: list[str], line: int, column: int) -> str:
    """What a line holds from a column on ('' past the end of the file)."""
    return lines[line][column:] if line < len(lines) else ""


def _value(mapping: MappingNode, key: str) -> Node | None:
    """The value of the first plain `key` in a mapping node."""
    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return None
