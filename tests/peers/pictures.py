"""What a picture shows, for tests that must tell whose video they are looking at.

Two colour-bar patterns travel through callbox's tests, both eight vertical bars in the
order white, yellow, cyan, green, magenta, red, blue, black:
  - "vivid-bars": the kernel's vivid camera (the hardware lab's /dev/video0), default
    test pattern "75% Colorbar" (drivers/media/common/v4l2-tpg: 75 % of full scale,
    191 in 8-bit RGB), static.
  - "caller-bars": what the test peers publish (common.MediaPublisher): full-scale bars
    (the last one 16), scrolling, with a moving square.
GStreamer's videotestsrc (the box's fallback without a camera) draws SMPTE bars: seven
bars over the top two thirds and other patterns below, so it matches neither.

classify(rgb) samples the median colour of narrow full-height column strips (the median
ignores the moving square and vivid's text overlay) and names the pattern whose palette
explains them; write_png() saves a frame for a person to look at.
"""

from __future__ import annotations

import struct
import zlib
from typing import Optional

import numpy as np

ORDER = ["white", "yellow", "cyan", "green", "magenta", "red", "blue", "black"]
PALETTES = {
    "vivid-bars": np.array(
        [[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0],
         [191, 0, 191], [191, 0, 0], [0, 0, 191], [0, 0, 0]], dtype=np.float64),
    "caller-bars": np.array(
        [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
         [255, 0, 255], [255, 0, 0], [0, 0, 255], [16, 16, 16]], dtype=np.float64),
}
# Largest per-channel distance (8-bit) to count a strip as a palette colour: codecs,
# YUV 4:2:0 and limited-range conversions move bar colours by up to ~25.
TOLERANCE = 40
STRIPS = 32


# Horizontal bands (fractions of the height) sampled separately: bars run the full
# height, SMPTE bars do not (castellations from 67 %, other patterns from 75 %). Both
# bands are below vivid's text overlay (its top ~40 %) and taller than the peers' moving
# square (1/8 of the height).
BANDS = ((0.45, 0.64), (0.78, 0.97))


def strip_colours(rgb: np.ndarray, band: tuple[float, float], strips: int = STRIPS) -> np.ndarray:
    """Median RGB of `strips` 3-pixel-wide strips over the rows of `band`, evenly spaced
    at the centres of 1/strips-wide columns; shape (strips, 3)."""
    h, w, _ = rgb.shape
    top, bottom = int(band[0] * h), max(int(band[0] * h) + 1, int(band[1] * h))
    out = np.empty((strips, 3), dtype=np.float64)
    for i in range(strips):
        x = int((i + 0.5) * w / strips)
        lo, hi = max(0, x - 1), min(w, x + 2)
        out[i] = np.median(rgb[top:bottom, lo:hi, :3].reshape(-1, 3), axis=0)
    return out


# One band of the whole height: for a region known to hold only full-height bars (the
# caller's video on the call screen, `call_screen_caller`), where the median of each
# strip then ignores the peers' moving square (1/8 of their frame's height).
WHOLE_HEIGHT = ((0.0, 1.0),)


def match(rgb: np.ndarray, pattern: str, bands: tuple = BANDS) -> dict:
    """How well `rgb` (H x W x 3 or 4, uint8) matches `pattern` in its worst band: the
    share of strips within TOLERANCE of one of its colours, the palette entries seen,
    and whether they run left to right in the palette's order (vivid's static bars)."""
    palette = PALETTES[pattern]
    worst: Optional[dict] = None
    for band in bands:
        cols = strip_colours(rgb, band)
        dist = np.abs(cols[:, None, :] - palette[None, :, :]).max(axis=2)  # strips x colours
        nearest = dist.argmin(axis=1)
        close = dist[np.arange(len(cols)), nearest] <= TOLERANCE
        seen = sorted({ORDER[i] for i, ok in zip(nearest, close) if ok})
        in_order = bool(np.all(np.diff(nearest[close]) >= 0)) if close.any() else False
        m = {"matched": round(float(close.mean()), 2), "seen": seen, "in_order": in_order}
        if worst is None or m["matched"] < worst["matched"]:
            worst = m
    assert worst is not None
    return worst


def is_pattern(rgb: np.ndarray, pattern: str, bands: tuple = BANDS) -> bool:
    """True when `rgb` shows `pattern` in every band: ≥ 85 % of the strips are its
    colours; vivid: all 8 bars, left to right; the peers' scrolling bars: ≥ 7 of 8."""
    m = match(rgb, pattern, bands)
    if pattern == "vivid-bars":
        return m["matched"] >= 0.85 and len(m["seen"]) == 8 and m["in_order"]
    return m["matched"] >= 0.85 and len(m["seen"]) >= 7


