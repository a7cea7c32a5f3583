"""PocketSphinx, restricted to a looping grammar: command phrases against decoys, common words and a phone loop.

The grammar is one hub state: every command phrase, vocabulary decoy, frequent English word (the bundled language
model's top unigrams) and single-phone garbage word leaves the hub and comes back to it, so any stream of speech can
be explained without forcing it onto a command. Competitors that could steal a safety word are left out ('top' in
'stop', 'talk' one broad-class phone from it), and safety phrases get a prior boost: a missed stop costs more than a
false one. Figures behind the defaults: `scripts/eval_commands.py --engine pocketsphinx` and
../shared/research/recognition.md.

Memory: the decoder is given a dictionary of only the words the grammar can use, copied from the bundled one at load
time (the full 135,000-word dictionary costs about 22 MB resident), and the frequent words come ranked from a small
list shipped in the package (reading the bundled 27 MB language model to rank them took 50 MB more at its peak).

The engine's own Endpointer hands speech over one 0.3 s window late, which would blow the stop latency budget, so
utterances are cut here with its frame-level Vad and audio reaches the decoder the moment it arrives. Cepstral mean
normalisation is 'live' and carries from utterance to utterance.

Longer than most modules (about 530 lines): building the grammar (phrases, decoys, ranked common words, the
phone loop, weights) is tied to the decoder settings it is tuned with; kept together so a tuning change is one file.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter, deque
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicecoach.core.commands import Vocabulary
from voicecoach.listening.recognizer import Hypothesis, RecognizerError

if TYPE_CHECKING:
    from collections.abc import Iterable

_LOGGER = logging.getLogger(__name__)

_RATE = 16000
_GRAMMAR = "voicecoach"
_GARBAGE_PREFIX = "garbage_"
UNKNOWN = "[unk]"
"""What a run of garbage (speech that is no grammar word) shows as in hypothesis text."""
_BROAD_CLASS = {
    **dict.fromkeys(["P", "T", "K", "B", "D", "G"], "stop"),
    **dict.fromkeys(["F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH"], "fricative"),
    **dict.fromkeys(["CH", "JH"], "affricate"),
    **dict.fromkeys(["M", "N", "NG"], "nasal"),
    **dict.fromkeys(["L", "R", "W", "Y"], "liquid"),
}
"""Consonant classes; every other phone is a vowel."""
_PHONE_LIST = "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
_MIN_PHONES = 3
"""Shorter words are one edit from too much to protect by distance."""
_LOG10_BASE = 0.0000434272
"""log10(1.0001): the language model's scores are logarithms in base 1.0001."""
_SILENT = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "[noise]"})
_PHONES = _PHONE_LIST.split(" ")
"""The en-us acoustic model's context-dependent phones: the garbage loop."""
COMMON_WORDS_FILE = "data/pocketsphinx-en-us-common.txt"
"""Inside the package: the bundled dictionary's words ranked by the bundled language model, 'word score' lines."""
COMMON_WORDS_STORED = 2000
"""How many ranked words the file keeps; asking for more than it can give reads the language model instead."""


@dataclass(frozen=True)
class PocketSphinxSettings:
    """How the grammar is weighted, how wide the search is and how utterances are cut."""

    command_weight: float = 1.0
    """Prior mass of all command phrases together, relative to decoys and garbage."""
    decoy_weight: float = 1.0
    """Prior mass of all decoy words together."""
    common_words: int = 300
    """How many of the bundled language model's most frequent words compete as garbage (0 for none)."""
    common_weight: float = 1e-3
    """Prior mass of those words together (each in proportion to its unigram probability)."""
    garbage_weight: float = 1e-8
    """Prior mass of all single-phone garbage words together (0 turns the phone loop off)."""
    extra_pronunciations: tuple[tuple[str, str], ...] = (("stop", "S T AO P"),)
    """Added variants (word, phones): British 'stop' is heard as 'thought' without this one."""
    safety_boost: float = 1e3
    """Extra prior for each safety phrase over other commands (a missed stop costs more than a false one)."""
    protect_safety: bool = True
    """Drop competitors sounded inside a safety phrase ('top' in 'stop'), starting with one ('stopped'), or (common
    words of 3+ phones) one broad-class phone edit from a safety word ('talk', 'thought' near 'stop')."""
    word_insertion_penalty: float = 0.65
    """PocketSphinx 'wip'. Lower values (0.1 to 0.001 tried) made clips open with a spurious short word."""
    beam: float = 1e-20
    """Viterbi beam. PocketSphinx's 1e-48 cost 0.45x real time with this grammar (1e-20: about 0.03x); 1e-35 bought
    5% more TTS commands with 20% more false ones."""
    word_beam: float = 1e-10
    phone_beam: float = 1e-20
    vad_mode: int = 0
    """0 (loose) to 3 (strict)."""
    start_frames: int = 2
    """Speech frames (30 ms) among the last start_window that open an utterance."""
    start_window: int = 3
    preroll_s: float = 0.3
    """Audio before the detected start that is fed too, so the first phone is not cut."""
    end_silence_s: float = 0.45
    """Non-speech that closes an utterance (the final hypothesis comes this long after the last word)."""
    max_utterance_s: float = 12.0
    """An utterance is closed by force after this long, so a noisy room cannot grow it forever."""


