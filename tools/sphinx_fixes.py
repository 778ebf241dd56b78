"""A fix for the book's HTML, loaded as a local Sphinx extension.

sphinx-thebe 0.3.1 adds an inline script after the HTML builder has started; Sphinx 7.4
then lists it twice on every page (once with filename ``None``, once with ``""``), so the
page declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError. We drop
duplicate script entries (same file, same attributes) from each page. The theme's empty
default colour mode, the other console error we met, is fixed in ``_config.yml``
(``html_context.default_mode``).
"""

from __future__ import annotations


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
    return {"parallel_read_safe": True, "parallel_write_safe": True}
