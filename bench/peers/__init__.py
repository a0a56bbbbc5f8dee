"""The servers users would pick instead of convlens, started from their own interpreter, and the comparison with
them (``python -m bench.peers``)."""
