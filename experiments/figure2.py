"""Run the `figure2` experiment (the same as `qsgd-jax run figure2 ...`).

Usage: `python experiments/figure2.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "figure2", *sys.argv[1:]]))
