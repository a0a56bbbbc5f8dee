"""A peer for ``bench.peers``: the classifier's ONNX graph in onnxruntime as a KServe Python model server
(``kserve.Model``), the small model a user writes to serve an ONNX model with KServe's Python runtime.

Run with the KServe peers' interpreter (``bench/peers-kserve-requirements.txt``), never the project's:
``python bench/peers/kserve_server.py MODEL PORT --threads 1``. It answers the Open Inference Protocol at
``/v2/models/classifier/infer``, JSON or binary tensors (the binary extension), one uvicorn worker. It imports only
numpy, onnxruntime and KServe, so that it runs outside the project's environment.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class OnnxClassifier(Model):
    """Runs ``output`` for the request's ``input`` tensor, answered in the request's form (binary when asked)."""

    def __init__(self, path: str, threads: int) -> None:
        super().__init__("classifier")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.ready = True

    def predict(self, payload: InferRequest, headers: dict | None = None, response_headers: dict | None = None):
        images = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
        (output,) = self.session.run(["output"], {"input": images.reshape(-1, 28, 28, 1)})
        asked = payload.request_outputs[0].binary_data if payload.request_outputs else None
        tensor = InferOutput(name="output", shape=list(output.shape), datatype="FP32")
        tensor.set_data_from_numpy(output, binary_data=bool(asked))
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=[tensor], use_binary_outputs=bool(asked)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("port", type=int)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    server = ModelServer(http_port=args.port, grpc_port=args.port + 1, enable_grpc=False, workers=1)
    server.start([OnnxClassifier(args.model, args.threads)])


if __name__ == "__main__":
    main()
