"""Measure the book's speed and quality figures: ``python -m companion.bench``.

Prints one JSON document and writes it to ``--out`` (default ``bench.json``). Sections:

* every module in ``companion.benchmarks`` (``run(device) -> dict``), under its name;
* ``notebooks``: the wall-clock execution time of every notebook under ``book/``, each
  run from a cold kernel in its own directory, as the book build runs it.

Targets (time budgets, quality thresholds) are checked here and reported under
``targets``; the command exits 1 if any target is missed, so that timing never becomes
a flaky unit test.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

import torch

from companion import benchmarks
from companion.device import describe_device, pick_device

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_BUDGET_S = 180.0  # each notebook, on a 2-core CPU
BOOK_BUDGET_S = 900.0  # all notebooks together, on a 2-core CPU


def notebook_paths(root: Path = ROOT) -> list[Path]:
    """Every MyST page under ``book/`` that has code cells."""
    return sorted(p for p in (root / "book").rglob("*.md") if "{code-cell}" in p.read_text())


def time_notebook(path: Path, timeout: int = 600) -> float:
    """Execute one MyST notebook from a fresh kernel and return its wall time in seconds."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def run_notebooks(paths: list[Path]) -> dict:
    times = {}
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        print(f"executing {rel} ...", end=" ", file=sys.stderr, flush=True)
        times[rel] = round(time_notebook(path), 1)
        print(f"{times[rel]} s", file=sys.stderr, flush=True)
    return {"seconds": times, "total_seconds": round(sum(times.values()), 1)}


def check_targets(results: dict) -> dict:
    """Compare measured figures with the book's budgets and thresholds."""
    checks = {}
    nbs = results.get("notebooks")
    if nbs:
        for rel, seconds in nbs["seconds"].items():
            checks[f"notebook {rel} <= {NOTEBOOK_BUDGET_S:.0f} s"] = seconds <= NOTEBOOK_BUDGET_S
        if len(nbs["seconds"]) == len(notebook_paths()):
            checks[f"all notebooks <= {BOOK_BUDGET_S:.0f} s"] = (
                nbs["total_seconds"] <= BOOK_BUDGET_S
            )
    for name, section in results.items():
        if isinstance(section, dict):
            for target, ok in section.get("targets", {}).items():
                checks[f"{name}: {target}"] = bool(ok)
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*names, "notebooks"],
        help="run only these sections (default: all)",
    )
    parser.add_argument(
        "--notebook", nargs="+", type=Path, help="time only these notebooks (paths)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON output file")
    parser.add_argument("--device", default=None, help="cpu, mps, cuda or cuda:N")
    args = parser.parse_args(argv)

    try:
        device = pick_device(args.device)
    except (ValueError, TypeError, RuntimeError) as err:
        parser.error(str(err))
    if args.notebook:
        if args.only and "notebooks" not in args.only:
            parser.error("--notebook needs the notebooks section: add 'notebooks' to --only")
        book = (ROOT / "book").resolve()
        for path in args.notebook:
            resolved = path.resolve()
            if not resolved.is_file() or book not in resolved.parents:
                parser.error(f"--notebook {path}: not a page under {book}")
    if not args.out.resolve().parent.is_dir():
        parser.error(f"--out {args.out}: folder {args.out.resolve().parent} does not exist")
    results: dict = {
        "environment": {
            "device": describe_device(device),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        }
    }
    selected = args.only or [*names, "notebooks"]
    for name in names:
        if name in selected:
            print(f"benchmark {name} ...", file=sys.stderr, flush=True)
            module = importlib.import_module(f"{benchmarks.__name__}.{name}")
            start = time.perf_counter()
            results[name] = module.run(device)
            results[name]["wall_seconds"] = round(time.perf_counter() - start, 1)
    if "notebooks" in selected:
        paths = [p.resolve() for p in args.notebook] if args.notebook else notebook_paths()
        results["notebooks"] = run_notebooks(paths)
    results["targets"] = check_targets(results)
    text = json.dumps(results, indent=2)
    print(text)
    args.out.write_text(text + "\n")
    return 0 if all(results["targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
