"""Configuration of the dialplan fallback (calls taken while the service is down)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from astreinte_ari.config.fields import Frozen

# The spool path is handed to Asterisk (AstDB, dialplan FILE()): keep it plain.
_SAFE_PATH_RE = re.compile(r"[A-Za-z0-9/._-]+")


class FallbackConfig(Frozen):
    # Where the fallback AGI (run by Asterisk) writes one JSON-lines file per
    # call; must be writable by the asterisk user. Default: /var/spool/astreinte/fallback
    # for a configuration under /etc, else <config dir>/../var/fallback (model.py).
    spool_dir: Path | None = None
    # A call record without an end (AGI killed, PBX restarted) is imported as
    # incomplete once its file is this old; younger ones may still be ringing.
    stale_after_minutes: int = Field(180, ge=5, le=7 * 24 * 60)

    @field_validator("spool_dir")
    @classmethod
    def _plain_path(cls, value: Path | None) -> Path | None:
        if value is not None and not _SAFE_PATH_RE.fullmatch(str(value)):
            raise ValueError("use only letters, digits and / . _ - in this path")
        return value
