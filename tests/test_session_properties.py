"""Property-based: whatever happens, a stop silences first and freezes everything until resume."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from support.sessionkit import Drive, says

from voicecoach.core.events import Command, StopSpeech
from voicecoach.core.session import State

_OPS = st.one_of(
    st.tuples(st.just("tick"), st.floats(min_value=0.0, max_value=30.0)),
    st.just(("speech", 0.0)),
    st.tuples(st.just("command"), st.sampled_from(list(Command))),
)
_LEAVES_STOP = (Command.RESUME, Command.NEXT, Command.QUIT)


def _apply(drive: Drive, op: tuple[str, object]) -> list[object]:
    kind, value = op
    if kind == "tick":
        return list(drive.at(drive.now_s + float(value)))  # type: ignore[arg-type]
    if kind == "speech":
        return list(drive.say_done()) if drive.pending else []
    return list(drive.hear(value))  # type: ignore[arg-type]


def _drive_at(begin: bool, nexts: int, into_timer: bool) -> Drive:
    """A session not started, or started and moved `nexts` segments on (into its timer, maybe)."""
    drive = Drive()
    if begin:
        drive.begin()
        for _ in range(nexts):
            drive.hear(Command.NEXT)
        if into_timer and drive.pending:
            drive.say_done()
    return drive


@settings(max_examples=500, deadline=None)
@given(st.lists(_OPS, max_size=60), st.booleans(), st.integers(0, 20), st.booleans())
def test_after_a_stop_speech_is_silenced_and_no_hold_time_runs_until_resume(ops, begin, nexts, into_timer) -> None:
    drive = _drive_at(begin, nexts, into_timer)
    stopped_remaining = None
    for op in ops:
        was_stopped = drive.session.state is State.STOPPED
        actions = _apply(drive, op)
        if op[0] == "command" and op[1].is_safety:
            assert isinstance(actions[0], StopSpeech), actions
            assert len(says(actions)) <= 1
            if drive.session.state is State.STOPPED:
                stopped_remaining = drive.session.status().remaining_s
            continue
        if was_stopped and drive.session.state is State.STOPPED:
            assert says(actions) == [], (op, actions)
            assert drive.session.status().remaining_s == stopped_remaining
        if was_stopped and drive.session.state is not State.STOPPED:
            assert op[0] == "command" and op[1] in _LEAVES_STOP


@settings(max_examples=200, deadline=None)
@given(st.lists(_OPS, max_size=80))
def test_timers_never_go_negative_and_the_session_never_raises(ops) -> None:
    drive = Drive()
    drive.begin()
    for op in ops:
        _apply(drive, op)
        remaining = drive.session.status().remaining_s
        assert remaining is None or remaining >= 0.0
