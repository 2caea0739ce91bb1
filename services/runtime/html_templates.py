"""Server-rendered pages: one Jinja2 configuration for every service that has pages.

Escaping is the default (``autoescape``), never a call a template must remember; only a value wrapped in
``markupsafe.Markup`` by Python code that built it safely (the workspace's SVG charts) is inserted as it is.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def _blank_for_none(value: Any) -> Any:
    return "" if value is None else value


def package_templates(package: str) -> Environment:
    """The templates in ``<package>/templates/``: every value escaped, ``None`` printed as nothing, a misspelt
    name an error (``StrictUndefined``) instead of an empty string, and block tags on lines of their own leave no
    blank lines behind."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_blank_for_none,
        trim_blocks=True,
        lstrip_blocks=True,
    )
