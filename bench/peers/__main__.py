"""``python -m bench.peers``: convlens beside MLServer and PyTriton on the Open Inference Protocol
(``bench/peers/compare.py``)."""

import sys

from bench.peers.compare import main

sys.exit(main())
