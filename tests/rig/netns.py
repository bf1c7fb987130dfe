"""Network namespaces on one bridge: several "machines" on one test host (needs root).

`private_lan()` creates a bridge in the root namespace with a random private /24
(one no route of the host overlaps), and `Lan.host(role)` a namespace plugged into
it by a veth pair, with its own loopback and one address. Processes run in a
namespace through `Lan.exec_prefix(host)` (`ip netns exec <name>`). The root
namespace keeps the bridge's .1: the test process reaches every host directly.

Every name carries this run's tag, and the owner's pid, so parallel runs never
collide and a run killed before its cleanup is cleaned up by the next one
(`remove_stale()`: namespaces and links of our prefix whose owner pid is dead).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

PREFIX = "astrig"  # namespaces: astrig-<pid>-<tag>-<role>; links: alias astrig-<pid>-<tag>


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here (not root, no `ip`, no CAP_SYS_ADMIN), or None."""
    if os.geteuid() != 0:
        return "not root: network namespaces need root (CI runs these tests as root)"
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    probe = f"{PREFIX}-{os.getpid()}-probe{uuid.uuid4().hex[:4]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _owner_alive(name: str) -> bool:
    parts = name.split("-")
    if len(parts) < 3 or parts[0] != PREFIX or not parts[1].isdigit():
        return True  # not ours: leave it alone
    return os.path.exists(f"/proc/{parts[1]}")


def remove_stale() -> list[str]:
    """Remove namespaces and links left by dead runs (owner pid gone); their names."""
    removed: list[str] = []
    listing = _ip("netns", "list", check=False).stdout.split("\n")
    for name in (line.split()[0] for line in listing if line.strip()):
        if name.startswith(PREFIX + "-") and not _owner_alive(name):
            _kill_inside(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    links = json.loads(_ip("-j", "link", "show", check=False).stdout or "[]")
    for link in links:
        alias = str(link.get("ifalias", ""))
        if alias.startswith(PREFIX + "-") and not _owner_alive(alias):
            _ip("link", "del", link["ifname"], check=False)
            removed.append(link["ifname"])
    return removed


def _kill_inside(namespace: str) -> None:
    pids = _ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no route or address of the host overlaps."""
    used = []
    for entry in json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = str(entry.get("dst", ""))
        if dst and dst != "default" and dst[0].isdigit():
            used.append(ipaddress.ip_network(dst, strict=False))
    rng = random.SystemRandom()
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{rng.randrange(200, 255)}.{rng.randrange(256)}.0/24")
        if not any(net.overlaps(other) for other in used):
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the test LAN")


@dataclass(frozen=True)
class Host:
    """One namespace on the LAN."""

    role: str
    namespace: str
    address: str


@dataclass
class Lan:
    """A bridge and the namespaces plugged into it."""

    tag: str
    subnet: ipaddress.IPv4Network
    hosts: list[Host] = field(default_factory=list)

    @property
    def owner(self) -> str:
        return f"{PREFIX}-{os.getpid()}-{self.tag}"

    @property
    def bridge(self) -> str:
        return f"arb{self.tag}"  # interface names: 15 characters at most

    @property
    def gateway(self) -> str:
        """The root namespace's address on the LAN (the test process, sipp, phones)."""
        return str(self.subnet.network_address + 1)

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "alias", self.owner)
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def host(self, role: str) -> Host:
        """A new namespace `role` with the next free address of the LAN."""
        index = len(self.hosts)
        namespace = f"{self.owner}-{role}"
        address = str(self.subnet.network_address + 10 + index)
        veth = f"arv{self.tag}{index}"
        _ip("netns", "add", namespace)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("link", "set", veth, "alias", self.owner)
        _ip("link", "set", veth, "master", self.bridge)
        _ip("link", "set", veth, "up")
        inside = ("netns", "exec", namespace, "ip")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")
        host = Host(role, namespace, address)
        self.hosts.append(host)
        return host

    @staticmethod
    def exec_prefix(host: Host) -> list[str]:
        return ["ip", "netns", "exec", host.namespace]

    def destroy(self) -> None:
        """Kill what still runs in our namespaces, delete them (their veths go with
        them), then the bridge."""
        for host in self.hosts:
            _kill_inside(host.namespace)
            _ip("netns", "del", host.namespace, check=False)
        self.hosts.clear()
        _ip("link", "del", self.bridge, check=False)


@contextlib.contextmanager
def private_lan() -> Iterator[Lan]:
    remove_stale()
    lan = Lan(uuid.uuid4().hex[:6], _free_subnet())
    try:
        lan.create()
        yield lan
    finally:
        lan.destroy()
