"""Work slots shared by cost and by client (service.runtime.work_shares), on a real event loop."""

import asyncio

from service.runtime.work_shares import WorkShares

CHEAP, HEAVY = 1, 10_000


def test_a_cheap_request_finds_the_last_slot_while_heavy_ones_hold_the_others():
    async def scenario() -> list[object]:
        shares = WorkShares(slots=2, heavy_cost=2_000)
        heavy = await shares.acquire("attacker", HEAVY, 0)
        second_heavy = await shares.acquire("other-attacker", HEAVY, 0.01)
        cheap = await shares.acquire("ordinary", CHEAP, 0)
        return [heavy is not None, second_heavy, cheap is not None]

    assert asyncio.run(scenario()) == [True, None, True]


def test_a_freed_slot_goes_to_the_waiting_client_that_holds_fewest():
    async def scenario() -> list[str]:
        shares = WorkShares(slots=2, heavy_cost=2_000)
        first = await shares.acquire("looping", CHEAP, 0)
        await shares.acquire("looping", CHEAP, 0)
        served: list[str] = []

        async def wait(client: str) -> None:
            ticket = await shares.acquire(client, CHEAP, 5)
            served.append(client)
            shares.release(ticket)

        waiting = [asyncio.create_task(wait(client)) for client in ("looping", "looping", "patient")]
        await asyncio.sleep(0)
        shares.release(first)  # "looping" still holds one slot, "patient" none: "patient" goes first
        await asyncio.gather(*waiting)
        return served

    assert asyncio.run(scenario())[0] == "patient"


def test_a_wait_that_times_out_returns_none_and_holds_no_slot():
    async def scenario() -> tuple[object, int, int]:
        shares = WorkShares(slots=1, heavy_cost=2_000)
        held = await shares.acquire("a", CHEAP, 0)
        timed_out = await shares.acquire("b", CHEAP, 0.01)
        shares.release(held)
        return timed_out, shares.running, len(shares.waiting)

    assert asyncio.run(scenario()) == (None, 0, 0)


def test_a_waiter_cancelled_as_its_slot_is_granted_passes_the_slot_on():
    async def scenario() -> tuple[int, dict]:
        shares = WorkShares(slots=1, heavy_cost=2_000)
        held = await shares.acquire("a", CHEAP, 0)
        cancelled = asyncio.create_task(shares.acquire("b", CHEAP, 5))
        await asyncio.sleep(0)
        shares.release(held)  # granted to "b" ...
        cancelled.cancel()  # ... whose task is cancelled before it resumes
        await asyncio.gather(cancelled, return_exceptions=True)
        return shares.running, dict(shares.held)

    assert asyncio.run(scenario()) == (0, {})
