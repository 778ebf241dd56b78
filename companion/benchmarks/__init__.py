"""Benchmark sections for ``python -m companion.bench``.

Each module here defines ``run(device: torch.device) -> dict`` returning JSON-ready
figures (numbers, strings, lists). ``python -m companion.bench`` discovers the modules,
runs them in name order and collects their results under the module's name.
"""
