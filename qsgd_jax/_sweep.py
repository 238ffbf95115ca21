"""Hyperparameter sweeps: one compiled, vmapped, device-sharded chunk program over a grid.

A sweep evaluates `fn(config)` at every point of a `Grid`, where `config` is a pytree whose
swept fields are traced scalars. The points are cut into chunks of equal width; one jitted
program vmaps `fn` over a chunk, with the vmapped axis sharded over the devices
(`NamedSharding` + `shard_map`, no cross-device communication), so memory is bounded by the
chunk size and every device works on its share. Every chunk has the same shapes, so the
program is traced, lowered and compiled once, ahead of time, and the host dispatches it once
per chunk (asynchronously). A first call's time is that one compile: XLA's compile of the
vmapped program costs about as much as the compile of one point's program.

Virtual CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=K`) share the host's
thread pool; a batched LAPACK call (e.g. `vmap` of `jnp.linalg.eigh` on large matrices) in the
swept function can then stall all of them, so prefer plain JAX ops in swept code (the
library's targets do).

Several processes or hosts: call `jax.distributed.initialize(...)` first on every process;
`jax.devices()` then lists the devices of all processes, the same `sweep` call on every process
spreads the grid over them, and every process receives the whole result.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ._errors import InvalidArgumentError, check_memory, in_interval, interval_text
from ._progress import progress as progress_bar

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Grid:
    """Sweep points with named axes; build one with `grid(...)` or `points(...)`.

    **Arguments:**

    - `axes`: the coordinate values of each result axis (`kind="points"`: one axis `point`).
    - `columns`: the value of each swept field at each flattened point.
    - `kind`: `"product"` (the cartesian product of `axes`, result shape = axis lengths) or
      `"points"` (an explicit list of points, result shape `(num_points,)`).
    """

    axes: dict[str, np.ndarray]
    columns: dict[str, np.ndarray]
    kind: str

    @property
    def names(self) -> tuple[str, ...]:
        """**Returns:** the swept field names."""
        return tuple(self.columns)

    @property
    def shape(self) -> tuple[int, ...]:
        """**Returns:** the shape of the result's leading axes."""
        if self.kind == "product":
            return tuple(len(v) for v in self.axes.values())
        return (len(next(iter(self.columns.values()))),)

    @property
    def size(self) -> int:
        """**Returns:** the number of points."""
        return math.prod(self.shape)


