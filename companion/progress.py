"""Progress bars for the book's training and sampling loops.

``tqdm`` here is tqdm's own class with one addition: the environment variable
``COMPANION_PROGRESS`` chooses how bars are drawn.

* ``live`` (the default): an ordinary tqdm bar, redrawn as the loop runs.
* ``summary``: nothing while the loop runs, then the final state of the bar on one
  line when it closes. The book build and the test suite use this (the Makefile sets it),
  because a notebook's captured output keeps every redraw of a live bar, and a rendered
  page would show dozens of lines of progress.
* ``off``: no bar at all.
"""

from __future__ import annotations

import io
import os
import sys

from tqdm import tqdm as _tqdm

ENV_VAR = "COMPANION_PROGRESS"
MODES = ("live", "summary", "off")


def progress_mode() -> str:
    """The drawing mode chosen by ``COMPANION_PROGRESS`` (default ``live``)."""
    mode = os.environ.get(ENV_VAR, "").strip() or "live"
    if mode not in MODES:
        raise ValueError(
            f"{ENV_VAR}={mode!r} is not a mode; accepted: {', '.join(map(repr, MODES))}"
        )
    return mode


class tqdm(_tqdm):  # noqa: N801 - a drop-in for tqdm.tqdm
    """``tqdm.tqdm`` that honours ``COMPANION_PROGRESS`` (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        self._summary_to = None
        try:
            mode = progress_mode()
        except ValueError:
            self.disable = True  # tqdm's finaliser reads it even when __init__ failed
            raise
        if mode == "off":
            kwargs["disable"] = True
        if mode == "summary" and not kwargs.get("disable", False):
            self._summary_to = kwargs.get("file") or sys.stderr
            kwargs["file"] = io.StringIO()  # swallow the redraws
            kwargs.setdefault("ascii", False)  # a StringIO would make tqdm fall back to '#'

        super().__init__(*args, **kwargs)

    def close(self):
        was_open = not self.disable
        super().close()
        if self._summary_to is not None and was_open:
            self._summary_to.write(f"{self}\n")
            self._summary_to.flush()
