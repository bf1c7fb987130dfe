"""Which Asterisk installation a private instance runs, and what its version needs.

Two kinds exist on the project's machines: the system one (Debian's Asterisk 16
package: `asterisk` on PATH, modules in /usr/lib/asterisk/modules) and a private
prefix such as the tree scripts/asterisk22.sh installs (sbin/, lib/,
lib/asterisk/modules/, var/lib/asterisk/). `ASTREINTE_ASTERISK_PREFIX` picks a
prefix; unset or empty means the system one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from astreinte_ari.adapters.pbx.version import Version, parse_version

PREFIX_ENV = "ASTREINTE_ASTERISK_PREFIX"


def has_websocket_client(version: Version) -> bool:
    """res_ari requires res_websocket_client (`.requires`) from these releases on.

    ChangeLog-22.5.0 adds the module; 20.15.0 and 21.10.0 are the same-day
    releases of the other branches, which carry the same change.
    """
    first_by_branch = {20: (20, 15, 0), 21: (21, 10, 0), 22: (22, 5, 0)}
    first = first_by_branch.get(version[0])
    if first is not None:
        return version >= first
    return version[0] > 22


@dataclass(frozen=True, slots=True)
class AsteriskInstall:
    """Paths of one Asterisk installation."""

    binary: str
    moddir: Path
    datadir: Path
    libdir: Path | None = None
    prefix: Path | None = None

    @classmethod
    def system(cls) -> AsteriskInstall:
        return cls("asterisk", Path("/usr/lib/asterisk/modules"), Path("/usr/share/asterisk"))

    @classmethod
    def from_prefix(cls, prefix: Path | str) -> AsteriskInstall:
        root = Path(prefix).resolve()
        return cls(
            binary=str(root / "sbin" / "asterisk"),
            moddir=root / "lib" / "asterisk" / "modules",
            datadir=root / "var" / "lib" / "asterisk",
            libdir=root / "lib",
            prefix=root,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AsteriskInstall:
        value = (os.environ if environ is None else environ).get(PREFIX_ENV, "").strip()
        return cls.from_prefix(value) if value else cls.system()

    @property
    def sbindir(self) -> Path:
        found = shutil.which(self.binary)
        return Path(found).parent if found else Path("/usr/sbin")

    def label(self) -> str:
        return str(self.prefix) if self.prefix else "system asterisk"

    def missing(self) -> str | None:
        """Why this installation cannot run, or None."""
        if shutil.which(self.binary) is None:
            if self.prefix is None:
                return "asterisk is not installed: run scripts/install-test-deps.sh"
            return f"no Asterisk in {self.prefix} (scripts/asterisk22.sh installs one)"
        if not self.moddir.is_dir():
            return f"no modules directory {self.moddir}"
        return None

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process environment: this install's lib dir first, so a 22 binary
        never loads Asterisk 16's /usr/lib/libasteriskpj.so.2 (same soname)."""
        env = dict(os.environ if base is None else base)
        if self.libdir is not None:
            rest = env.get("LD_LIBRARY_PATH", "")
            env["LD_LIBRARY_PATH"] = f"{self.libdir}:{rest}" if rest else str(self.libdir)
        return env

    def version_text(self) -> str:
        """`asterisk -V`, e.g. 'Asterisk 22.10.1' (no daemon is started)."""
        out = subprocess.run(
            [self.binary, "-V"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env=self.environ(),
        )
        return out.stdout.strip()

    def version(self) -> Version:
        text = self.version_text()
        parsed = parse_version(text)
        if parsed is None:
            raise RuntimeError(f"cannot read a version from {self.binary} -V: {text!r}")
        return parsed