class PocketSphinxRecognizer:
    """The Recognizer protocol on PocketSphinx's bundled US English model; no download needed."""

    name = "pocketsphinx"
    sample_rate = _RATE

    def __init__(self, vocabulary: Vocabulary, settings: PocketSphinxSettings | None = None) -> None:
        self.settings = settings or PocketSphinxSettings()
        self.vocabulary = vocabulary
        ranked = _ranked_common_words(self.settings.common_words, set(vocabulary.words()))
        extra = [word for word, _ in self.settings.extra_pronunciations]
        self._decoder = _make_decoder(self.settings, {*vocabulary.words(), *extra, *(w for _, w in ranked)})
        self.grammar_words = _activate_grammar(self._decoder, vocabulary, self.settings, ranked)
        self._segmenter = _Segmenter(self.settings)
        self._pending = b""
        self._fed_bytes = 0
        self._in_utterance = False
        self._last_partial = ""

    @property
    def fed_s(self) -> float:
        """Seconds of audio fed since creation or the last reset()."""
        return self._fed_bytes / 2 / _RATE

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        """Feed little-endian int16 mono PCM; return any new hypotheses (partials and finals)."""
        data = self._pending + pcm
        size = self._segmenter.frame_bytes
        usable = len(data) - len(data) % size
        self._pending = data[usable:]
        out: list[Hypothesis] = []
        for start in range(0, usable, size):
            self._fed_bytes += size
            out.extend(self._frame(data[start : start + size]))
        return out

    def flush(self) -> list[Hypothesis]:
        """End of input: return the final hypothesis for audio still pending."""
        out: list[Hypothesis] = []
        if self._pending and self._in_utterance:
            self._fed_bytes += len(self._pending)
            self._decoder.process_raw(self._pending, False, False)
        self._pending = b""
        if self._in_utterance:
            out.append(self._end_utterance())
        self._segmenter.clear()
        return out

    def reset(self) -> None:
        """Forget the current utterance and restart the audio clock; the cepstral mean is kept."""
        self._fed_bytes = 0
        if self._in_utterance:
            self._decoder.end_utt()
            self._in_utterance = False
        self._pending = b""
        self._last_partial = ""
        self._segmenter.clear()

    def _frame(self, frame: bytes) -> list[Hypothesis]:
        """One 30 ms frame through the segmenter and, inside an utterance, the decoder."""
        event, audio = self._segmenter.push(frame)
        out: list[Hypothesis] = []
        if event == "start":
            self._decoder.start_utt()
            self._in_utterance = True
            self._last_partial = ""
        if audio:
            self._decoder.process_raw(audio, False, False)
            partial = self._partial()
            if partial is not None:
                out.append(partial)
        if event == "end":
            out.append(self._end_utterance())
        return out

    def _partial(self) -> Hypothesis | None:
        """The decoder's best path so far, if it has any words."""
        hyp = self._decoder.hyp()
        text = clean_text(hyp.hypstr.split()) if hyp is not None else ""
        if not text:
            return None
        self._last_partial = text
        return Hypothesis(text, final=False, end_s=self.fed_s)

    def _end_utterance(self) -> Hypothesis:
        """Close the utterance and read its best complete path."""
        self._decoder.end_utt()
        self._in_utterance = False
        segments = self._decoder.seg()
        words = [s.word for s in segments] if segments is not None else []
        text = clean_text(words)
        if not words and self._last_partial:
            _LOGGER.debug("No complete grammar path; final falls back to the last partial %r", self._last_partial)
            text = self._last_partial
        self._last_partial = ""
        return Hypothesis(text, final=True, end_s=self.fed_s)


