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

# Topic pages of the top level (`qsgd_jax`): (page slug, title, intro, the public names it
# documents, in order). A top-level name in no topic lands on the "Other" page with a warning.
# Every public namespace (`qsgd_jax/<name>.py`, imported in `__init__.py` as `from . import
# (name as name)`) gets a page of its own, titled by its module docstring.
TOPICS = [
    (
        "taylor",
        "Taylor models and GD maps",
        "The loss's Taylor model on the active set, the GD map and its fields.",
        ["AbstractField", "DenseField", "LossField", "taylor_field", "PolynomialMap"]
        + ["polynomial_map", "gd_map", "field_map"],
    ),
    (
        "carleman",
        "Carleman linearization",
        "The Carleman operator, its state (dense blocks or factored) and dissipation.",
        ["CarlemanOperator", "carleman", "AbstractCarlemanState", "DenseState", "FactoredState"]
        + ["Dissipation", "dissipation"],
    ),
    (
        "evolution",
        "Evolution methods",
        "The evolution-method family, evolve, errors against exact GD and the error budget.",
        ["AbstractEvolution", "Discrete", "Euler", "TruncatedTaylor", "Expm", "evolve"]
        + ["Trajectory", "carleman_error", "CarlemanError", "error_budget", "ErrorBudget"],
    ),
    (
        "window",
        "Quantum windows and training",
        "One quantum window, the optax-facing optimizer and the hybrid pipeline.",
        ["WindowConfig", "WindowReport", "quantum_window", "quantum_window_optimizer"]
        + ["HybridConfig", "HybridResult", "hybrid_run", "Observation", "WindowEvent"],
    ),
    (
        "sweep",
        "Sweeps",
        "Grids of configurations in one compiled, vmapped, sharded program.",
        ["grid", "sweep", "SweepResult"],
    ),
    (
        "results",
        "Results and errors",
        "The result enum and the exceptions.",
        ["RESULTS", "NonFiniteError", "MemoryLimitError"],
    ),
]


def _exports(module: pathlib.Path) -> dict[str, list[str]]:
    """Private module -> public names a module re-exports (`from ._x import (n as n)`, in order)."""
    out: dict[str, list[str]] = {}
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names = [a.asname or a.name for a in node.names if a.asname == a.name]
            if names:
                out.setdefault("_" + node.module.lstrip("_"), []).extend(names)
    return out


def _namespaces(init: pathlib.Path) -> list[str]:
    """The public namespaces `__init__.py` imports (`from . import (readout as readout, ...)`)."""
    return [
        a.name
        for node in ast.parse(init.read_text()).body
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
        for a in node.names
        if a.asname == a.name
    ]


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


def _checked(path: pathlib.Path) -> dict[str, list[str]]:
    """`_exports(path)` without names the private module does not define, with a warning."""
    exports = _exports(path)
    for module, names in exports.items():
        missing = [n for n in names if n not in _defined(module)]
        if missing:
            # A clear message instead of griffe's alias-resolution traceback; with --strict the
            # build fails, as importing the package would.
            log.warning(
                f"{path.name} exports {missing} from {module}, which does not define them; "
                "they are left out of the API reference."
            )
            exports[module] = [n for n in names if n not in missing]
    return exports


def _blocks(prefix: str, names: list[str]) -> str:
    return "\n\n".join(f"::: {prefix}.{n}" for n in names)


def _api_pages() -> tuple[dict[str, str], dict[str, str]]:
    """(`api/<slug>.md` -> Markdown with one `:::` block per public name, uri -> nav title)."""
    init = ROOT / "qsgd_jax" / "__init__.py"
    exports = _checked(init)
    pages, titles = {}, {}
    index = [
        "# API reference\n",
        "The top level (`import qsgd_jax as qj`) is the paper's pipeline; the satellites are "
        "namespaces (`qj.readout`, `qj.ml`, ...); `qsgd_jax.experiments` is the experiment "
        "framework.\n",
        "**The pipeline (`qsgd_jax`)**\n",
    ]
    public = [n for names in exports.values() for n in names]
    listed = {n for *_, names in TOPICS for n in names}
    for n in sorted(listed - set(public)):
        log.warning(f"docs/hooks.py lists {n!r}, which qsgd_jax does not export.")
    other = [n for n in public if n not in listed]
    if other:
        log.warning(f"top-level names in no topic of docs/hooks.py (on 'Other'): {other}")
    topics = [*TOPICS, ("other", "Other", "Public names of no topic above.", other)]
    for slug, title, intro, names in topics:
        names = [n for n in names if n in public]
        if names:
            pages[f"api/{slug}.md"] = f"# {title}\n\n{intro}\n\n{_blocks('qsgd_jax', names)}\n"
            titles[f"api/{slug}.md"] = title
            index.append(f"- [{title}]({slug}.md): {intro}")
    index.append("\n**Namespaces**\n")
    for ns in _namespaces(init):
        path = ROOT / "qsgd_jax" / f"{ns}.py"
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        intro = doc.split("\n\n")[0].replace("\n", " ")
        names = [n for ns_names in _checked(path).values() for n in ns_names]
        uri = f"api/{ns}.md"
        pages[uri] = f"# `qsgd_jax.{ns}`\n\n{intro}\n\n{_blocks(f'qsgd_jax.{ns}', names)}\n"
        titles[uri] = f"qsgd_jax.{ns}"
        index.append(f"- [`qsgd_jax.{ns}`]({ns}.md): {intro}")
    index.append("- [Experiments](experiments.md): the experiment registry and runner.")
    pages["api/index.md"] = "\n".join(index) + "\n"
    pages["api/experiments.md"] = (
        "# `qsgd_jax.experiments`\n\n::: qsgd_jax.experiments\n"
        "    options:\n      show_root_heading: false\n      show_submodules: false\n"
    )
    titles["api/experiments.md"] = "qsgd_jax.experiments"
    return pages, titles


_PAGES: dict[str, str] = {}


def on_config(config):
    # The nav entry "API reference" (in mkdocs.yml: `- API reference: api/index.md`) becomes a
    # section with the generated topic pages, whichever topics have public names.
    _PAGES.clear()
    pages, titles = _api_pages()
    _PAGES.update(pages)
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
    shutil.copytree(
        src / "input" / "tex" / "extensions",
        dest / "input" / "tex" / "extensions",
        dirs_exist_ok=True,
    )
