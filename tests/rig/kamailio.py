"""Kamailio for the cluster rig, run from the shipped packaging/cluster/kamailio.cfg.

The rig rewrites only the file's three `#!substdef` site settings (listen address,
dispatcher list, runtime directory): what the tests exercise is what admins get.
It reads the nodes' state with `kamcmd dispatcher.list` and the times nodes went
down/up from the `astreinte: node down|up <uri> at <epoch>` lines the config logs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astreinte_ari.devtools.localpbx import REPO_ROOT
from tests.rig.polling import wait_until

SHIPPED_CFG = REPO_ROOT / "packaging" / "cluster" / "kamailio.cfg"
_SUBSTDEF = re.compile(r'^#!substdef "!(ASTREINTE_[A-Z_]+)!.*!g"$', re.MULTILINE)
_EVENT = re.compile(r"astreinte: node (down|up) (\S+) at (\d+\.\d+)")
_DISPATCHED = re.compile(r"astreinte: INVITE (\S+) to (\S+)")


def render_config(template: str, settings: dict[str, str]) -> str:
    """The shipped config with its site settings replaced; every one must be there."""
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        seen.add(name)
        return f'#!substdef "!{name}!{settings[name]}!g"'

    text = _SUBSTDEF.sub(replace, template)
    missing = set(settings) - seen
    if missing:
        raise ValueError(f"{SHIPPED_CFG} has no #!substdef for {sorted(missing)}")
    return text


@dataclass(frozen=True, slots=True)
class NodeEvent:
    state: str  # "down" | "up"
    uri: str
    at: float  # epoch seconds


@dataclass
class Kamailio:
    """One Kamailio listening on `address`:`port`, dispatching to `nodes` (SIP URIs)."""

    workdir: Path
    address: str
    nodes: Sequence[str]
    port: int = 5060
    command_prefix: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None
    rundir: Path = field(init=False)

    def __post_init__(self) -> None:
        # The control socket's path must stay short (108 bytes): not under pytest's tmp.
        self.rundir = Path(tempfile.mkdtemp(prefix="astrig-kam-"))

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        dispatcher_list = self.workdir / "dispatcher.list"
        dispatcher_list.write_text("".join(f"1 {uri} 0 0\n" for uri in self.nodes))
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(
            render_config(
                SHIPPED_CFG.read_text(),
                {
                    "ASTREINTE_LISTEN": f"udp:{self.address}:{self.port}",
                    "ASTREINTE_DISPATCHER_LIST": str(dispatcher_list),
                    "ASTREINTE_RUNDIR": str(self.rundir),
                },
            )
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    *self.command_prefix,
                    *("kamailio", "-f", str(cfg), "-DD", "-E"),  # foreground, log to stderr
                    *("-Y", str(self.rundir), "-P", str(self.rundir / "kamailio.pid")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_states(dict.fromkeys(self.nodes, True), timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def states(self) -> dict[str, bool]:
        """Each node's URI -> active (in rotation)?"""
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"kamailio is not running:\n{self.log_tail()}")
        out = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.rundir / 'kamailio_ctl'}", "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
        uris = re.findall(r"URI: (\S+)", out)
        flags = re.findall(r"FLAGS: (\S+)", out)
        return {
            uri: not flag.startswith(("I", "D")) for uri, flag in zip(uris, flags, strict=False)
        }

    def wait_states(self, expected: dict[str, bool], *, timeout: float) -> None:
        wait_until(
            lambda: all(self.states().get(uri) == up for uri, up in expected.items()),
            timeout=timeout,
            what=f"Kamailio nodes in state {expected}",
            every=0.05,
        )

    def events(self) -> list[NodeEvent]:
        return [
            NodeEvent(state, uri, float(at)) for state, uri, at in _EVENT.findall(self._log_text())
        ]

    def dispatched(self) -> list[tuple[str, str]]:
        """(Call-ID, node URI) of every INVITE as first dispatched, in order."""
        return _DISPATCHED.findall(self._log_text())

    def _log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        shutil.rmtree(self.rundir, ignore_errors=True)


def kamailio_missing() -> str | None:
    for tool in ("kamailio", "kamcmd"):
        if shutil.which(tool) is None:
            return f"{tool} missing: run scripts/install-test-deps.sh (apt-get install kamailio)"
    return None


def wait_for_event(
    kamailio: Kamailio, state: str, uri: str, *, after: float, timeout: float
) -> NodeEvent:
    """The first `state` event of `uri` logged at or after epoch `after`."""

    def probe() -> NodeEvent | None:
        return next(
            (e for e in kamailio.events() if e.state == state and e.uri == uri and e.at >= after),
            None,
        )

    return wait_until(probe, timeout=timeout, what=f"Kamailio: node {state} {uri}")
