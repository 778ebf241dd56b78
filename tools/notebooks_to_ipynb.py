"""Convert the book's MyST notebooks to .ipynb for nbval.

Usage: python tools/notebooks_to_ipynb.py OUTDIR [PAGE.md ...]

With no pages, converts every page under book/ that has code cells. The relative layout
under book/ is kept, so two chapters with the same file name do not collide. Prints the
paths written, one per line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    pages = [Path(p).resolve() for p in argv[1:]] or sorted(BOOK.rglob("*.md"))
    for page in pages:
        if not page.is_file():
            print(f"no such page: {page}", file=sys.stderr)
            return 2
        if not page.is_relative_to(BOOK):
            print(f"{page} is not under {BOOK}: pages live in book/<part>/", file=sys.stderr)
            return 2
        if "{code-cell}" not in page.read_text(encoding="utf-8"):
            if argv[1:]:  # a page named explicitly must be a notebook
                print(f"{page} has no code cells: nothing to test", file=sys.stderr)
                return 2
            continue
        target = out / page.relative_to(BOOK).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(jupytext.read(page), target)
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
