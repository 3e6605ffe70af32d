#!/usr/bin/env python3
"""Runs in the lab's guest: saves what every KMS plane of a DRM device scans out.

    drm-capture.py [--device /dev/dri/card0] OUTDIR

For each plane with a framebuffer attached, writes OUTDIR/plane-<id>.rgb (raw RGB, 8 bits
per channel, rows packed) and prints one JSON line per plane:
{"plane": id, "crtc": id, "fb": id, "width": px, "height": px, "format": "XR24", "file": ...}.

Why not vkms' writeback connector: writeback needs an atomic commit on the CRTC, which
only the DRM master may make, and kmssink (the box) is the master while it shows a call.
Root (CAP_SYS_ADMIN) may instead read any framebuffer: DRM_IOCTL_MODE_GETFB2 returns its
GEM handle to a non-master only with CAP_SYS_ADMIN, and DRM_IOCTL_MODE_MAP_DUMB maps it
(vkms' buffers are shmem GEM objects, mappable like dumb buffers). Ioctl numbers and
struct layouts: include/uapi/drm/drm.h and drm_mode.h (Linux 6.1), x86-64.
Only 32-bit RGB formats (XR24/AR24, which kmssink uses on vkms' planes) are converted.
"""

import argparse
import ctypes
import fcntl
import json
import mmap
import os
import struct
import sys


def iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("d") << 8) | nr


def iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (ord("d") << 8) | nr


class SetClientCap(ctypes.Structure):
    _fields_ = [("capability", ctypes.c_uint64), ("value", ctypes.c_uint64)]


class GetPlaneRes(ctypes.Structure):
    _fields_ = [("plane_id_ptr", ctypes.c_uint64), ("count_planes", ctypes.c_uint32)]


class GetPlane(ctypes.Structure):
    _fields_ = [("plane_id", ctypes.c_uint32), ("crtc_id", ctypes.c_uint32),
                ("fb_id", ctypes.c_uint32), ("possible_crtcs", ctypes.c_uint32),
                ("gamma_size", ctypes.c_uint32), ("count_format_types", ctypes.c_uint32),
                ("format_type_ptr", ctypes.c_uint64)]


class FbCmd2(ctypes.Structure):
    _fields_ = [("fb_id", ctypes.c_uint32), ("width", ctypes.c_uint32),
                ("height", ctypes.c_uint32), ("pixel_format", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("handles", ctypes.c_uint32 * 4),
                ("pitches", ctypes.c_uint32 * 4), ("offsets", ctypes.c_uint32 * 4),
                ("modifier", ctypes.c_uint64 * 4)]


class MapDumb(ctypes.Structure):
    _fields_ = [("handle", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("offset", ctypes.c_uint64)]


class GemClose(ctypes.Structure):
    _fields_ = [("handle", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


DRM_IOCTL_GEM_CLOSE = iow(0x09, ctypes.sizeof(GemClose))
DRM_IOCTL_SET_CLIENT_CAP = iow(0x0D, ctypes.sizeof(SetClientCap))
DRM_IOCTL_MODE_MAP_DUMB = iowr(0xB3, ctypes.sizeof(MapDumb))
DRM_IOCTL_MODE_GETPLANERESOURCES = iowr(0xB5, ctypes.sizeof(GetPlaneRes))
DRM_IOCTL_MODE_GETPLANE = iowr(0xB6, ctypes.sizeof(GetPlane))
DRM_IOCTL_MODE_GETFB2 = iowr(0xCE, ctypes.sizeof(FbCmd2))
DRM_CLIENT_CAP_UNIVERSAL_PLANES = 2


def fourcc(code: int) -> str:
    return struct.pack("<I", code).decode("ascii", "replace")


def capture(fd: int, outdir: str) -> int:
    fcntl.ioctl(fd, DRM_IOCTL_SET_CLIENT_CAP, SetClientCap(DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1))
    res = GetPlaneRes()
    fcntl.ioctl(fd, DRM_IOCTL_MODE_GETPLANERESOURCES, res)
    ids = (ctypes.c_uint32 * res.count_planes)()
    res.plane_id_ptr = ctypes.addressof(ids)
    fcntl.ioctl(fd, DRM_IOCTL_MODE_GETPLANERESOURCES, res)
    saved = 0
    for plane_id in ids:
        plane = GetPlane(plane_id=plane_id)
        fcntl.ioctl(fd, DRM_IOCTL_MODE_GETPLANE, plane)
        if not plane.fb_id:
            continue
        fb = FbCmd2(fb_id=plane.fb_id)
        fcntl.ioctl(fd, DRM_IOCTL_MODE_GETFB2, fb)
        info = {"plane": plane_id, "crtc": plane.crtc_id, "fb": plane.fb_id,
                "width": fb.width, "height": fb.height, "format": fourcc(fb.pixel_format)}
        if not fb.handles[0]:
            info["error"] = "no GEM handle (not root?)"
        elif info["format"] not in ("XR24", "AR24"):
            info["error"] = "format not converted"
        else:
            m = MapDumb(handle=fb.handles[0])
            fcntl.ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, m)
            pitch, off = fb.pitches[0], fb.offsets[0]
            size = off + pitch * fb.height
            buf = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ, offset=m.offset)
            rgb = bytearray(fb.width * fb.height * 3)
            for y in range(fb.height):
                row = buf[off + y * pitch: off + y * pitch + fb.width * 4]
                # XRGB8888 little-endian: bytes B, G, R, X.
                rgb[y * fb.width * 3:(y + 1) * fb.width * 3: 3] = row[2::4]
                rgb[y * fb.width * 3 + 1:(y + 1) * fb.width * 3: 3] = row[1::4]
                rgb[y * fb.width * 3 + 2:(y + 1) * fb.width * 3: 3] = row[0::4]
            buf.close()
            path = os.path.join(outdir, f"plane-{plane_id}.rgb")
            with open(path, "wb") as f:
                f.write(rgb)
            info["file"] = os.path.basename(path)
            saved += 1
        for h in set(fb.handles):
            if h:
                fcntl.ioctl(fd, DRM_IOCTL_GEM_CLOSE, GemClose(handle=h))
        print(json.dumps(info), flush=True)
    return saved


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="/dev/dri/card0")
    p.add_argument("outdir")
    args = p.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    fd = os.open(args.device, os.O_RDWR | os.O_CLOEXEC)
    try:
        saved = capture(fd, args.outdir)
    finally:
        os.close(fd)
    if not saved:
        print("no plane with a readable framebuffer", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
