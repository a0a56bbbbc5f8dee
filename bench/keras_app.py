"""The naive alternative users write: the same FastAPI app, its classifier answered by Keras in-process (bench only)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from bench.keras_reference import KerasSession, keras_classifier
from service.api.app import create_app
from service.api.settings import get_settings


def create_keras_app() -> FastAPI:
    """create_app(), with the classifier's onnxruntime session swapped for Keras after start-up."""
    app = create_app()
    startup = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI):
        async with startup(application):
            model = application.state.registry.models["classifier"]
            model.session = KerasSession(keras_classifier(get_settings().model_dir / model.entry.file))
            yield

    app.router.lifespan_context = lifespan
    return app
