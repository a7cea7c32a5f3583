"""Choosing and opening the recognizer engine the settings ask for."""

from __future__ import annotations

import logging

from voicecoach.core.commands import Vocabulary
from voicecoach.listening.recognizer import Recognizer, RecognizerError
from voicecoach.settings import RecognizerSettings

_LOGGER = logging.getLogger(__name__)


def make_recognizer(settings: RecognizerSettings, vocabulary: Vocabulary) -> Recognizer:
    """The engine the settings ask for; auto is the built-in keyword spotter for English (no download), else Vosk."""
    engine = settings.engine
    model = settings.model_dir
    if engine in ("auto", "spotter") and settings.language == "en":
        from voicecoach.listening.spotter_engine import SpotterRecognizer

        try:
            return SpotterRecognizer(vocabulary, head=model if engine == "spotter" else None,
                                     safety_head=settings.safety_head if engine == "spotter" else None)
        except RecognizerError as exc:
            if engine == "spotter":
                raise
            _LOGGER.warning("%s; listening with %s instead", exc, "vosk" if model else "pocketsphinx")
    if engine == "auto":
        from voicecoach.listening.vosk import find_model

        model = model or (find_model() if settings.language == "en" else None)
        engine = "vosk" if model is not None else "pocketsphinx"
        _LOGGER.info("engine auto: %s", engine)
    if engine == "spotter":
        raise RecognizerError(f"the spotter is trained for English; for {settings.language!r} use --engine vosk")
    if engine == "vosk" and model is None:
        from voicecoach.listening.vosk import find_model

        model = find_model() if settings.language == "en" else None
    if engine == "vosk":
        if model is None:
            raise RecognizerError("no Vosk model is installed: run `voicecoach model download`, "
                                  "or use --engine pocketsphinx")  # fmt: skip
        from voicecoach.listening.vosk import VoskRecognizer

        return VoskRecognizer(model, vocabulary)
    if settings.language != "en":
        raise RecognizerError(f"pocketsphinx has only an English model; for {settings.language!r} "
                              "use --engine vosk --model")  # fmt: skip
    from voicecoach.listening.pocketsphinx import PocketSphinxRecognizer

    return PocketSphinxRecognizer(vocabulary)
