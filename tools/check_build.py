"""Fail if the built book is missing a notebook's outputs.

Usage: python tools/check_build.py _build/html

Jupyter Book writes a traceback to ``reports/*.err.log`` for every notebook whose
execution failed; with ``--keep-going`` the build can otherwise finish. This script
makes such a failure fatal, and checks that every page in ``_toc.yml`` with code cells
produced HTML with executed outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[Path]:
    """Source files of every page the table of contents lists."""
    data = yaml.safe_load(toc.read_text(encoding="utf-8"))
    entries = [data["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data.get("parts", []))
    return [ROOT / f"{entry}.md" for entry in entries]


def main(argv: list[str]) -> int:
    html = Path(argv[0]) if argv else ROOT / "_build" / "html"
    problems = [f"execution failed: {log}" for log in sorted(html.glob("reports/**/*.log"))]
    for page in toc_pages():
        if "{code-cell}" not in page.read_text(encoding="utf-8"):
            continue
        built = html / page.relative_to(ROOT).with_suffix(".html")
        if not built.exists():
            problems.append(f"no HTML for {page.relative_to(ROOT)}")
        elif "cell_output" not in built.read_text(encoding="utf-8"):
            problems.append(f"no executed outputs in {built.relative_to(html)}")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
