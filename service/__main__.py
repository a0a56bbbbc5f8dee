"""``python -m service``: verify the models, then serve with uvicorn; a bad model stops it with one line."""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys

import uvicorn

from service.api.settings import get_settings
from service.registry import ModelLoadError, verify_model_files


def log_config() -> dict:
    """uvicorn's logging, plus the ``convlens`` loggers (one JSON access line per request) on stdout."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["convlens"] = {"format": "%(message)s"}
    config["handlers"]["convlens"] = {
        "class": "logging.StreamHandler",
        "formatter": "convlens",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["convlens"] = {"handlers": ["convlens"], "level": "INFO", "propagate": False}
    return config


def main(argv: list[str] | None = None) -> int:
    """Serve on HOST:PORT with WEB_CONCURRENCY workers (default 1).

    On SIGTERM uvicorn stops accepting, lets requests in flight finish, then re-raises the signal; the
    handler installed here turns that into exit status 0, as for any orderly stop.
    """
    parser = argparse.ArgumentParser(prog="python -m service", description="the convlens HTTP service")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        verify_model_files(settings.model_dir)
    except ModelLoadError as exc:
        print(f"convlens: cannot start: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=log_config(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
