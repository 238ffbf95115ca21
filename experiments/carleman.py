"""Run the `carleman` experiment (the same as `qsgd-jax run carleman ...`).

Usage: `python experiments/carleman.py [--preset ci|cpu|paper] [--set KEY=VALUE] [--out DIR]`.

`--preset cpu` runs the PNAS Burgers benchmark exactly as in the article's Fig. 1 (t in [0, 3],
4000 time points, N = 1..4; about 35 s of CPU time) and writes `burgers.R` and
`burgers.orders[N].max_error` into results.json; `ci` runs the same problem on t in [0, 0.2].
"""

import sys

from qsgd_jax._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "carleman", *sys.argv[1:]]))
