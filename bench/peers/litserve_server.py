"""A peer for ``bench.peers``: the classifier's ONNX graph in onnxruntime behind LitServe (``litserve.LitAPI``), as a
user would serve it there: LitServe has no Open Inference Protocol, so the API decodes the protocol's JSON request
itself and answers the protocol's JSON, on the protocol's path ``/v2/models/classifier/infer``.

Run with the KServe peers' interpreter (``bench/peers-kserve-requirements.txt``), never the project's:
``python bench/peers/litserve_server.py MODEL PORT --threads 1``; one worker on the CPU, no batching. Binary tensors
(the protocol's extension) are not part of LitServe: those rows skip it. It imports only numpy, onnxruntime and
LitServe, so that it runs outside the project's environment.
"""

from __future__ import annotations

import argparse

import litserve
import numpy as np
import onnxruntime as ort


class OnnxClassifier(litserve.LitAPI):
    """The request's ``input`` tensor (JSON ``data``) in, the ``output`` tensor out, as the protocol writes them."""

    def __init__(self, path: str, threads: int) -> None:
        super().__init__(api_path="/v2/models/classifier/infer")
        self.path, self.threads = path, threads

    def setup(self, device: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])

    def decode_request(self, request: dict) -> np.ndarray:
        tensor = request["inputs"][0]
        return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(["output"], {"input": images.reshape(-1, 28, 28, 1)})
        return output

    def encode_response(self, output: np.ndarray) -> dict:
        tensor = {"name": "output", "shape": list(output.shape), "datatype": "FP32", "data": output.ravel().tolist()}
        return {"model_name": "classifier", "outputs": [tensor]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("port", type=int)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    server = litserve.LitServer(OnnxClassifier(args.model, args.threads), accelerator="cpu", workers_per_device=1)
    server.run(port=args.port, generate_client_file=False)


if __name__ == "__main__":
    main()
