"""The clip guard: the narrator's voice clipping the microphone turns it down, a step at a time, and only then."""

from __future__ import annotations

import numpy as np

from voicecoach.echo.clipping import CLIPPED, ClipGuard, ClipGuardSettings

BLOCK_S = 0.02


def _block(clipped: int) -> np.ndarray:
    """A 20 ms block of speech-level samples with this many at full scale."""
    block = np.full(320, 3000, np.int16)
    block[:clipped] = 32767
    block[clipped : 2 * clipped] = -32768  # both signs count
    return block


def _feed(guard: ClipGuard, clipped_blocks: set[int], blocks: int, narrating: bool = True) -> list[float]:
    """Feed blocks (those in clipped_blocks with a clipped sample); the times a step was asked for."""
    steps = []
    for i in range(blocks):
        now_s = (i + 1) * BLOCK_S
        if guard.feed(_block(1 if i in clipped_blocks else 0), now_s, narrating):
            steps.append(round(now_s, 2))
    return steps


def test_three_clipped_blocks_within_two_seconds_of_narration_turn_it_down_one_step() -> None:
    guard = ClipGuard()
    assert _feed(guard, {10, 40, 90}, 100) == [1.82]
    assert guard.down_db == 3.0
    assert guard.clipped_samples == 6


def test_a_single_click_or_clipping_spread_thinner_than_the_window_does_nothing() -> None:
    assert _feed(ClipGuard(), {10}, 200) == []
    assert _feed(ClipGuard(), {0, 101, 202, 303}, 400) == [], "one clipped block every 2 s is under three in 2 s"


def test_a_loud_word_clipping_in_a_run_of_blocks_is_the_person_not_the_narrator() -> None:
    assert _feed(ClipGuard(), set(range(50, 70)), 200) == [], "0.4 s of clipping in a row: one word"
    assert _feed(ClipGuard(), set(range(50, 70)) | {120}, 200) == [2.42], "and then the voice again, 1 s later"


def test_clipping_while_the_narrator_is_quiet_is_the_person_and_never_counts() -> None:
    guard = ClipGuard()
    assert _feed(guard, set(range(100)), 100, narrating=False) == []
    assert guard.clipped_samples == 0 and guard.down_db == 0.0


def test_after_a_step_it_waits_for_the_quieter_voice_then_steps_again_down_to_its_limit() -> None:
    guard = ClipGuard(ClipGuardSettings(blocks=3, window_s=2.0, step_db=3.0, max_down_db=12.0, hold_s=1.0))
    steps = _feed(guard, set(range(1000)), 1000)  # clips all the time: the voice never gets quiet enough
    assert steps == [0.52, 2.02, 3.52, 5.02], "half a second of clipping, a second's hold: four steps of 3 dB"
    assert guard.down_db == 12.0


def test_samples_just_under_the_clipping_level_are_not_clipped() -> None:
    guard = ClipGuard()
    loud = np.full(320, CLIPPED - 1, np.int16)
    for i in range(100):
        assert not guard.feed(loud, (i + 1) * BLOCK_S, True)
    assert guard.clipped_samples == 0


def test_record_test_counts_clipping_only_while_the_narrator_plays_or_its_echo_dies_away() -> None:
    from voicecoach.runtime.record_test import clipped_over_narration

    reference = np.zeros(16000 * 3, np.int16)
    reference[16000:24000] = 2000  # the narrator plays from 1.0 to 1.5 s
    mic = np.zeros(16000 * 3, np.int16)
    mic[[100, 16500, 23999, 24000 + 7999, 24000 + 8001, 40000]] = 32767  # before, during, in the 0.5 s tail, after
    assert clipped_over_narration(mic, reference) == 3
    assert clipped_over_narration(mic, np.zeros_like(reference)) == 0
