"""Run the `hybrid` experiment (the same as `qsgd-jax run hybrid ...`).

Usage: `python experiments/hybrid.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "hybrid", *sys.argv[1:]]))
