#!/usr/bin/env python3
"""The remote caller of callbox tests and `make demo`: a real LiveKit Python SDK client.

    caller.py dial --hub http://127.0.0.1:PORT --credential CRED --callee box1 [options]
    caller.py dial --direct-url ws://127.0.0.1:PORT --direct-token JWT [options]

Places a video call through the hub (POST /api/calls/invite), joins the LiveKit room,
publishes a moving test pattern (H.264 by default) and a 440 Hz tone, counts the
decoded remote video/audio frames, and once the thresholds are met (and --hold has
passed) prints media_ok and hangs up (POST /api/calls/end) unless --no-hangup.
--direct-url/--direct-token skip the hub and join a room directly.

stdout: one JSON object per line, {"event": ..., "t_ms": ms since start, ...}:
  invited, invite_failed, connected, connect_failed, published, participant_connected,
  participant_disconnected, remote_track, first_video_frame, video_stalled (a subscribed
  video track delivered no frame for 3 s; has the receiver's WebRTC stats), media_ok,
  timeout (has video_receivers: those stats per remote participant), disconnected,
  hub_event, call_ended, rejected, command, status, hung_up, summary.
stdin (one per line): hangup (end the call now), leave (disconnect without ending the
call), status (print a status event).

Exit codes (64: bad command line): 0 done (media_ok, or hangup/leave asked on stdin), 1 unexpected error,
2 thresholds not reached before --timeout, 3 invite failed, 4 room disconnected or
call ended before media_ok, 5 the end request failed, 6 the callee rejected,
7 could not join the room.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Optional

from common import (
    ArgumentParser,
    CallSession,
    Hub,
    MediaCounter,
    add_media_args,
    emit,
    join_token,
    pump_hub_events,
    run_main,
    start_stdin_reader,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ArgumentParser(prog="caller.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dial", help="call someone through the hub (or join a room directly)")
    d.add_argument("--hub", help="hub base URL, e.g. http://127.0.0.1:8080")
    d.add_argument("--credential", help="bearer credential for the hub")
    d.add_argument("--callee", action="append", default=[],
                   help="identity to invite (repeatable)")
    d.add_argument("--call-type", choices=["video", "audio"], default="video")
    d.add_argument("--room-name", help="ask the hub for this room name")
    d.add_argument("--watch-hub", action="store_true",
                   help="also listen on the hub WebSocket (GET /ws): report its events, stop "
                        "on invitation_rejected / call_ended for this call")
    d.add_argument("--no-hangup", action="store_true",
                   help="after media_ok stay in the call until stdin says hangup/leave, the "
                        "room disconnects or the hub ends the call")
    d.add_argument("--direct-url", help="LiveKit URL: skip the hub and join with --direct-token")
    d.add_argument("--direct-token", help="LiveKit access token for --direct-url")
    add_media_args(d)
    a = p.parse_args(argv)
    if a.call_type == "audio":
        a.audio_only = True
    if a.direct_url or a.direct_token:
        if not (a.direct_url and a.direct_token):
            p.error("--direct-url and --direct-token go together")
    elif not (a.hub and a.credential and a.callee):
        p.error("--hub, --credential and --callee are required (or --direct-url/--direct-token)")
    return a


async def dial(args: argparse.Namespace) -> int:
    counter = MediaCounter.from_args(args)
    commands: asyncio.Queue[str] = asyncio.Queue()
    start_stdin_reader(commands)
    direct = bool(args.direct_url)
    hub = None if direct else Hub(args.hub, args.credential)
    hub_events: Optional[asyncio.Queue[dict]] = None
    pump = None
    try:
        if hub is not None:
            await hub.__aenter__()
            if args.watch_hub:
                hub_events = asyncio.Queue()
                ready = asyncio.Event()
                pump = asyncio.create_task(pump_hub_events(hub, hub_events, ready))
                try:
                    await asyncio.wait_for(ready.wait(), 10)
                    emit("hub_ws_connected", url=hub.ws_url().split("?")[0])
                except asyncio.TimeoutError:
                    emit("hub_ws_failed")

        counter.t_ref = time.monotonic()
        call_id: Optional[str] = None
        if direct:
            url, token = args.direct_url, args.direct_token
        else:
            body = {"callType": args.call_type, "invitees": args.callee}
            if args.room_name:
                body["roomName"] = args.room_name
            status, info = await hub.post("/api/calls/invite", body)
            if not (200 <= status < 300) or not isinstance(info, dict):
                emit("invite_failed", status=status, body=info)
                return 3
            call_id = info.get("callId")
            url, token = info.get("url"), join_token(info)
            emit("invited", callId=call_id, roomName=info.get("roomName"), url=url, status=status,
                 invite_ms=int((time.monotonic() - counter.t_ref) * 1000))
            if not url or not token:
                emit("invite_failed", status=status, body=info, error="JoinInfo has no url/token")
                return 3

        session = CallSession(args, hub, counter, commands, hub_events)
        if not await session.join(url, token, callId=call_id):
            await session.leave()
            if call_id is not None and not args.no_hangup:
                await hub.post("/api/calls/end", {"callId": call_id, "reason": "media_failed"})
            return session.summary("connect_failed", 7, callId=call_id)

        deadline = counter.t_ref + args.timeout
        outcome = await session.run(call_id, deadline, hangup_after_media=not args.no_hangup,
                                    deadline_after_media=False)
        if outcome == "hangup":
            ok = await session.end_call(call_id, "hangup")
            code = 0 if ok else 5
        elif outcome == "timeout":
            if args.no_hangup:
                await session.leave()
            else:
                await session.end_call(call_id, "caller_timeout")
            code = 2
        elif outcome == "rejected":
            await session.leave()
            code = 6
        else:  # leave, disconnected, call_ended, call_cancelled
            if outcome == "disconnected":
                outcome = await session.why_disconnected(call_id) or outcome
            await session.leave()
            code = 0 if (session.media_ok or outcome == "leave") else 4
        return session.summary(outcome, code, callId=call_id)
    finally:
        if pump is not None:
            pump.cancel()
        if hub is not None:
            await hub.__aexit__(None, None, None)


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        return await dial(args)
    except Exception as e:  # noqa: BLE001 - last resort: report and fail
        import traceback

        traceback.print_exc()
        emit("error", error=f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    run_main(main(sys.argv[1:]))
