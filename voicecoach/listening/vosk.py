"""The Vosk engine, restricted to a grammar of command phrases, decoys and the model's unknown token."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicecoach.core.commands import Vocabulary
from voicecoach.listening.recognizer import Hypothesis, RecognizerError

_LOGGER = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "vosk-model-small-en-us-0.15"
_MODELS_ENV = "VOICECOACH_MODELS"
_UNKNOWN_TOKENS = ("[unk]", "<UNK>", "<unk>")
_UNK_TEXT = "[unk]"
"""The one spelling of the unknown-word filler in hypotheses, whatever the model calls it."""
_CHECKOUT = Path(__file__).resolve().parent.parent
"""The source tree, when running from a developer checkout (it then has pyproject.toml and models/)."""
_MODEL_MARKERS = ("am/final.mdl", "conf/model.conf")


@dataclass(frozen=True)
class Grammar:
    """What the recognizer may hear, after checking every word against the model."""

    phrases: tuple[str, ...]
    """Command phrases and decoys the model knows, then the unknown token, as handed to Vosk."""
    dropped_phrases: tuple[str, ...] = ()
    """Command phrases left out because a word of theirs is not in the model: they can never be heard."""
    dropped_decoys: tuple[str, ...] = ()
    """Decoys left out for the same reason."""
    missing_words: tuple[str, ...] = ()
    """Every word of the vocabulary that the model does not have."""
    unknown_token: str | None = None
    """The model's filler word ('[unk]' or '<UNK>'), if it has one."""

    def to_json(self) -> str:
        """The grammar as the JSON string Vosk takes; never an empty list (that crashes the process)."""
        if not self.phrases:
            raise RecognizerError("refusing an empty Vosk grammar (it would crash the process)")
        return json.dumps(list(self.phrases), ensure_ascii=False)


def build_grammar(vocabulary: Vocabulary, has_word: Callable[[str], bool]) -> Grammar:
    """Keep the phrases and decoys whose every word the model has; fail if no command phrase is left."""
    missing = tuple(w for w in vocabulary.words() if not has_word(w))
    gone = set(missing)

    def known(phrase: str) -> bool:
        return not gone.intersection(phrase.split())

    phrases = [p for p in vocabulary.all_phrases() if known(p)]
    if not phrases:
        raise RecognizerError(
            f"none of the command phrases of vocabulary {vocabulary.language!r} are words this model knows "
            "(wrong model for the language?)"
        )
    decoys = [d for d in vocabulary.decoys if known(d) and d not in phrases]
    unknown = next((t for t in _UNKNOWN_TOKENS if has_word(t)), None)
    grammar = Grammar(
        phrases=tuple([*phrases, *decoys, *([unknown] if unknown else [])]),
        dropped_phrases=tuple(p for p in vocabulary.all_phrases() if not known(p)),
        dropped_decoys=tuple(d for d in vocabulary.decoys if not known(d)),
        missing_words=missing,
        unknown_token=unknown,
    )
    _log_grammar(grammar)
    return grammar


def _log_grammar(grammar: Grammar) -> None:
    """Say which phrases the model cannot hear (Vosk itself drops them silently)."""
    if grammar.dropped_phrases:
        words = {w for p in grammar.dropped_phrases for w in p.split()}.intersection(grammar.missing_words)
        _LOGGER.warning(
            "Vosk model lacks the word(s) %s: command phrase(s) %s can never be heard",
            ", ".join(sorted(words)),
            ", ".join(repr(p) for p in grammar.dropped_phrases),
        )
    if grammar.dropped_decoys:
        _LOGGER.info("Vosk model lacks decoy(s) %s: left out", ", ".join(grammar.dropped_decoys))
    if grammar.unknown_token is None:
        _LOGGER.warning("Vosk model has no unknown-word token: other speech will land on grammar words")


def load_vosk_model(model_dir: str | os.PathLike[str]) -> Any:
    """Load a Vosk model folder once (slow: seconds and hundreds of MB for big models)."""
    path = Path(model_dir)
    if not (path / "am" / "final.mdl").is_file():
        raise RecognizerError(f"no Vosk model at {path} (expected am/final.mdl; try: voicecoach model download)")
    vosk = _import_vosk()
    try:
        return vosk.Model(str(path))
    except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
        raise RecognizerError(f"could not load the Vosk model at {path}: {exc}") from None


def _import_vosk() -> Any:
    """Import vosk lazily and silence its Kaldi logging."""
    try:
        import vosk
    except ImportError:
        raise RecognizerError("the vosk package is not installed (pip install vosk)") from None
    vosk.SetLogLevel(-2)
    return vosk


