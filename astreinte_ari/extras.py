"""Optional dependencies (setup.cfg's extras) and the message when one is missing.

The base install runs the service on SQLite; what not every site needs is an
extra, so that a PBX does not carry ~145 MB of plotting libraries:

    charts    matplotlib (+ numpy, Pillow, fontTools): the charts of `report --format html`
    postgres  psycopg 3 with its bundled libpq: a PostgreSQL audit database
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS = {
    "charts": "matplotlib (charts of `astreinte report --format html`)",
    "postgres": "psycopg 3 (PostgreSQL audit database)",
}


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module` or raise MissingExtra naming the pip extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name != module and not module.startswith(exc.name):
            raise  # the module is there but one of its own imports failed: not ours to hide
        raise MissingExtra(
            f"{purpose} needs {module}, which is not installed: install the "
            f"'{extra}' extra, e.g. pip install 'astreinte-ari[{extra}]'"
        ) from None