def clean_text(words: Iterable[str]) -> str:
    """Engine words as hypothesis text: no silences or alternate-pronunciation marks, garbage runs as one [unk]."""
    out: list[str] = []
    for raw in words:
        word = raw.split("(", 1)[0]
        if word in _SILENT or not word:
            continue
        if word.startswith(_GARBAGE_PREFIX) or word == "[SPEECH]":
            if not out or out[-1] != UNKNOWN:
                out.append(UNKNOWN)
            continue
        out.append(word.lower())
    return " ".join(out)


def _make_decoder(settings: PocketSphinxSettings, words: set[str]) -> Any:
    """A decoder on the bundled en-us model, knowing only some of its dictionary's words, with live cepstral mean
    normalisation (carried across utterances)."""
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise RecognizerError(f"pocketsphinx is not installed ({exc}); install it with pip") from None
    try:
        with tempfile.TemporaryDirectory(prefix="voicecoach-") as folder:
            dictionary = Path(folder) / "grammar.dict"
            found = write_dictionary(dictionary, words)
            _LOGGER.debug("Dictionary: %d of %d words found, %d pronunciations", len(found), len(words), found.total())
            return Decoder(
                lm=None,
                dict=str(dictionary),
                loglevel="FATAL",
                samprate=_RATE,
                cmn="live",
                wip=settings.word_insertion_penalty,
                beam=settings.beam,
                wbeam=settings.word_beam,
                pbeam=settings.phone_beam,
            )
    except (RuntimeError, ValueError, OSError) as exc:
        raise RecognizerError(f"pocketsphinx could not load its English model: {exc}") from None


def write_dictionary(path: Path, words: Iterable[str]) -> Counter[str]:
    """Copy the bundled dictionary's entries for some words (alternates too) to a file; return pronunciations found
    per word."""
    from pocketsphinx import get_model_path

    wanted = set(words)
    found: Counter[str] = Counter()
    with (
        open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8", errors="replace") as lines,
        path.open("w", encoding="utf-8") as out,
    ):
        for line in lines:
            word = line.split(" ", 1)[0].split("(", 1)[0]
            if word in wanted:
                out.write(line)
                found[word] += 1
    return found


def _activate_grammar(
    decoder: Any, vocabulary: Vocabulary, settings: PocketSphinxSettings, ranked: list[tuple[int, str]]
) -> list[str]:
    """Build the hub grammar from the vocabulary and make it the active search; return its words."""
    for word, phones in settings.extra_pronunciations:
        if decoder.lookup_word(word) is not None:
            decoder.add_word(f"{word}(9)", phones, update=True)
    phrases = [p for p in vocabulary.all_phrases() if _known(decoder, p.split(), "command phrase")]
    if not phrases:
        raise RecognizerError("no command phrase of the vocabulary is in the pocketsphinx dictionary")
    safety = _safety_phrases(vocabulary, phrases)
    groups = _groups(decoder, vocabulary, phrases, safety, settings, ranked)
    total = sum(weight for items, weight in groups if items)
    transitions: list[tuple[int, int, float, str]] = []
    next_state = 1
    for items, weight in groups:
        for item, share in items.items():
            prob = weight / total * share * (settings.safety_boost if item in safety else 1.0)
            next_state = _add_phrase(transitions, item.split(), prob, next_state)
    fsg = decoder.create_fsg(_GRAMMAR, 0, 0, transitions)
    decoder.add_fsg(_GRAMMAR, fsg)
    decoder.activate_search(_GRAMMAR)
    sizes = ", ".join(str(len(items)) for items, _ in groups)
    _LOGGER.debug("Grammar sizes (phrases, decoys, common words, garbage phones): %s", sizes)
    return [word for items, _ in groups[:3] for word in items]


def _groups(
    decoder: Any,
    vocabulary: Vocabulary,
    phrases: list[str],
    safety: set[str],
    settings: PocketSphinxSettings,
    ranked: list[tuple[int, str]],
) -> list[tuple[dict[str, float], float]]:
    """The grammar's alternatives as (item -> share of its group, group weight): commands, decoys, common, garbage."""
    decoys = _protect(decoder, _uniform(_usable_decoys(decoder, vocabulary, phrases)), safety, settings)
    common = _common_words(decoder, ranked, settings.common_words, {*phrases, *decoys})
    common = _protect(decoder, common, safety, settings)
    if settings.protect_safety:
        common = _drop_near_safety(decoder, common, safety)
    garbage = _add_garbage_words(decoder) if settings.garbage_weight > 0 else []
    return [
        (_uniform(phrases), settings.command_weight),
        (decoys, settings.decoy_weight),
        (common, settings.common_weight),
        (_uniform(garbage), settings.garbage_weight),
    ]


