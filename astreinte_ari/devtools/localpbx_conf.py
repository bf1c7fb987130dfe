"""The configuration files of the private Asterisk (localpbx.py): which modules to
load on each version, and the templates of the files that differ per instance
(directories, SIP endpoints, dialplan). Loopback only, for the demo and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from astreinte_ari.config.fields import SIP_ENDPOINT_RE
from astreinte_ari.devtools.pbxinstall import AsteriskInstall, Version, has_websocket_client

# Modules needed for PJSIP + ARI + prompts + recording; autoload stays off so
# the instance binds no port it does not need (chan_sip, IAX2, skinny...).
_MODULES = """
res_pjproject res_sorcery_config res_sorcery_memory res_sorcery_astdb res_pjsip
res_pjsip_session res_pjsip_pubsub res_pjsip_endpoint_identifier_ip
res_pjsip_endpoint_identifier_user res_pjsip_authenticator_digest
res_pjsip_outbound_authenticator_digest res_pjsip_caller_id res_pjsip_dtmf_info
res_pjsip_sdp_rtp res_pjsip_rfc3326 res_pjsip_diversion res_pjsip_nat
res_pjsip_logger res_pjsip_header_funcs chan_pjsip res_rtp_asterisk
res_timing_timerfd res_http_websocket res_stasis res_stasis_answer res_stasis_playback
res_stasis_recording res_stasis_snoop res_stasis_device_state res_ari res_ari_model
res_ari_channels res_ari_bridges res_ari_playbacks res_ari_recordings res_ari_sounds
res_ari_asterisk res_ari_applications res_ari_endpoints res_ari_events
res_ari_device_states app_stasis bridge_simple bridge_softmix bridge_native_rtp
bridge_holding codec_ulaw codec_alaw codec_a_mu codec_gsm format_wav format_pcm format_sln
format_gsm app_dial app_playback app_echo app_record app_senddtmf app_verbose
pbx_config func_timeout func_callerid func_strings func_channel func_db func_logic
func_global res_speech res_agi func_hangupcause app_db res_musiconhold
app_read app_stack func_env func_math func_dialplan cel_custom
"""


def modules_for(version: Version, moddir: Path | None = None) -> list[str]:
    """The modules to load on this Asterisk version (autoload is off, so a
    module another one `.requires` must be listed, and one that does not exist
    must not be)."""
    modules = _MODULES.split()
    if has_websocket_client(version):
        modules.insert(modules.index("res_ari"), "res_websocket_client")
    # cel_custom requires the shared CDR/CEL backend code in recent 22 releases.
    if moddir is not None and (moddir / "res_cdrel_custom.so").exists():
        modules.insert(modules.index("cel_custom"), "res_cdrel_custom")
    return modules


def asterisk_conf(
    etc: Path, workdir: Path, install: AsteriskInstall, agi_dir: Path, system_name: str
) -> str:
    """asterisk.conf: every directory inside the work directory but the install's own."""
    w = workdir
    return f"""[directories]
astetcdir => {etc}
astmoddir => {install.moddir}
astvarlibdir => {w}/lib
astdbdir => {w}/db
astkeydir => {w}/lib
astdatadir => {install.datadir}
astagidir => {agi_dir}
astspooldir => {w}/spool
astrundir => {w}/run
astlogdir => {w}/log
astsbindir => {install.sbindir}
[options]
nofork = yes
{f"systemname = {system_name}" if system_name else ""}
maxcalls = 2000
transmit_silence = yes
"""


def pjsip_conf(
    *,
    host: str,
    sip_port: int,
    callers_from: str,
    phones: Mapping[str, int],
    phones_host: str,
    endpoint_options: str,
) -> str:
    """pjsip.conf: callers from `callers_from` on the public DID, and one endpoint
    with a fixed contact per simulated phone (mobile or desk phone)."""
    parts = [
        f"[transport-udp]\ntype = transport\nprotocol = udp\nbind = {host}:{sip_port}\n",
        # Every call from loopback is a caller on the public DID.
        "[caller]\ntype = endpoint\ntransport = transport-udp\ncontext = astreinte-inbound\n"
        "disallow = all\nallow = ulaw\ndtmf_mode = rfc4733\ndirect_media = no\n"
        f"trust_id_inbound = no\nrtp_symmetric = yes\n{endpoint_options}",
        f"[caller-identify]\ntype = identify\nendpoint = caller\nmatch = {callers_from}\n",
    ]
    # A mobile behind the "trunk" and a desk phone of the PBX are both one endpoint
    # with a fixed contact here; only the name differs (+336... vs desk-101).
    for name, port in phones.items():
        if not SIP_ENDPOINT_RE.match(name.lstrip("+")):
            raise ValueError(f"{name!r} cannot name a PJSIP endpoint")
        parts.append(
            f"[{name}]\ntype = aor\ncontact = sip:{name}@{phones_host}:{port}\n"
            f"[{name}]\ntype = endpoint\ntransport = transport-udp\n"
            f"context = astreinte-unused\naors = {name}\ndisallow = all\nallow = ulaw\n"
            "dtmf_mode = rfc4733\ndirect_media = no\nrtp_symmetric = yes\n" + endpoint_options
        )
    return "\n".join(parts)


def extensions_conf(
    sounds_dir: Path,
    dialplan_dir: Path,
    dialplan_globals: Mapping[str, str],
    extra_dialplan: str,
) -> str:
    """extensions.conf: the project's dialplan included, with its [globals]."""
    extra_globals = "".join(f"{k} = {v}\n" for k, v in dialplan_globals.items())
    return (
        f"[globals]\nASTREINTE_SOUNDS = {sounds_dir}\n{extra_globals}\n"
        f'#include "{dialplan_dir}/extensions_astreinte.conf"\n\n'
        "[astreinte-unused]\nexten => _X.,1,Hangup(21)\n\n" + extra_dialplan
    )


def fallback_agi_script(python: str, repo_root: Path) -> str:
    """The AGI(astreinte-fallback) shim: this Python, this checkout's package."""
    return (
        f"#!{python}\nimport sys\nsys.path.insert(0, {str(repo_root)!r})\n"
        "from astreinte_ari.adapters.fallback.agi import main\nsys.exit(main())\n"
    )


# Tone zones for ringback played to a waiting caller (tone:ring).
INDICATIONS = """[general]
country = fr
[fr]
description = France
ringcadence = 1500,3500
dial = 440
busy = 440/500,0/500
ring = 440/1500,0/3500
congestion = 440/250,0/250
[us]
description = United States
ringcadence = 2000,4000
dial = 350+440
busy = 480+620/500,0/500
ring = 440+480/2000,0/4000
congestion = 480+620/250,0/250
"""


# The files that are the same for every instance.
FIXED_FILES: Mapping[str, str] = {
    "logger.conf": "[general]\n[logfiles]\nmessages => notice,warning,error,verbose\n"
    "console => notice,warning,error\n",
    "indications.conf": INDICATIONS,
    "cdr.conf": "[general]\nenable = no\n",
    # The PBX's own record of every channel, for the service's reconciliation.
    "cel.conf": "[general]\nenable = yes\n"
    "events = CHAN_START,CHAN_END,ANSWER,HANGUP,BRIDGE_ENTER,BRIDGE_EXIT\n",
    "stasis.conf": "",
    "pjproject.conf": "",
    "res_stun_monitor.conf": "",
    "udptl.conf": "",
    "acl.conf": "",
    "ccss.conf": "",
    "features.conf": "",
    "codecs.conf": "",
    # Read by res_websocket_client (22.5+); absent, it logs an ERROR at start.
    "websocket_client.conf": "",
}
