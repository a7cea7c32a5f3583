"""Every rule of the routine, on a fake clock in test time."""

from __future__ import annotations

import pytest
from support.sessionkit import Drive, says

from voicecoach.core.events import Command, Finish, Log, Say, StopSpeech
from voicecoach.core.plan import Kind
from voicecoach.core.session import Phase, State


def start_first_hold() -> Drive:
    """A drive whose first hold (Twist, left, 10 s) has just started at t=100."""
    drive = Drive()
    drive.begin()
    drive.now_s = 100.0
    drive.speak_until_timer()
    assert drive.session.status().phase is Phase.TIMING
    return drive


def test_walks_intro_steps_and_announces_exercise() -> None:
    drive = Drive()
    spoken = says(drive.begin())
    assert spoken == ["Small routine."]
    spoken = says(drive.say_done()) + says(drive.say_done())
    assert spoken == ["Hello.", "Exercise 1 of 2: Twist."]
    assert says(drive.say_done()) == ["Lie down."]


def test_hold_starts_after_its_cue_is_spoken_and_counts_down_on_the_clock() -> None:
    drive = start_first_hold()
    assert drive.session.status().remaining_s == pytest.approx(10.0)
    spoken = says(drive.at(109.5))
    assert spoken == ["Five.", "Four.", "Three.", "Two.", "One."]
    assert drive.session.status().remaining_s == pytest.approx(0.5)
    assert says(drive.at(110.0)) == ["And release."]
    assert drive.session.plan[drive.session.status().segment].kind is Kind.RELAX


def test_countdown_numbers_fall_on_the_second() -> None:
    drive = start_first_hold()
    times = []
    for step in range(0, 100):
        now = 100.0 + step * 0.1
        if says(drive.at(now)):
            times.append(round(now, 1))
    assert times == [105.0, 106.0, 107.0, 108.0, 109.0]


def test_sides_switch_with_a_spoken_cue_after_a_relax_gap() -> None:
    drive = start_first_hold()
    drive.at(110.0)
    drive.say_done()  # "And release."
    assert says(drive.at(112.9)) == []
    assert says(drive.at(113.0)) == ["Now switch to the right side. Hold for 10 seconds."]


def test_halfway_is_announced_on_long_holds() -> None:
    drive = Drive()
    drive.begin()
    drive.hear(Command.SKIP)  # past the intro
    drive.hear(Command.SKIP)  # past Twist
    drive.speak_until_timer()
    assert "Round 1 of 2" in [a.text for a in drive.actions if isinstance(a, Say)][-1]
    start = drive.now_s
    assert says(drive.at(start + 10.0)) == ["Halfway."]


def test_rest_between_exercises_names_what_comes() -> None:
    drive = start_first_hold()
    drive.at(110)
    drive.pending.clear()
    drive.at(113)
    drive.speak_until_timer()
    spoken = says(drive.at(drive.now_s + 10))
    assert spoken[-2:] == ["And release.", "Rest for 5 seconds. Coming up: Bridge."]


def test_pause_and_resume_keep_the_remaining_hold_to_a_tenth_of_a_second() -> None:
    drive = start_first_hold()
    drive.at(103.37)
    actions = drive.hear(Command.PAUSE)
    assert isinstance(actions[0], StopSpeech)
    assert drive.session.state is State.PAUSED
    drive.at(500.0)
    assert drive.session.status().remaining_s == pytest.approx(6.63, abs=0.05)
    spoken = says(drive.hear(Command.RESUME))
    assert spoken == ["Resuming. 7 seconds left."]
    drive.at(506.0)
    assert drive.session.status().remaining_s == pytest.approx(0.63, abs=0.05)


@pytest.mark.parametrize("command,line", [
    (Command.STOP, "Okay. Rest as long as you like."),
    (Command.TOO_MUCH, "easing off"),
])
def test_safety_stop_silences_first_then_one_calm_line_and_freezes(command: Command, line: str) -> None:
    drive = start_first_hold()
    drive.at(104.0)
    actions = drive.hear(command)
    assert isinstance(actions[0], StopSpeech)
    spoken = says(actions)
    assert len(spoken) == 1 and line in spoken[0]
    assert drive.session.state is State.STOPPED
    assert says(drive.at(400.0)) == []
    assert drive.session.status().remaining_s == pytest.approx(6.0)


def test_too_much_is_recorded_against_the_exercise() -> None:
    drive = start_first_hold()
    drive.at(103.0)
    actions = drive.hear(Command.TOO_MUCH, "ouch")
    logs = [a for a in actions if isinstance(a, Log) and a.kind == "too_much"]
    assert logs and logs[0].exercise == "Twist" and logs[0].value_s == pytest.approx(3.0)
    assert drive.session.records[0].too_much == 1


def test_stop_while_stopped_silences_again_without_more_speech() -> None:
    drive = start_first_hold()
    drive.hear(Command.STOP)
    actions = drive.hear(Command.STOP)
    assert isinstance(actions[0], StopSpeech) and says(actions) == []


