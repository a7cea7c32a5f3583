"""Clocks and the one event queue: real time for the product, virtual time for dry runs and tests."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

from voicecoach.core.events import Event


class Clock(Protocol):
    """Seconds since start, and a way to wait on a condition."""

    virtual: bool

    def now(self) -> float:
        """Seconds since the clock started."""
        ...

    def wait(self, cond: threading.Condition, timeout_s: float) -> None:
        """Wait on cond (held) for up to timeout_s of clock time."""
        ...


class RealClock:
    """Wall-clock time, optionally sped up for interactive dry runs."""

    virtual = False

    def __init__(self, speed: float = 1.0) -> None:
        self._start = time.monotonic()
        self._speed = speed

    def now(self) -> float:
        """Seconds since start, times the speed factor."""
        return (time.monotonic() - self._start) * self._speed

    def wait(self, cond: threading.Condition, timeout_s: float) -> None:
        """Block for up to timeout_s of clock time, or until notified."""
        cond.wait(max(0.0, timeout_s) / self._speed)


class VirtualClock:
    """Time that jumps: waiting moves it forward at once."""

    virtual = True

    def __init__(self) -> None:
        self._now_s = 0.0

    def now(self) -> float:
        """The current virtual time."""
        return self._now_s

    def wait(self, cond: threading.Condition, timeout_s: float) -> None:
        """Advance by timeout_s without blocking."""
        self._now_s += max(0.0, timeout_s)


class EventQueue:
    """Events now (from any thread) or at a clock time, taken in time order by one consumer."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Event]] = []
        self._order = itertools.count()

    def post(self, event: Event, at_s: float | None = None) -> None:
        """Deliver event now, or at clock time at_s."""
        with self._cond:
            when = self.clock.now() if at_s is None else at_s
            heapq.heappush(self._heap, (when, next(self._order), event))
            self._cond.notify()

    def cancel(self, matches: Callable[[Event], bool]) -> None:
        """Drop pending events for which matches() is true."""
        with self._cond:
            self._heap = [item for item in self._heap if not matches(item[2])]
            heapq.heapify(self._heap)

    def next_event(self, until_s: float | None) -> Event | None:
        """The next due event; None once until_s is reached (or, on a virtual clock, nothing is pending)."""
        with self._cond:
            while True:
                now = self.clock.now()
                if self._heap and self._heap[0][0] <= now:
                    return heapq.heappop(self._heap)[2]
                deadline = until_s if until_s is not None else float("inf")
                if self._heap:
                    deadline = min(deadline, self._heap[0][0])
                if deadline <= now or (deadline == float("inf") and self.clock.virtual):
                    return None
                self.clock.wait(self._cond, min(deadline - now, 3600.0))
