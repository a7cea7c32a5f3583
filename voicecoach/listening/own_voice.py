"""Own-voice awareness: which words the narrator sounded, and when, so that its own words coming back through the
microphone never count as commands. Safety commands (stop, too much) always count.

Times are on whatever timeline the caller uses, as long as it is one timeline: live voice mode uses
time.monotonic() (utterance start at the speaker, detection time in the listener's callback); the offline
evaluation uses seconds of the audio stream.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from voicecoach.core.commands import Vocabulary, normalize
from voicecoach.core.events import CommandHeard
from voicecoach.narration.synthesis import WordTiming, spread_words

_BEFORE_S = 0.2
"""A command detected up to this long before the narrator's phrase began sounding can still be its echo: the start
of an utterance at the speaker is an estimate, and a recognizer may commit to a word on its first sounds."""
_AFTER_S = 1.2
"""...and up to this long after the phrase ended: recognizers report a word from about 0.01 s (a Vosk partial)
to about 0.85 s (an endpointed result) after it ends, plus the echo path, the microphone's block and the queue."""
_KEPT_UTTERANCES = 64
"""Utterances remembered; only the last few seconds ever matter."""


@dataclass(frozen=True)
class _Token:
    """One normalized word the narrator sounded, on the caller's timeline."""

    word: str
    start_s: float
    end_s: float


@dataclass
class _Utterance:
    """One utterance that went to the speaker."""

    tokens: tuple[_Token, ...]
    cut_s: float | None = None
    """When playback was aborted (nothing from then on sounded); None if it played out."""

    def sounded(self) -> list[_Token]:
        """The tokens that began sounding before the cut, the last one ending at the cut."""
        if self.cut_s is None:
            return list(self.tokens)
        cut_s = self.cut_s
        return [_Token(t.word, t.start_s, min(t.end_s, cut_s)) for t in self.tokens if t.start_s < cut_s]


class OwnVoice:
    """Remembers the narrator's words with their times; tells whether a heard command is its own echo.

    A non-safety command is an echo when the narrator sounded the heard phrase's words, consecutively, in a window
    from before_s before the phrase's first word began to after_s after its last word ended. The heard phrase is
    found in the recognized text with the vocabulary's own matching (find_all); a command heard without text
    falls back to the commands find_all finds in the narrator's words. Thread-safe.
    """

    def __init__(self, vocabulary: Vocabulary, before_s: float = _BEFORE_S, after_s: float = _AFTER_S) -> None:
        self.vocabulary = vocabulary
        self.before_s = before_s
        self.after_s = after_s
        self._utterances: collections.deque[_Utterance] = collections.deque(maxlen=_KEPT_UTTERANCES)
        self._lock = threading.Lock()

    def record(self, start_s: float, text: str, words: Sequence[WordTiming] = (), duration_s: float | None = None
               ) -> None:  # fmt: skip
        """An utterance whose first sample sounds at start_s, with its word timings (relative to that sample).

        Without timings, the words of the text are spread over duration_s by their length.
        """
        if not words:
            if duration_s is None:
                raise ValueError("an utterance without word timings needs its duration")
            words = spread_words(text, duration_s)
        tokens = tuple(
            _Token(token, start_s + word.start_s, start_s + word.end_s)
            for word in words
            for token in normalize(word.text)
        )
        with self._lock:
            self._utterances.append(_Utterance(tokens))

    def cut(self, at_s: float) -> None:
        """Playback was aborted at at_s: words of the utterances recorded so far that had not begun never sounded."""
        with self._lock:
            for utterance in self._utterances:
                if utterance.cut_s is None or at_s < utterance.cut_s:
                    utterance.cut_s = at_s

    def is_own_echo(self, heard: CommandHeard, now_s: float, any_phrase: bool = False) -> bool:
        """True if this command is the narrator's own words coming back (never for a safety command).

        any_phrase: the engine reports the command, not the words it heard (the keyword spotter's text is the
        command's first phrase whichever was said), so every phrase of the command counts."""
        if heard.command.is_safety:
            return False
        if any_phrase:
            phrases = {tuple(p.split()) for p in self.vocabulary.phrases.get(heard.command, ())}
        else:
            phrases = {tuple(m.phrase.split()) for m in self.vocabulary.find_all(heard.text)
                       if m.command is heard.command}  # fmt: skip
        with self._lock:
            utterances = [utterance.sounded() for utterance in self._utterances]
        for tokens in utterances:
            spans = self._phrase_spans(tokens, phrases) if phrases else self._command_spans(tokens, heard)
            if any(start_s - self.before_s <= now_s <= end_s + self.after_s for start_s, end_s in spans):
                return True
        return False

    @staticmethod
    def _phrase_spans(tokens: list[_Token], phrases: set[tuple[str, ...]]) -> Iterator[tuple[float, float]]:
        """(start, end) of every place where the narrator said one of the phrases, word for word, its last word
        also as the start of a longer word: "against" begins with the sounds of "again", "longer" with those of
        "long" (a keyword spotter hears the phrase in them; measured: the narrator's "against the wall" came back
        as "again", repeat, at 0.97 through the room at +6 dB echo)."""
        words = [token.word for token in tokens]
        for phrase in phrases:
            for i in range(len(words) - len(phrase) + 1):
                *first, last = phrase
                if tuple(words[i : i + len(first)]) == tuple(first) and words[i + len(first)].startswith(last):
                    yield tokens[i].start_s, tokens[i + len(phrase) - 1].end_s

    def _command_spans(self, tokens: list[_Token], heard: CommandHeard) -> Iterator[tuple[float, float]]:
        """(start, end) of every phrase of the heard command in the narrator's words, as find_all splits them."""
        words = [token.word for token in tokens]
        i = 0
        for match in self.vocabulary.find_all(" ".join(words)):
            phrase = match.phrase.split()
            while i < len(words) and words[i : i + len(phrase)] != phrase:  # find_all goes left to right
                i += 1
            if match.command is heard.command and i < len(words):
                yield tokens[i].start_s, tokens[i + len(phrase) - 1].end_s
            i += len(phrase)
