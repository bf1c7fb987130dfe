"""Asterisk versions: parsing, what each one needs loaded, what doctor accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari.app.doctor import check_version
from astreinte_ari.devtools.localpbx import modules_for
from astreinte_ari.devtools.pbxinstall import (
    PREFIX_ENV,
    AsteriskInstall,
    has_websocket_client,
    parse_version,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Asterisk 22.10.1", (22, 10, 1)),
        ("Asterisk 16.28.0~dfsg-0+deb11u10", (16, 28, 0)),
        ("20.15.2", (20, 15, 2)),
        ("certified-20.7-cert3", (20, 7, 0)),
        ("GIT-master-1a2b3c", None),
        ("", None),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("version", "needed"),
    [
        ((16, 28, 0), False),
        ((18, 26, 0), False),
        ((20, 14, 0), False),
        ((20, 15, 0), True),
        ((21, 10, 0), True),
        ((22, 4, 1), False),
        ((22, 5, 0), True),
        ((22, 10, 1), True),
        ((23, 0, 0), True),
    ],
)
def test_res_websocket_client_only_where_res_ari_requires_it(
    version: tuple[int, int, int], needed: bool
) -> None:
    assert has_websocket_client(version) is needed
    modules = modules_for(version)
    assert ("res_websocket_client" in modules) is needed
    if needed:  # loaded before the module that requires it
        assert modules.index("res_websocket_client") < modules.index("res_ari")
    assert len(modules) == len(set(modules))


@pytest.mark.parametrize(
    ("version", "ok", "words"),
    [
        ("13.38.3", False, "older than 16: not supported"),
        ("15.7.4", False, "older than 16: not supported"),
        ("16.28.0~dfsg-0+deb11u10", True, "end of life upstream since 2023-10-09"),
        ("20.15.2", True, "security fixes only"),
        ("22.10.1", True, "LTS, fully supported"),
        ("GIT-master-1a2b3c", True, "not recognised"),
    ],
)
def test_doctor_refuses_asterisk_older_than_16(version: str, ok: bool, words: str) -> None:
    check = check_version(version)
    assert check.ok is ok
    assert words in check.detail
    assert ("Asterisk 22 LTS" in check.fix) is (not ok)


def test_install_from_prefix_puts_its_lib_dir_first(tmp_path: Path) -> None:
    install = AsteriskInstall.from_env({PREFIX_ENV: str(tmp_path)})
    assert install.binary == str(tmp_path / "sbin" / "asterisk")
    assert install.moddir == tmp_path / "lib" / "asterisk" / "modules"
    assert install.datadir == tmp_path / "var" / "lib" / "asterisk"
    env = install.environ({"LD_LIBRARY_PATH": "/usr/lib"})
    assert env["LD_LIBRARY_PATH"] == f"{tmp_path / 'lib'}:/usr/lib"
    assert "no Asterisk in" in (install.missing() or "")


def test_unset_or_empty_prefix_means_the_system_asterisk() -> None:
    for environ in ({}, {PREFIX_ENV: ""}, {PREFIX_ENV: "  "}):
        install = AsteriskInstall.from_env(environ)
        assert install == AsteriskInstall.system()
        assert install.binary == "asterisk" and install.libdir is None
        assert "LD_LIBRARY_PATH" not in install.environ({})
