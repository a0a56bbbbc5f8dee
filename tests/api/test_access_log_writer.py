"""The access log's writer: records leave the event loop's thread at once and reach stdout in order, many per write."""

import logging
import threading

from service.api.middleware.monitoring import BackgroundLogHandler


class RecordingStream:
    """A stream that keeps each write call; ``hold`` makes writes wait until it is set."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.hold = threading.Event()
        self.hold.set()
        self.writing = threading.Event()

    def write(self, text: str) -> None:
        self.writing.set()
        self.hold.wait()
        self.writes.append(text)

    def flush(self) -> None:
        pass


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("convlens.access", logging.INFO, __file__, 1, message, None, None)


def handler_on(stream: RecordingStream, **options) -> BackgroundLogHandler:
    handler = BackgroundLogHandler(stream=stream, **options)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def test_every_record_is_written_in_order_as_one_line():
    stream = RecordingStream()
    handler = handler_on(stream)
    for i in range(1000):
        handler.emit(record(f"line {i}"))
    handler.close()
    assert "".join(stream.writes).splitlines() == [f"line {i}" for i in range(1000)]


def test_records_waiting_together_are_written_in_one_call():
    stream = RecordingStream()
    handler = handler_on(stream, interval=60)  # no timed write during the test: only the flush below writes
    for i in range(300):
        handler.emit(record(f"line {i}"))
    handler.flush()
    handler.close()
    assert len(stream.writes) <= 3  # the 256th record wakes the writer; the flush writes the rest
    assert "".join(stream.writes).count("\n") == 300


def test_a_stuck_stream_never_holds_the_logging_thread_and_drops_past_capacity():
    stream = RecordingStream()
    handler = handler_on(stream, capacity=100, interval=0.001)
    stream.hold.clear()
    handler.emit(record("first"))
    assert stream.writing.wait(10)  # the writer is now stuck in write() with "first"
    emitting = threading.Thread(target=lambda: [handler.emit(record(f"line {i}")) for i in range(500)])
    emitting.start()
    emitting.join(10)
    assert not emitting.is_alive()  # 500 records were handed over while the stream did not move
    assert handler.dropped == 400
    stream.hold.set()
    handler.close()
    assert "".join(stream.writes).splitlines() == ["first", *(f"line {i}" for i in range(100))]
