"""A peer for ``bench.peers``: the classifier's ONNX graph in onnxruntime as an MLServer custom runtime, the small
``MLModel`` a user writes to serve an ONNX model with MLServer (its own runtimes cover no ONNX).

MLServer imports it from the model folder ``bench.peers`` writes (``model-settings.json``: ``implementation``
``mlserver_model.OnnxClassifier``, ``parameters.uri`` the model, ``parameters.extra.threads`` onnxruntime's
intra-op threads). It imports only numpy, onnxruntime and MLServer, so that it runs in the peers' environment.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxClassifier(MLModel):
    """Runs ``output`` for the request's ``input`` tensor and answers it with MLServer's NumPy codec."""

    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(extra.get("threads", 1))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        (output,) = self.session.run(["output"], {"input": images.reshape(-1, 28, 28, 1)})
        return InferenceResponse(
            model_name=self.name, id=payload.id, outputs=[NumpyCodec.encode_output(name="output", payload=output)]
        )