@pytest.mark.parametrize("state_maker", ["ready", "paused", "finished"])
def test_stop_silences_in_every_state(state_maker: str) -> None:
    drive = Drive()
    if state_maker != "ready":
        drive.begin()
    if state_maker == "paused":
        drive.hear(Command.PAUSE)
    if state_maker == "finished":
        drive.hear(Command.QUIT)
    actions = drive.hear(Command.STOP)
    assert isinstance(actions[0], StopSpeech)


@pytest.mark.parametrize("command", [Command.RESUME, Command.NEXT, Command.QUIT])
def test_stopped_waits_for_resume_next_or_end_workout(command: Command) -> None:
    drive = start_first_hold()
    drive.hear(Command.STOP)
    for ignored in (Command.PAUSE, Command.REPEAT, Command.HOW_LONG, Command.SKIP, Command.BACK, Command.START):
        actions = drive.hear(ignored)
        assert says(actions) == [] and all(isinstance(a, Log) and a.kind == "ignored" for a in actions)
    actions = drive.hear(command)
    assert drive.session.state in (State.RUNNING, State.FINISHED)
    assert says(actions)


def test_resume_after_stop_mid_speech_says_the_step_again() -> None:
    drive = Drive()
    drive.begin()
    drive.say_done()
    drive.say_done()
    drive.hear(Command.STOP)
    assert says(drive.hear(Command.RESUME)) == ["Exercise 1 of 2: Twist."]


def test_next_back_skip_move_between_steps_and_exercises() -> None:
    drive = Drive()
    drive.begin()
    assert says(drive.hear(Command.NEXT)) == ["Hello."]
    assert says(drive.hear(Command.NEXT)) == ["Exercise 1 of 2: Twist."]
    assert says(drive.hear(Command.NEXT)) == ["Lie down."]
    assert says(drive.hear(Command.BACK)) == ["Exercise 1 of 2: Twist."]
    assert says(drive.hear(Command.SKIP)) == ["Exercise 2 of 2: Bridge."]
    assert drive.session.records[0].skipped
    assert says(drive.hear(Command.BACK)) == ["Now switch to the right side. Hold for 10 seconds."]


def test_back_at_the_very_start_says_the_first_segment_again() -> None:
    drive = Drive()
    drive.begin()
    assert says(drive.hear(Command.BACK)) == ["Small routine."]


def test_repeat_during_a_hold_says_the_last_step_and_keeps_the_timer() -> None:
    drive = start_first_hold()
    drive.at(103.0)
    assert says(drive.hear(Command.REPEAT)) == ["Knees to one side."]
    assert drive.session.status().remaining_s == pytest.approx(7.0)


def test_repeat_while_speaking_restarts_the_step() -> None:
    drive = Drive()
    drive.begin()
    drive.say_done()
    actions = drive.hear(Command.REPEAT)
    assert isinstance(actions[0], StopSpeech) and says(actions) == ["Hello."]


@pytest.mark.parametrize("at_s,paused,expected", [
    (101.0, False, "9 seconds left."),
    (104.5, True, "Paused with 6 seconds left."),
])
def test_how_long_answers_the_seconds_left(at_s: float, paused: bool, expected: str) -> None:
    drive = start_first_hold()
    drive.at(at_s)
    if paused:
        drive.hear(Command.PAUSE)
    assert says(drive.hear(Command.HOW_LONG)) == [expected]


def test_how_long_without_a_timer_gives_the_routine_time() -> None:
    drive = Drive()
    drive.begin()
    assert says(drive.hear(Command.HOW_LONG))[0].startswith("No timer right now. About")


@pytest.mark.parametrize("command", [Command.RESUME, Command.START])
def test_ill_timed_commands_are_ignored_safely(command: Command) -> None:
    drive = start_first_hold()
    before = drive.session.status()
    actions = drive.hear(command)
    assert [a.kind for a in actions if isinstance(a, Log)] == ["ignored"]
    assert drive.session.status() == before


def test_start_command_begins_from_ready() -> None:
    drive = Drive()
    assert says(drive.hear(Command.START)) == ["Small routine."]


def test_whole_routine_runs_to_a_summary() -> None:
    drive = Drive()
    drive.begin()
    for _ in range(200):
        if drive.session.state is State.FINISHED:
            break
        if drive.pending:
            drive.say_done()
        else:
            drive.at(drive.session.next_deadline_s() or drive.now_s)
    finish = [a for a in drive.actions if isinstance(a, Finish)]
    assert finish and "You finished 2 of 2 exercises" in finish[0].summary
    assert [r.holds_done for r in drive.session.records] == [2, 2]


def test_quit_ends_early_with_a_summary() -> None:
    drive = start_first_hold()
    drive.at(104)
    actions = drive.hear(Command.QUIT, "end workout")
    summary = [a for a in actions if isinstance(a, Finish)][0].summary
    assert summary.startswith("You ended the workout early.") and "0 of 2" in summary
    assert drive.session.records[0].longest_hold_s == pytest.approx(4.0)
