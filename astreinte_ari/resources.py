"""Where the data files of astreinte-ari are: migrations, dialplan, sounds, example configs.

Their source of truth is the repository's top level (migrations/, dialplan/,
sounds/, config/, alembic.ini). A built package carries a copy of them in
`astreinte_ari/_data/` (setup.py's build step puts it there), so a wheel
installed anywhere finds them through `importlib.resources`; a checkout
(editable install, tests) has no copy and uses the top level directly.

Only the standard library here: the fallback AGI and the config layer import it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = [
    "DATA_DIRNAME",
    "DataFilesMissing",
    "alembic_ini",
    "checkout_root",
    "config_examples_dir",
    "data_path",
    "data_root",
    "dialplan_dir",
    "installed_data_root",
    "migrations_dir",
    "sounds_dir",
]

# Inside the package, next to its modules (setup.py copies the top level here).
DATA_DIRNAME = "_data"
# Present in any complete copy: a directory without them is not the data root
# (a stray site-packages/migrations of another project must never be taken).
_MARKERS = ("migrations/env.py", "dialplan/extensions_astreinte.conf")


class DataFilesMissing(RuntimeError):
    """Neither the installed package nor a checkout holds the data files."""


def _complete(root: Path) -> bool:
    return all((root / marker).is_file() for marker in _MARKERS)


def installed_data_root() -> Path | None:
    """`astreinte_ari/_data` of the installed package, or None (checkout, editable)."""
    try:
        candidate = resources.files("astreinte_ari") / DATA_DIRNAME
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - always importable here
        return None
    # Asterisk, Alembic and the AGI need real paths: a zipped install cannot serve them.
    if isinstance(candidate, Path) and _complete(candidate):
        return candidate
    return None


def checkout_root() -> Path | None:
    """The repository top level when running from a checkout, else None."""
    root = Path(__file__).resolve().parent.parent
    return root if _complete(root) else None


def data_root() -> Path:
    """The directory holding migrations/, dialplan/, sounds/, config/ and alembic.ini:
    the installed package's copy first, else the checkout's top level."""
    root = installed_data_root() or checkout_root()
    if root is None:
        package = Path(__file__).resolve().parent
        raise DataFilesMissing(
            f"astreinte-ari's data files (migrations, dialplan, sounds) are neither in "
            f"{package / DATA_DIRNAME} nor in a source checkout around {package}: "
            "reinstall the package from a wheel or sdist built by setup.py"
        )
    return root


def data_path(*parts: str) -> Path:
    """A file or directory of the data root, e.g. data_path("dialplan", "x.conf")."""
    return data_root().joinpath(*parts)


def migrations_dir() -> Path:
    """Alembic's script location (env.py, versions/)."""
    return data_path("migrations")


def dialplan_dir() -> Path:
    """extensions_astreinte.conf, cel_custom_astreinte.conf, the PJSIP example."""
    return data_path("dialplan")


def sounds_dir() -> Path:
    """The shipped prompts: <lang>/<name>.wav and ringback/."""
    return data_path("sounds")


def config_examples_dir() -> Path:
    """astreinte.example.yaml and demo.yaml."""
    return data_path("config")


def alembic_ini() -> Path:
    """alembic.ini for developers' `alembic` runs (script_location beside it)."""
    return data_path("alembic.ini")