def _uniform(items: list[str]) -> dict[str, float]:
    """Equal shares summing to one."""
    return {item: 1.0 / len(items) for item in items}


def _renormalized(shares: dict[str, float], drop: set[str]) -> dict[str, float]:
    """The shares without some items, summing to one again."""
    kept = {w: p for w, p in shares.items() if w not in drop}
    total = sum(kept.values()) or 1.0
    return {w: p / total for w, p in kept.items()}


def _add_phrase(transitions: list[tuple[int, int, float, str]], words: list[str], prob: float, state: int) -> int:
    """Add a chain hub -> ... -> hub for one phrase; return the next free state number."""
    current = 0
    for i, word in enumerate(words):
        last = i == len(words) - 1
        target = 0 if last else state
        if not last:
            state += 1
        transitions.append((current, target, prob if i == 0 else 1.0, word))
        current = target
    return state


def _known(decoder: Any, words: list[str], what: str) -> bool:
    """True when every word has a pronunciation; log the ones that do not."""
    missing = [w for w in words if decoder.lookup_word(w) is None]
    if missing:
        _LOGGER.debug("Skipping %s %r: %s not in the dictionary", what, " ".join(words), ", ".join(missing))
    return not missing


def _usable_decoys(decoder: Any, vocabulary: Vocabulary, phrases: list[str]) -> list[str]:
    """Decoys in the dictionary that are not command phrases."""
    return [d for d in vocabulary.decoys if d not in phrases and _known(decoder, d.split(), "decoy")]


def _protect(
    decoder: Any, shares: dict[str, float], safety: set[str], settings: PocketSphinxSettings
) -> dict[str, float]:
    """Drop words that could steal a safety phrase: sounded inside it ('top' in 'stop') or starting with it."""
    if not settings.protect_safety:
        return shares
    sounds = [f" {_pronounce(decoder, p)} " for p in safety]
    dropped = set()
    for word in shares:
        sound = f" {_pronounce(decoder, word)} "
        if any(sound in s or sound.startswith(s) for s in sounds):
            dropped.add(word)
    if dropped:
        _LOGGER.debug("Dropped to protect safety phrases: %s", ", ".join(sorted(dropped)))
    return _renormalized(shares, dropped)


def _drop_near_safety(decoder: Any, words: dict[str, float], safety: set[str]) -> dict[str, float]:
    """Drop common words one broad-class phone edit from a safety word of 3+ phones ('talk' near 'stop')."""
    targets = [t for phrase in safety for t in (_broad(decoder, w) for w in phrase.split()) if len(t) >= _MIN_PHONES]
    sounds = {w: _broad(decoder, w) for w in words}
    near = {
        w
        for w, sound in sounds.items()
        if len(sound) >= _MIN_PHONES and any(_edit_distance(sound, t) <= 1 for t in targets)
    }
    if near:
        _LOGGER.debug("Common words dropped as near a safety word: %s", ", ".join(sorted(near)))
    return _renormalized(words, near)


def _broad(decoder: Any, word: str) -> tuple[str, ...]:
    """A word's phones as broad classes (vowel, stop, fricative ...), the level at which a weak model confuses."""
    return tuple(_BROAD_CLASS.get(phone, "V") for phone in str(decoder.lookup_word(word)).split())


def _edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance between two sequences."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _common_words(decoder: Any, ranked: list[tuple[int, str]], count: int, exclude: set[str]) -> dict[str, float]:
    """The most probable ranked words (with shares of their unigram mass), less exclusions."""
    if count <= 0:
        return {}
    excluded = {w for phrase in exclude for w in phrase.split()}
    scored = [(score, word) for score, word in ranked if word not in excluded]
    top = [(10 ** (score * _LOG10_BASE), word) for score, word in scored[:count] if decoder.lookup_word(word)]
    total = sum(p for p, _ in top) or 1.0
    return {word: p / total for p, word in top}


def _ranked_common_words(count: int, vocabulary_words: set[str]) -> list[tuple[int, str]]:
    """The best-ranked (score, word) pairs, enough to leave count of them after any vocabulary word is excluded."""
    if count <= 0:
        return []
    ranked = stored_common_words()
    outside = 0
    for i, (_, word) in enumerate(ranked):
        outside += word not in vocabulary_words
        if outside == count:
            return ranked[: i + 1]
    _LOGGER.info("%d common words asked for, more than the stored list has: ranking the language model", count)
    return rank_common_words(None)


