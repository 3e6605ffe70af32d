#!/usr/bin/env python3
"""The caller web app in a real browser, for callbox tests: Playwright driving Debian's
headless chromium with its fake camera (a moving test pattern) and fake microphone.

    browser.py --url http://127.0.0.1:PORT/ --shots DIR
               [--chromium /usr/bin/chromium]

Opens the hub's caller app and then does what stdin says, one command per line; each
command ends with one JSON line on stdout: {"event": "done", "cmd": ..., "n": ..., ...}
or {"event": "failed", "cmd": ..., "n": ..., "error": ...}, where n counts the commands
from 1. Also printed as they happen:
{"event": "page_error"|"console_error", "text": ...}.

Commands (waits are in seconds; every selector is a data-testid of hub/web):
  goto URL                        open URL
  url                             the page's address now
  signin CREDENTIAL               type the credential, press Sign in, wait until signed in
  presence IDENTITY PRESENCE S    wait until the contact shows PRESENCE
  contacts                        the contact list: identity and presence of each
  call IDENTITY video|audio       press the contact's call button
  state STATE S                   wait until call-state is STATE; reports the message
  click TESTID                    press a button (accept, decline, cancel, hangup, mute, …)
  pressed TESTID VALUE S          wait until a button's aria-pressed is VALUE (a toggle
                                  updates it once the browser has done it: async)
  wait-debug KEY JSON S           wait until window.callboxDebug's KEY equals JSON
  key KEY                         press a key (Playwright's names: Escape, Enter, Tab)
  frames N S                      wait until N remote video frames were shown in this call
  debug                           window.callboxDebug's state, frames, size, mic, tracks,
                                  setup (unix ms of the invite POST and the first frame)
  history                         the history rows' text and call ids
  shot NAME                       screenshots DIR/NAME-phone.png (390x844) and
                                  DIR/NAME-desktop.png (1280x800)
  freeze-contacts                 from now on the page's contact polls get the list the
                                  hub gives now (after `signin`): a page whose list is
                                  stale, e.g. from before the owner revoked a contact
  quit

Exit codes: 0 after quit or end of stdin, 1 unexpected error, 64 bad command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

T0 = time.monotonic()
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def emit(event: str, **fields: Any) -> None:
    obj = {"event": event, "t_ms": int((time.monotonic() - T0) * 1000)}
    obj.update(fields)
    print(json.dumps(obj), flush=True)


def log(msg: str) -> None:
    print(f"browser: {msg}", file=sys.stderr, flush=True)


def tid(name: str) -> str:
    return f'[data-testid="{name}"]'


class Driver:
    def __init__(self, page, shots: str) -> None:
        self.page = page
        self.shots = shots
        self.credential = ""

    def run(self, cmd: str, args: list[str]) -> dict[str, Any]:
        page = self.page
        if cmd == "goto":
            page.goto(args[0])
            return {}
        if cmd == "url":
            return {"url": page.url}
        if cmd == "signin":
            self.credential = args[0]
            page.locator(tid("signin-credential")).fill(args[0])
            page.locator(tid("signin-submit")).click()
            page.locator(tid("me")).wait_for(timeout=10_000)
            return {"me": page.locator(tid("me")).inner_text()}
        if cmd == "presence":
            identity, presence, secs = args[0], args[1], float(args[2])
            row = page.locator(f'{tid("contact")}[data-identity="{identity}"]')
            page.locator(
                f'{tid("contact")}[data-identity="{identity}"][data-presence="{presence}"]'
            ).wait_for(timeout=secs * 1000)
            return {"text": row.inner_text()}
        if cmd == "contacts":
            rows = page.locator(tid("contact"))
            return {
                "contacts": [
                    {
                        "identity": rows.nth(i).get_attribute("data-identity"),
                        "presence": rows.nth(i).get_attribute("data-presence"),
                    }
                    for i in range(rows.count())
                ]
            }
        if cmd == "call":
            identity, kind = args[0], args[1]
            row = page.locator(f'{tid("contact")}[data-identity="{identity}"]')
            row.locator(tid(f"call-{kind}")).click()
            return {}
        if cmd == "state":
            state, secs = args[0], float(args[1])
            page.locator(f'{tid("call-state")}[data-state="{state}"]').wait_for(
                timeout=secs * 1000
            )
            return {"state": state, "message": self.message()}
        if cmd == "click":
            page.locator(tid(args[0])).click()
            return {}
        if cmd == "key":
            page.keyboard.press(args[0])
            return {}
        if cmd == "pressed":
            name, value, secs = args[0], args[1], float(args[2])
            page.locator(f'{tid(name)}[aria-pressed="{value}"]').wait_for(timeout=secs * 1000)
            return {"pressed": value}
        if cmd == "wait-debug":
            key, want, secs = args[0], json.loads(args[1]), float(args[2])
            deadline = time.monotonic() + secs
            while True:
                d = self.debug()
                if d.get(key) == want:
                    return d
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{key} is {d.get(key)!r}, not {want!r}, after {secs} s: {d}")
                time.sleep(0.1)
        if cmd == "frames":
            # Polled from here: wait_for_function evaluates a string, which the app's
            # Content-Security-Policy (no 'unsafe-eval') rightly refuses.
            want, secs = int(args[0]), float(args[1])
            deadline = time.monotonic() + secs
            while True:
                d = self.debug()
                if d["frames"] >= want:
                    return d
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{d['frames']} remote frames of {want} in {secs} s: {d}")
                time.sleep(0.2)
        if cmd == "debug":
            return self.debug()
        if cmd == "history":
            # The page refreshes its history after a call; wait for a row.
            rows = page.locator(tid("history-item"))
            rows.first.wait_for(timeout=10_000)
            return {
                "history": [
                    {
                        "callId": rows.nth(i).get_attribute("data-call-id"),
                        "text": rows.nth(i).inner_text(),
                    }
                    for i in range(rows.count())
                ]
            }
        if cmd == "shot":
            name = args[0]
            files = []
            for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
                page.set_viewport_size(size)
                path = os.path.join(self.shots, f"{name}-{label}.png")
                page.screenshot(path=path)
                files.append(path)
            page.set_viewport_size(DESKTOP)
            return {"files": files}
        if cmd == "freeze-contacts":
            reply = page.request.get(
                page.url.split("#")[0].rstrip("/") + "/api/contacts",
                headers={"Authorization": f"Bearer {self.credential}"},
            )
            body = reply.text()
            page.route(
                "**/api/contacts",
                lambda route: route.fulfill(
                    status=200, content_type="application/json", body=body
                ),
            )
            return {"contacts": json.loads(body)}
        raise ValueError(f"unknown command `{cmd}`")

    def message(self) -> str | None:
        loc = self.page.locator(tid("call-message"))
        return loc.inner_text() if loc.count() else None

    def debug(self) -> dict[str, Any]:
        return self.page.evaluate(
            """() => { const d = window.callboxDebug; return {
                state: d.state(), frames: d.remoteVideoFrames(), size: d.remoteVideoSize(),
                micMuted: d.micMuted(), tracks: d.publishedTracks(), setup: d.setup() }; }"""
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    try:
        opts = ap.parse_args()
    except SystemExit as e:
        return 64 if e.code else 0
    os.makedirs(opts.shots, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=opts.chromium,
            args=[
                # Root in a container: chromium's sandbox needs user namespaces.
                "--no-sandbox",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        context = browser.new_context(viewport=DESKTOP)
        context.grant_permissions(["camera", "microphone", "notifications"])
        page = context.new_page()
        page.on("pageerror", lambda e: emit("page_error", text=str(e)))
        page.on(
            "console",
            lambda m: emit("console_error", text=m.text) if m.type == "error" else None,
        )
        page.goto(opts.url)
        emit("ready", url=opts.url)
        driver = Driver(page, opts.shots)
        n = 0
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            cmd, args = words[0], words[1:]
            if cmd == "quit":
                break
            n += 1
            try:
                emit("done", cmd=cmd, n=n, **driver.run(cmd, args))
            except (PlaywrightError, ValueError, IndexError, TimeoutError) as e:
                log(f"{cmd} failed: {e}")
                emit("failed", cmd=cmd, n=n, error=str(e).splitlines()[0] if str(e) else repr(e))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
