"""Where the training and validation clips come from: real people, the vocabulary, confusable words, the narration.

Real people are split by speaker (Speech Commands' file-name prefix); corpora without speaker ids (Picovoice wake
words and sentences) by file. Speech synthesis voices are split by voice: four are never trained on.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voicecoach.listening.spotter.model import NONE_LABEL, vocabulary_commands

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""The team's recordings (read only, never copied into the repo)."""
VALIDATION_SHARE = 0.3
"""Share of speakers (or files, where there are no speaker ids) held out for validation."""

HUMAN_COMMAND_WORDS = {"stop": "stop", "go": "resume"}
"""Speech Commands words that are command phrases, and their command."""

HOMOPHONES = ("two much", "big in")
"""Confusables that sound the same as a command phrase ("too much", "begin") in most voices: wrong negatives. They
stay in CONFUSABLES, so that every other job keeps its seed and its cached render; with train_spotter.py
--drop-homophones their clips are set aside (plan.set_aside) from training and from every figure."""

IN_CONTEXT = {
    "stop": ("please stop", "okay stop", "no stop", "oh stop", "just stop", "no no stop", "stop it"),
    "too_much": ("that's too much", "way too much", "ouch ouch", "no that hurts", "oh that hurts"),
}
"""Stop and too much inside what a person says around them (train_spotter.py --in-context): positives of their
command in the training voices, so that a word before the command does not veto it (the head had learnt that only a
phrase starting from silence is a command: "please stop" scored 0.02 to 0.35 in four of five Flite voices)."""

CONTAINS_COMMAND = ("non-stop", "stopwatch")
"""Confusables that hold the command word itself ("non-stop" ends as "please stop" does): with --in-context they are
set aside as the homophones are, rather than taught as negatives against the phrases above."""

CONFUSABLES = (
    "top", "shop", "step", "spot", "stomp", "drop", "stuff", "non-stop", "stopwatch", "stock", "stuck", "stab",
    "much", "touch", "two much", "to match", "too", "tumor", "mulch", "such", "clutch", "hutch", "couch", "pouch",
    "next door", "text", "nest", "necks", "vex", "paws", "pass", "pose", "cause", "boss", "purse", "pastry",
    "no", "goal", "ghost", "gold", "up", "down", "left", "right", "yes", "off", "on",
    "weight", "white", "way", "gate", "wade", "hold", "old", "holder",
    "zoom", "assume", "consume", "continent", "carry", "keep", "going", "good", "get",
    "bag", "black", "pack", "track", "backpack", "lower back", "on your back", "previously", "review",
    "ski", "kit", "sip", "skipper", "equipment",
    "peat", "repeal", "gain", "agree", "a game",
    "long", "how", "wrong", "song", "along", "belong", "how so", "time", "timeless",
    "star", "smart", "part", "art", "start line", "stark", "startle", "begun", "began", "beg", "big in",
    "workout", "work", "end", "and", "friend", "finish", "quit", "quick", "quite", "quiet",
    "hearts", "far", "tour", "thought", "tar", "out",
    "okay", "one", "three", "four", "five", "six", "seven", "eight", "nine", "zero", "ten", "hello",
    "breathe slowly", "relax your shoulders", "lie on your back", "well done", "rest now",
)  # fmt: skip
"""Words and phrases that sound like command phrases (synthesized as negatives)."""