def model_has_word(model: Any, word: str) -> bool:
    """True if the word is in the model's vocabulary (vosk 0.3.45 calls it vosk_model_find_word)."""
    find = getattr(model, "find_word", None) or model.vosk_model_find_word
    return int(find(word)) >= 0


class VoskRecognizer:
    """Grammar-restricted Vosk: partial hypotheses as they change, final ones at each endpoint."""

    name = "vosk"

    def __init__(self, model: str | os.PathLike[str] | Any, vocabulary: Vocabulary, sample_rate: int = 16000) -> None:
        """Use a loaded vosk.Model (shareable) or load one from its folder."""
        if sample_rate <= 0:
            raise RecognizerError(f"sample rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self._model = load_vosk_model(model) if isinstance(model, str | os.PathLike) else model
        self.grammar = build_grammar(vocabulary, lambda word: model_has_word(self._model, word))
        self._vosk = _import_vosk()
        self._engine = self._vosk.KaldiRecognizer(self._model, float(sample_rate), self.grammar.to_json())
        self._engine.SetWords(True)
        self._samples = 0
        self._partial = ""

    @property
    def dropped_phrases(self) -> tuple[str, ...]:
        """Command phrases this model cannot hear (a word is missing from it)."""
        return self.grammar.dropped_phrases

    @property
    def audio_s(self) -> float:
        """Seconds of audio fed so far."""
        return self._samples / self.sample_rate

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        """Feed little-endian int16 mono PCM; return a changed partial or an endpointed final."""
        if len(pcm) % 2:
            raise ValueError(f"int16 PCM must have an even number of bytes, got {len(pcm)}")
        self._samples += len(pcm) // 2
        if self._engine.AcceptWaveform(pcm):
            return self._final(self._engine.Result())
        return self._changed_partial()

    def flush(self) -> list[Hypothesis]:
        """End of input: the final hypothesis for audio still pending."""
        return self._final(self._engine.FinalResult())

    def reset(self) -> None:
        """Forget the current utterance."""
        self._engine.Reset()
        self._partial = ""

    def _changed_partial(self) -> list[Hypothesis]:
        """A partial hypothesis if its text differs from the last one (an empty one retracts it)."""
        text = self._clean(json.loads(self._engine.PartialResult()).get("partial", ""))
        if text == self._partial:
            return []
        self._partial = text
        return [Hypothesis(text, final=False, end_s=self.audio_s)]

    def _final(self, result_json: str) -> list[Hypothesis]:
        """A final hypothesis, unless the utterance was empty and no partial announced it."""
        result = json.loads(result_json)
        text = self._clean(result.get("text", ""))
        had_partial, self._partial = bool(self._partial), ""
        if not text and not had_partial:
            return []
        confs = [float(w.get("conf", 1.0)) for w in result.get("result", [])]
        return [Hypothesis(text, final=True, end_s=self.audio_s, confidence=min(confs, default=1.0))]

    def _clean(self, text: str) -> str:
        """Lowercase words with the model's unknown token spelled '[unk]'."""
        unk = self.grammar.unknown_token
        return " ".join(_UNK_TEXT if w == unk else w.lower() for w in text.split())


def model_search_dirs() -> list[Path]:
    """Where models are looked for, in order: $VOICECOACH_MODELS, or checkout models/ then the data dir."""
    # An explicit $VOICECOACH_MODELS is the only place searched. Otherwise a developer checkout (this package
    # next to pyproject.toml and models/) uses its models/ folder first, then the user's data folder,
    # $XDG_DATA_HOME/voicecoach/models (~/.local/share/voicecoach/models), where an installed copy keeps them.
    explicit = os.environ.get(_MODELS_ENV, "").strip()
    if explicit:
        return [Path(explicit).expanduser()]
    dirs = []
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "models").is_dir():
        dirs.append(_CHECKOUT / "models")
    data_home = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    dirs.append(Path(data_home).expanduser() / "voicecoach" / "models")
    return dirs


def default_model_dir() -> Path:
    """Where models go: the first of model_search_dirs()."""
    return model_search_dirs()[0]


def is_model_dir(path: Path) -> bool:
    """True if the folder has the files every Vosk model has."""
    return all((path / marker).is_file() for marker in _MODEL_MARKERS)


def find_model(name: str = DEFAULT_MODEL_NAME) -> Path | None:
    """The folder of an installed model by name, or None."""
    for folder in model_search_dirs():
        candidate = folder / name
        if is_model_dir(candidate):
            return candidate
    return None
