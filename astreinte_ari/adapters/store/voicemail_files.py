"""Voicemail files, and the messages the PBX still holds because storage refused them."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from astreinte_ari.adapters.store.models import calls_table
from astreinte_ari.callflow.identity import recording_name_for

log = logging.getLogger(__name__)

RETRY_EVERY_S = 10.0  # cheap: one indexed query over two weeks of voicemails
RETRY_WINDOW = timedelta(days=14)  # how far back a message left on the PBX is looked for


def write_file_atomically(final: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash never leaves half a message under the final name."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_suffix(".part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk must not keep our half-written part
        raise


class FileVoicemailStore:
    """Voicemail messages as WAV files under recordings_dir/YYYY/MM/<call>.wav."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, call_id: str, at: datetime) -> str:
        return str(self.root / f"{at:%Y}" / f"{at:%m}" / f"{call_id}.wav")

    def save(self, call_id: str, data: bytes, at: datetime) -> str:
        path = self.path_for(call_id, at)
        write_file_atomically(Path(path), data)
        return path


def _waiting_messages(engine: Engine, since: datetime) -> list[tuple[str, str]]:
    """(call id, path) of recent voicemails whose file is not where the trail says."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(calls_table.c.id, calls_table.c.voicemail_path).where(
                calls_table.c.started_at >= since,
                calls_table.c.outcome == "voicemail",
                calls_table.c.voicemail_path.is_not(None),
            )
        ).all()
    return [(r.id, r.voicemail_path) for r in rows if not Path(r.voicemail_path).exists()]


async def keep_voicemails_stored(
    engine: Engine,
    fetch: Callable[[str], Awaitable[bytes | None]],
    delete: Callable[[str], Awaitable[bool]],
    clock: Callable[[], datetime],
    interval_s: float = RETRY_EVERY_S,
) -> None:
    """Move messages the PBX still holds (storage was full) to where the trail points.

    The trail is the list of what is owed: a voicemail call whose file is missing.
    The PBX's copy is deleted only once ours is written.
    """
    while True:
        try:
            waiting = await asyncio.to_thread(_waiting_messages, engine, clock() - RETRY_WINDOW)
            for call_id, path in waiting:
                name = recording_name_for(call_id)
                data = await fetch(name)
                if not data:
                    continue  # not on the PBX (moved by hand, or deleted): nothing to do
                await asyncio.to_thread(write_file_atomically, Path(path), data)
                await delete(name)
                log.info("call %s: voicemail moved from the PBX to %s", call_id[:8], path)
        except OSError as exc:
            log.warning("voicemail still kept on the PBX: %s", exc)
        except Exception as exc:  # database down: one line, the next round retries
            log.warning("voicemail retry deferred: %s", _first_line(exc))
        await asyncio.sleep(interval_s)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
