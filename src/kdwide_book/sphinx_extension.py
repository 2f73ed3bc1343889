"""The book's Sphinx extension (``_config.yml``: ``extra_extensions: [kdwide_book.sphinx_extension]``).

:func:`setup` keeps every page offline-clean: it drops the inline scripts that Sphinx lists twice (Jupyter Book's
``sphinx-thebe`` and ``sphinx-togglebutton`` add theirs once with ``None`` and once with ``""`` as file name, and the
second ``const THEBE_JS_URL`` is a JavaScript error in the browser), and it warns (an error under ``-W``) about any
script or stylesheet that a page would load from another site, and about any page content (cell outputs, raw HTML)
that would. It also registers the bibliography style ``kdwide`` (pybtex's ``plain`` with author-year labels,
"Hinton et al., 2015"), so that the reference list matches the author-year citations in the text.

It imports neither JAX nor :mod:`kdwide` (a test checks it), so the book build stays light; Sphinx and pybtex are
imported where they are used, because they are the ``book`` extra, which the current environment does not install.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["author_year_label", "deduplicate_assets", "external_assets", "external_references", "setup"]


def _asset_key(asset: Any) -> tuple[str, int, tuple[tuple[str, str], ...]]:
    attributes = getattr(asset, "attributes", {}) or {}
    return (str(getattr(asset, "filename", asset) or ""), int(getattr(asset, "priority", 500)),
            tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def deduplicate_assets(assets: Sequence[Any]) -> list[Any]:
    """``assets`` (Sphinx ``_JavaScript``/``_CascadingStyleSheet``) in order, without repeats.

    Two assets are the same when file name (``None`` counts as ``""``), priority and attributes agree.
    """
    seen: set[tuple[str, int, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for asset in assets:
        key = _asset_key(asset)
        if key not in seen:
            seen.add(key)
            unique.append(asset)
    return unique


def external_assets(assets: Sequence[Any]) -> list[str]:
    """File names of the ``assets`` that a browser would fetch from another site (``scheme://`` or ``//``)."""
    names = [str(getattr(asset, "filename", asset) or "") for asset in assets]
    return [name for name in names if "://" in name or name.startswith("//")]


#: tags whose ``src``/``href``/``data`` the browser fetches by itself (``<a href>`` is a link, not a load)
_LOADING_TAG = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed|object|track|input)\b[^>]*?\b(src|href|data|srcset)\s*=\s*"
    r"[\"']?\s*((?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^\"'\s>]+)", re.IGNORECASE)


def external_references(html: str) -> list[str]:
    """Addresses on another site that ``html`` (e.g. a page body with cell outputs) makes the browser load.

    Example:
      >>> external_references('<script src="https://cdn.plot.ly/p.js"></script><a href="https://x.org">x</a>')
      ['https://cdn.plot.ly/p.js']
    """
    return [match.group(3) for match in _LOADING_TAG.finditer(html)]


def _page_assets(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    from sphinx.util import logging

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = deduplicate_assets(context[key])
            for name in external_assets(context[key]):
                logging.getLogger(__name__).warning(
                    f"page {pagename!r} would load {name} from the network; the book must work offline "
                    f"(serve it from _static, see _config.yml)", type="kdwide", subtype="offline")
    for address in external_references(context.get("body", "")):  # cell outputs and raw HTML in the text
        logging.getLogger(__name__).warning(
            f"page {pagename!r} has content that loads {address} from the network; the book must work offline "
            f"(serve it from _static)", type="kdwide", subtype="offline")


def author_year_label(entry: Any) -> str:
    """"Hinton et al., 2015", "Phuong and Lampert, 2019", "Hinton, 2015" for a pybtex entry (braces dropped)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [re.sub(r"[{}]", "", " ".join(p.last_names) or " ".join(p.first_names)) for p in people]
    who = ("Anonymous" if not names else names[0] if len(names) == 1 else
           f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al.")
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def _register_bibliography_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries: Any) -> Any:
            seen: dict[str, int] = {}
            for entry in sorted_entries:
                label = author_year_label(entry)
                seen[label] = seen.get(label, 0) + 1
                yield label if seen[label] == 1 else f"{label}{chr(ord('a') + seen[label] - 1)}"

    class AuthorYearStyle(PlainStyle):
        default_label_style = AuthorYearLabels

    register_plugin("pybtex.style.formatting", "kdwide", AuthorYearStyle, force=True)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point: de-duplicate page assets, flag network assets, register the ``kdwide``
    bibliography style (see the module doc)."""
    app.connect("html-page-context", _page_assets)
    _register_bibliography_style()
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