TALK = (
    "The stars were out over the hills when we drove home.",
    "She is a smart kid and her art is on the fridge.",
    "That part of the film was quite sad.",
    "It is quiet in the house once the dog is asleep.",
    "Can you grab the top shelf jar for me?",
    "I will pop into the shop for some milk.",
    "Mind the step by the front door.",
    "There is a spot of paint on your sleeve.",
    "Drop the keys in the bowl by the door.",
    "We have so much stuff in the garage.",
    "The stock market was flat all week.",
    "He got stuck in traffic on the bridge.",
    "Such a lovely morning for a walk.",
    "Do not touch the oven, it is still hot.",
    "Send me a text when the train gets in.",
    "The cat has muddy paws from the garden.",
    "Please pass the salt and the pepper.",
    "The boss wants the report by Friday.",
    "Pack a bag with a towel and a bottle of water.",
    "The black car is parked on the track.",
    "We went to the ski slope in March.",
    "Put the first aid kit in the top drawer.",
    "Take a sip of tea while it is warm.",
    "That song was stuck in my head all day.",
    "Something went wrong with the printer.",
    "It was a long day at the office.",
    "Walk along the river to the old mill.",
    "I agree, the gate needs a coat of paint.",
    "The weight of the box surprised me.",
    "The white wall looks bright in the sun.",
    "Zoom in on the map to find the bakery.",
    "I assume the bus is running late.",
    "That was a good goal in the second half.",
    "A gold ring was found in the sand.",
    "The kids dressed up as a ghost and a star.",
    "It is quite cold, so bring a scarf.",
    "The market starts to get busy around noon.",
    "Which part of town do you live in?",
    "Our friend is coming over for dinner.",
    "I need to work out the cost of the trip.",
    "The end of the film was a surprise.",
    "Could you pass me that remote?",
    "My neck is a bit stiff from the drive.",
    "The couch is softer than it looks.",
    "Write the number on a piece of paper.",
    "That is a clever trick with the cards.",
    "We watched a film about a shooting star.",
    "The arts centre has a new show in the spring.",
    "The smart phone fell off the table.",
    "It sounds quite nice, let us book it.",
)
"""Ordinary things other people say in a living room, with words that sound like command words (and none of
the command phrases): negatives in other voices than the narrator's."""

_ORDINARY_TEXTS = (Path("/usr/share/common-licenses/GPL-3"), Path("/usr/share/common-licenses/Apache-2.0"))
"""Ordinary English prose for the narrator to read, where the system has it."""


@dataclass(frozen=True)
class HumanClip:
    """One recording of a real person."""

    path: Path
    word: str
    """The folder's word (Speech Commands), "wake:<word>" or "sentence"."""
    speaker: str
    """Speaker id, or the file's own id where the corpus has none."""
    corpus: str

    @property
    def label(self) -> str:
        """The command this clip is, or "none"."""
        return HUMAN_COMMAND_WORDS.get(self.word, NONE_LABEL)


