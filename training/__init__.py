"""convlens offline training: MNIST, the paper's networks in Keras, the ONNX export, the statistics and the report.

Importing the package turns TensorFlow's oneDNN kernels on (``TF_ENABLE_ONEDNN_OPTS=1``) unless the environment
already says otherwise. TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or BF16 or AMX; on this
project's AVX2 machine they train the classifier faster too (``python -m bench.training``). The variable is read
when TensorFlow starts, hence here, before any module of the package imports it.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
