"""Run the `carleman` experiment (the same as `qsgd-jax run carleman ...`).

Usage: `python experiments/carleman.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "carleman", *sys.argv[1:]]))