def held_out(key: str, seed: int, share: float = VALIDATION_SHARE) -> bool:
    """Whether a speaker (or file) id is in the validation split: a seeded hash, the same for every folder."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def human_clips(data_dir: Path) -> list[HumanClip]:
    """Every real-person clip of the data folder, sorted."""
    found: list[HumanClip] = []
    for corpus in ("speech_commands", "speech_commands_v1", "speech_commands_v2"):
        for path in sorted((data_dir / corpus).glob("*/*.wav")):
            speaker = path.name.split("_nohash_")[0]
            found.append(HumanClip(path, path.parent.name, speaker, corpus))
    for path in sorted((data_dir / "wake_words").glob("*/*.wav")):
        found.append(HumanClip(path, f"wake:{path.parent.name}", f"file:{path.name}", "wake_words"))
    for path in sorted((data_dir / "sentences").glob("*.wav")):
        found.append(HumanClip(path, "sentence", f"file:{path.name}", "sentences"))
    return found


def noise_files(data_dir: Path) -> list[Path]:
    """Background noise recordings."""
    return sorted((data_dir / "noise").glob("*.wav"))


def rir_files(data_dir: Path) -> list[Path]:
    """Measured room impulse responses."""
    return sorted((data_dir / "rir").glob("*.wav"))


def command_phrases() -> dict[str, tuple[str, ...]]:
    """Command name to its phrases, from vocab/en.toml: every phrase is a positive for its command."""
    return vocabulary_commands()


def routine_texts(routine: str = "lower-back") -> list[str]:
    """Everything the narrator says over a routine, in order (the product's own plan, else the YAML's strings)."""
    try:
        from voicecoach.core.plan import build_plan
        from voicecoach.files.library import find_routine
        from voicecoach.files.routine_file import load_routine_file

        texts = []
        for segment in build_plan(load_routine_file(find_routine(routine))):
            texts += [t for t in (segment.text, getattr(segment, "end_text", "")) if t]
        return texts + ["Halfway.", "Five.", "Four.", "Three.", "Two.", "One."]
    except ImportError:
        from importlib import resources

        import yaml

        data = yaml.safe_load(resources.files("voicecoach.routines").joinpath(f"{routine}.yaml").read_text())
        return [s for s in _strings(data) if " " in s]


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


_TEMPLATE_PARTS = {
    "body": ["knees", "hips", "shoulders", "lower back", "spine", "neck", "arms", "feet", "hands", "chest", "head"],
    "move": ["lift", "lower", "turn", "press", "slide", "stretch", "bend", "rotate", "tilt", "relax", "roll"],
    "time": ["5", "10", "15", "20", "25", "30", "40", "45", "60"],
    "name": ["cat cow", "child's pose", "bridge", "pelvic tilt", "knee hug", "cobra", "wall sit", "bird dog",
             "side plank", "hamstring stretch", "hip flexor stretch", "torso twist", "press-up"],
}  # fmt: skip
_TEMPLATES = (
    "Say stop or too much at any moment and I will fall silent.",
    "If it hurts, say stop, or say too much, and I will stop talking.",
    "You can say pause, next, back, skip, repeat or how long at any time.",
    "Say resume or continue when you are ready to go on.",
    "Rest for {time} seconds. Coming up: {name}.",
    "Hold for {time} seconds. Keep your {body} relaxed.",
    "Exercise {time} of {time}: {name}. You will need a mat.",
    "Slowly {move} your {body}, and stop if anything feels sharp.",
    "Next, lie on your back and {move} your {body}.",
    "Go back to the start position and {move} your {body} again.",
    "Do not push too much. Only go as far as feels comfortable.",
    "Keep going, you are doing well. Breathe out as you {move}.",
    "Start with your {body} flat on the floor, then {move} gently.",
    "Repeat on the other side. Take your time.",
    "Skip this one if your {body} feels tight today.",
    "How long you hold is up to you. Begin when you are ready.",
    "Let's start the {name}. Round {time} of {time}.",
    "That is too far for now. Ease off and {move} your {body} back.",
    "Wait for the count, then {move} your {body} and hold on for {time} seconds.",
    "End the workout slowly. Finish with a few deep breaths.",
    "Left side. Hold for {time} seconds. Right side next.",
    "Stop the twist halfway, then carry on to the end.",
    "Time left: {time} seconds. Three. Two. One.",
)
"""Narration-like lines, most with command words inside ordinary sentences (the narrator's voice: negatives)."""


def templated_narration(count: int, seed: int) -> list[str]:
    """Seeded narration-like sentences filled in from the templates."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        template = rng.choice(_TEMPLATES)
        lines.append(re.sub(r"\{(\w+)\}", lambda m: rng.choice(_TEMPLATE_PARTS[m.group(1)]), template))
    return lines


def without_commands(texts: list[str]) -> list[str]:
    """The texts in which no command phrase appears as whole words (the product's own phrase matcher)."""
    from voicecoach.core.commands import load_vocabulary

    vocabulary = load_vocabulary("en")
    return [t for t in texts if not vocabulary.find_all(t)]


def ordinary_sentences(limit_words: int) -> list[str]:
    """Plain prose sentences (the system's licence texts), up to about this many words."""
    sentences: list[str] = []
    words = 0
    for path in _ORDINARY_TEXTS:
        if not path.is_file():
            continue
        text = re.sub(r"\s+", " ", path.read_text(errors="ignore"))
        for sentence in re.split(r"(?<=[.;:])\s+", text):
            sentence = re.sub(r"[^A-Za-z0-9 ,.'-]", " ", sentence).strip()
            if 4 <= len(sentence.split()) <= 40:
                sentences.append(sentence)
                words += len(sentence.split())
                if words >= limit_words:
                    return sentences
    return sentences