def vertical_bars(rgb: np.ndarray) -> dict:
    """Whether `rgb` shows full-height vertical bars of several brightnesses, whatever
    their colours: the strips' median luma (BT.601) agrees between the two BANDS in at
    least 80 % of the strips, and there are at least 4 distinct levels (12 apart).
    Tells a picture of bars from a black, uniform or noisy one."""
    weights = np.array([0.299, 0.587, 0.114])
    top, bottom = (strip_colours(rgb, band) @ weights for band in BANDS)
    agree = float(np.mean(np.abs(top - bottom) <= 20))
    levels: list[float] = []
    for y in sorted(top):
        if not levels or y - levels[-1] > 12:
            levels.append(float(y))
    return {"agree": round(agree, 2), "levels": len(levels),
            "ok": agree >= 0.8 and len(levels) >= 4}


def classify(rgb: np.ndarray, bands: tuple = BANDS) -> Optional[str]:
    """The pattern `rgb` shows (a key of PALETTES), or None."""
    for name in PALETTES:
        if is_pattern(rgb, name, bands):
            return name
    return None


def call_screen_caller(screen: np.ndarray) -> np.ndarray:
    """The part of a capture of the box's call screen (H x W x 3 or 4) that shows only
    the caller's video, for `classify(..., WHOLE_HEIGHT)`.

    The call screen (src/media/screen.rs) shows a 4:3 caller letterboxed in the middle
    at the screen's full height, its texts over the top (to ~1/4 of the height) and the
    bottom (from ~7/8), and the box's own camera over the bottom right (from ~0.65 of
    the height). The peers' eight bars scroll, so only a region as wide as the picture
    shows all eight wherever they are (less 2 % at each side, for the edges). One half
    as wide, the hardware lab's until 2026-11-24, held 5 to 7 of them, depending on
    the frame, and its colour check failed on most frames with the right colours."""
    h, w = screen.shape[:2]
    picture = min(w, h * 4 // 3)
    margin = picture // 50
    left = (w - picture) // 2 + margin
    return screen[int(h * 0.25):int(h * 0.62), left:left + picture - 2 * margin]


def write_png(path: str, rgb: np.ndarray) -> None:
    """Save an H x W x 3 (or 4: alpha dropped) uint8 array as an 8-bit RGB PNG."""
    rgb = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def _self_test() -> None:
    """Synthetic frames of each pattern classify as themselves, SMPTE-like bars as none."""
    w, h = 320, 180
    for name, palette in PALETTES.items():
        cols = (np.arange(w) * 8 // w)
        img = np.broadcast_to(palette[cols][None, :, :], (h, w, 3)).astype(np.uint8).copy()
        assert classify(img) == name, (name, match(img, name))
        if name == "caller-bars":  # scrolled by 3/16 of the width: still the caller's
            assert classify(np.roll(img, 3 * w // 16, axis=1)) == name
    smpte = np.zeros((h, w, 3), dtype=np.uint8)
    seven = (np.arange(w) * 7 // w)
    smpte[: 2 * h // 3] = PALETTES["vivid-bars"][seven][None, :, :]
    smpte[2 * h // 3:] = [[0, 0, 191]]
    assert classify(smpte) is None, match(smpte, "vivid-bars")
    assert not vertical_bars(smpte)["ok"], vertical_bars(smpte)
    assert not vertical_bars(np.zeros((h, w, 3), dtype=np.uint8))["ok"]


    # The call screen: the caller's scrolling bars at every phase, with the moving
    # square anywhere in the region judged, the texts and the self-view over it.
    sw, sh = 640, 360
    pw, x0 = sh * 4 // 3, (sw - sh * 4 // 3) // 2
    wide = PALETTES["caller-bars"][(np.arange(2 * pw) * 8 // pw) % 8].astype(np.uint8)
    for off in range(0, pw, 5):
        screen = np.empty((sh, sw, 3), dtype=np.uint8)
        screen[:] = (40, 48, 96)
        screen[:, x0:x0 + pw] = wide[off:off + pw][None, :, :]
        screen[20:85, 20:260] = (20, 20, 20)  # the caller's name and the call's time
        screen[234:324, 470:630] = PALETTES["vivid-bars"][(np.arange(160) * 8 // 160)]
        sq = sh // 8
        y = 90 + (off * 7) % (223 - 90 - sq)
        screen[y:y + sq, x0 + off % (pw - sq):x0 + off % (pw - sq) + sq] = (128, 128, 128)
        shown = classify(call_screen_caller(screen), WHOLE_HEIGHT)
        assert shown == "caller-bars", (off, match(call_screen_caller(screen), "caller-bars",
                                                   WHOLE_HEIGHT))


def _call_screen(path: str, width: int, height: int) -> int:
    """`pictures.py --call-screen FILE W H`: FILE holds a call screen capture as packed
    RGB (W x H x 3). Prints what its caller region shows as JSON; exit 0 when that is
    the test peers' bars."""
    import json

    rgb = np.fromfile(path, dtype=np.uint8).reshape(height, width, 3)
    region = call_screen_caller(rgb)
    shows = classify(region, WHOLE_HEIGHT)
    print(json.dumps({"shows": shows, "match": match(region, "caller-bars", WHOLE_HEIGHT)}))
    return 0 if shows == "caller-bars" else 1


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--call-screen"]:
        sys.exit(_call_screen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    _self_test()
    print("pictures: self-test passed")
