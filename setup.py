"""Build steps of astreinte-ari: everything else is declarative, in setup.cfg.

The data files keep their source of truth at the repository's top level
(migrations/, dialplan/, sounds/, config/, alembic.ini: the project's layout).
build_py copies them into the built package as astreinte_ari/_data/, where
astreinte_ari.resources finds them once installed; sdist adds the same
top-level files to the source archive, so a wheel built from the sdist
carries them too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
# Top-level folder -> the files of it that the package needs at run time.
DATA_GLOBS = {
    "migrations": ("*.py", "*.mako", "versions/*.py"),
    "dialplan": ("*.conf",),
    "sounds": ("*/*.wav", "prompts.tsv", "README.md"),
    "config": ("*.yaml",),
}
DATA_FILES = ("alembic.ini", "LICENSE")


def data_sources(root: Path = ROOT) -> Iterator[Path]:
    """Each data file, relative to the top level (the same paths under _data/)."""
    for folder, patterns in DATA_GLOBS.items():
        for pattern in patterns:
            for src in sorted((root / folder).glob(pattern)):
                yield src.relative_to(root)
    for name in DATA_FILES:
        yield Path(name)


class BuildPyWithData(build_py):
    """build_py, then the top-level data files copied into astreinte_ari/_data/."""

    def run(self) -> None:
        super().run()
        # An editable install reads the checkout itself: never copy beside the sources.
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "astreinte_ari" / "_data"
        shutil.rmtree(target, ignore_errors=True)  # a file removed upstream must not linger
        copied = 0
        for rel in data_sources():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target / rel)
            copied += 1
        if not (target / "migrations" / "env.py").is_file():
            raise SystemExit(f"build_py: no migrations/env.py under {ROOT}: incomplete source")
        self.announce(f"copied {copied} data file(s) into {target}", level=2)


class SdistWithData(sdist):
    """sdist that also carries the top-level data files build_py copies."""

    def make_distribution(self) -> None:
        # setuptools takes the file list from egg_info; the data files join it here.
        have = set(self.filelist.files)
        self.filelist.extend(str(rel) for rel in data_sources() if str(rel) not in have)
        super().make_distribution()


setup(cmdclass={"build_py": BuildPyWithData, "sdist": SdistWithData})
