"""A private Asterisk instance for the demo and the tests.

Writes a complete configuration into a work directory (loopback only, free
ports, the project's own dialplan/ included) and runs `asterisk -f` on it.
Production deployments use their own PBX configuration instead. The files'
templates are in localpbx_conf.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astreinte_ari import resources
from astreinte_ari.devtools.localpbx_conf import (
    FIXED_FILES,
    asterisk_conf,
    extensions_conf,
    fallback_agi_script,
    modules_for,
    pjsip_conf,
)
from astreinte_ari.devtools.pbxinstall import (
    PREFIX_ENV,
    AsteriskInstall,
    Version,
    parse_version,
)
from astreinte_ari.devtools.ports import free_port, free_rtp_range

# Where the astreinte_ari package is imported from (a checkout, or site-packages).
REPO_ROOT = Path(__file__).resolve().parents[2]
DIALPLAN_DIR = resources.dialplan_dir()
SOUNDS_DIR = resources.sounds_dir()

__all__ = [
    "DIALPLAN_DIR",
    "REPO_ROOT",
    "SOUNDS_DIR",
    "LocalAsterisk",
    "free_port",
    "free_rtp_range",
    "main",
    "modules_for",
]


@dataclass
class LocalAsterisk:
    """A loopback-only Asterisk (16, 20 or 22) with the project's dialplan.

    `install` is the Asterisk to run: by default the one $ASTREINTE_ASTERISK_PREFIX
    names, else the system `asterisk`. `mobiles` maps an E.164 number to the
    UDP port of the SIP phone that plays that mobile (sipp in tests); the trunk
    dial template for such a setup is "PJSIP/{number}" (one endpoint per number).
    `sip_phones` maps the name of a SIP endpoint of the PBX itself (a desk phone,
    `sip: desk-101` in the YAML, dialled as PJSIP/desk-101) to the UDP port of
    the SIP phone registered there (a static contact: sipp does not register).
    """

    workdir: Path
    ari_username: str = "astreinte"
    ari_password: str = "astreinte-test"
    app: str = "astreinte"
    mobiles: Mapping[str, int] = field(default_factory=dict)
    sip_phones: Mapping[str, int] = field(default_factory=dict)
    sip_port: int = 0
    http_port: int = 0
    # RTP ports: 0 picks a free random block of rtp_ports at start-up.
    rtp_start: int = 0
    rtp_end: int = 0
    rtp_ports: int = 1000
    extra_dialplan: str = ""
    # [globals] for the dialplan fallback (astreinte-fallback): e.g.
    # {"ASTREINTE_CONFIG": "/etc/astreinte/astreinte.yaml"}; see docs/fallback-and-operations.md.
    dialplan_globals: Mapping[str, str] = field(default_factory=dict)
    # Another copy of the dialplan and sounds, and an astagidir of one's own (None:
    # this instance's agi-bin with a shim to this Python): the .deb test runs the installed ones.
    dialplan_dir: Path = DIALPLAN_DIR
    sounds_dir: Path = SOUNDS_DIR
    agi_dir: Path | None = None
    install: AsteriskInstall = field(default_factory=AsteriskInstall.from_env)
    # Several nodes on one machine (tests/rig/cluster.py): the address SIP and HTTP bind
    # to, where the phones are, where callers come from (a proxy), pjsip lines added to
    # every endpoint, and what runs Asterisk (e.g. `ip netns exec <namespace>`).
    # http_bind "0.0.0.0" in a namespace: the node's service on its loopback (ARI over
    # plain HTTP must be local) and the test process on `host`.
    host: str = "127.0.0.1"
    http_bind: str = "127.0.0.1"
    # asterisk.conf `systemname`: prefixes every UNIQUEID. Nodes sharing one database
    # need distinct ones: the audit call id derives from the caller channel's UNIQUEID.
    system_name: str = ""
    phones_host: str = "127.0.0.1"
    callers_from: str = "127.0.0.1"
    endpoint_options: str = ""
    command_prefix: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None
    _version: Version | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.sip_port = self.sip_port or free_port(socket.SOCK_DGRAM)
        self.http_port = self.http_port or free_port()
        if not self.rtp_start:
            self.rtp_start, self.rtp_end = free_rtp_range(self.rtp_ports)

    @property
    def version(self) -> Version:
        """The installed version (`asterisk -V`); the configuration depends on it."""
        if self._version is None:
            self._version = self.install.version()
        return self._version

    @property
    def version_string(self) -> str:
        """'22.10.1': what the running PBX reports over ARI (system.version)."""
        info = self.ari_get("/asterisk/info")
        system = info.get("system") if isinstance(info, dict) else None
        text = str((system or {}).get("version", ""))
        if parse_version(text) is None:
            raise RuntimeError(f"unexpected /asterisk/info system.version: {text!r}")
        return text

    @property
    def ari_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def etc(self) -> Path:
        return self.workdir / "etc"

    @property
    def conf_file(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def cel_file(self) -> Path:
        """Where cel_custom writes (dialplan/cel_custom_astreinte.conf)."""
        return self.workdir / "log" / "cel-custom" / "astreinte-cel.csv"

    @property
    def recordings_dir(self) -> Path:
        return self.workdir / "spool" / "recording"

    def write_config(self) -> None:
        for sub in ("etc", "lib", "db", "spool/recording", "run", "log/cel-custom", "agi-bin"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        w = self.workdir
        files = {
            "asterisk.conf": asterisk_conf(
                self.etc, w, self.install, self.agi_dir or w / "agi-bin", self.system_name
            ),
            "modules.conf": "[modules]\nautoload = no\n"
            + "".join(f"load => {m}.so\n" for m in modules_for(self.version, self.install.moddir)),
            "http.conf": f"[general]\nenabled = yes\nbindaddr = {self.http_bind}\n"
            f"bindport = {self.http_port}\n",
            "ari.conf": f"[general]\nenabled = yes\n[{self.ari_username}]\ntype = user\n"
            f"read_only = no\npassword = {self.ari_password}\npassword_format = plain\n",
            "rtp.conf": f"[general]\nrtpstart = {self.rtp_start}\nrtpend = {self.rtp_end}\n",
            "pjsip.conf": self._pjsip_conf(),
            "extensions.conf": self._extensions_conf(),
            # What a waiting caller hears: the ringback tone, as a MOH class.
            "musiconhold.conf": f"[astreinte-ringback]\nmode = files\n"
            f"directory = {self.sounds_dir / 'ringback'}\n",
            "cel_custom.conf": (self.dialplan_dir / "cel_custom_astreinte.conf").read_text(),
            **FIXED_FILES,
        }
        for name, text in files.items():
            (self.etc / name).write_text(text)
        (self.etc / "ari.conf").chmod(0o600)
        self._write_fallback_agi()

    def _write_fallback_agi(self) -> None:
        # The dialplan fallback runs AGI(astreinte-fallback) from astagidir; production
        # links the installed console script there (docs/fallback-and-operations.md).
        agi = self.workdir / "agi-bin" / "astreinte-fallback"
        agi.write_text(fallback_agi_script(sys.executable, REPO_ROOT))
        agi.chmod(0o755)

    def _pjsip_conf(self) -> str:
        return pjsip_conf(
            host=self.host,
            sip_port=self.sip_port,
            callers_from=self.callers_from,
            phones={**self.mobiles, **self.sip_phones},
            phones_host=self.phones_host,
            endpoint_options=self.endpoint_options,
        )

    def _extensions_conf(self) -> str:
        return extensions_conf(
            self.sounds_dir, self.dialplan_dir, self.dialplan_globals, self.extra_dialplan
        )

    def start(self, timeout: float = 30.0) -> None:
        problem = self.install.missing()
        if problem is not None:
            raise RuntimeError(problem)
        self.write_config()
        log = open(self.workdir / "log" / "console.log", "ab")  # noqa: SIM115 - kept open
        self.process = subprocess.Popen(
            [
                *self.command_prefix,
                self.install.binary,
                "-C",
                str(self.conf_file),
                "-f",
                "-n",
                "-q",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.install.environ(),
        )
        self._wait_for_ari(timeout)

    def _wait_for_ari(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        token = b64encode(f"{self.ari_username}:{self.ari_password}".encode()).decode()
        req = urllib.request.Request(
            f"{self.ari_url}/ari/asterisk/info", headers={"Authorization": f"Basic {token}"}
        )
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last_error = exc
            time.sleep(0.2)
        raise RuntimeError(
            f"ARI did not answer within {timeout}s ({last_error}):\n{self.log_tail()}"
        )

    def ari_get(self, path: str) -> object:
        """GET an ARI resource (tests and doctor): parsed JSON."""
        import json

        token = b64encode(f"{self.ari_username}:{self.ari_password}".encode()).decode()
        req = urllib.request.Request(
            f"{self.ari_url}/ari{path}", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read() or b"null")

    def cli(self, command: str, timeout: float = 10.0) -> str:
        out = subprocess.run(
            [self.install.binary, "-C", str(self.conf_file), "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.install.environ(),
        )
        return out.stdout + out.stderr

    def log_tail(self, lines: int = 40) -> str:
        path = self.workdir / "log" / "messages"
        if not path.exists():
            path = self.workdir / "log" / "console.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def __enter__(self) -> LocalAsterisk:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a demo Asterisk in the foreground until Ctrl-C / SIGTERM."""
    import argparse

    parser = argparse.ArgumentParser(description="Run a private loopback Asterisk for the demo.")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--http-port", type=int, default=8088)
    parser.add_argument("--password-file", type=Path, required=True, help="ARI password file")
    parser.add_argument(
        "--mobile",
        action="append",
        default=[],
        metavar="NUMBER=PORT",
        help="a simulated mobile: SIP phone on 127.0.0.1:PORT for NUMBER",
    )
    parser.add_argument(
        "--sip-phone",
        action="append",
        default=[],
        metavar="ENDPOINT=PORT",
        help="a SIP phone of the PBX itself (YAML `sip: ENDPOINT`) on 127.0.0.1:PORT",
    )
    parser.add_argument(
        "--dialplan-global",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a [globals] variable, e.g. ASTREINTE_CONFIG=/path/astreinte.yaml for the fallback",
    )
    parser.add_argument(
        "--asterisk-prefix",
        type=Path,
        default=None,
        help=f"run the Asterisk installed under this prefix (default: ${PREFIX_ENV}, "
        "else the system asterisk)",
    )
    args = parser.parse_args(argv)
    mobiles = dict(item.split("=", 1) for item in args.mobile)
    install = (
        AsteriskInstall.from_prefix(args.asterisk_prefix)
        if args.asterisk_prefix
        else AsteriskInstall.from_env()
    )
    pbx = LocalAsterisk(
        args.workdir,
        ari_password=args.password_file.read_text().strip(),
        mobiles={number: int(port) for number, port in mobiles.items()},
        sip_phones={
            name: int(port) for name, port in (item.split("=", 1) for item in args.sip_phone)
        },
        sip_port=args.sip_port,
        http_port=args.http_port,
        install=install,
        dialplan_globals=dict(item.split("=", 1) for item in args.dialplan_global),
    )
    pbx.start()
    import asyncio

    from astreinte_ari.adapters.pbx.checks import sip_problem
    from astreinte_ari.config.pbx import SipAddress

    # Answering ARI is not taking calls: another process may hold the SIP port.
    sip = SipAddress("udp", "127.0.0.1", pbx.sip_port)
    deaf = asyncio.run(sip_problem(sip, pbx.version_string))
    if deaf:
        print(f"Asterisk {pbx.version_string} started but takes no call: {deaf}", flush=True)
        pbx.stop()
        return 1
    print(
        f"Asterisk {pbx.version_string} ready: SIP 127.0.0.1:{pbx.sip_port}, ARI {pbx.ari_url}",
        flush=True,
    )
    stop = signal.sigwait if hasattr(signal, "sigwait") else None
    try:
        if stop is not None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            stop({signal.SIGINT, signal.SIGTERM})
    finally:
        pbx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
