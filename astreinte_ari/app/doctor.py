"""`astreinte doctor`: is this machine ready to take on-call calls? One line per
check, and for each failure the command or edit that fixes it.

Checks: secret files, ARI reachability and credentials, the Asterisk version
(16 or later), Asterisk modules the dialplan needs, this project's dialplan
contexts and globals (asked over ARI: a Local channel into [astreinte-publish]
reports DIALPLAN_EXISTS for each), sounds for every configured language and
prompt, database migrated, recordings and fallback spool directories writable,
Asterisk itself answering SIP at pbx.sip and the trunk endpoint reachable
(health.py, shared with the service's /readyz).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

import aiohttp

from astreinte_ari.adapters.ari.client import AriClient, AriError
from astreinte_ari.adapters.fallback.lastresort import PUBLISH_CONTEXT, run_publish
from astreinte_ari.adapters.notify.voice import VOICE_PROMPTS
from astreinte_ari.adapters.notify.webhook import resolve_target
from astreinte_ari.adapters.pbx.checks import (
    Check,
    check_sip_endpoints,
    check_sip_transport,
    check_trunk,
)
from astreinte_ari.adapters.pbx.version import parse_version
from astreinte_ari.app.doctor_cluster import check_cluster
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.secrets import SecretError
from astreinte_ari.routing.plan import RECORDING_NOTICE
from astreinte_ari.routing.router import DEFAULT_ANNOUNCEMENTS

# Modules the dialplan and the service use, beyond what ARI itself needs.
REQUIRED_MODULES = (
    "app_stasis.so",
    "res_ari_channels.so",
    "res_ari_bridges.so",
    "res_ari_recordings.so",
    "res_stasis_snoop.so",  # recorded conversations (record_calls) go through a snoop
    "res_agi.so",
    "app_dial.so",
    "app_read.so",
    "app_stack.so",
    "app_record.so",
    "app_playback.so",
    "func_db.so",
    "func_env.so",
    "func_global.so",
    "func_strings.so",
    "func_dialplan.so",
    "cel_custom.so",  # the PBX's own call records: the truth after a service outage
)
CONTEXTS = (
    "astreinte-inbound",
    "astreinte-fallback",
    "astreinte-lastresort",
    "astreinte-fallback-accept",
    "astreinte-inbound,h",  # records the calls no service took (an older dialplan lacks it)
)
FIXED_PROMPTS = (
    "astreinte-please-wait",
    "astreinte-press-1",
    "astreinte-voicemail",
    "astreinte-goodbye",
    "astreinte-no-one",
)
SOUND_EXTENSIONS = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".g722")
# Oldest Asterisk the dialplan, the ARI client and the tests are run on (16.28);
# 22 LTS is the one CI tests fully. Older ones lack ARI features used here.
MIN_VERSION = (16, 0, 0)
# Upstream life cycle of the branches met in the field (asterisk.org's table).
_LIFECYCLE = {
    16: "end of life upstream since 2023-10-09",
    18: "end of life upstream since 2025-10-20",
    20: "security fixes only, until 2027-10-19",
    22: "LTS, fully supported until 2028-10-16",
}
_UPGRADE = "upgrade to Asterisk 22 LTS (vendor packages, e.g. FreePBX 17, or scripts/asterisk22.sh)"


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def check_version(version: str) -> Check:
    """Refuses an Asterisk older than 16; names the life cycle of a supported one."""
    parsed = parse_version(version)
    if parsed is None:  # e.g. a GIT build: nothing to refuse on
        return Check("version", True, f"Asterisk {version!r}: version not recognised, not checked")
    if parsed < MIN_VERSION:
        return _fail("version", f"Asterisk {version} is older than 16: not supported", _UPGRADE)
    cycle = _LIFECYCLE.get(parsed[0])
    return Check(
        "version", True, f"Asterisk {version} supported" + (f" ({cycle})" if cycle else "")
    )


def check_secrets(config: AppConfig) -> list[Check]:
    checks = [_fail("secret files", s.problem, s.fix) for s in config.exposed_secrets()]
    try:
        config.ari_password()
    except SecretError as exc:
        checks.append(
            _fail(
                "ARI password",
                str(exc),
                f"export {config.ari.password_env}=... or set ari.password_file",
            )
        )
    # A missing webhook URL, secret or token stops the service at start: say so first.
    for name, spec in config.alerting.webhooks.items() if config.alerting else ():
        try:
            resolve_target(name, spec, config.base_dir)
        except SecretError as exc:
            fix = f"set the variable or file named by alerting.webhooks.{name}"
            checks.append(_fail(f"webhook {name}", str(exc), fix))
    if not checks:
        checks.append(Check("secret files", True, "readable by their owner only"))
    return checks


def prompt_names(config: AppConfig) -> set[str]:
    """Every sound the configuration can play (announcements, prompts)."""
    names = set(FIXED_PROMPTS) | set(DEFAULT_ANNOUNCEMENTS.values())
    for line in config.lines.values():
        for route in (line.after_hours, line.night, line.weekend, line.holiday):
            if route is not None and route.announcement:
                names.add(route.announcement)
        fwd = line.in_business_hours
        if fwd is not None and fwd.announcement:
            names.add(fwd.announcement)
        names.update(n for n in (line.line_prompt, line.recorded_notice) if n)
        if line.menu is not None:
            names.add(line.menu.prompt)  # ops record it in each language of the line
        if line.record_calls:
            names.add(RECORDING_NOTICE)
    if config.alerting is not None and config.alerting.uses_voice():
        names.update(VOICE_PROMPTS)
    return names


def check_sounds(config: AppConfig) -> Check:
    languages = sorted({line.language for line in config.lines.values()})
    missing = [
        f"{lang}/{name}"
        for lang in languages
        for name in sorted(prompt_names(config))
        if not any((config.sounds_dir / lang / f"{name}{ext}").exists() for ext in SOUND_EXTENSIONS)
    ]
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""
        )
        return _fail(
            "sounds",
            f"missing in {config.sounds_dir}: {shown}",
            "run scripts/make-sounds.sh or copy the files (WAV 8 kHz mono) into "
            f"{config.sounds_dir}/<language>/",
        )
    return Check(
        "sounds",
        True,
        f"{len(prompt_names(config))} prompt(s) in {', '.join(languages)} "
        f"under {config.sounds_dir}",
    )


def check_database(config: AppConfig) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from astreinte_ari.adapters.store.migrate import (
        DatabaseNotMigrated,
        create_db_engine,
        ensure_migrated,
        mask_url,
    )

    try:
        url = config.database_url()
    except SecretError as exc:
        return _fail("database", str(exc), "fix database.url_file or set ASTREINTE_DATABASE_URL")
    engine = create_db_engine(url)
    try:
        ensure_migrated(engine, config_path=str(config.source_path))
    except DatabaseNotMigrated as exc:
        return _fail(
            "database", str(exc).split(". Run:")[0], f"astreinte db upgrade -c {config.source_path}"
        )
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return _fail(
            "database",
            f"cannot connect to {mask_url(url)}: {reason}",
            "check the database URL and that the server is running",
        )
    finally:
        engine.dispose()
    return Check("database", True, f"{mask_url(url)} at the current schema")


def _writable(name: str, path: Path, who: str) -> Check:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the service creates missing directories under a writable parent
    if os.access(probe, os.W_OK | os.X_OK):
        return Check(name, True, f"{path} writable{'' if probe == path else ' (will be created)'}")
    return _fail(
        name, f"{path} is not writable by this user", f"mkdir -p {path} && chown {who} {path}"
    )


def check_directories(config: AppConfig) -> list[Check]:
    return [
        _writable("recordings dir", config.recordings_dir, "<service user>"),
        _writable(
            "fallback spool", config.fallback_spool_dir, "asterisk:<service group>; chmod 2770"
        ),
    ]


async def check_asterisk(
    config: AppConfig,
    password: str,
    timeout_s: float = 5.0,
    seen: dict[str, str] | None = None,
) -> list[Check]:
    """`seen`, if given, receives the PBX's `system_name` (asterisk.conf systemname)."""
    client = AriClient(
        config.ari.url, config.ari.username, password, config.ari.app, request_timeout_s=timeout_s
    )
    try:
        try:
            info = await client.asterisk_info()
        except AriError as exc:
            if exc.status == 401:
                return [
                    _fail(
                        "ARI",
                        f"{config.ari.url} refused user {config.ari.username!r} (HTTP 401)",
                        f"check [{config.ari.username}] in ari.conf and the password "
                        f"(file or ${config.ari.password_env})",
                    )
                ]
            return [_fail("ARI", str(exc), "check ari.conf (enabled = yes) and res_ari is loaded")]
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return [
                _fail(
                    "ARI",
                    f"{config.ari.url} unreachable: {exc or type(exc).__name__}",
                    "start Asterisk; check http.conf (enabled = yes, bindaddr, bindport) "
                    "matches ari.url",
                )
            ]
        version = str((info.get("system") or {}).get("version", "?"))
        if seen is not None:
            seen["system_name"] = str((info.get("config") or {}).get("name") or "")
        checks = [
            Check(
                "ARI", True, f"Asterisk {version} at {config.ari.url}, user {config.ari.username}"
            ),
            check_version(version),
        ]
        if not checks[-1].ok:
            return checks  # nothing else is worth checking on an unsupported PBX
        checks.append(await _check_modules(client))
        checks.extend(await _check_dialplan(client, config))
        # A transport that failed to bind leaves Asterisk up and ARI fine, but deaf.
        checks.append(await check_sip_transport(config, version))
        checks.append(await check_trunk(client, config))
        checks.append(await check_sip_endpoints(client, config))
        return checks
    finally:
        await client.close()


