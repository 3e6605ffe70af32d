#!/usr/bin/env python3
"""Where a process's anonymous resident memory was allocated, by call site.

Waits for a process whose command line matches PATTERN (`pgrep -f`), stops it until
perf has attached, then records its mmap/munmap/mremap system calls with their user
call stacks (`perf record -p`, DWARF unwinding) for SECONDS, then reads which pages of each mapping are resident (`/proc/PID/pagemap`,
bit 63) at that moment. Each anonymous mapping still alive then is put down to the
first frame of its call stack outside the C library, GLib and GStreamer's generic
allocation code, with its resident size (KiB). What was mapped before the recording
started, the main heap (`brk`) and the allocator's arenas for small blocks are
reported as such: malloc gives blocks of at least the mmap threshold (the daemon's
`memory::MMAP_THRESHOLD`, 256 KiB: a 640x480 I420 frame is 450 KiB) their own
mapping, smaller ones come out of those arenas and are not attributed here.

Needs root and perf (Debian: linux-perf). A measuring tool: perf's unwinding slows
the process's mmap calls, not its steady state.

    scripts/rss-by-site.py --pattern 'callbox .*run' --seconds 40 [--out DIR]
"""

import argparse
import collections
import os
import re
import signal
import struct
import subprocess
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
# glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX (32 MiB).
ARENA_HEAP_ALIGN = 64 << 20

# Frames that allocate for someone else: the site is the first frame past these.
GENERIC = re.compile(
    r"^(__GI_|_int_|__libc_|__mmap|mmap64|__mremap|mremap|malloc|calloc|realloc|"
    r"posix_memalign|aligned_alloc|memalign|_mid_memalign|sysmalloc|new_heap|"
    r"alloc_new_heap|arena_get|_int_new_arena|tcache_|__default_morecore|"
    r"g_malloc|g_malloc0|g_realloc|g_try_malloc|g_slice_|g_new|"
    r"_sysmem_|gst_allocator_alloc|gst_buffer_new_allocate|gst_buffer_new_and_alloc|"
    r"default_alloc_buffer|video_buffer_pool_alloc|do_alloc_buffer|"
    r"gst_buffer_pool_acquire_buffer|default_acquire_buffer|gst_buffer_pool_set_active|"
    r"default_start|do_start|gst_buffer_pool_alloc_buffer|"
    r"gst_memory_|gst_buffer_map|gst_video_frame_map|"
    r"av_malloc|av_mallocz|av_buffer_|av_calloc|av_realloc|"
    r"__rust_alloc|__rust_realloc|__rdl_|alloc::|<alloc::|std::alloc|"
    r"__rg_alloc|__rg_realloc)"
)
NO_SYMBOL = "[unknown]"


