"""The library's one Markdown table writer."""

from __future__ import annotations

from typing import Any


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """The library's one Markdown table writer (experiment reports, the demo).

    **Arguments:**

    - `header`: the column titles.
    - `rows`: the rows, one value per column; floats are printed with 4 significant digits,
      anything else (e.g. pre-formatted strings) with `str`.

    **Returns:** the table as a string (header, separator, one line per row).
    """

    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
