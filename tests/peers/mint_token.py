#!/usr/bin/env python3
"""Mint a LiveKit access token (prints the JWT on stdout).

    mint_token.py --api-key KEY --api-secret SECRET --room ROOM --identity ID
             [--name NAME] [--hidden] [--no-publish] [--no-subscribe] [--ttl SECS]

Used by callbox-testkit (`LiveKit::token`) and for direct-mode runs of caller.py.
"""

import argparse
import datetime
import sys

from livekit import api


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--hidden", action="store_true", help="a participant others do not see")
    p.add_argument("--no-publish", action="store_true")
    p.add_argument("--no-subscribe", action="store_true")
    p.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    a = p.parse_args()

    grants = api.VideoGrants(
        room_join=True,
        room=a.room,
        can_publish=not a.no_publish,
        can_subscribe=not a.no_subscribe,
        can_publish_data=not a.no_publish,
        hidden=a.hidden,
    )
    token = (
        api.AccessToken(a.api_key, a.api_secret)
        .with_identity(a.identity)
        .with_name(a.name or a.identity)
        .with_grants(grants)
        .with_ttl(datetime.timedelta(seconds=a.ttl))
        .to_jwt()
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
