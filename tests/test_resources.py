"""Resource formulas at hand-computed points, monotonicity, XLA FLOPs and the break-even n."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsgd_jax as qj
from qsgd_jax.resources import (
    break_even_n,
    childs_kothari_somma_queries,
    classical_flops,
    costa_queries,
    hhl_queries,
    num_qubits,
    resource_table,
    sgd_step_time,
    table_markdown,
    total_cost,
)


def test_formulas_at_hand_computed_points():
    assert hhl_queries(10.0, 0.01) == pytest.approx(1e4)
    assert hhl_queries(10.0, 0.01, constant=3.0) == pytest.approx(3e4)
    assert childs_kothari_somma_queries(10.0, 0.01) == pytest.approx(10 * math.log(1000) ** 2)
    assert childs_kothari_somma_queries(10.0, 0.01, log_power=1.0, constant=2.0) == pytest.approx(
        20 * math.log(1000)
    )
    assert costa_queries(10.0, math.exp(-2)) == pytest.approx(20.0)
    assert num_qubits(1) == 0 and num_qubits(8) == 3 and num_qubits(9, ancillas=2) == 6
    assert total_cost(100.0, 3.0, 10.0, reupload=7.0) == pytest.approx(3007.0)


@pytest.mark.parametrize("fn", [hhl_queries, childs_kothari_somma_queries, costa_queries])
def test_monotone_in_kappa_and_inverse_eps(fn):
    ks = [1.0, 2.0, 10.0, 1e3]
    es = [0.5, 1e-2, 1e-4, 1e-8]
    assert all(fn(a, 1e-3) < fn(b, 1e-3) for a, b in zip(ks, ks[1:], strict=False))
    assert all(fn(10.0, a) < fn(10.0, b) for a, b in zip(es, es[1:], strict=False))
    with pytest.raises(ValueError, match="kappa"):
        fn(0.5, 0.1)
    with pytest.raises(ValueError, match="eps"):
        fn(2.0, 1.5)
    with pytest.raises(ValueError, match="eps"):
        fn(2.0, float("nan"))


def test_classical_flops_from_xla_and_sgd_time():
    x = jnp.ones((8, 8))
    flops = classical_flops(lambda a: a @ a, x, num_steps=5)
    assert flops == pytest.approx(5 * 2 * 8**3, rel=0.01)

    def loss(p, b):
        return jnp.mean((b[0] @ p - b[1]) ** 2)

    t = sgd_step_time(loss, jnp.zeros(4), (jnp.ones((16, 4)), jnp.ones(16)), repeat=2)
    assert 0 < t < 1.0


def test_break_even_n():
    # no polylog growth: classical 1e3 * n / 1e3 = n beats quantum 1e6 from n = 1e6 on
    assert break_even_n(1e6, 1e3, 1000, log_power=0.0) == pytest.approx(1e6, rel=1e-6)
    be = break_even_n(1e6, 1e3, 1000, log_power=1.0)
    # n = Q0 * log2(n)/log2(1000) * 1000/C0 at the crossing
    assert be == pytest.approx(1e6 * math.log2(be) / math.log2(1000), rel=1e-6)
    assert break_even_n(1.0, 1e9, 1000) == 2.0  # already cheaper everywhere on the grid


def test_resource_table():
    tab = resource_table(
        kappa=50.0,
        target_probability=0.04,
        eps=1e-3,
        n=6,
        order=2,
        num_steps=20,
        idle=20,
        samples=100.0,
        classical_flops_total=2e4,
    )
    assert tab["dim"] == 41 * 43 and tab["qubits"] == math.ceil(math.log2(41 * 43))
    assert tab["rounds"] == math.ceil(math.pi / (4 * 0.2))
    q = tab["qlsa"]["hhl"]
    assert q["queries"] == pytest.approx(2500 / 1e-3)
    assert q["total"] == pytest.approx(q["queries"] * tab["rounds"] * 100)
    assert q["break_even_n"] > 6
    assert tab["qlsa"]["costa"]["total"] < q["total"]
    md = table_markdown(tab)
    assert "| hhl |" in md and "κ = 50" in md
    import json

    json.dumps(tab)
    with pytest.raises(ValueError, match="target_probability"):
        resource_table(kappa=5.0, target_probability=0.0, eps=0.1, n=2, order=1, num_steps=2)


def test_sgd_flops_of_t_steps_scale_linearly():
    w = jnp.zeros(16)

    def step(p):
        return p - 0.1 * jax.grad(lambda q: jnp.sum(q**2))(p)

    assert classical_flops(step, w, num_steps=10) == pytest.approx(
        10 * classical_flops(step, w), rel=1e-12
    )
    assert np.isfinite(classical_flops(step, w))


def test_resource_table_default_is_the_article_history_system():
    # Eq. 6 of the article: T + 1 blocks of the Carleman dimension (n = 6, N = 2: 1 + 6 + 36).
    kw = dict(kappa=50.0, target_probability=0.04, eps=1e-3, n=6, order=2, num_steps=20)
    tab = qj.resources.resource_table(**kw)
    assert tab["idle"] == 0 and tab["history_form"] == "article"
    assert tab["dim"] == 21 * 43 and tab["qubits"] == math.ceil(math.log2(21 * 43))
    assert "p = 0 (article history system)" in qj.resources.table_markdown(tab)
    padded = qj.resources.resource_table(**kw, idle=20)
    assert padded["history_form"] == "padded" and padded["dim"] == 41 * 43
    with pytest.raises(ValueError, match="`idle`"):
        qj.resources.resource_table(**kw, idle=-1)
