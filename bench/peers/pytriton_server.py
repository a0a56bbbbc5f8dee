"""A peer for ``bench.peers``: the classifier's ONNX graph in onnxruntime behind the Triton Inference Server that
PyTriton ships in its wheel, as a user would serve it with PyTriton.

Run with the peers' interpreter (``bench/peers-requirements.txt``), never the project's:
``python bench/peers/pytriton_server.py MODEL PORT --threads 1 [--dynamic-batching]``. The model takes batches of
up to 256 either way; with dynamic batching, at Triton's default queue delay of 0 µs, requests that arrive together
run as one batch and an idle server adds no wait; without it, each request runs alone. It imports only numpy,
onnxruntime and PyTriton, so that it runs outside the project's environment.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

MAX_BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("port", type=int)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--dynamic-batching", action="store_true")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

    @batch
    def infer(input: np.ndarray) -> dict[str, np.ndarray]:  # noqa: A002 - the model's input name
        (output,) = session.run(["output"], {"input": input})
        return {"output": output}

    batcher = DynamicBatcher(max_queue_delay_microseconds=0) if args.dynamic_batching else None
    config = TritonConfig(http_port=args.port, grpc_port=args.port + 1, metrics_port=args.port + 2)
    with Triton(config=config) as triton:
        triton.bind(
            model_name="classifier",
            infer_func=infer,
            inputs=[Tensor(name="input", dtype=np.float32, shape=(28, 28, 1))],
            outputs=[Tensor(name="output", dtype=np.float32, shape=(10,))],
            config=ModelConfig(max_batch_size=MAX_BATCH, batcher=batcher),
        )
        triton.serve()


if __name__ == "__main__":
    main()
