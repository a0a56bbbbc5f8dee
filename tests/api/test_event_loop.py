"""The service's event loop takes a few waiting connections each time its listening socket is readable, after a wait
that grows with the connections its process already has open."""

import asyncio
import socket

from service.api import event_loop
from service.api.event_loop import (
    ACCEPT_DELAY_PER_CONNECTION,
    ACCEPTS_PER_WAKE,
    MAX_ACCEPT_DELAY,
    FewAcceptsLoop,
    accept_delay,
)
from service.api.http_protocol import BoundedHttpToolsProtocol


def left_waiting_after_one_loop_iteration(loop: asyncio.AbstractEventLoop, clients: int, run_for: float = 0) -> int:
    """Connect ``clients`` at once to a server on ``loop``, run one loop iteration (then ``run_for`` seconds more);
    how many the kernel still holds."""
    listening = socket.create_server(("127.0.0.1", 0))
    listening.setblocking(False)
    server = loop.run_until_complete(loop.create_server(asyncio.Protocol, sock=listening))
    connections = [socket.create_connection(listening.getsockname()) for _ in range(clients)]
    try:
        loop.call_soon(loop.stop)
        loop.run_forever()
        if run_for:
            loop.run_until_complete(asyncio.sleep(run_for))
        waiting = 0
        while True:
            try:
                listening.accept()[0].close()
            except BlockingIOError:
                return waiting
            waiting += 1
    finally:
        loop.run_until_complete(asyncio.sleep(0.05))  # the accepted connections' transports are made
        for connection in connections:
            connection.close()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def test_a_few_connections_are_accepted_per_readiness_and_the_rest_left_to_other_workers():
    assert left_waiting_after_one_loop_iteration(FewAcceptsLoop(), ACCEPTS_PER_WAKE + 3) == 3


def test_asyncio_s_own_loop_would_take_them_all():  # what the subclass changes
    assert left_waiting_after_one_loop_iteration(asyncio.SelectorEventLoop(), ACCEPTS_PER_WAKE + 3) == 0


def test_the_wait_before_accepting_grows_with_the_open_connections_up_to_a_cap():
    assert accept_delay(0) == 0
    assert accept_delay(5) == 5 * ACCEPT_DELAY_PER_CONNECTION
    assert accept_delay(10_000) == MAX_ACCEPT_DELAY


def test_a_worker_with_open_connections_waits_before_it_accepts(monkeypatch):
    monkeypatch.setattr(BoundedHttpToolsProtocol, "open_connections", 10)  # the other worker, with none, goes first
    assert left_waiting_after_one_loop_iteration(FewAcceptsLoop(), 3) == 3


def test_after_its_wait_a_worker_accepts_a_few_and_waits_again(monkeypatch):
    waits = iter([0.001, 60.0])  # the second wait outlasts the test
    monkeypatch.setattr(event_loop, "accept_delay", lambda open_connections: next(waits))
    assert left_waiting_after_one_loop_iteration(FewAcceptsLoop(), ACCEPTS_PER_WAKE + 3, run_for=0.05) == 3


def test_a_server_closed_during_the_wait_is_not_watched_again(monkeypatch):
    monkeypatch.setattr(BoundedHttpToolsProtocol, "open_connections", 10)
    loop, errors = FewAcceptsLoop(), []
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    listening = socket.create_server(("127.0.0.1", 0))
    listening.setblocking(False)
    server = loop.run_until_complete(loop.create_server(asyncio.Protocol, sock=listening))
    client = socket.create_connection(listening.getsockname())
    try:
        loop.run_until_complete(asyncio.sleep(0))  # readable: the wait starts
        server.close()
        loop.run_until_complete(asyncio.sleep(2 * MAX_ACCEPT_DELAY))
        assert errors == []
    finally:
        client.close()
        loop.close()
