"""servicekit.background: loops stop between steps; only a hung step is cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest
from servicekit.background import Loop, settle


async def test_stop_lets_the_step_in_flight_finish() -> None:
    loop = Loop("t", grace=5.0)
    started, steps = asyncio.Event(), []

    async def body() -> None:
        while await loop.pause(0.001):
            started.set()
            await asyncio.sleep(0.05)  # a statement in flight when stop() is asked
            steps.append("done")

    loop.start(body)
    await started.wait()
    await loop.stop()
    assert steps == ["done"], "the step ran to its end: nothing was cancelled mid-statement"
    assert not loop.running


async def test_stop_wakes_a_pausing_body_at_once() -> None:
    loop = Loop("t")

    async def body() -> None:
        while await loop.pause(3600):
            pass

    loop.start(body)
    await asyncio.sleep(0)
    async with asyncio.timeout(1):
        await loop.stop()
    assert not loop.running


async def test_a_poke_ends_the_pause_and_a_poke_during_a_step_is_kept() -> None:
    loop = Loop("t")
    runs: list[int] = []
    in_step, twice = asyncio.Event(), asyncio.Event()

    async def body() -> None:
        while await loop.pause(3600):
            runs.append(1)
            in_step.set()
            if len(runs) == 2:
                twice.set()
            await asyncio.sleep(0.01)

    loop.start(body)
    await asyncio.sleep(0)
    loop.poke()
    await in_step.wait()
    loop.poke()  # arrives while the step runs: the next pause returns at once
    async with asyncio.timeout(1):
        await twice.wait()
    await loop.stop()
    assert len(runs) == 2


async def test_a_step_that_hangs_is_cancelled_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = Loop("hung", grace=0.05)
    cancelled = asyncio.Event()

    async def body() -> None:
        while await loop.pause(0):
            try:
                await asyncio.Event().wait()  # never ends
            except asyncio.CancelledError:
                cancelled.set()
                raise

    loop.start(body)
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="servicekit.background"):
        async with asyncio.timeout(1):
            await loop.stop()
    assert cancelled.is_set()
    assert "hung still running" in caplog.text


async def test_a_failed_body_is_logged_at_stop_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    loop = Loop("broken")

    async def body() -> None:
        raise RuntimeError("boom")

    loop.start(body)
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.ERROR, logger="servicekit.background"):
        await loop.stop()
    assert "broken ended with an error" in caplog.text


async def test_a_loop_starts_again_after_a_stop() -> None:
    loop = Loop("t")
    ran = asyncio.Event()

    async def body() -> None:
        while await loop.pause(0):
            ran.set()
            await asyncio.sleep(0.001)

    for _ in range(2):
        ran.clear()
        loop.start(body)
        async with asyncio.timeout(1):
            await ran.wait()
        await loop.stop()
    assert not loop.running


async def test_settle_returns_the_result_or_none_when_it_hangs() -> None:
    async def quick() -> int:
        return 7

    assert await settle(quick(), 1.0, "quick") == 7
    assert await settle(asyncio.Event().wait(), 0.01, "hung") is None


async def test_cancelling_settle_cancels_the_work() -> None:
    work = asyncio.ensure_future(asyncio.Event().wait())
    waiter = asyncio.ensure_future(settle(work, 10.0, "w"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert work.cancelled()
