"""Two additions to the book's HTML, loaded as a local Sphinx extension.

1. Offer each notebook page's executed ``.ipynb`` in the download menu.
   sphinx-book-theme shows an ``.ipynb`` download entry when the page context names one
   (``ipynb_source``), which nothing in our tool chain sets. We take the executed
   notebook from the execution cache, write it next to the page sources and name it.
2. sphinx-thebe 0.3.1 adds an inline script after the HTML builder has started; Sphinx 7.4
   then lists it twice on every page (once with filename ``None``, once with ``""``), so
   the page declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError.
   We drop duplicate script entries (same file, same attributes) from each page. The
   theme's empty default colour mode, the other console error we met, is fixed in
   ``_config.yml`` (``html_context.default_mode``).
"""

from __future__ import annotations

from pathlib import Path


def _executed_notebook(app, pagename: str):
    """The executed notebook of a page, with its outputs, from the execution cache."""
    import jupytext
    from jupyter_cache import get_cache

    source = Path(app.srcdir) / f"{pagename}.md"
    cache_path = app.config.nb_execution_cache_path
    if not source.is_file() or not cache_path or not Path(cache_path).exists():
        return None
    cache = get_cache(cache_path)
    try:
        record = cache.match_cache_notebook(jupytext.read(source))
    except KeyError:
        return None
    return cache.get_cache_bundle(record.pk).nb


def _offer_ipynb(app, pagename, templatename, context, doctree):
    # MyST-NB rewrites _build/jupyter_execute/*.ipynb without outputs when a build takes
    # them from the cache, so the notebook is read from the cache itself.
    if doctree is None or "{code-cell}" not in _source_text(app, pagename):
        return
    import nbformat

    notebook = _executed_notebook(app, pagename)
    if notebook is None:
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _source_text(app, pagename: str) -> str:
    source = Path(app.srcdir) / f"{pagename}.md"
    return source.read_text(encoding="utf-8") if source.is_file() else ""


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
