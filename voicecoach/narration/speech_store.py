"""Synthesized speech kept on disk, so that a simulation replays the very same narration every run.

eSpeak-NG through pyttsx3 does not give the same samples twice for the same text (lengths vary by a few ms from
call to call), so the closed-loop room, which promises the same events for the same seed, synthesizes each text
once and keeps it here. Keyed by a hash of the text and the voice settings; a damaged entry is synthesized again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from voicecoach.narration.synthesis import Speech, Synthesizer, WordTiming, speech_for

_LOGGER = logging.getLogger(__name__)
_CACHE_ENV = "VOICECOACH_SPEECH_CACHE"
_XDG_CACHE_ENV = "XDG_CACHE_HOME"


def default_store_dir() -> Path:
    """$VOICECOACH_SPEECH_CACHE, else $XDG_CACHE_HOME/voicecoach/speech, else ~/.cache/voicecoach/speech."""
    override = os.environ.get(_CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get(_XDG_CACHE_ENV, "")
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".cache"
    return root / "voicecoach" / "speech"


class StoredSynthesizer:
    """A synthesizer whose every text is synthesized once and then read back from disk."""

    def __init__(self, inner: Synthesizer, identity: str, folder: Path | None = None) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self._identity = identity
        self._folder = folder or default_store_dir()

    def synthesize(self, text: str) -> np.ndarray:
        """The stored speech for this text."""
        return self.synthesize_words(text).samples

    def synthesize_words(self, text: str) -> Speech:
        """The stored speech with its word timings (synthesized and stored on first use)."""
        path = self._path(text)
        stored = self._load(path)
        if stored is not None:
            return stored
        speech = speech_for(self.inner, text)
        self._save(path, speech)
        # The first writer's speech is the text's speech, for this run and every later one: another process of
        # the same evaluation may have stored its own synthesis of the text (never the same samples) meanwhile.
        return self._load(path) or speech

    @staticmethod
    def _load(path: Path) -> Speech | None:
        try:
            with np.load(path) as stored:
                words = tuple(WordTiming(*w) for w in json.loads(str(stored["words"])))
                return Speech(stored["samples"].astype(np.int16), words)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self._identity}\n{self.sample_rate}\n{text}".encode()).hexdigest()[:32]
        return self._folder / f"{key}.npz"

    def _save(self, path: Path, speech: Speech) -> None:
        """Write atomically, unless the text is stored already; a store that cannot be written only costs speed."""
        words = json.dumps([(w.text, w.start_s, w.end_s) for w in speech.words])
        buffer = io.BytesIO()
        np.savez(buffer, samples=speech.samples, words=np.array(words))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A name of this writer's own: processes of one evaluation store the same text at once.
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".tmp")
            partial = Path(name)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(buffer.getvalue())
                try:
                    os.link(partial, path)  # only if no other writer came first
                except FileExistsError:
                    pass
                except OSError:  # a file system without hard links
                    if not path.exists():
                        partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
        except OSError as exc:
            _LOGGER.warning("speech store %s not writable: %s", path.parent, exc)
