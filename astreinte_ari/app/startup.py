"""Start-up checks: each failure says what to fix, and exits in a way a supervisor
can tell apart (systemd restarts; an admin reads the journal)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from astreinte_ari.adapters.ari.client import AriClient, AriError
from astreinte_ari.adapters.store.migrate import ensure_migrated, mask_url
from astreinte_ari.aio import within
from astreinte_ari.config.model import AppConfig

log = logging.getLogger("astreinte_ari.app.compose")

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
EXIT_APP_REPLACED, EXIT_ARI_REFUSED, EXIT_ARI_UNREACHABLE = 3, 4, 5


class StartupError(Exception):
    """The service cannot start; the message says how to fix it."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in _LOOPBACK_HOSTS


def check_ari_url(url: str) -> None:
    """The ARI login is PBX-admin: plain HTTP only to this machine."""
    if urlsplit(url).scheme == "http" and not is_loopback(url):
        raise StartupError(
            f"ari.url {url!r} sends the PBX admin password in clear over the network: "
            "use https:// or run the service on the Asterisk host (127.0.0.1)"
        )


def database_ready(engine: Engine, config: AppConfig, *, quiet: bool = False) -> bool:
    """True when the database answers at the right schema; False when it does not answer
    (the service starts anyway: the journal carries the trail until it is back).
    A database at the wrong schema is fatal (DatabaseNotMigrated says the fix)."""
    try:
        ensure_migrated(engine, config_path=str(config.source_path))
    except DBAPIError as exc:
        if quiet:
            return False
        log.error(
            "database %s unreachable (%s): calls are taken and journalled in %s; the trail "
            "is written when it is back",
            mask_url(engine.url),
            str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__,
            config.journal_dir,
        )
        return False
    return True


async def wait_for_ari(
    client: AriClient, config: AppConfig, on_wait: Callable[[str], object] | None = None
) -> dict[str, Any]:
    """ARI answers with our credentials (its /asterisk/info), or a StartupError naming
    the fix. `on_wait` hears what the start waits for (systemd's STATUS= line)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.ari.start_timeout
    last = ""
    while True:
        try:
            return await within(client.asterisk_info(), 3.0)
        except AriError as exc:
            if exc.status in (401, 403):
                raise StartupError(refused_message(config), EXIT_ARI_REFUSED) from exc
            error = str(exc)
        except (OSError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
        except Exception as exc:  # aiohttp.ClientError and friends
            error = str(exc) or type(exc).__name__
        if error != last:
            log.error("ARI at %s not answering yet: %s", config.ari.url, error)
            if on_wait is not None:
                on_wait(f"waiting for ARI at {config.ari.url}: {error}")
            last = error
        if loop.time() >= deadline:
            raise StartupError(
                f"ARI at {config.ari.url} did not answer within {config.ari.start_timeout} s "
                f"({last}): is Asterisk running, with http.conf enabled on that address and "
                "res_ari loaded? Calls go to the dialplan fallback meanwhile.",
                EXIT_ARI_UNREACHABLE,
            )
        await asyncio.sleep(0.5)


def refused_message(config: AppConfig) -> str:
    where = config.ari.password_file or f"${config.ari.password_env}"
    return (
        f"Asterisk refused the ARI login of user {config.ari.username!r} (HTTP 401): check "
        f"the [{config.ari.username}] section of ari.conf and the password in {where}"
    )
