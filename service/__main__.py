"""``python -m service``: verify the models, then serve with uvicorn; a bad model stops it with one line."""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys

import uvicorn
from pydantic import ValidationError

from service.api.event_loop import EVENT_LOOP
from service.api.http_protocol import BoundedHttpToolsProtocol
from service.api.settings import Settings, get_settings
from service.runtime.registry import ModelLoadError, verify_model_files


def log_config() -> dict:
    """uvicorn's logging, plus the ``convlens`` loggers (one JSON access line per request) on stdout."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["convlens"] = {"format": "%(message)s"}
    config["handlers"]["convlens"] = {
        "()": "service.api.middleware.monitoring.BackgroundLogHandler",
        "formatter": "convlens",
    }
    config["loggers"]["convlens"] = {"handlers": ["convlens"], "level": "INFO", "propagate": False}
    return config


def build_parser() -> argparse.ArgumentParser:
    """Every option of ``python -m service``: the address and workers, then every setting, each with its help text
    and the environment variable behind it (an option given here wins over the variable)."""
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="the convlens HTTP service: verifies the model files, then serves them with uvicorn",
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address (env HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (env PORT)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1")),
        help="worker processes, each with its own models and limits (env WEB_CONCURRENCY, default 1)",
    )
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = ",".join(default) if isinstance(default, list) else default
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            metavar=name.upper(),
            help=f"{field.description} (env {env_name(name)}, default {shown if shown != '' else 'none'})",
        )
    return parser


def env_name(setting: str) -> str:
    """The environment variable behind a setting."""
    return f"{Settings.model_config['env_prefix']}{setting.upper()}"


def main(argv: list[str] | None = None) -> int:
    """Serve on HOST:PORT with WEB_CONCURRENCY workers (default 1).

    Options given on the command line are put into the environment, so that the workers (which read their
    settings from it) see them too. On SIGTERM uvicorn stops accepting, lets requests in flight finish, then
    re-raises the signal; the handler installed here turns that into exit status 0, as for any orderly stop.
    """
    args = build_parser().parse_args(argv)
    for name in Settings.model_fields:
        if getattr(args, name) is not None:
            os.environ[env_name(name)] = getattr(args, name)
    get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(
            f"convlens: cannot start: invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}",
            file=sys.stderr,
        )
        return 2
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
        loop=EVENT_LOOP,
        http=BoundedHttpToolsProtocol,
        timeout_keep_alive=settings.keep_alive_seconds,
        access_log=False,
        log_config=log_config(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
