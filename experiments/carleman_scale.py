"""Run the `carleman_scale` experiment (the same as `qsgd-jax run carleman_scale ...`).

Usage: `python experiments/carleman_scale.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.

Order-1 vs order-2 quantum windows (factored Carleman state) on a whole 90 %-pruned network:
the linearization error against exact SGD versus the window's start after pruning and its
length, with the dissipation metrics at each start. `cpu`: a digits CNN; `paper`: ResNet-32-4
on CIFAR-100 from a local archive (`--set cifar_path=...`), sized for one GPU.
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "carleman_scale", *sys.argv[1:]]))
