"""The latency stamp (the same code as the box's src/media/stamp.rs): the capture time,
unix ms mod 2^32, drawn into the top-left corner of a frame as 36 black and white
blocks of side B = max(8, width // 40) rounded down to even: the markers 1 0, the 32
bits (most significant first), the markers 0 1. Read from the luma plane: each block's
mean over its central half against the midpoint of 16 and 235."""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

DATA_BITS = 32
START = (1, 0)
END = (0, 1)
BLOCKS = len(START) + DATA_BITS + len(END)
MAX_LATENCY_MS = 10_000


def block_size(width: int, height: int) -> Optional[int]:
    b = max(8, width // 40) & ~1
    return b if b * BLOCKS <= width and b <= height else None


def now_ms32() -> int:
    return int(time.time() * 1000) & 0xFFFFFFFF


def _bits(ms: int) -> list[int]:
    return [*START, *((ms >> i) & 1 for i in range(DATA_BITS - 1, -1, -1)), *END]


def draw_rgba(img: np.ndarray, ms: int) -> bool:
    """Draws `ms` into an RGBA frame (h, w, 4) in place: white for 1, black for 0."""
    h, w = img.shape[:2]
    b = block_size(w, h)
    if b is None:
        return False
    for k, bit in enumerate(_bits(ms)):
        img[:b, k * b:(k + 1) * b, :3] = 255 if bit else 0
    return True


def read_luma(y: np.ndarray) -> Optional[int]:
    """The stamp in a luma plane (h, w), or None without valid markers."""
    h, w = y.shape
    b = block_size(w, h)
    if b is None:
        return None
    lo, hi = b // 4, b - b // 4
    row = y[lo:hi, :BLOCKS * b].astype(np.uint32).reshape(hi - lo, BLOCKS, b)[:, :, lo:hi]
    bits = (row.mean(axis=(0, 2)) > (16 + 235) // 2).astype(int).tolist()
    if tuple(bits[:2]) != START or tuple(bits[-2:]) != END:
        return None
    value = 0
    for bit in bits[2:2 + DATA_BITS]:
        value = value << 1 | bit
    return value


def latency_ms(stamp: int, now: int) -> Optional[int]:
    lat = (now - stamp) & 0xFFFFFFFF
    return lat if lat < MAX_LATENCY_MS else None


def _self_test() -> None:
    for w, h in ((640, 480), (1280, 720)):
        img = np.full((h, w, 4), 128, dtype=np.uint8)
        assert draw_rgba(img, 0xDEADBEEF)
        # RGB -> BT.601 video-range luma, as the encoder's converter does.
        rgb = img[:, :, :3].astype(np.float64)
        y = (16 + (65.481 * rgb[:, :, 0] + 128.553 * rgb[:, :, 1] + 24.966 * rgb[:, :, 2]) / 255)
        assert read_luma(y.astype(np.uint8)) == 0xDEADBEEF, (w, h)
    assert read_luma(np.full((480, 640), 128, dtype=np.uint8)) is None
    assert latency_ms(0xFFFFFFF0, 5) == 21
    assert latency_ms(100, 50) is None


if __name__ == "__main__":
    _self_test()
    print("stamp: ok")