def stored_common_words() -> list[tuple[int, str]]:
    """The package's list of the dictionary's words ranked by the language model, best first."""
    text = resources.files("voicecoach.listening").joinpath(COMMON_WORDS_FILE).read_text("utf-8")
    pairs = (line.split() for line in text.splitlines() if line and not line.startswith("#"))
    return [(int(score), word) for word, score in pairs]


def rank_common_words(limit: int | None) -> list[tuple[int, str]]:
    """The bundled dictionary's words ranked by the bundled language model's unigram scores (log base 1.0001), best
    first. Reads the whole model: about 50 MB for a moment."""
    from pocketsphinx import NGramModel, get_model_path

    model = NGramModel.readfile(get_model_path("en-us/en-us.lm.bin"))
    scored = [(model.prob([word]), word) for word in _dictionary_words() if word.isalpha()]
    scored.sort(reverse=True)
    return scored[:limit]


def write_common_words(path: Path, limit: int = COMMON_WORDS_STORED) -> None:
    """Rank the language model's words and write the list stored_common_words() reads."""
    lines = [f"{word} {score}" for score, word in rank_common_words(limit)]
    header = "# pocketsphinx en-us: dictionary words by unigram score (log base 1.0001), from write_common_words()"
    path.write_text("\n".join([header, *lines, ""]), encoding="utf-8")


def _dictionary_words() -> Iterable[str]:
    """Every headword of the bundled pronunciation dictionary (no alternates)."""
    from pocketsphinx import get_model_path

    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8", errors="replace") as lines:
        for line in lines:
            word = line.split(" ", 1)[0]
            if "(" not in word:
                yield word


def _safety_phrases(vocabulary: Vocabulary, phrases: list[str]) -> set[str]:
    """The usable phrases of the safety commands."""
    return {p for command, items in vocabulary.phrases.items() if command.is_safety for p in items if p in phrases}


def _pronounce(decoder: Any, phrase: str) -> str:
    """Phones of a phrase, space-separated."""
    return " ".join(str(decoder.lookup_word(w)) for w in phrase.split())


def _add_garbage_words(decoder: Any) -> list[str]:
    """One dictionary word per phone, for the garbage loop."""
    words = []
    for phone in _PHONES:
        word = f"{_GARBAGE_PREFIX}{phone.lower()}"
        decoder.add_word(word, phone, update=False)
        words.append(word)
    decoder.add_word(f"{_GARBAGE_PREFIX}sil", "SIL", update=True)
    return words


class _Segmenter:
    """Cuts the stream into utterances with PocketSphinx's frame VAD, passing audio on without delay."""

    def __init__(self, settings: PocketSphinxSettings) -> None:
        from pocketsphinx import Vad

        self._vad = Vad(settings.vad_mode, _RATE, 0.03)
        self.frame_bytes = int(self._vad.frame_bytes)
        frame_s = self.frame_bytes / 2 / _RATE
        self._settings = settings
        self._recent: deque[bool] = deque(maxlen=settings.start_window)
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(settings.preroll_s / frame_s)))
        self._end_frames = max(1, round(settings.end_silence_s / frame_s))
        self._max_frames = max(1, round(settings.max_utterance_s / frame_s))
        self._silent_run = 0
        self._length = 0
        self.in_utterance = False

    def clear(self) -> None:
        """Forget everything (between files, or on reset)."""
        self._recent.clear()
        self._preroll.clear()
        self._silent_run = self._length = 0
        self.in_utterance = False

    def push(self, frame: bytes) -> tuple[str, bytes]:
        """One frame in; ('start' | 'end' | '', audio to decode now)."""
        speech = bool(self._vad.is_speech(frame))
        if not self.in_utterance:
            return self._idle(frame, speech)
        self._length += 1
        self._silent_run = 0 if speech else self._silent_run + 1
        if self._silent_run >= self._end_frames or self._length >= self._max_frames:
            self.clear()
            return "end", frame
        return "", frame

    def _idle(self, frame: bytes, speech: bool) -> tuple[str, bytes]:
        """Outside an utterance: keep pre-roll, open one when enough recent frames are speech."""
        self._recent.append(speech)
        self._preroll.append(frame)
        if sum(self._recent) < self._settings.start_frames:
            return "", b""
        audio = b"".join(self._preroll)
        self._recent.clear()
        self._preroll.clear()
        self._silent_run = 0
        self._length = 1
        self.in_utterance = True
        return "start", audio
