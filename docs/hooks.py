"""MkDocs hooks: the API reference pages from `qsgd_jax/__init__.py`, and a local MathJax.

- API pages are generated at build time from the package's explicit re-exports (`from ._x import
  (name as name, ...)`), read with `ast` (nothing is imported), grouped by topic: a public name
  added to `__init__.py` appears in the reference without editing the docs.
- MathJax is copied from the `django-static-mathjax` wheel (a plain copy of MathJax 3, part of the
  `docs` extra) into `site/assets/mathjax/`, so the math renders without network access. Without
  it the pages show the TeX source.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import pathlib
import shutil

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.qsgd_jax")
ROOT = pathlib.Path(__file__).resolve().parent.parent

# Topic pages of the API reference: (page slug, title, intro, private modules it covers).
TOPICS = [
    ("taylor", "Taylor models and GD maps",
     "The loss's Taylor model on the active set, the GD map and its fields.",
     ["_loss_model", "_polynomial", "_field", "_toy"]),
    ("carleman", "Carleman linearization",
     "Carleman operators (forms, orders), evolution, errors against exact GD, dissipation.",
     ["_carleman", "_factored", "_evolve", "_dissipation", "_budget"]),
    ("evolution", "Taylor / LCU evolution and circuits",
     "Truncated Taylor series of the flow form, LCU normalizations, circuit-level checks.",
     ["_taylor", "_circuit"]),
    ("history", "History system and condition number",
     "The history-state linear system, kappa, target probability.",
     ["_history", "_condition"]),
    ("readout", "Read-out and re-upload",
     "Tomography from measurement statistics, amplitude estimation, download and upload cost.",
     ["_readout", "_tomography", "_norm_estimation", "_upload"]),
    ("resources", "Resources", "Query, qubit and sample counts against classical FLOPs.",
     ["_resources"]),
    ("window", "Quantum windows and training",
     "One quantum window, the optax-facing optimizer, the hybrid pipeline, your own models.",
     ["_window", "_optax_window", "_hybrid", "_adapters"]),
    ("spectrum", "Spectra and the error-propagation curve",
     "Hessian operators, Lanczos / SLQ spectra, E(t) and the paper's proxy, their plots.",
     ["_spectrum", "_lanczos", "_propagation", "_plots_spectrum"]),
    ("sweep", "Sweeps", "Grids of configurations in one compiled, vmapped, sharded program.",
     ["_sweep", "_sweep_targets", "_pruned_window"]),
    ("data", "Data, models and pruning", "Data sets, flax models with a pure loss, pruning.",
     ["_data", "_models", "_prune"]),
    ("burgers", "Burgers benchmark", "The PNAS forced viscous Burgers benchmark.",
     ["_burgers"]),
    ("utilities", "Errors, statuses and progress",
     "Exceptions, result statuses, progress bars for host-side loops.",
     ["_errors", "_status", "_progress"]),
]  # fmt: skip


def _exports(init: pathlib.Path) -> dict[str, list[str]]:
    """Private module -> public names it re-exports (in `__init__.py` order)."""
    out: dict[str, list[str]] = {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names = [a.asname or a.name for a in node.names if a.asname == a.name]
            if names:
                out.setdefault("_" + node.module.lstrip("_"), []).extend(names)
    return out


def _defined(module: str) -> set[str]:
    """Top-level names a private module defines or imports (read with `ast`)."""
    path = ROOT / "qsgd_jax" / f"{module}.py"
    if not path.is_file():  # a private package (`_readout/`): its `__init__.py` re-exports
        path = ROOT / "qsgd_jax" / module / "__init__.py"
    if not path.is_file():
        return set()
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _api_pages() -> dict[str, str]:
    """`api/<slug>.md` -> Markdown with one `:::` block per public name."""
    exports = _exports(ROOT / "qsgd_jax" / "__init__.py")
    for module, names in exports.items():
        defined = _defined(module)
        missing = [n for n in names if n not in defined]
        if missing:
            # A clear message instead of griffe's alias-resolution traceback; with --strict the
            # build fails, as importing the package would.
            log.warning(f"qsgd_jax/__init__.py exports {missing} from {module}, which does not "
                        "define them; they are left out of the API reference.")  # fmt: skip
            exports[module] = [n for n in names if n in defined]
    pages, seen = {}, set()
    topics = [*TOPICS, ("other", "Other", "Public names of other modules.", None)]
    for slug, title, intro, modules in topics:
        mods = modules if modules is not None else [m for m in exports if m not in seen]
        seen.update(mods)
        names = [n for m in mods for n in exports.get(m, [])]
        if not names:
            continue
        blocks = "\n\n".join(f"::: qsgd_jax.{n}" for n in names)
        pages[f"api/{slug}.md"] = f"# {title}\n\n{intro}\n\n{blocks}\n"
    index = ["# API reference\n", "Everything below is importable as `import qsgd_jax as qj`; "
             "`qsgd_jax.experiments` is the experiment framework.\n"]  # fmt: skip
    for slug, title, intro, _ in topics:
        if f"api/{slug}.md" in pages:
            index.append(f"- [{title}]({slug}.md): {intro}")
    index.append("- [Experiments](experiments.md): the experiment registry and runner.")
    pages["api/index.md"] = "\n".join(index) + "\n"
    pages["api/experiments.md"] = (
        "# `qsgd_jax.experiments`\n\n::: qsgd_jax.experiments\n"
        "    options:\n      show_root_heading: false\n      show_submodules: false\n"
    )
    return pages


_PAGES: dict[str, str] = {}


def on_config(config):
    # The nav entry "API reference" (in mkdocs.yml: `- API reference: api/index.md`) becomes a
    # section with the generated topic pages, whichever topics have public names.
    _PAGES.clear()
    _PAGES.update(_api_pages())
    titles = {f"api/{slug}.md": title for slug, title, _, _ in TOPICS}
    titles |= {"api/other.md": "Other", "api/experiments.md": "qsgd_jax.experiments"}
    section = [{"Overview": "api/index.md"}] + [
        {titles[uri]: uri} for uri in _PAGES if uri != "api/index.md"
    ]
    for i, item in enumerate(config["nav"] or []):
        if isinstance(item, dict) and item.get("API reference") == "api/index.md":
            config["nav"][i] = {"API reference": section}
    return config


def on_files(files, config):
    for uri, content in _PAGES.items():
        files.append(File.generated(config, uri, content=content))
    return files


def on_post_build(config):
    spec = importlib.util.find_spec("mathjax")  # find_spec does not run the package's __init__
    src = None
    if spec is not None and spec.submodule_search_locations:
        src = pathlib.Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    if src is None or not (src / "tex-svg.js").is_file():
        log.warning("MathJax not found (pip install -e '.[docs]'): math shows as TeX source.")
        return
    dest = pathlib.Path(config["site_dir"]) / "assets" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    # SVG output: the glyphs are paths inside the component, so no font files are fetched (web
    # fonts would not load from file:// pages). The TeX extensions are what `autoload` fetches
    # on first use of a macro outside the core set.
    shutil.copy2(src / "tex-svg.js", dest / "tex-svg.js")
    shutil.copytree(src / "input" / "tex" / "extensions", dest / "input" / "tex" / "extensions",
                    dirs_exist_ok=True)  # fmt: skip
