"""Work slots shared by cost and by client: cheap requests always find capacity, and no client takes more than its
share while others wait.

Counting requests is not enough: a batch of 156 integrated-gradients maps at 64 steps costs 6.8 CPU-s, and two
clients looping it held both work slots, so that 19 of 20 ordinary classifications waited past their deadline.
Here every request states its cost before it runs (images x evaluations per image). Requests costing more than
``heavy_cost`` may hold at most all slots but one together, so the last slot is always free for cheap work; when
a slot frees, it goes to the waiting request whose client holds the fewest slots (the earliest among equals), so
a client looping requests cannot keep the others waiting.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field


@dataclass(eq=False)
class Ticket:
    """One request's claim on a slot: its client, whether it is heavy, and (while waiting) its future."""

    client: str
    heavy: bool
    granted: asyncio.Future[None] | None = field(default=None, repr=False)


class WorkShares:
    """``slots`` work slots; heavy requests (cost above ``heavy_cost``) hold at most ``slots - 1`` (at least 1)."""

    def __init__(self, slots: int, heavy_cost: int) -> None:
        self.slots = slots
        self.heavy_slots = max(1, slots - 1)
        self.heavy_cost = heavy_cost
        self.running = 0
        self.running_heavy = 0
        self.held: Counter[str] = Counter()
        self.waiting: list[Ticket] = []

    def is_heavy(self, cost: int) -> bool:
        """Whether a request of ``cost`` is heavy (kept off the last slot)."""
        return cost > self.heavy_cost

    def _fits(self, heavy: bool) -> bool:
        return self.running < self.slots and (not heavy or self.running_heavy < self.heavy_slots)

    def _grant(self, ticket: Ticket) -> None:
        self.running += 1
        self.running_heavy += ticket.heavy
        self.held[ticket.client] += 1

    async def acquire(self, client: str, cost: int, wait_seconds: float) -> Ticket | None:
        """A slot for a request of ``client`` costing ``cost``, waiting at most ``wait_seconds``; None when none
        came in time (the caller answers 503)."""
        ticket = Ticket(client, self.is_heavy(cost))
        if self._fits(ticket.heavy) and not any(self._fits(other.heavy) for other in self.waiting):
            self._grant(ticket)
            return ticket
        ticket.granted = asyncio.get_running_loop().create_future()
        self.waiting.append(ticket)
        try:
            async with asyncio.timeout(wait_seconds):  # not wait_for: on 3.11 it can swallow a cancellation
                await ticket.granted
        except BaseException as exc:
            if ticket.granted.done() and not ticket.granted.cancelled():
                self.release(ticket)  # granted as the wait ended: give the slot to the next
            elif ticket in self.waiting:
                self.waiting.remove(ticket)
            if isinstance(exc, TimeoutError):
                return None
            raise
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Free ``ticket``'s slot and hand the free slots to the waiting requests, fewest-held client first."""
        self.running -= 1
        self.running_heavy -= ticket.heavy
        self.held[ticket.client] -= 1
        if not self.held[ticket.client]:
            del self.held[ticket.client]
        # a waiter whose wait has ended (timed out or cancelled, its task not yet resumed) takes no slot
        self.waiting = [waiter for waiter in self.waiting if not waiter.granted.done()]
        while self.waiting:
            eligible = [waiter for waiter in self.waiting if self._fits(waiter.heavy)]
            if not eligible:
                return
            chosen = min(eligible, key=lambda waiter: self.held[waiter.client])  # min keeps the earliest of equals
            self.waiting.remove(chosen)
            self._grant(chosen)
            chosen.granted.set_result(None)
