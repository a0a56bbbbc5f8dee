"""convlens benchmarks: every figure beside a reference measured in the same run (``python -m bench``)."""
