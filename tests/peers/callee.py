#!/usr/bin/env python3
"""A callee for callbox tests (a box dialing out): a real LiveKit Python SDK client.

    callee.py answer --hub http://127.0.0.1:PORT --credential CRED [options]

Connects to the hub's event WebSocket (GET /ws?access_token=CRED), waits for a
call_invitation, accepts it (POST /api/calls/invitations/respond), joins the room,
publishes a moving test pattern and a 440 Hz tone, counts the decoded remote frames
(media_ok once the thresholds are met and --hold has passed) and stays in the call
until the hub sends call_ended / call_cancelled, the room disconnects, stdin says
hangup/leave, or --timeout (for the whole run) passes. With --reject REASON it refuses
the invitation instead.

stdout: one JSON object per line, {"event": ..., "t_ms": ms since start, ...}:
  hub_ws_connected, hub_ws_failed, hub_event, invitation, rejected_invitation,
  respond_failed, accepted, connected, connect_failed, published,
  participant_connected, participant_disconnected, remote_track, first_video_frame
  (t_ms_since_invite counts from the invitation), video_stalled (no frame for 3 s on a
  subscribed video track, with the receiver's WebRTC stats), media_ok, call_ended,
  call_cancelled, disconnected, timeout, command, status, hung_up, summary.
stdin (one per line): hangup (end the call), leave (disconnect only), status.

Exit codes (64: bad command line): 0 done (call ended/cancelled by the other side or the hub, or hangup/leave
on stdin, or invitation rejected as asked), 1 unexpected error, 2 --timeout passed,
3 hub WebSocket or respond request failed, 4 room disconnected before media_ok,
5 the end request failed, 7 could not join the room.
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
    log,
    pump_hub_events,
    run_main,
    start_stdin_reader,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ArgumentParser(prog="callee.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("answer", help="wait for a call through the hub and answer it")
    a.add_argument("--hub", required=True, help="hub base URL, e.g. http://127.0.0.1:8080")
    a.add_argument("--credential", required=True, help="bearer credential for the hub")
    a.add_argument("--from", dest="inviter", help="only answer invitations from this identity")
    a.add_argument("--answer-delay", type=float, default=0.0,
                   help="seconds to let it ring before answering")
    a.add_argument("--reject", choices=["busy", "declined", "dnd"],
                   help="refuse the invitation with this reason instead of accepting")
    a.add_argument("--hangup-after-media", action="store_true",
                   help="end the call (POST /api/calls/end) once media_ok is reached")
    add_media_args(a)
    return p.parse_args(argv)


async def answer(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    counter = MediaCounter.from_args(args)
    commands: asyncio.Queue[str] = asyncio.Queue()
    start_stdin_reader(commands)
    hub_events: asyncio.Queue[dict] = asyncio.Queue()
    async with Hub(args.hub, args.credential) as hub:
        ready = asyncio.Event()
        pump = asyncio.create_task(pump_hub_events(hub, hub_events, ready))
        try:
            ready_wait = asyncio.create_task(ready.wait())
            await asyncio.wait({pump, ready_wait}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            ready_wait.cancel()
            if not ready.is_set():
                emit("hub_ws_failed", url=hub.ws_url().split("?")[0])
                return 3
            emit("hub_ws_connected", url=hub.ws_url().split("?")[0])

            # Ring phase: wait for an invitation (for us, from --from if given).
            invitation = None
            while invitation is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    emit("timeout", phase="waiting_for_invitation")
                    return 2
                if pump.done() and hub_events.empty():
                    return 3
                try:
                    ev = await asyncio.wait_for(hub_events.get(), min(remaining, 0.5))
                except asyncio.TimeoutError:
                    continue
                emit("hub_event", type=ev.get("type"), data=ev)
                if ev.get("type") != "call_invitation":
                    continue
                if args.inviter and ev.get("inviter") != args.inviter:
                    log(f"ignoring an invitation from {ev.get('inviter')!r}")
                    continue
                invitation = ev
            counter.t_ref = time.monotonic()
            call_id = invitation.get("callId")
            emit("invitation", invitationId=invitation.get("invitationId"), callId=call_id,
                 inviter=invitation.get("inviter"), callType=invitation.get("callType"),
                 roomName=invitation.get("roomName"))
            if invitation.get("callType") == "audio":
                args.audio_only = True

            # Let it ring, watching for the caller giving up.
            ring_until = time.monotonic() + args.answer_delay
            while time.monotonic() < ring_until:
                try:
                    ev = await asyncio.wait_for(hub_events.get(), max(0.01, ring_until - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                emit("hub_event", type=ev.get("type"), data=ev)
                if ev.get("type") == "call_cancelled" and ev.get("callId") == call_id:
                    emit("call_cancelled", callId=call_id)
                    return 0

            body = {"invitationId": invitation.get("invitationId"),
                    "action": "reject" if args.reject else "accept"}
            if args.reject:
                body["reason"] = args.reject
            status, info = await hub.post("/api/calls/invitations/respond", body)
            if not (200 <= status < 300):
                emit("respond_failed", status=status, body=info, action=body["action"])
                return 3
            if args.reject:
                emit("rejected_invitation", callId=call_id, reason=args.reject, status=status)
                return 0
            url = info.get("url") if isinstance(info, dict) else None
            token = join_token(info) if isinstance(info, dict) else None
            emit("accepted", callId=call_id, roomName=(info or {}).get("roomName"), url=url,
                 status=status, respond_ms=int((time.monotonic() - counter.t_ref) * 1000))
            if not url or not token:
                emit("respond_failed", status=status, body=info, error="JoinInfo has no url/token")
                return 3

            session = CallSession(args, hub, counter, commands, hub_events)
            if not await session.join(url, token, callId=call_id):
                await session.leave()
                return session.summary("connect_failed", 7, callId=call_id)
            outcome = await session.run(call_id, deadline,
                                        hangup_after_media=args.hangup_after_media,
                                        deadline_after_media=True)
            if outcome == "hangup":
                code = 0 if await session.end_call(call_id, "hangup") else 5
            elif outcome == "disconnected":
                outcome = await session.why_disconnected(call_id) or outcome
                await session.leave()
                code = 0 if session.media_ok or outcome == "call_ended" else 4
            else:  # leave, timeout, call_ended, call_cancelled, rejected
                await session.leave()
                code = 2 if outcome == "timeout" else 0
            return session.summary(outcome, code, callId=call_id)
        finally:
            pump.cancel()


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        return await answer(args)
    except Exception as e:  # noqa: BLE001 - last resort: report and fail
        import traceback

        traceback.print_exc()
        emit("error", error=f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    run_main(main(sys.argv[1:]))
