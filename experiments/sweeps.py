"""Run the `sweeps` experiment (the same as `qsgd-jax run sweeps ...`).

Usage: `python experiments/sweeps.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "sweeps", *sys.argv[1:]]))
