"""Sphinx extension for the offline HTML book: check the local browser assets, tidy the scripts.

`scripts/book_assets.sh` unpacks pinned npm packages (MathJax, the widget manager, RequireJS) into
`.web/static`, which `_config.yml` serves as static files; a build without them would fall back to
nothing, so it stops with a hint. `static/widgets-offline.js` lets the widget manager find its own
files and typeset with MathJax 3; sphinx-thebe adds its settings script twice (a JavaScript error).
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

OWN_STATIC = Path(__file__).parent / "static"  # widgets-offline.js


def check_local_assets(app: Sphinx, config: Config) -> None:
    """Refuse to build unless MathJax and the widget scripts that the configuration names are
    files in one of its static folders."""
    folders = [Path(app.confdir) / folder for folder in config.html_static_path]
    required = [config.mathjax_path, *config.nb_ipywidgets_js]
    missing = [name for name in required if not any((f / name).is_file() for f in folders)]
    if missing:
        raise ConfigError(
            f"the book's browser assets are missing from {', '.join(map(str, folders))} "
            f"({', '.join(missing)}); run scripts/book_assets.sh (make book does)"
        )
    config.html_static_path = [*config.html_static_path, str(OWN_STATIC)]


def arrange_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Keep the first of identical script tags (same file, or none, and the same inline body),
    and load widgets-offline.js right after RequireJS on pages that show widgets."""
    seen: set[tuple[str, str]] = set()
    arranged = []
    for script in context.get("script_files", []):
        key = (str(script.filename or ""), str(script.attributes.get("body", "")))
        if key in seen:
            continue
        seen.add(key)
        arranged.append(script)
        if script.filename == "_static/require.js":
            arranged.append(type(script)("_static/widgets-offline.js", priority=script.priority))
    context["script_files"] = arranged


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", check_local_assets)
    app.connect("html-page-context", arrange_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
