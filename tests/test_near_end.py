"""The near-end detector: the person's voice over the narrator's residue, and never the residue alone."""

from __future__ import annotations

import numpy as np

from voicecoach.echo.near_end import NearEndDetector, NearEndSettings

SPEECH = 3e6
"""Mean square of speech at about -26 dBFS, int16 units."""
NOISE = 3e2
"""A quiet room's floor, 40 dB under the speech."""


def narration(rng: np.random.Generator, blocks: int) -> np.ndarray:
    """Reference power per 20 ms block: speech-like bursts and pauses."""
    return np.where(rng.random(blocks) < 0.8, SPEECH * rng.uniform(0.1, 2.0, blocks), 0.0)


def test_the_residue_alone_is_never_the_person() -> None:
    rng = np.random.default_rng(1)
    detector = NearEndDetector()
    reference = narration(rng, 3000)  # a minute of narration, the canceller leaving 20 dB of residue
    flags = [detector.update(NOISE + 0.01 * r * rng.uniform(0.5, 1.5), r) for r in reference]
    assert not any(flags)
    assert -24.0 < detector.residue_db < -15.0  # a minimum tracker sits near the quieter readings


def test_the_person_over_the_narration_is_seen_within_three_blocks() -> None:
    rng = np.random.default_rng(2)
    detector = NearEndDetector(NearEndSettings(margin_db=10.0, blocks=3))  # the person 20 dB over the residue
    for r in narration(rng, 500):
        detector.update(NOISE + 0.01 * r, r)
    flags = [detector.update(NOISE + 0.01 * SPEECH + SPEECH, SPEECH) for _ in range(25)]  # 0 dB echo: the word
    assert flags[:2] == [False, False] and all(flags[2:])
    assert detector.residue_db < -18.0, "half a second of the person did not teach it that the residue is loud"


def test_before_the_canceller_converges_only_sound_well_above_the_raw_echo_counts() -> None:
    detector = NearEndDetector()
    assert not any(detector.update(SPEECH, SPEECH) for _ in range(10))
    assert detector.residue_db > -1.0


def test_the_residue_is_learnt_within_seconds_and_a_louder_echo_path_after_a_while() -> None:
    detector = NearEndDetector()
    for _ in range(250):  # 5 s of a canceller leaving 30 dB of residue
        detector.update(0.001 * SPEECH, SPEECH)
    assert detector.residue_db < -28.0
    flags = [detector.update(0.1 * SPEECH, SPEECH) for _ in range(150)]  # 3 s of 20 dB more residue: a new path
    assert all(flags[6:50]), "taken for the person at first (a person's word must not teach it)"
    assert not any(flags[100:]) and detector.residue_db > -12.0, "then learnt within about two seconds"
    detector.reset()
    assert detector.residue_db == 0.0
