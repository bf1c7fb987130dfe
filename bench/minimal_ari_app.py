"""The floor for the benchmark: the least an ARI app can do for the same flow.

Caller enters -> play the announcement -> originate the agent -> agent answers
-> play "press 1" -> agent presses 1 -> bridge both. No audit, no config, no
state machine: what the service adds is measured against this.

    python bench/minimal_ari_app.py URL USER PASSWORD APP AGENT_ENDPOINT SOUNDS_DIR
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid

import aiohttp

DEBUG = bool(os.environ.get("FLOOR_DEBUG"))


async def main(url: str, user: str, password: str, app: str, agent: str, sounds: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def post(path: str, **params: str) -> None:
            async with http.post(f"{url}/ari{path}", params=params) as resp:
                await resp.read()

        async def delete(path: str) -> None:
            async with http.delete(f"{url}/ari{path}") as resp:
                body = await resp.read()
                if DEBUG:
                    print(f"DELETE {path} -> {resp.status} {body[:100]!r}", file=sys.stderr)

        peer: dict[str, str] = {}  # caller <-> agent
        prompt_of: dict[str, str] = {}  # playback id -> caller (announcement end)
        agent_prompt: dict[str, str] = {}  # agent channel -> its "press 1" playback
        async with http.ws_connect(f"{url}/ari/events", params={"app": app}) as ws:
            print("floor ready", flush=True)
            async for msg in ws:
                event = json.loads(msg.data)
                kind, channel = event.get("type"), event.get("channel", {})
                if DEBUG:
                    print(
                        f"{time.time():.3f} {kind} {channel.get('id')} {event.get('timestamp')}",
                        file=sys.stderr,
                        flush=True,
                    )
                if kind == "StasisStart" and not channel["id"].startswith("floor-agent-"):
                    pb = f"floor-pb-{uuid.uuid4().hex[:12]}"
                    prompt_of[pb] = channel["id"]
                    await post(
                        f"/channels/{channel['id']}/play/{pb}",
                        media=f"sound:{sounds}/fr/astreinte-after-hours",
                    )
                elif kind == "PlaybackFinished" and event["playback"]["id"] in prompt_of:
                    caller = prompt_of.pop(event["playback"]["id"])
                    agent_id = f"floor-agent-{uuid.uuid4().hex[:12]}"
                    peer[caller], peer[agent_id] = agent_id, caller
                    await post(
                        "/channels",
                        endpoint=agent,
                        app=app,
                        appArgs="agent",
                        channelId=agent_id,
                        timeout="20",
                    )
                elif kind == "StasisStart":
                    pb = f"floor-pb-{uuid.uuid4().hex[:12]}"
                    agent_prompt[channel["id"]] = pb
                    await post(
                        f"/channels/{channel['id']}/play/{pb}",
                        media=f"sound:{sounds}/fr/astreinte-press-1",
                    )
                elif kind == "ChannelDtmfReceived" and channel["id"] in peer:
                    agent_id = channel["id"]
                    if (
                        event.get("digit") == "1"
                        and agent_id.startswith("floor-agent-")
                        and agent_id in agent_prompt  # the first '1' only
                    ):
                        # A playing prompt would hold the channel until it ends.
                        await delete(f"/playbacks/{agent_prompt.pop(agent_id)}")
                        bridge = f"floor-br-{uuid.uuid4().hex[:12]}"
                        await post("/bridges", type="mixing", bridgeId=bridge)
                        await post(
                            f"/bridges/{bridge}/addChannel",
                            channel=f"{peer[channel['id']]},{channel['id']}",
                        )
                elif kind == "StasisEnd" and channel["id"] in peer:
                    other = peer.pop(channel["id"])
                    peer.pop(other, None)
                    await delete(f"/channels/{other}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