def _column(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidArgumentError(
            f"grid axis `{name}` must be a 1-D list of scalars, got shape {arr.shape}."
        )
    if arr.size == 0:
        raise InvalidArgumentError(
            f"grid axis `{name}` is empty; every axis needs at least one value."
        )
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"grid axis `{name}` must hold numbers, got dtype {arr.dtype}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"grid axis `{name}` has non-finite values: {arr.tolist()}.")
    return arr


def grid(**axes) -> Grid:
    """The cartesian product of named 1-D axes, e.g. `grid(eta=[0.05, 0.1], order=[1, 2, 3])`.

    **Arguments:**

    - `**axes`: each swept field's values, a non-empty 1-D list of finite numbers.

    **Returns:** a product `Grid` of shape `(len(axis) for axis in axes)`.
    """
    if not axes:
        raise InvalidArgumentError("`grid` needs at least one axis, e.g. grid(eta=[0.05, 0.1]).")
    cols = {k: _column(k, v) for k, v in axes.items()}
    mesh = np.meshgrid(*cols.values(), indexing="ij")
    columns = {k: m.reshape(-1) for k, m in zip(cols, mesh, strict=True)}
    return Grid(cols, columns, "product")


def points(**columns) -> Grid:
    """An explicit list of points: `points(eta=[0.1, 0.2], order=[2, 3])` is two points.

    **Arguments:**

    - `**columns`: each swept field's value at each point; all of the same length.

    **Returns:** a point-list `Grid` of shape `(num_points,)`.
    """
    if not columns:
        raise InvalidArgumentError(
            "`points` needs at least one field, e.g. points(eta=[0.1, 0.2])."
        )
    cols = {k: _column(k, v) for k, v in columns.items()}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidArgumentError(f"every field of `points` needs the same length, got {lengths}.")
    n = next(iter(lengths.values()))
    return Grid({"point": np.arange(n)}, cols, "points")


@dataclasses.dataclass
class SweepResult:
    """Results of a sweep with their coordinates.

    **Arguments:**

    - `grid`: the swept `Grid`.
    - `values`: a pytree of numpy arrays with leading dimensions `grid.shape`.
    """

    grid: Grid
    values: Any

    def sel(self, **coords) -> SweepResult:
        """Select by coordinate value, e.g. `res.sel(order=2)`; the selected axes are dropped.

        **Arguments:**

        - `**coords`: a value (matched with `np.isclose`) for some axes of a product grid.

        **Returns:** a `SweepResult` over the remaining axes.
        """
        if self.grid.kind != "product":
            raise InvalidArgumentError(
                "`sel` needs a product grid; index `values` of a point list directly."
            )
        index, axes = [], {}
        for name, vals in self.grid.axes.items():
            if name in coords:
                hits = np.flatnonzero(np.isclose(vals, coords[name]))
                if hits.size == 0:
                    raise KeyError(f"{name}={coords[name]!r} is not on the grid; axis: {vals}.")
                index.append(int(hits[0]))
            else:
                index.append(slice(None))
                axes[name] = vals
        unknown = set(coords) - set(self.grid.axes)
        if unknown:
            raise KeyError(f"unknown axes {sorted(unknown)}; axes: {list(self.grid.axes)}.")
        values = jax.tree_util.tree_map(lambda v: v[tuple(index)], self.values)
        mesh = np.meshgrid(*axes.values(), indexing="ij") if axes else []
        columns = {k: m.reshape(-1) for k, m in zip(axes, mesh, strict=True)}
        return SweepResult(Grid(axes, columns, "product"), values)

    def to_json(self) -> str:
        """Axes, coordinates and values as JSON.

        **Returns:** a JSON string with keys `kind`, `axes`, `columns` and `values`.
        """
        return json.dumps(
            {
                "kind": self.grid.kind,
                "axes": {k: v.tolist() for k, v in self.grid.axes.items()},
                "columns": {k: v.tolist() for k, v in self.grid.columns.items()},
                "values": jax.tree_util.tree_map(lambda v: np.asarray(v).tolist(), self.values),
            }
        )

    def heatmap(self, key: str | None = None, *, ax=None, log: bool = False, **kwargs):
        """Plot a 2-D result as a labelled heatmap (first axis vertical).

        **Arguments:**

        - `key`: the entry of `values` to plot when it is a dict (else `None`).
        - `ax`: the matplotlib axes (default: the current ones).
        - `log`: plot `log10` of the values.
        - `**kwargs`: passed to `ax.imshow`.

        **Returns:** the matplotlib axes.
        """
        import matplotlib.pyplot as plt

        if len(self.grid.axes) != 2:
            raise InvalidArgumentError(
                f"heatmap needs exactly 2 axes, got {list(self.grid.axes)}; use `sel` first."
            )
        data = np.asarray(self.values[key] if key is not None else self.values, dtype=float)
        if log:
            data = np.log10(np.maximum(data, np.finfo(float).tiny))
        (yname, yv), (xname, xv) = self.grid.axes.items()
        ax = plt.gca() if ax is None else ax
        im = ax.imshow(data, origin="lower", aspect="auto", **kwargs)
        ax.set_xticks(range(len(xv)), [f"{x:.3g}" for x in xv])
        ax.set_yticks(range(len(yv)), [f"{y:.3g}" for y in yv])
        ax.set(xlabel=xname, ylabel=yname, title=("log10 " if log else "") + (key or ""))
        plt.colorbar(im, ax=ax)
        return ax


def _field_names(base) -> set[str] | None:
    if base is None:
        return None
    if isinstance(base, Mapping):
        return set(base)
    if isinstance(base, eqx.Module):
        return {f.name for f in dataclasses.fields(base)}
    raise InvalidArgumentError(
        f"`base` must be None, a dict or an eqx.Module, got {type(base).__name__}."
    )


def _with_fields(base, fields: Mapping[str, Array]):
    if base is None:
        return dict(fields)
    if isinstance(base, Mapping):
        return {**base, **fields}
    names = list(fields)
    return eqx.tree_at(lambda b: [getattr(b, k) for k in names], base, list(fields.values()))


def sweep_target(check: Callable[..., None]):
    """Declare the ranges of a sweep target's configuration fields (a decorator).

    **Arguments:**

    - `check`: `check(values, **keywords)` gets the configuration values (numpy arrays, see
      `sweep`'s `check`) and the target's keyword arguments bound by `functools.partial`, and
      raises `ValueError` for a value out of range. `sweep` calls it before tracing.

    **Returns:** a decorator that attaches `check` to the target as its `check_config`
    attribute and returns the target.
    """

    def wrap(fn):
        fn.check_config = check
        return fn

    return wrap


def _config_check(fn) -> Callable[[dict], None] | None:
    """The declared check of `fn`, with the keywords of (nested) `functools.partial`s bound."""
    keywords: dict = {}
    while isinstance(fn, functools.partial):
        keywords = {**fn.keywords, **keywords}
        fn = fn.func
    check = getattr(fn, "check_config", None)
    if check is None:
        return None
    return functools.partial(check, **keywords)


def _config_values(g: Grid, base) -> dict[str, np.ndarray]:
    values = {}
    if isinstance(base, Mapping):
        items = base.items()
    elif isinstance(base, eqx.Module):
        items = ((f.name, getattr(base, f.name)) for f in dataclasses.fields(base))
    else:
        items = ()
    for k, v in items:
        scalar = isinstance(v, int | float | np.ndarray | np.generic | jax.Array)
        if scalar and np.ndim(v) == 0 and not isinstance(v, jax.core.Tracer):
            values[k] = np.asarray(v)
    values.update(g.columns)
    return values


def check_range(
    values: Mapping[str, np.ndarray],
    name: str,
    *,
    low: float | int | None = None,
    high: float | int | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    required: bool = True,
) -> None:
    """Raise `ValueError` unless every value of configuration field `name` is in range.

    **Arguments:**

    - `values`: the configuration values, as `sweep_target`'s check receives them.
    - `name`: the field to check.
    - `low`, `high`: the bounds (`None`: unbounded on that side).
    - `low_open`, `high_open`: exclude the bound itself.
    - `integer`: also require integer values.
    - `required`: a missing field is an error (the target reads it); else it is skipped.

    **Returns:** `None`; raises `InvalidArgumentError` (a `ValueError`) naming the field, the
    bad values and the range.
    """
    if name not in values:
        if required:
            raise InvalidArgumentError(
                f"the sweep target needs the configuration field `{name}`: add it as a grid "
                f"axis or to `base`; fields given: {sorted(values)}."
            )
        return
    arr = np.asarray(values[name])
    kind = "integers in " if integer else ""
    span = interval_text(low, high, low_open=low_open, high_open=high_open)
    if arr.dtype.kind not in "iuf":
        raise InvalidArgumentError(
            f"sweep field `{name}` must hold real {kind or 'numbers in '}{span}, got "
            f"{np.ravel(arr).tolist()} of dtype {arr.dtype}."
        )
    ok = in_interval(arr, low, high, low_open=low_open, high_open=high_open, integer=integer)
    if not np.all(ok):
        bad = np.ravel(arr)[~np.ravel(ok)]
        raise InvalidArgumentError(
            f"sweep field `{name}` must hold {kind}{span}, got {bad.tolist()} among "
            f"{np.ravel(arr).tolist()}."
        )


_RUNNERS: dict = {}
_COMPILED: dict = {}


def _cache_key(*parts):
    try:
        hash(parts)
    except TypeError:  # an unhashable function or configuration: no caching
        return None
    return parts


def _chunk_runner(fn, static, mesh):
    """The jitted program for one chunk of `fn` (cached, so repeated sweeps do not retrace).

    `shard_map`: every device vmaps over its own share of the chunk, with no collectives, so no
    device ever waits on another (automatically partitioned programs could insert some, and
    virtual CPU devices on few cores can then stall).
    """
    leaves, treedef = jax.tree_util.tree_flatten(static)
    key = _cache_key(fn, tuple(leaves), treedef, tuple(mesh.devices.flat))
    if key is not None and key in _RUNNERS:
        return _RUNNERS[key]

    def point(dyn, fields):
        return fn(_with_fields(eqx.combine(dyn, static), fields))

    run_chunk = jax.jit(
        jax.shard_map(
            lambda dyn, chunk: jax.vmap(functools.partial(point, dyn))(chunk),
            mesh=mesh,
            in_specs=(PartitionSpec(), PartitionSpec("sweep")),
            out_specs=PartitionSpec("sweep"),
            check_vma=False,
        )
    )
    if key is not None:
        _RUNNERS[key] = run_chunk
    return run_chunk


def _compile(run_chunk, dyn, chunk):
    """Ahead-of-time compile the chunk program once per input shapes, and its memory need.

    The memory need is XLA's analysis of this same executable (no second, probing compile);
    the executable is cached, so a repeated sweep neither traces nor compiles.
    """
    spec = jax.tree_util.tree_map(lambda x: (x.shape, str(x.dtype), x.sharding), (dyn, chunk))
    key = _cache_key(run_chunk, jax.tree_util.tree_structure((dyn, chunk)), str(spec))
    if key is not None and key in _COMPILED:
        return _COMPILED[key]
    compiled = run_chunk.lower(dyn, chunk).compile()
    mem = compiled.memory_analysis()
    need = 0
    if mem is not None:
        need = sum(
            getattr(mem, a, 0) or 0
            for a in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes")
        )
    if key is not None:
        _COMPILED[key] = (compiled, int(need))
    return compiled, int(need)


def _to_global(tree, sharding: NamedSharding):
    """Place host values identical on every process as arrays over the mesh.

    Single-process, one batched `device_put`; over several processes, each process fills only
    the shards of its own devices from its copy of the values.
    """
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(one, tree)


def _to_host(tree):
    """The full values of result arrays on every process (gathered from the others if needed).

    Single-process, one batched `device_get` (one wait, not one per array).
    """
    if all(x.is_fully_addressable for x in jax.tree_util.tree_leaves(tree)):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def sweep(
    fn: Callable[[Any], Any],
    points_: Grid,
    *,
    base=None,
    chunk_size: int | None = None,
    devices=None,
    progress: bool = False,
    memory_limit: int | None = None,
    check: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> SweepResult:
    """Evaluate `fn(config)` at every grid point with one compiled, sharded chunk program.

    The grid is split into chunks of `chunk_size` points per device; one program (traced,
    lowered and compiled once, ahead of time, for the chunk's shapes) vmaps `fn` over a chunk,
    each device over its share, and the host dispatches it once per chunk. Memory is bounded
    by one chunk; a repeated sweep of the same `fn` and shapes reuses the executable.

    Several processes (e.g. hosts): call `jax.distributed.initialize(...)` first on every
    process, then the same `sweep` call on every process; `jax.devices()` then lists the
    devices of all processes, each process computes the points of its own devices, and every
    process gets the whole result (gathered over CPU collectives, gloo, on CPU).

    **Arguments:**

    - `fn`: a pure function of a configuration pytree returning a pytree of arrays. It must
      treat the swept fields as traced values (e.g. Carleman order through `max_order`).
    - `points_`: a `grid(...)` or `points(...)`.
    - `base`: the fixed configuration: `None` (config is the dict of swept fields), a dict, or an
      `eqx.Module`; swept names must be its keys / fields.
    - `chunk_size`: points evaluated at once per device (default: all points in one chunk).
    - `devices`: devices to shard over (default `jax.devices()`, all processes' devices).
    - `progress`: draw a bar over the chunks on stderr (the computation is unaffected).
    - `memory_limit`: bytes one compiled chunk may use per device (XLA's own memory analysis);
      above it a `MemoryLimitError` suggests a smaller `chunk_size`.
    - `check`: `check(values)` validates the configuration before anything is traced;
      `values` maps each swept name to its numpy column and each concrete scalar field of
      `base` to a 0-d array. Default: the check the target declares (`sweep_target`), looked
      up through `functools.partial`, so a grid value outside a target's range (a negative
      learning rate, a sparsity of 1.5, 0 shots) is an error, as in an eager call.

    **Returns:** a `SweepResult` whose `values` leaves are numpy arrays shaped like the grid
    (`grid.shape` followed by the shape of `fn`'s output leaf).
    """
    g = points_
    if not isinstance(g, Grid):
        raise InvalidArgumentError(
            f"`points_` must be a `grid(...)` or `points(...)`, got {type(g).__name__}."
        )
    known = _field_names(base)
    if known is not None and not set(g.names) <= known:
        unknown = sorted(set(g.names) - known)
        raise InvalidArgumentError(
            f"grid axes {unknown} are not fields of the configuration; fields: {sorted(known)}."
        )
    check_config = _config_check(fn) if check is None else check
    if check_config is not None:  # the target's declared ranges, on concrete values, eagerly
        check_config(_config_values(g, base))
    devices = list(jax.devices() if devices is None else devices)
    n_dev = len(devices)
    total = g.size
    per_dev = math.ceil(total / n_dev)
    if chunk_size is None:
        chunk_size = per_dev
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise InvalidArgumentError(f"`chunk_size` must be a positive integer, got {chunk_size!r}.")
    chunk_size = min(chunk_size, per_dev)
    width = chunk_size * n_dev  # points per chunk across all devices
    n_chunks = math.ceil(total / width)
    padded = n_chunks * width  # padding repeats the first point; it is cut off at the end

    mesh = jax.make_mesh(
        (n_dev,), ("sweep",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
    )
    sharding = NamedSharding(mesh, PartitionSpec("sweep"))
    cols = {
        k: np.concatenate([v, np.repeat(v[:1], padded - total)]).astype(
            np.int32 if v.dtype.kind in "biu" else jnp.result_type(float)
        )
        for k, v in g.columns.items()
    }

    dyn, static = eqx.partition(base, eqx.is_array)
    dyn = _to_global(dyn, NamedSharding(mesh, PartitionSpec()))
    run_chunk = _chunk_runner(fn, static, mesh)

    def put(c):
        return _to_global({k: v[c * width : (c + 1) * width] for k, v in cols.items()}, sharding)

    compiled, need = _compile(run_chunk, dyn, put(0))
    check_memory(f"One sweep chunk ({chunk_size} points per device)", need // n_dev, memory_limit)
    # dispatch is asynchronous: the host queues every chunk, then waits for the results
    outs = _to_host(
        [
            compiled(dyn, put(c))
            for c in progress_bar(range(n_chunks), enabled=progress, desc=f"sweep ({total} points)")
        ]
    )
    values = jax.tree_util.tree_map(
        lambda *xs: np.concatenate([np.asarray(x) for x in xs])[:total].reshape(
            *g.shape, *xs[0].shape[1:]
        ),
        *outs,
    )
    return SweepResult(g, values)


def loop(fn: Callable[[Any], Any], points_: Grid, *, base=None) -> SweepResult:
    """Reference: evaluate `fn` point by point in a Python loop (one jitted call per point).

    **Arguments:**

    - `fn`: the function `sweep` would evaluate.
    - `points_`: a `grid(...)` or `points(...)`.
    - `base`: the fixed configuration, as for `sweep`.

    **Returns:** a `SweepResult` equal to `sweep(fn, points_, base=base)` up to rounding.
    """
    one = jax.jit(lambda fields: fn(_with_fields(base, fields)))
    rows = []
    for i in range(points_.size):
        fields = {k: jnp.asarray(v[i]) for k, v in points_.columns.items()}
        rows.append(jax.tree_util.tree_map(np.asarray, one(fields)))
    values = jax.tree_util.tree_map(
        lambda *xs: np.stack(xs).reshape(*points_.shape, *xs[0].shape), *rows
    )
    return SweepResult(points_, values)
