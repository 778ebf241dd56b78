"""Two additions to the book's HTML, loaded as a local Sphinx extension.

1. Offer each notebook page's executed ``.ipynb`` in the download menu. MyST-NB writes
   the executed notebooks under ``_build/jupyter_execute``; sphinx-book-theme shows an
   ``.ipynb`` download entry when the page context names one (``ipynb_source``), which
   nothing in our tool chain sets. We copy the notebook next to the page sources and
   name it.
2. sphinx-thebe 0.3.1 adds an inline script after the HTML builder has started; Sphinx 7.4
   then lists it twice on every page (once with filename ``None``, once with ``""``), so
   the page declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError.
   We drop duplicate script entries (same file, same attributes) from each page. The
   theme's empty default colour mode, the other console error we met, is fixed in
   ``_config.yml`` (``html_context.default_mode``).
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _offer_ipynb(app, pagename, templatename, context, doctree):
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if doctree is None or not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (script.filename or None, tuple(sorted(script.attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique


def setup(app):
    # Run early: Sphinx stops calling this event's listeners once one returns a value.
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    app.connect("html-page-context", _offer_ipynb, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
