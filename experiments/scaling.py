"""Run the `scaling` experiment (the same as `qsgd-jax run scaling ...`).

Usage: `python experiments/scaling.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "scaling", *sys.argv[1:]]))
