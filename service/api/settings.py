"""Every setting of the service, read once from ``CONVLENS_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Names = Annotated[list[str], NoDecode]
# Decoding keeps at most the decoded image (4 bytes a pixel for RGBA) and Pillow's buffers: measured 125 MB for a
# 16-megapixel RGBA PNG, so 8 bytes a pixel bounds it.
DECODE_BYTES_PER_PIXEL = 8
# Drawing keeps the upscaled picture, numpy's intermediate, Pillow's copy and the PNG: 8 bytes an output pixel
# bounds them, colour included.
OUTPUT_BYTES_PER_PIXEL = 8
# Resident memory of one worker with the models of models/ loaded (their onnxruntime sessions, the attribution
# graphs, statistics and evolution arrays): measured 165 MiB right after start-up, 167 MiB after 20
# classifications; the budget keeps a margin. Memory the allocator keeps after a request ends is reused by later
# requests, so it counts in the work part of the budget, not here.
BASELINE_MEMORY_BYTES = 184 * 1024 * 1024


@dataclass(frozen=True)
class MemoryBudget:
    """The most memory one worker may hold under the settings, by part (bytes)."""

    baseline: int  # the process with its models loaded
    uploads: int  # request bodies being received or held, all requests together
    work: int  # the requests doing work at once, each within request_memory_bytes (its answer's tensors included)
    answers: int  # answer bytes waiting to be sent after their requests' work

    @property
    def total(self) -> int:
        return self.baseline + self.uploads + self.work + self.answers


class Settings(BaseSettings):
    """Limits and locations; each field is ``CONVLENS_<NAME>`` in the environment (lists: comma-separated)."""

    model_config = SettingsConfigDict(env_prefix="CONVLENS_", protected_namespaces=())

    model_dir: Path = Field(Path("models"), description="folder holding manifest.json and the ONNX files")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest accepted request body (413 above)")
    max_pixels: int = Field(16_000_000, gt=0, description="largest accepted width x height (413 above)")
    max_aspect_ratio: float = Field(
        25.0, ge=1, description="largest accepted ratio of an image's longer side to its shorter (422 above)"
    )
    image_formats: Names = Field(["PNG", "JPEG", "GIF", "BMP", "WEBP"], description="accepted formats (415 otherwise)")
    max_batch_images: int = Field(1000, ge=1, description="most images in one batch request (413 above)")
    max_response_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="largest /v2 inference answer: images x bytes of the tensors asked for (413)",
    )
    max_scale: int = Field(32, ge=1, description="largest PNG upscaling factor")
    max_output_pixels: int = Field(
        16_777_216, ge=65_536, description="pixels of the pictures one request may draw (scale x tiles); 422 above"
    )
    max_attribution_steps: int = Field(
        64, ge=2, description="most integrated-gradients steps per image in /v1/attribution (422 above)"
    )
    max_attribution_samples: int = Field(
        50, ge=1, description="most smoothgrad samples per image in /v1/attribution (422 above)"
    )
    max_occlusion_squares: int = Field(
        196, ge=1, description="most occlusion square positions per image in /v1/attribution (422 above)"
    )
    max_attribution_perturbations: int = Field(
        2000, ge=1, description="most RISE masks or KernelSHAP coalitions per image in /v1/attribution (422 above)"
    )
    max_attribution_segments: int = Field(
        196,
        ge=1,
        description="most segments (grid:N makes N x N, slic:N about N) per image for feature ablation and "
        "KernelSHAP in /v1/attribution (422 above)",
    )
    max_attribution_batch_work: int = Field(
        10_000,
        ge=1,
        description="most images x evaluations (steps, samples, masks, coalitions + 2, segments + 1, squares + 1 or "
        "the layer's channels + 1; 1 for the other methods) in one "
        "/v1/attribution/{method}/batch request (413 above)",
    )
    max_metric_work: int = Field(
        5_000,
        ge=1,
        description="most passes of one image through the model (forward, or forward and backward) the quality "
        "metrics of one /v1/attribution request may take, counted before they run (413 above)",
    )
    metric_sensitivity_samples: int = Field(
        10, ge=1, description="max-sensitivity's noisy copies of the image in /v1/attribution?metrics"
    )
    metric_sensitivity_radius: float = Field(
        0.2, gt=0, description="max-sensitivity's radius: the noise is uniform in [-radius, radius] per pixel"
    )
    metric_correlation_runs: int = Field(
        50, ge=2, description="faithfulness correlation's random pixel subsets in /v1/attribution?metrics"
    )
    metric_correlation_subset: int = Field(
        78, ge=1, le=784, description="pixels in each of faithfulness correlation's subsets"
    )
    metric_sanity_steps: int = Field(
        8,
        ge=1,
        description="most randomised copies the sanity checks make of an imported model: its parametrised layers "
        "grouped into that many steps of the cascade, last layer first (each copy builds its own sessions)",
    )
    max_optimize_steps: int = Field(
        256, ge=1, description="most gradient-ascent steps of an imported model's optimized input (422 above)"
    )
    max_optimize_seconds: float = Field(
        10.0,
        gt=0,
        description="most seconds an imported model's optimized inputs may take, estimated before they run as steps x "
        "inputs x the model's measured backward run of one image (413 above)",
    )
    max_gradient_work: int = Field(
        200_000,
        ge=1,
        description="most backward work one /v1/attribution request may ask of an imported model: images x "
        "evaluations x one image's measured forward-and-backward run, in units of the shipped classifier's forward "
        "pass (413 above)",
    )
    max_backward_graphs: int = Field(
        8,
        ge=1,
        description="most backward graphs (one per rule variant, seeded tensor and differentiated tensor) one "
        "imported model keeps built; past it the least recently used is dropped and its bytes given back",
    )
    cors_origins: Names = Field(["*"], description="origins allowed to call the API from a browser")
    api_keys: Names = Field(
        [], description="when set, every /v1 and /v2 route (but /v2/health) needs one of these keys"
    )
    intra_op_threads: int = Field(1, ge=0, description="onnxruntime threads per inference (0: one per core)")
    batch_threads: int = Field(
        0,
        ge=0,
        description="cores for large runs (0: one per core): onnxruntime runs of 32 images or more run on this many "
        "threads at once, one each (classification batch chunks as runs of 6 images that the threads share; "
        "integrated-gradients steps, SmoothGrad samples, occlusion squares cut into this many parts)",
    )
    max_concurrent_inferences: int = Field(4, ge=1, description="inferences running at once in one process")
    inference_wait_seconds: float = Field(
        2.0, ge=0, description="how long a request waits for a free inference slot before 503 with Retry-After"
    )
    micro_batching: bool = Field(
        False,
        description="let concurrent /v1/classify and small /v2 inference requests to a shipped model share "
        "onnxruntime runs (a request alone in flight runs at once)",
    )
    micro_batch_window_ms: float = Field(
        0.0,
        ge=0,
        description="how long the first waiting request collects others (0: never wait; batch only the "
        "requests that queued while the model was busy)",
    )
    micro_batch_max: int = Field(
        32, ge=1, description="most images in one shared run (a request of more runs on its own)"
    )
    request_timeout_seconds: float = Field(30.0, gt=0, description="a request not answered by then gets 503")
    max_concurrent_work: int = Field(
        2, ge=1, description="requests doing CPU work at once (decoding, inference, maths, PNG encoding)"
    )
    work_wait_seconds: float = Field(
        1.0, ge=0, description="how long a received request waits for a work slot before 503 with Retry-After"
    )
    max_buffered_upload_bytes: int = Field(
        24 * 1024 * 1024,
        gt=0,
        description="bytes of request bodies held in memory at once, all requests together, counted as they "
        "arrive (503 with Retry-After above)",
    )
    max_in_flight_requests: int = Field(
        128, ge=1, description="requests (health, metrics, page and docs excepted) in flight at once (503 above)"
    )
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="largest request line + headers (the connection is refused with 431 above)"
    )
    max_connections: int = Field(
        1024,
        ge=1,
        description="open connections per worker; past it every request but health, metrics and the page gets 503",
    )
    keep_alive_seconds: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    head_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="a connection's request line and headers must arrive within this of its accept (or of the first "
        "byte of a later request): 408 and close otherwise, and a connection that never speaks is closed",
    )
    send_stall_seconds: float = Field(
        5.0,
        gt=0,
        description="a connection whose client reads none of its waiting answer bytes for this long is closed "
        "and the bytes freed",
    )
    max_pending_answer_bytes: int = Field(
        12 * 1024 * 1024,
        ge=0,
        description="answer bytes waiting to be sent after their requests' work, all connections together: a larger "
        "answer is sent in pieces as its client reads, within its request's memory",
    )
    heavy_request_cost: int = Field(
        2_000,
        ge=1,
        description="image-evaluations (images x steps, samples, squares + 1 or invariance steps + 1, times the "
        "model's cost: 1 for the shipped models, an imported model's forward time in units of the shipped "
        "classifier's) above which a request is heavy: heavy requests together hold at most all work slots but one",
    )
    cache_max_age_seconds: int = Field(
        300, ge=0, description="Cache-Control max-age of statistics, plots, filters and model answers (with an ETag)"
    )
    request_memory_bytes: int = Field(
        144 * 1024 * 1024,
        gt=0,
        description="peak memory one working request may use: its upload plus decoding up to "
        f"max_pixels at {DECODE_BYTES_PER_PIXEL} bytes a pixel (checked at start-up)",
    )
    docs: bool = Field(True, description="serve /docs and /openapi.json (false: both answer 404)")
    model_control: Literal["none", "explicit"] = Field(
        "none",
        description="`none`: the imported models in the folder at start-up are served and "
        "/v2/repository/models/{name}/load and /unload answer 400; `explicit`: those calls load and unload them",
    )
    max_imported_models: int = Field(16, ge=0, description="most imported models loaded at once")
    models_memory_bytes: int = Field(
        2 * 1024 * 1024 * 1024,
        gt=0,
        description="memory budget of all loaded models' sessions: the shipped models' ONNX bytes plus, per "
        "imported model, its weights and every layer's output for one run of 6 images, and its backward graphs once "
        "built (a model or backward graph that would exceed it is not loaded)",
    )

    def memory_budget(self) -> MemoryBudget:
        """The worst case these settings allow one worker: what a container's memory limit must hold."""
        return MemoryBudget(
            baseline=BASELINE_MEMORY_BYTES,
            uploads=self.max_buffered_upload_bytes,
            work=self.max_concurrent_work * self.request_memory_bytes,
            answers=self.max_pending_answer_bytes,
        )

    @model_validator(mode="after")
    def _within_the_memory_budget(self) -> Settings:
        decoding = DECODE_BYTES_PER_PIXEL * self.max_pixels
        drawing = OUTPUT_BYTES_PER_PIXEL * self.max_output_pixels
        needed = self.max_upload_bytes + max(decoding, drawing)
        if needed > self.request_memory_bytes:
            raise ValueError(
                f"max_upload_bytes + max({DECODE_BYTES_PER_PIXEL} x max_pixels, {OUTPUT_BYTES_PER_PIXEL} x "
                f"max_output_pixels) is {needed:,} bytes, over request_memory_bytes "
                f"({self.request_memory_bytes:,}): lower the limits or raise the budget"
            )
        if self.max_upload_bytes + self.max_response_bytes > self.request_memory_bytes:
            raise ValueError(
                f"max_upload_bytes + max_response_bytes (an inference answer's tensors) is "
                f"{self.max_upload_bytes + self.max_response_bytes:,} bytes, over request_memory_bytes "
                f"({self.request_memory_bytes:,}): lower the limits or raise the budget"
            )
        return self

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
