"""`astreinte doctor` passes on the demo, set up as scripts/demo.sh sets it up.

The real config/demo.yaml (only its ARI port changed, as demo.sh does for another
port) in a copy of the repository's layout, the demo PBX started through
localpbx's command line with demo.sh's arguments, and nothing exported: the
password comes from var/demo/ari.secret, the fallback's ASTREINTE_CONFIG from
the PBX's globals.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astreinte_ari import cli
from astreinte_ari.devtools.localpbx import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
DEMO_SH = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")


def test_doctor_passes_on_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ASTREINTE_ARI_PASSWORD", "ASTREINTE_CONFIG", "ASTREINTE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    sip_port, ari_port = free_port(socket.SOCK_DGRAM), free_port()
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.yaml"
    text = (REPO / "config" / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:8088", f"127.0.0.1:{ari_port}")
    text = text.replace("udp:127.0.0.1:5060", f"udp:127.0.0.1:{sip_port}")  # as demo.sh
    text = text.replace("127.0.0.1:8092", f"127.0.0.1:{free_port()}")  # the web planning
    config.write_text(text, encoding="utf-8")
    demo = tmp_path / "var" / "demo"
    demo.mkdir(parents=True)
    secret = demo / "ari.secret"
    secret.write_text("demo-secret-0123456789\n")
    secret.chmod(0o600)
    mobiles = [f"--mobile={n}={free_port(socket.SOCK_DGRAM)}"
               for n in ("+33610000001", "+33610000002", "+33620000001")]  # fmt: skip
    pbx = subprocess.Popen(
        [sys.executable, "-m", "astreinte_ari.devtools.localpbx",
         "--workdir", str(demo / "asterisk"),
         "--password-file", str(secret), "--sip-port", str(sip_port),
         "--http-port", str(ari_port), "--dialplan-global", f"ASTREINTE_CONFIG={config}",
         *mobiles],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    try:
        assert pbx.stdout is not None
        output = ""
        deadline = time.monotonic() + 60
        # What scripts/demo.sh waits for before it starts the service.
        ready = re.search(r'^ready="(.+)"$', DEMO_SH, re.M)
        assert ready is not None
        while ready.group(1) not in output and time.monotonic() < deadline:
            if select.select([pbx.stdout], [], [], 1)[0]:
                chunk = os.read(pbx.stdout.fileno(), 4096).decode(errors="replace")
                assert chunk, f"the demo PBX exited:\n{output}"
                output += chunk
        assert ready.group(1) in output, output
        (demo / "asterisk" / "log" / "cel-custom" / "astreinte-cel.csv").touch()  # as demo.sh

        assert cli.main(["db", "upgrade", "-c", str(config)]) == 0
        capsys.readouterr()
        code = cli.main(["doctor", "-c", str(config)])
        out = capsys.readouterr().out
        print(out)
        assert code == 0, out
        assert f"ASTREINTE_CONFIG = {config}" in out and "all checks passed" in out
        assert "FAIL" not in out
    finally:
        pbx.send_signal(signal.SIGTERM)
        try:
            pbx.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(pbx.pid, signal.SIGKILL)
            pbx.wait()