async def _check_modules(client: AriClient) -> Check:
    missing: list[str] = []
    for module in REQUIRED_MODULES:
        try:
            await client.request("GET", f"/asterisk/modules/{module}")
        except AriError:
            missing.append(module)
    if missing:
        return _fail(
            "modules",
            f"not loaded: {', '.join(missing)}",
            "add `load => <module>` to modules.conf (or autoload), then: "
            "asterisk -rx 'module load <module>'",
        )
    return Check("modules", True, f"{len(REQUIRED_MODULES)} required modules loaded")


async def _global(client: AriClient, name: str) -> str:
    reply = await client.request("GET", "/asterisk/variable", params={"variable": name})
    return str((reply or {}).get("value") or "")


async def _check_dialplan(client: AriClient, config: AppConfig) -> list[Check]:
    include = (
        '#include "/opt/astreinte/dialplan/extensions_astreinte.conf" in extensions.conf, '
        "then: asterisk -rx 'dialplan reload'"
    )
    try:
        digits = await run_publish(client, "check", {}, 3.0)
    except (AriError, TimeoutError):
        return [
            _fail(
                "dialplan",
                f"[{PUBLISH_CONTEXT}] did not answer: the project's dialplan is not loaded",
                include,
            )
        ]
    flags = digits.removeprefix("v1:")
    missing = [
        c for c, flag in zip(CONTEXTS, flags.ljust(len(CONTEXTS), "0"), strict=True) if flag != "1"
    ]
    checks = [
        _fail(
            "dialplan",
            f"contexts missing: {', '.join(missing)}",
            include + " (and load func_dialplan)",
        )
        if missing
        else Check("dialplan", True, f"contexts loaded: {', '.join(CONTEXTS)}")
    ]
    configured = await _global(client, "ASTREINTE_CONFIG")
    if not configured:
        checks.append(
            _fail(
                "fallback config",
                "global ASTREINTE_CONFIG is not set: the fallback cannot read the YAML",
                f"[globals] ASTREINTE_CONFIG = {config.source_path} in extensions.conf, "
                "then dialplan reload",
            )
        )
    elif Path(configured).resolve() != config.source_path.resolve():
        checks.append(
            _fail(
                "fallback config",
                f"ASTREINTE_CONFIG is {configured}, not {config.source_path}",
                f"set [globals] ASTREINTE_CONFIG = {config.source_path}",
            )
        )
    else:
        checks.append(Check("fallback config", True, f"ASTREINTE_CONFIG = {configured}"))
    return checks


