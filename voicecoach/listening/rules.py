"""The spotting rules: which recognizer hypotheses are commands."""

from __future__ import annotations

from dataclasses import dataclass

from voicecoach.core.commands import Match, Vocabulary, normalize
from voicecoach.core.events import Command, CommandHeard
from voicecoach.listening.recognizer import Hypothesis

_FILLERS = frozenset({"unk", "noise", "speech", "sil", "laugh", "cough", "breath"})
"""Words (after normalize) that engines use for non-words: '[unk]', '<unk>', '[noise]' ..."""


@dataclass(frozen=True)
class SpotterSettings:
    """When hypotheses become commands."""

    stable_partials: int = 2
    """Consecutive partials that must name the same one-word safety command."""
    stable_partials_multiword: int = 1
    """The same for a safety phrase of two or more words (harder to hit by chance)."""
    min_coverage: float = 0.5
    """Share of an utterance's real words that the command phrase must cover, for non-safety commands."""
    max_unknown: int = 2
    """Runs of unknown speech ('[unk]') an utterance may hold and still be a non-safety command."""


class CommandSpotter:
    """Decides which hypotheses are commands: safety ones from stable partials, others from short finals."""

    def __init__(self, vocabulary: Vocabulary, settings: SpotterSettings | None = None) -> None:
        self.vocabulary = vocabulary
        self.settings = settings or SpotterSettings()
        self._run_command: Command | None = None
        self._run_length = 0
        self._fired = False

    def reset(self) -> None:
        """Forget the current utterance."""
        self._run_command, self._run_length, self._fired = None, 0, False

    def feed(self, hyp: Hypothesis) -> list[CommandHeard]:
        """One hypothesis in; the commands it completes (at most one)."""
        heard = self._final(hyp) if hyp.final else self._partial(hyp)
        if hyp.final:
            self.reset()
        return [heard] if heard is not None else []

    def _partial(self, hyp: Hypothesis) -> CommandHeard | None:
        """A safety command that has stayed put for enough partials, once per utterance."""
        match = self._safety_match(hyp.text)
        command = match.command if match else None
        self._run_length = self._run_length + 1 if command is not None and command == self._run_command else 1
        self._run_command = command
        if match is None or self._fired:
            return None
        multiword = len(match.phrase.split()) > 1
        needed = self.settings.stable_partials_multiword if multiword else self.settings.stable_partials
        if self._run_length < needed:
            return None
        self._fired = True
        return _heard(match, hyp)

    def _final(self, hyp: Hypothesis) -> CommandHeard | None:
        """A safety command the partials missed, or a non-safety command that is most of the utterance."""
        if self._fired:
            return None
        safety = self._safety_match(hyp.text)
        if safety is not None:
            return _heard(safety, hyp)
        match = self.vocabulary.match(hyp.text)
        if match is None or not self._is_mostly_command(hyp.text, match):
            return None
        return _heard(match, hyp)

    def _safety_match(self, text: str) -> Match | None:
        """The first safety phrase in the text."""
        return next((m for m in self.vocabulary.find_all(text) if m.command.is_safety), None)

    def _is_mostly_command(self, text: str, match: Match) -> bool:
        """True when the utterance is essentially the command (a command word inside a sentence is not)."""
        words = normalize(text)
        real = [w for w in words if w not in _FILLERS]
        unknown_runs = sum(1 for i, w in enumerate(words) if w == "unk" and (i == 0 or words[i - 1] != "unk"))
        if not real or unknown_runs > self.settings.max_unknown:
            return False
        return len(match.phrase.split()) / len(real) >= self.settings.min_coverage


def _heard(match: Match, hyp: Hypothesis) -> CommandHeard:
    """The event for a match in a hypothesis."""
    return CommandHeard(match.command, hyp.text, hyp.confidence, hyp.end_s)