def wait_for(pattern, timeout_s):
    """The oldest process matching `pattern` that is not this script or a shell that
    started it (their command lines hold the pattern too)."""
    mine = {os.getpid(), os.getppid()}
    end = time.time() + timeout_s
    while time.time() < end:
        r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        for pid in sorted(int(p) for p in r.stdout.split()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if pid not in mine and b"rss-by-site" not in cmdline and not cmdline.startswith(b"bash"):
                return pid
        time.sleep(0.01)
    sys.exit(f"rss-by-site: no process matched {pattern!r} within {timeout_s} s")


def resident_pages(pid):
    """Resident page numbers of each anonymous (non-file) mapping, and their VMAs."""
    present = set()
    vmas = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in maps:
            f = line.split()
            path = f[5] if len(f) > 5 else ""
            if path and not path.startswith("["):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if path == "[vsyscall]":
                continue
            vmas.append((lo, hi, path or "anon"))
            pm.seek(lo // PAGE * 8)
            data = pm.read((hi - lo) // PAGE * 8)
            for i, (e,) in enumerate(struct.iter_unpack("<Q", data)):
                if e >> 63 & 1:
                    present.add(lo // PAGE + i)
    return present, vmas


def parse_script(text):
    """perf script output → events: (name, tid, fields dict, [(sym, dso)])."""
    events = []
    cur = None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                events.append(cur)
            cur = None
            continue
        if not line.startswith((" ", "\t")):
            if cur:
                events.append(cur)
            m = re.search(r"^(.*?)\s+\d+/(\d+)\s+[\d.]+:\s+syscalls:(sys_\w+):\s*(.*)$", line)
            if not m:
                cur = None
                continue
            comm, tid, name, trace = m.group(1).strip(), int(m.group(2)), m.group(3), m.group(4)
            fields = dict(re.findall(r"(\w+):\s*(0x[0-9a-f]+|-?\d+)", trace))
            if name.startswith("sys_exit") and "ret" not in fields:
                # perf prints a sys_exit's return value bare: `sys_exit_mmap: 0x7f…`
                fields["ret"] = trace.split()[0] if trace.split() else "-1"
            fields["comm"] = comm
            cur = (name, tid, fields, [])
        elif cur:
            m = re.match(r"\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if m:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
                cur[3].append((sym, os.path.basename(m.group(2))))
    if cur:
        events.append(cur)
    return events


def num(v):
    return int(v, 16) if v.startswith("0x") else int(v)


def plugin_of(stack):
    """The first GStreamer plugin (`libgstfoo.so`, not a `-1.0` library) or the
    `callbox` binary (its statically linked elements) in the stack."""
    for _, dso in stack:
        if (dso.startswith("libgst") and "-1.0.so" not in dso) or dso == "callbox":
            return dso
    return None


def site_of(stack, comm):
    """`thread: first frame past the generic allocation code [in plugin]`: a GStreamer
    streaming thread is named after its element and pad (`queue1:src`)."""
    where = site_frames(stack)
    if where.startswith(("thread stacks", "malloc arenas")):
        return where
    plugin = plugin_of(stack)
    if plugin and plugin not in where:
        where += f" in {plugin}"
    return f"{comm}: {where}"


def site_frames(stack):
    """The first two frames past the generic allocation code, `sym (dso)`."""
    out = []
    for sym, dso in stack:
        if not out and (GENERIC.match(sym) or dso.startswith(("libc.so", "ld-linux"))):
            continue
        if not out and sym == NO_SYMBOL and dso.startswith(("libglib", "libgstreamer")):
            continue
        frame = f"{sym} ({dso})"
        if out and out[-1] == frame:
            continue
        out.append(frame)
        if len(out) == 2:
            break
    syms = {s for s, _ in stack}
    if syms & {"allocate_stack", "pthread_create@@GLIBC_2.34", "pthread_create"}:
        return "thread stacks (pthread_create)"
    if syms & {"new_heap", "alloc_new_heap", "_int_new_arena"}:
        return "malloc arenas (small blocks)"
    return " ← ".join(out) if out else "(no user stack)"


def live_regions(events):
    """Anonymous mappings alive at the end: {start: [end, site]}."""
    pending = {}
    live = {}

    def unmap(lo, hi):
        for start in list(live):
            end, site = live[start]
            if end <= lo or start >= hi:
                continue
            del live[start]
            if start < lo:
                live[start] = [lo, site]
            if end > hi:
                live[hi] = [end, site]

    for name, tid, f, stack in events:
        if name == "sys_enter_mmap":
            pending[tid] = ("mmap", f, stack)
        elif name == "sys_enter_mremap":
            pending[tid] = ("mremap", f, stack)
        elif name == "sys_enter_munmap":
            lo = num(f.get("addr", "0"))
            unmap(lo, lo + num(f.get("len", "0")))
        elif name in ("sys_exit_mmap", "sys_exit_mremap") and tid in pending:
            kind, ef, stack = pending.pop(tid)
            ret = num(f.get("ret", "-1"))
            if ret < 0 or ret >= 1 << 63:
                continue
            if kind == "mmap":
                if num(ef.get("fd", "0")) >= 0 and not (num(ef.get("flags", "0")) & 0x20):
                    continue  # file-backed (MAP_ANONYMOUS is 0x20)
                length = num(ef.get("len", "0"))
                unmap(ret, ret + length)
                live[ret] = [ret + length, site_of(stack, ef["comm"])]
            else:
                old = num(ef.get("addr", "0"))
                old_len = num(ef.get("old_len", "0"))
                new_len = num(ef.get("new_len", "0"))
                site = next((s for a, (e, s) in live.items() if a <= old < e), site_of(stack, ef["comm"]))
                unmap(old, old + old_len)
                unmap(ret, ret + new_len)
                live[ret] = [ret + new_len, site]
    return live


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pattern", required=True, help="pgrep -f pattern of the process")
    ap.add_argument("--seconds", type=float, default=40, help="how long to record (s)")
    ap.add_argument("--wait", type=float, default=300, help="how long to wait for the process (s)")
    ap.add_argument("--out", default="target/bench", help="where perf.data and the report go")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    data = os.path.join(a.out, "mmap-perf.data")
    events = ",".join(
        [
            "syscalls:sys_enter_mmap",
            "syscalls:sys_exit_mmap",
            "syscalls:sys_enter_munmap",
            "syscalls:sys_enter_mremap",
            "syscalls:sys_exit_mremap",
        ]
    )
    # The process is stopped as soon as it is seen, until perf has attached, so that
    # its first mappings are in the recording too. (`perf record -a` from before it
    # starts would see them, but perf 6.1 then unwinds its stacks no further than libc.)
    pid = wait_for(a.pattern, a.wait)
    os.kill(pid, signal.SIGSTOP)
    perf = subprocess.Popen(
        ["perf", "record", "-q", "-e", events, "--call-graph", "dwarf,16384", "-p", str(pid), "-o", data],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(2)
    os.kill(pid, signal.SIGCONT)
    t0 = time.time()
    time.sleep(a.seconds)
    present, vmas = resident_pages(pid)
    perf.send_signal(2)
    perf.wait()
    print(f"rss-by-site: pid {pid}, recorded {time.time() - t0:.0f} s; unwinding…", file=sys.stderr)
    text = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,pid,tid,time,event,trace,ip,sym,dso"],
        capture_output=True,
        text=True,
    ).stdout  # (perf warns on stderr that 'trace' is not valid for other event types)
    events = parse_script(text)
    live = live_regions(events)

    by_site = collections.Counter()
    counted = set()
    for start, (end, site) in live.items():
        pages = {p for p in range(start // PAGE, (end + PAGE - 1) // PAGE) if p in present}
        pages -= counted
        counted |= pages
        by_site[site] += len(pages) * PAGE // 1024
    rest = collections.Counter()
    before = []
    for lo, hi, path in vmas:
        n = sum(1 for p in range(lo // PAGE, hi // PAGE) if p in present and p not in counted)
        if not n:
            continue
        if path == "[heap]":
            what = "the main heap (brk): malloc's main arena"
        elif path == "anon" and lo % ARENA_HEAP_ALIGN == 0:
            # glibc's other arenas live in heaps aligned to HEAP_MAX_SIZE (64 MiB on
            # 64-bit), grown with mprotect, so their growth is no mmap call.
            what = "malloc's other arenas (heaps aligned to 64 MiB)"
        else:
            what = f"{path}: mapped before the recording"
            before.append((n * PAGE // 1024, lo, hi))
        rest[what] += n * PAGE // 1024
    total = len(present) * PAGE // 1024
    lines = [f"anonymous resident memory of pid {pid}: {total / 1024:.1f} MiB"]
    lines.append(f"  mapped while recording and still alive, by call site ({sum(by_site.values()) / 1024:.1f} MiB):")
    for site, kib in by_site.most_common(a.top):
        if kib >= 100:
            lines.append(f"    {kib / 1024:7.1f} MiB  {site}")
    small = sum(k for s, k in by_site.most_common()[a.top :]) + sum(
        k for s, k in by_site.most_common(a.top) if k < 100
    )
    if small:
        lines.append(f"    {small / 1024:7.1f} MiB  (other sites)")
    for what, kib in rest.most_common():
        lines.append(f"  {kib / 1024:7.1f} MiB  {what}")
    for kib, lo, hi in sorted(before, reverse=True)[:5]:
        lines.append(f"    of which {kib / 1024:.1f} MiB in {lo:#x}-{hi:#x} ({(hi - lo) >> 20} MiB mapped)")
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(a.out, "rss-by-site.txt"), "w") as f:
        f.write(report + "\n")


if __name__ == "__main__":
    main()
