"""The HTTP protocol's own settings on each connection."""

import socket

from service.api.http_protocol import no_delay


class Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str):
        return self.sock if name == "socket" else None


def test_nagle_is_turned_off_on_a_tcp_socket_whose_protocol_number_is_unset():
    # the socket uvicorn shares between workers is made with proto 0, which asyncio's loop leaves with Nagle on
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.proto == 0 and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        no_delay(Transport(sock))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_a_unix_socket_is_left_as_it_is():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        no_delay(Transport(left))  # no TCP option to set: nothing raised
