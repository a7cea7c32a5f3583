"""Phrase-to-command matching, shared by the dry run and every recognizer."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from voicecoach.core.events import Command

_WORD = re.compile(r"[a-z0-9\u00c0-\uffff]+")


class VocabularyError(ValueError):
    """A vocabulary file is malformed."""


def normalize(text: str) -> list[str]:
    """Lowercase words with punctuation and apostrophes removed."""
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


@dataclass(frozen=True)
class Match:
    """A command found in some words."""

    command: Command
    phrase: str


@dataclass(frozen=True)
class Vocabulary:
    """The phrases for each command in one language, and decoy words."""

    language: str
    phrases: dict[Command, tuple[str, ...]]
    decoys: tuple[str, ...] = ()

    def all_phrases(self) -> list[str]:
        """Every command phrase, longest first."""
        found = {p for ps in self.phrases.values() for p in ps}
        return sorted(found, key=lambda p: (-len(p.split()), p))

    def words(self) -> list[str]:
        """Every distinct word used in phrases and decoys."""
        seen: dict[str, None] = {}
        for phrase in [*self.all_phrases(), *self.decoys]:
            for word in phrase.split():
                seen.setdefault(word, None)
        return list(seen)

    def extended(self, command: Command, phrases: list[str]) -> Vocabulary:
        """A copy with more phrases for one command (e.g. 'start lower back' for each routine)."""
        merged = dict(self.phrases)
        extra = tuple(" ".join(normalize(p)) for p in phrases)
        merged[command] = tuple(dict.fromkeys((*merged.get(command, ()), *extra)))
        return Vocabulary(self.language, merged, self.decoys)

    def match(self, text: str) -> Match | None:
        """The command the text asks for: a safety command wins, then the longest phrase, then the last."""
        found = self.find_all(text)
        if not found:
            return None
        safety = [m for m in found if m.command.is_safety]
        if safety:
            return safety[0]
        return max(reversed(found), key=lambda m: len(m.phrase.split()))

    def find_all(self, text: str) -> list[Match]:
        """Every command phrase in the text, left to right, longest phrase at each position."""
        words = normalize(text)
        table = {tuple(p.split()): cmd for cmd, ps in self.phrases.items() for p in ps}
        longest = max((len(k) for k in table), default=0)
        found: list[Match] = []
        i = 0
        while i < len(words):
            for n in range(min(longest, len(words) - i), 0, -1):
                cmd = table.get(tuple(words[i : i + n]))
                if cmd is not None:
                    found.append(Match(cmd, " ".join(words[i : i + n])))
                    i += n
                    break
            else:
                i += 1
        return found


def load_vocabulary(language: str = "en", path: Path | None = None) -> Vocabulary:
    """Load a vocabulary from the package's vocab folder, or from a file."""
    if path is None:
        text = resources.files("voicecoach.vocab").joinpath(f"{language}.toml").read_text("utf-8")
        where = f"vocab/{language}.toml"
    else:
        text, where = path.read_text("utf-8"), str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VocabularyError(f"{where}: {exc}") from None
    return _build(data, where)


def _build(data: dict[str, object], where: str) -> Vocabulary:
    commands = data.get("commands")
    if not isinstance(commands, dict):
        raise VocabularyError(f"{where}: commands: missing table (expected [commands])")
    phrases: dict[Command, tuple[str, ...]] = {}
    for key, value in commands.items():
        try:
            command = Command(key)
        except ValueError:
            known = ", ".join(c.value for c in Command)
            raise VocabularyError(f"{where}: commands.{key}: unknown command (expected one of {known})") from None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise VocabularyError(f"{where}: commands.{key}: expected a non-empty list of phrases")
        phrases[command] = tuple(" ".join(normalize(v)) for v in value)
    decoy_table = data.get("decoys", {})
    decoys = tuple(decoy_table.get("words", [])) if isinstance(decoy_table, dict) else ()
    command_words = {p for ps in phrases.values() for p in ps}
    clash = sorted(set(decoys) & command_words)
    if clash:
        raise VocabularyError(f"{where}: decoys.words: {', '.join(clash)} are command phrases (expected other words)")
    return Vocabulary(str(data.get("language", "")), phrases, decoys)
