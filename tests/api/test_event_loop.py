"""The service's event loop takes a few waiting connections each time its listening socket is readable."""

import asyncio
import socket

from service.api.event_loop import ACCEPTS_PER_WAKE, FewAcceptsLoop


def left_waiting_after_one_loop_iteration(loop: asyncio.AbstractEventLoop, clients: int) -> int:
    """Connect ``clients`` at once to a server on ``loop``, run one loop iteration; how many the kernel still holds."""
    listening = socket.create_server(("127.0.0.1", 0))
    listening.setblocking(False)
    server = loop.run_until_complete(loop.create_server(asyncio.Protocol, sock=listening))
    connections = [socket.create_connection(listening.getsockname()) for _ in range(clients)]
    try:
        loop.call_soon(loop.stop)
        loop.run_forever()
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
