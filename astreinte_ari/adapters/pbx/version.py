"""Asterisk version numbers as the PBX and its packages write them."""

from __future__ import annotations

import re

Version = tuple[int, int, int]
_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version | None:
    """(22, 10, 1) from 'Asterisk 22.10.1', '16.28.0~dfsg-0+deb11u10',
    'certified-20.7-cert3' (patch 0)...; None if there is no version."""
    match = _VERSION_RE.search(text)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return (int(major), int(minor), int(patch or 0))
