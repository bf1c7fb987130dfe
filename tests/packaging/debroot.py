"""A throw-away Debian 12 root (scripts/deb-test-root.sh's tarball) to install the .deb into.

The PBX runs inside it too (the host's Asterisk 22 prefix bind-mounted read-only,
as a PBX host has its Asterisk), so Asterisk, the installed AGI and the installed
service see one file system, as on a real machine. The root shares the host's
network: sipp phones on the host reach that PBX on 127.0.0.1.

Paths: inside the root, `<root path>` is a link to `/`, so a host path under the
root (a PBX work directory, say) names the same file inside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from astreinte_ari.devtools.pbxinstall import AsteriskInstall

REPO = Path(__file__).resolve().parents[2]
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclass
class DebRoot:
    path: Path
    mounts: list[Path]

    def host(self, inside: str) -> Path:
        """The host path of a path inside the root."""
        return self.path / inside.lstrip("/")

    def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(argv, user=user),
            env={**BASE_ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def argv(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        spec = [f"--userspec={user}:{user}"] if user else []
        return ["/usr/sbin/chroot", *spec, str(self.path), *argv]

    def asterisk(self, prefix: Path, wrapper_dir: Path) -> AsteriskInstall:
        """The Asterisk of `prefix`, run inside the root (bind-mounted at the same path)."""
        target = self.host(str(prefix))
        target.mkdir(parents=True, exist_ok=True)
        _mount(["--bind", "-o", "ro", str(prefix), str(target)])
        self.mounts.append(target)
        wrapper = wrapper_dir / "asterisk-in-root"
        wrapper.write_text(
            f'#!/bin/sh\nexec /usr/sbin/chroot {self.path} {prefix}/sbin/asterisk "$@"\n'
        )
        wrapper.chmod(0o755)
        base = AsteriskInstall.from_prefix(prefix)
        return AsteriskInstall(str(wrapper), base.moddir, base.datadir, base.libdir, None)


def _mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, timeout=30)


def _script(name: str, *args: str, timeout: float = 900) -> str:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"scripts/{name} failed:\n{done.stdout}\n{done.stderr}"
    print(done.stderr.strip())
    return done.stdout.strip().splitlines()[-1]


def build_deb(outdir: Path) -> Path:
    return Path(_script("build-deb.sh", str(outdir)))


@contextlib.contextmanager
def debian_root() -> Iterator[DebRoot]:
    tarball = _script("deb-test-root.sh")
    path = Path(tempfile.mkdtemp(prefix="astreinte-debroot.", dir="/var/tmp"))
    root = DebRoot(path, [])
    try:
        subprocess.run(["tar", "-xf", tarball, "-C", str(path)], check=True, timeout=300)
        shutil.copy("/etc/resolv.conf", path / "etc" / "resolv.conf")
        _mount(["-t", "proc", "proc", str(path / "proc")])
        root.mounts.append(path / "proc")
        _mount(["--bind", "/dev", str(path / "dev")])
        root.mounts.append(path / "dev")
        (path / str(path).lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/", path / str(path).lstrip("/"))
        yield root
    finally:
        for mount in reversed(root.mounts):
            if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(mount)], check=False)
        link = path / str(path).lstrip("/")
        if link.is_symlink():
            link.unlink()
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False, timeout=300)