def check_cel(config: AppConfig) -> Check:
    """The CEL file Asterisk writes (dialplan/cel_custom_astreinte.conf), readable here."""
    path = config.cel.file
    fix = (
        "install dialplan/cel_custom_astreinte.conf (cel.conf: enable = yes) and set "
        "cel: {file: /var/log/asterisk/cel-custom/astreinte-cel.csv}"
    )
    if path is None:
        return _fail("CEL records", "cel.file not set: calls that end while the service is "
                     "away would be closed without their true time and cause", fix)  # fmt: skip
    if path.exists():
        if os.access(path, os.R_OK):
            return Check("CEL records", True, f"{path} readable")
        return _fail("CEL records", f"{path} is not readable by this user",
                     f"chgrp <service group> {path}; chmod g+r {path}")  # fmt: skip
    if path.parent.is_dir() and os.access(path.parent, os.R_OK | os.X_OK):
        return Check("CEL records", True, f"{path} not written yet (no channel since the start)")
    return _fail("CEL records", f"{path.parent} does not exist or is not readable", fix)


def run_checks(config: AppConfig) -> list[Check]:
    checks = check_secrets(config)
    seen: dict[str, str] = {}
    try:
        password = config.ari_password()
    except SecretError:
        checks.append(_fail("ARI", "not checked: no password", "see the ARI password check above"))
    else:
        checks.extend(asyncio.run(check_asterisk(config, password, seen=seen)))
    checks.append(check_sounds(config))
    checks.append(database := check_database(config))
    if database.ok:  # this node's name and role, every node's heartbeat
        checks.append(check_cluster(config, seen.get("system_name")))
    checks.append(check_cel(config))
    checks.extend(check_directories(config))
    return checks


def render(checks: Iterable[Check]) -> str:
    lines: list[str] = []
    for check in checks:
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name:<16} {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"        {'':<16} fix: {check.fix}")
    return "\n".join(lines)
