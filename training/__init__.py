"""convlens offline training: MNIST, the paper's networks in Keras, the ONNX export, the statistics and the report.

Importing the package turns TensorFlow's oneDNN kernels on (``TF_ENABLE_ONEDNN_OPTS=1``) unless the environment
already says otherwise. TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or BF16 or AMX; on this
project's AVX2 machine they train the classifier faster too (``python -m bench.training``). The variable is read
when TensorFlow starts, hence here, before any module of the package imports it.

It also keeps TensorFlow quiet, so that the commands' own progress lines stand out: its C++ log (``failed call to
cuInit`` on a machine without a GPU, the CPU instructions it was built for) and its Python warnings (``tf.function``
retracing) are silenced unless ``CONVLENS_TF_LOGS=1`` asks for them. Errors still reach the caller as exceptions.
"""

import logging
import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
if os.environ.get("CONVLENS_TF_LOGS", "") not in ("1", "true", "yes"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
