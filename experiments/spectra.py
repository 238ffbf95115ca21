"""Run the `spectra` experiment (the same as `qsgd-jax run spectra ...`).

Usage: `python experiments/spectra.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "spectra", *sys.argv[1:]]))
