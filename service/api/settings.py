"""Every setting of the service, read once from ``CONVLENS_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Names = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Limits and locations; each field is ``CONVLENS_<NAME>`` in the environment (lists: comma-separated)."""

    model_config = SettingsConfigDict(env_prefix="CONVLENS_", protected_namespaces=())

    model_dir: Path = Field(Path("models"), description="folder holding manifest.json and the ONNX files")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest accepted request body (413 above)")
    max_pixels: int = Field(16_000_000, gt=0, description="largest accepted width x height (413 above)")
    image_formats: Names = Field(["PNG", "JPEG", "GIF", "BMP", "WEBP"], description="accepted formats (415 otherwise)")
    max_batch_images: int = Field(1000, ge=1, description="most images in one batch request (413 above)")
    max_response_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="largest /v2 inference answer: images x bytes of the tensors asked for (413)",
    )
    max_scale: int = Field(32, ge=1, description="largest PNG upscaling factor")
    cors_origins: Names = Field(["*"], description="origins allowed to call the API from a browser")
    api_keys: Names = Field(
        [], description="when set, every /v1 and /v2 route (but /v2/health) needs one of these keys"
    )
    intra_op_threads: int = Field(1, ge=0, description="onnxruntime threads per inference (0: one per core)")
    max_concurrent_inferences: int = Field(4, ge=1, description="inferences running at once in one process")
    inference_wait_seconds: float = Field(
        2.0, ge=0, description="how long a request waits for a free inference slot before 503 with Retry-After"
    )
    micro_batching: bool = Field(False, description="batch concurrent /v1/classify requests into shared runs")
    micro_batch_window_ms: float = Field(2.0, gt=0, description="how long the first waiting request collects others")
    micro_batch_max: int = Field(32, ge=1, description="most requests in one shared run")
    request_timeout_seconds: float = Field(30.0, gt=0, description="a request not answered by then gets 503")

    @field_validator("image_formats", "cors_origins", "api_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (read from the environment once)."""
    return Settings()
