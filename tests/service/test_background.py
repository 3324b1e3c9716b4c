"""The background-service base on its own (kit/background.py, kit/loop_thread.py): ticks come every
interval or at once on a wake-up, a failing tick is logged and the loop carries on (backing off when
asked), and a stop waits for the tick in progress, cancelling it only past its timeout."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from sailplane.kit.background import PeriodicService
from sailplane.kit.loop_thread import LoopThread


class Ticks:
    """A tick that records when it ran, fails when told to and can be held half-way."""

    def __init__(self, *, fail: bool = False, hold: float = 0.0) -> None:
        self.at: list[float] = []
        self.finished = 0
        self.fail = fail
        self.hold = hold

    async def __call__(self) -> None:
        self.at.append(time.monotonic())
        if self.hold:
            await asyncio.sleep(self.hold)
        self.finished += 1
        if self.fail:
            raise RuntimeError("tick broke")


def test_ticks_every_interval_after_waiting_one_first() -> None:
    ticks = Ticks()

    async def main() -> float:
        service = PeriodicService("test", ticks, 0.05)
        started = time.monotonic()
        service.start()
        await asyncio.sleep(0.33)
        await service.stop()
        assert service.task is not None and service.task.done() and not service.task.cancelled()
        return started

    started = asyncio.run(main())
    assert 3 <= len(ticks.at) <= 7
    assert ticks.at[0] - started >= 0.045


def test_tick_at_start_runs_the_first_tick_at_once() -> None:
    ticks = Ticks()

    async def main() -> float:
        service = PeriodicService("test", ticks, 10.0, tick_at_start=True)
        started = time.monotonic()
        service.start()
        await asyncio.sleep(0.05)
        await service.stop()
        return started

    started = asyncio.run(main())
    assert len(ticks.at) == 1 and ticks.at[0] - started < 0.05


def test_wake_runs_the_next_tick_now_and_a_wake_before_start_the_first() -> None:
    ticks = Ticks()

    async def main() -> None:
        service = PeriodicService("test", ticks, 10.0)
        service.wake()  # before start: remembered
        service.start()
        await asyncio.sleep(0.05)
        assert len(ticks.at) == 1
        service.wake()
        await asyncio.sleep(0.05)
        assert len(ticks.at) == 2
        await service.stop()

    asyncio.run(main())


def test_a_failing_tick_is_logged_and_the_loop_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks(fail=True)

    async def main() -> None:
        service = PeriodicService("test", ticks, 0.02, failure="the test tick failed")
        service.start()
        await asyncio.sleep(0.3)
        assert service.running
        await service.stop()

    with caplog.at_level(logging.ERROR, logger="sailplane.kit.background"):
        asyncio.run(main())
    failures = [r for r in caplog.records if r.message == "the test tick failed"]
    assert len(failures) >= 5 and all(r.exc_info is not None for r in failures)


def test_failures_back_off_up_to_the_limit_and_a_success_resets_it() -> None:
    ticks = Ticks(fail=True)

    async def main() -> None:
        service = PeriodicService("test", ticks, 0.02, backoff_limit=0.16)
        service.start()
        await asyncio.sleep(0.75)
        failing = len(ticks.at)
        gaps = [b - a for a, b in zip(ticks.at, ticks.at[1:], strict=False)]
        assert gaps[0] >= 0.035 and gaps[1] >= 0.07  # 0.04, 0.08, 0.16, 0.16…
        assert all(gap < 0.5 for gap in gaps)  # never beyond the limit (plus scheduling)
        ticks.fail = False
        service.wake()
        await asyncio.sleep(0.15)
        assert len(ticks.at) - failing >= 3  # back at the interval
        await service.stop()

    asyncio.run(main())


def test_stop_waits_for_the_tick_in_progress() -> None:
    ticks = Ticks(hold=0.2)

    async def main() -> None:
        service = PeriodicService("test", ticks, 0.01)
        service.start()
        while not ticks.at:
            await asyncio.sleep(0.005)
        await service.stop()
        assert ticks.finished == len(ticks.at) == 1
        assert service.task is not None and not service.task.cancelled()

    asyncio.run(main())


def test_stop_cancels_a_tick_that_outlasts_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks(hold=30)

    async def main() -> float:
        service = PeriodicService("slow", ticks, 0.01, stop_timeout=0.1)
        service.start()
        while not ticks.at:
            await asyncio.sleep(0.005)
        started = time.monotonic()
        await service.stop()
        assert service.task is not None and service.task.cancelled() and ticks.finished == 0
        return time.monotonic() - started

    with caplog.at_level(logging.WARNING, logger="sailplane.kit.background"):
        took = asyncio.run(main())
    assert took < 1.0
    assert any("slow did not stop within 0.1 s" in r.message for r in caplog.records)


def test_loop_thread_runs_coroutines_and_calls_and_stops() -> None:
    thread = LoopThread("test-loop")
    thread.start()
    thread.start()  # idempotent
    seen: list[str] = []
    called = threading.Event()

    async def name() -> str:
        return threading.current_thread().name

    assert thread.run(name(), timeout=5) == "test-loop"
    thread.call_soon(lambda: (seen.append(threading.current_thread().name), called.set()))
    assert called.wait(5) and seen == ["test-loop"]
    thread.stop()
    assert not thread.alive
    thread.call_soon(seen.append, "late")  # nothing once closed
    thread.stop()  # idempotent
    assert seen == ["test-loop"]


def test_a_loop_thread_never_started_stops() -> None:
    thread = LoopThread("never-started")
    thread.stop()
    assert not thread.alive
