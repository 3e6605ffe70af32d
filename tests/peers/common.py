"""Shared code of the Python SDK test peers (caller.py, callee.py).

Output convention: every line on stdout is one JSON object with an "event" field and
"t_ms" (milliseconds since the script started); human-readable logging goes to stderr.
callbox-testkit's PyPeer parses these lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
import numpy as np
from livekit import rtc

import pictures
import stamp

T0 = time.monotonic()

SAMPLE_RATE = 48000
AUDIO_FRAME_MS = 10
TONE_HZ = 440.0

VIDEO_CODECS = {
    "h264": rtc.VideoCodec.H264,
    "vp8": rtc.VideoCodec.VP8,
    "vp9": rtc.VideoCodec.VP9,
    "av1": rtc.VideoCodec.AV1,
}



async def cancel_tasks(tasks: list) -> None:
    """Cancel `tasks`, wait for each to finish, and empty the list."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except (asyncio.CancelledError, Exception):
            pass
    tasks.clear()

def now_ms() -> int:
    """Milliseconds since the script started."""
    return int((time.monotonic() - T0) * 1000)


def emit(event: str, **fields: Any) -> None:
    """Print one JSON event line on stdout and flush."""
    # unix_ms: the wall clock, to line events up with other processes on the machine
    # (the benchmark's answer press, the box's first frame).
    obj = {"event": event, "t_ms": now_ms(), "unix_ms": round(time.time() * 1000.0, 1)}
    obj.update(fields)
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def log(msg: str) -> None:
    sys.stderr.write(f"[{now_ms():>7} ms] {msg}\n")
    sys.stderr.flush()


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    width, height = int(w), int(h)
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"bad size {text!r}: want even WIDTHxHEIGHT, e.g. 640x480")
    return width, height


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but usage errors exit 64 (EX_USAGE) so they differ from timeout (2)."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        emit("usage_error", error=message)
        sys.exit(64)


# --- hub REST and WebSocket -----------------------------------------------------------


class Hub:
    """The callbox hub's REST API and event WebSocket, authenticated with a credential."""

    def __init__(self, base_url: str, credential: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self._session: Optional[aiohttp.ClientSession] = None

    async def __aenter__(self) -> "Hub":
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST JSON; returns (status, parsed JSON body or text). status 0: no response."""
        assert self._session is not None
        try:
            async with self._session.post(
                self.base_url + path, json=body, headers=self._headers()
            ) as resp:
                text = await resp.text()
                try:
                    return resp.status, json.loads(text) if text else None
                except ValueError:
                    return resp.status, text
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            return 0, f"{type(e).__name__}: {e}"

    def ws_url(self) -> str:
        parts = urllib.parse.urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        query = urllib.parse.urlencode({"access_token": self.credential})
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", query, ""))

    async def events(self, on_ready: Optional[Callable[[], None]] = None):
        """Yield each server event (a dict with "type") from GET /ws until it closes."""
        assert self._session is not None
        async with self._session.ws_connect(
            self.ws_url(), headers=self._headers(), heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5)
        ) as ws:
            if on_ready is not None:
                on_ready()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        ev = json.loads(msg.data)
                    except ValueError:
                        log(f"hub ws: non-JSON frame {msg.data!r}")
                        continue
                    if isinstance(ev, dict):
                        yield ev
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break


def join_token(info: dict[str, Any]) -> Optional[str]:
    """The token a user client joins with from a JoinInfo (devices get publisher/subscriber)."""
    if info.get("token"):
        return info["token"]
    pub = info.get("publisher") or {}
    return pub.get("token")


# --- synthetic media out --------------------------------------------------------------


class MediaPublisher:
    """Publishes a moving test pattern and a 440 Hz tone from synthetic sources."""

    def __init__(
        self,
        room: rtc.Room,
        *,
        width: int,
        height: int,
        fps: float,
        codec: str,
        video: bool = True,
        audio: bool = True,
        amplitude: float = 0.3,
        bitrate: int = 0,
        stamp: bool = False,
    ) -> None:
        self.room = room
        self.stamp = stamp
        self.width, self.height, self.fps = width, height, fps
        self.codec = codec
        self.video, self.audio = video, audio
        self.amplitude = amplitude
        self.bitrate = bitrate
        self.video_frames_sent = 0
        self.audio_frames_sent = 0
        self._tasks: list[asyncio.Task] = []
        self._sources: list[Any] = []

    async def start(self) -> None:
        lp = self.room.local_participant
        if self.audio:
            source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=200)
            self._sources.append(source)
            track = rtc.LocalAudioTrack.create_audio_track("callbox-test-tone", source)
            opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            pub = await lp.publish_track(track, opts)
            emit("published", kind="audio", sid=pub.sid)
            self._tasks.append(asyncio.create_task(self._run_audio(source)))
        if self.video:
            source = rtc.VideoSource(self.width, self.height)
            self._sources.append(source)
            track = rtc.LocalVideoTrack.create_video_track("callbox-test-pattern", source)
            # Without an explicit encoding the SDK picks a preset by resolution (25 fps at
            # 640x480); ask for the rate we capture at.
            bitrate = self.bitrate or int(self.width * self.height * self.fps * 0.1)
            opts = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                video_codec=VIDEO_CODECS[self.codec],
                simulcast=False,
                video_encoding=rtc.VideoEncoding(max_framerate=self.fps, max_bitrate=bitrate),
            )
            pub = await lp.publish_track(track, opts)
            emit("published", kind="video", sid=pub.sid, codec=self.codec,
                 width=self.width, height=self.height, fps=self.fps, max_bitrate=bitrate)
            self._tasks.append(asyncio.create_task(self._run_video(source)))

    async def stop(self) -> None:
        await cancel_tasks(self._tasks)
        for s in self._sources:
            try:
                await s.aclose()
            except Exception as e:  # noqa: BLE001 - best effort at shutdown
                log(f"closing a source: {e}")
        self._sources.clear()

    async def _run_video(self, source: rtc.VideoSource) -> None:
        w, h = self.width, self.height
        # Eight colour bars, twice as wide as the frame, scrolled one step per frame, plus
        # a white square that moves diagonally: every frame differs, so the encoder keeps
        # producing real (non-skipped) frames.
        bars = np.array(
            [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
             [255, 0, 255], [255, 0, 0], [0, 0, 255], [16, 16, 16]],
            dtype=np.uint8,
        )
        cols = (np.arange(2 * w) * 8 // w) % 8
        strip = np.empty((h, 2 * w, 4), dtype=np.uint8)
        strip[:, :, :3] = bars[cols][None, :, :]
        strip[:, :, 3] = 255
        box = max(8, min(w, h) // 8)
        step = max(1, w // 120)
        period = 1.0 / self.fps
        start = t0 = time.monotonic()
        n = 0
        while True:
            off = (n * step) % w
            frame = np.ascontiguousarray(strip[:, off:off + w, :])
            bx = (n * 3) % (w - box)
            by = (n * 2) % (h - box)
            frame[by:by + box, bx:bx + box, :3] = 255 - (n * 5) % 256
            if self.stamp:  # --latency-stamps: the capture time, as the last thing drawn
                stamp.draw_rgba(frame, stamp.now_ms32())
            vf = rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, frame.tobytes())
            # The capture time, as a camera stamps it: when this process is starved of
            # CPU (the hardware lab's QEMU shares the cores) frames come slower than
            # `fps`, and stamping n * period would make media time fall behind real time
            # until the receiver drops everything as late.
            source.capture_frame(vf, timestamp_us=int((time.monotonic() - t0) * 1e6))
            self.video_frames_sent += 1
            n += 1
            delay = start + n * period - time.monotonic()
            if delay < -1.0:  # fell far behind (CPU starved): do not burst to catch up
                start = time.monotonic() - n * period
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def _run_audio(self, source: rtc.AudioSource) -> None:
        spf = SAMPLE_RATE * AUDIO_FRAME_MS // 1000
        period = AUDIO_FRAME_MS / 1000.0
        omega = 2 * math.pi * TONE_HZ / SAMPLE_RATE
        amp = self.amplitude * 32767
        start = time.monotonic()
        n = 0
        while True:
            idx = np.arange(n * spf, (n + 1) * spf, dtype=np.float64)
            samples = (amp * np.sin(omega * idx)).astype(np.int16)
            frame = rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, spf)
            await source.capture_frame(frame)
            self.audio_frames_sent += 1
            n += 1
            # No reset when behind (unlike video): a microphone delivers every sample,
            # and audio RTP time is the sample count, so after a CPU stall the frames
            # owed are sent at once and media time stays with real time.
            delay = start + n * period - time.monotonic()
            await asyncio.sleep(max(0.0, delay))


# --- media in -------------------------------------------------------------------------

VIDEO_STALL_S = 3.0  # no frame for this long on a subscribed video track: video_stalled


async def inbound_video_stats(track: rtc.Track) -> Optional[dict[str, Any]]:
    """The libwebrtc inbound-rtp stats of a remote video track (None: none yet)."""
    try:
        stats = await asyncio.wait_for(track.get_stats(), 2.0)
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return {"error": f"{type(e).__name__}: {e}"}
    for st in stats:
        if st.WhichOneof("stats") != "inbound_rtp":
            continue
        rx, inb = st.inbound_rtp.received, st.inbound_rtp.inbound
        return {
            "packets_received": rx.packets_received, "packets_lost": rx.packets_lost,
            "frames_received": inb.frames_received, "frames_decoded": inb.frames_decoded,
            "key_frames_decoded": inb.key_frames_decoded, "frames_dropped": inb.frames_dropped,
            "freeze_count": inb.freeze_count, "pli_count": inb.pli_count,
            "nack_count": inb.nack_count, "decoder": inb.decoder_implementation,
            "size": f"{inb.frame_width}x{inb.frame_height}",
            # Means per frame, ms: the time in libwebrtc's jitter buffer, in the decoder,
            # and from the first packet received to the frame decoded (which holds both).
            "jitter_buffer_ms": round(1000 * inb.jitter_buffer_delay / inb.jitter_buffer_emitted_count, 1)
            if inb.jitter_buffer_emitted_count else None,
            "decode_ms": round(1000 * inb.total_decode_time / inb.frames_decoded, 1)
            if inb.frames_decoded else None,
            "processing_ms": round(1000 * inb.total_processing_delay / inb.frames_decoded, 1)
            if inb.frames_decoded else None,
        }
    return None


@dataclass
class MediaCounter:
    """Counts decoded frames of every subscribed remote track."""

    energy_threshold: float = 0.005  # RMS, as a fraction of full scale
    t_ref: float = field(default_factory=time.monotonic)  # "invite" time for first_frame_ms
    video_frames: int = 0
    video_placeholder_frames: int = 0
    audio_frames: int = 0
    audio_frames_with_energy: int = 0
    first_frame_ms: Optional[int] = None
    first_audio_ms: Optional[int] = None
    video_width: int = 0
    video_height: int = 0
    participants: set = field(default_factory=set)
    # --expect-pattern: frames showing that picture (pictures.PALETTES), and what the
    # last frame that did not looked like.
    expect_pattern: Optional[str] = None
    pattern_frames: int = 0
    last_mismatch: Optional[dict] = None
    # --save-frame: a PNG of the 30th remote video frame.
    save_frame: Optional[str] = None
    saved_frame: Optional[str] = None
    # --expect-tone-hz: 10 ms audio frames above the energy threshold whose strongest
    # frequency is that tone (±1 bin of 100 Hz).
    expect_tone_hz: Optional[float] = None
    audio_frames_at_tone: int = 0
    # --tone-level-hz: the level (dBFS) of the received audio at that frequency, over
    # 100 ms windows (10 Hz resolution, Hann) from --tone-level-after seconds after the
    # first audio frame on: how loud the box sends back what it heard, e.g. an echo.
    tone_level_hz: Optional[list] = None
    tone_level_after_s: float = 0.0
    _tone_window: list = field(default_factory=list)
    _tone_powers: dict = field(default_factory=dict)  # hz -> [power per window]
    _video_tracks: dict = field(default_factory=dict)  # sid -> (identity, track, publication)
    _video_counts: dict = field(default_factory=dict)  # sid -> frames delivered on that track
    _first_video_t: Optional[float] = None
    _last_video_t: Optional[float] = None
    _tasks: list = field(default_factory=list)
    # --latency-stamps: glass-to-glass latency of each received frame that carries a
    # stamp (stamp.py), ms; frames without a readable stamp are counted.
    latency_stamps: bool = False
    latencies_ms: list = field(default_factory=list)
    unstamped_frames: int = 0

    @classmethod
    def from_args(cls, args) -> "MediaCounter":
        return cls(latency_stamps=args.latency_stamps,
                   energy_threshold=args.energy_threshold, expect_pattern=args.expect_pattern,
                   save_frame=args.save_frame, expect_tone_hz=args.expect_tone_hz,
                   tone_level_hz=args.tone_level_hz, tone_level_after_s=args.tone_level_after)

    def attach(self, room: rtc.Room) -> None:
        room.on("track_subscribed", self._on_track_subscribed)

    def _on_track_subscribed(self, track: rtc.Track, pub: rtc.RemoteTrackPublication,
                             participant: rtc.RemoteParticipant) -> None:
        kind = "video" if track.kind == rtc.TrackKind.KIND_VIDEO else "audio"
        self.participants.add(participant.identity)
        emit("remote_track", kind=kind, participant=participant.identity, sid=pub.sid,
             mime=getattr(pub, "mime_type", ""))
        if kind == "video":
            self._video_tracks[pub.sid] = (participant.identity, track, pub)
            self._tasks.append(asyncio.ensure_future(self._count_video(track, pub, participant.identity)))
        else:
            self._tasks.append(asyncio.ensure_future(self._count_audio(track)))

    async def _count_video(self, track: rtc.Track, pub: rtc.RemoteTrackPublication,
                           identity: str) -> None:
        stream = rtc.VideoStream(track)
        watchdog = asyncio.ensure_future(self._watch_video(track, pub, identity))
        try:
            async for ev in stream:
                t = time.monotonic()
                if ev.frame.width < 16 or ev.frame.height < 16:
                    # libwebrtc emits a few 2x2 black frames after a remote track ends.
                    self.video_placeholder_frames += 1
                    continue
                self.video_frames += 1
                self._video_counts[pub.sid] = self._video_counts.get(pub.sid, 0) + 1
                self.video_width, self.video_height = ev.frame.width, ev.frame.height
                if self._first_video_t is None:
                    self._first_video_t = t
                    self.first_frame_ms = int((t - self.t_ref) * 1000)
                    emit("first_video_frame", t_ms_since_invite=self.first_frame_ms,
                         width=ev.frame.width, height=ev.frame.height)
                self._last_video_t = t
                if self.latency_stamps:
                    self._read_stamp(ev.frame)
                if self.expect_pattern or (self.save_frame and not self.saved_frame):
                    self._look_at(ev.frame)
        finally:
            watchdog.cancel()
            await stream.aclose()

    def _read_stamp(self, frame: rtc.VideoFrame) -> None:
        now = stamp.now_ms32()
        i420 = frame if frame.type == rtc.VideoBufferType.I420 else frame.convert(rtc.VideoBufferType.I420)
        # I420 from the SDK is packed: the luma plane is the first width*height bytes.
        y = np.frombuffer(i420.data, dtype=np.uint8, count=i420.width * i420.height)
        got = stamp.read_luma(y.reshape(i420.height, i420.width))
        lat = None if got is None else stamp.latency_ms(got, now)
        if lat is None:
            self.unstamped_frames += 1
        else:
            self.latencies_ms.append(lat)

    def _look_at(self, frame: rtc.VideoFrame) -> None:
        """--expect-pattern / --save-frame: what this frame shows."""
        rgba = frame.convert(rtc.VideoBufferType.RGBA)
        img = np.frombuffer(rgba.data, dtype=np.uint8).reshape(rgba.height, rgba.width, 4)
        if self.expect_pattern:
            if pictures.is_pattern(img, self.expect_pattern):
                self.pattern_frames += 1
            else:
                self.last_mismatch = pictures.match(img, self.expect_pattern)
        if self.save_frame and not self.saved_frame and self.video_frames >= 30:
            pictures.write_png(self.save_frame, img)
            self.saved_frame = self.save_frame
            emit("frame_saved", path=self.save_frame, width=rgba.width, height=rgba.height,
                 pattern=pictures.classify(img))

    async def _watch_video(self, track: rtc.Track, pub: rtc.RemoteTrackPublication,
                           identity: str) -> None:
        """Emit video_stalled (once per stall) when a subscribed, unmuted video track has
        delivered no frame for VIDEO_STALL_S, with the receiver's WebRTC stats: they tell
        whether packets stopped arriving (packets_received flat), could not be decoded
        (frames_decoded flat, e.g. no keyframe) or were decoded but never reached our
        VideoStream (frames_decoded rising). Costs nothing while frames flow."""
        last, since, reported = -1, time.monotonic(), False
        while True:
            await asyncio.sleep(1.0)
            n, now = self._video_counts.get(pub.sid, 0), time.monotonic()
            if n != last:
                last, since, reported = n, now, False
                continue
            if reported or now - since < VIDEO_STALL_S or not pub.subscribed or pub.muted:
                continue
            reported = True
            emit("video_stalled", participant=identity, sid=pub.sid, frames=n,
                 stalled_s=round(now - since, 1), receiver=await inbound_video_stats(track))

    async def video_receiver_stats(self) -> dict[str, Any]:
        """WebRTC receive stats of every subscribed video track, by participant identity."""
        out: dict[str, Any] = {}
        for identity, track, pub in list(self._video_tracks.values()):
            if pub.subscribed:
                out[identity] = await inbound_video_stats(track)
        return out

    async def _count_audio(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        threshold = self.energy_threshold * 32768.0
        try:
            async for ev in stream:
                self.audio_frames += 1
                if self.first_audio_ms is None:
                    self.first_audio_ms = int((time.monotonic() - self.t_ref) * 1000)
                samples = np.frombuffer(ev.frame.data, dtype=np.int16)
                if self.tone_level_hz and samples.size:
                    self._measure_tone(samples)
                if samples.size:
                    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
                    if rms > threshold:
                        self.audio_frames_with_energy += 1
                        if self.expect_tone_hz and self._is_tone(samples):
                            self.audio_frames_at_tone += 1
        finally:
            await stream.aclose()

    def _measure_tone(self, samples: np.ndarray) -> None:
        since_first = (time.monotonic() - self.t_ref) * 1000 - (self.first_audio_ms or 0)
        if since_first < self.tone_level_after_s * 1000:
            return
        self._tone_window.append(samples.astype(np.float64) / 32768.0)
        n = sum(len(w) for w in self._tone_window)
        if n < SAMPLE_RATE // 10:
            return
        x = np.concatenate(self._tone_window)
        self._tone_window.clear()
        w = np.hanning(len(x))
        t = np.arange(len(x)) / SAMPLE_RATE
        for hz in self.tone_level_hz or []:
            # Amplitude of the sinusoid at hz (Hann window: coherent gain 0.5).
            amp = 2.0 * abs(np.sum(x * w * np.exp(-2j * np.pi * hz * t))) / np.sum(w)
            self._tone_powers.setdefault(hz, []).append(amp * amp)

    def reset_tone_levels(self) -> None:
        self._tone_powers.clear()
        self._tone_window.clear()

    def tone_levels_db(self) -> dict:
        """dBFS of each --tone-level-hz frequency, mean power over the windows."""
        return {f"{hz:g}": round(10.0 * float(np.log10(np.mean(p) + 1e-20)), 1)
                for hz, p in self._tone_powers.items()}

    def _is_tone(self, samples: np.ndarray) -> bool:
        spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
        spectrum[0] = 0.0
        hz_per_bin = SAMPLE_RATE / samples.size
        return abs(int(spectrum.argmax()) - self.expect_tone_hz / hz_per_bin) <= 1.0

    def video_fps(self) -> float:
        if self._first_video_t is None or self._last_video_t is None or self.video_frames < 2:
            return 0.0
        dt = self._last_video_t - self._first_video_t
        return round((self.video_frames - 1) / dt, 1) if dt > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "video_frames": self.video_frames,
            "video_placeholder_frames": self.video_placeholder_frames,
            "audio_frames": self.audio_frames,
            "audio_frames_with_energy": self.audio_frames_with_energy,
            "first_frame_ms": self.first_frame_ms,
            "first_audio_ms": self.first_audio_ms,
            "video_fps": self.video_fps(),
            "video_size": f"{self.video_width}x{self.video_height}" if self.video_width else None,
            "participants": sorted(self.participants),
            **({"expect_pattern": self.expect_pattern, "pattern_frames": self.pattern_frames,
                "last_mismatch": self.last_mismatch} if self.expect_pattern else {}),
            **({"expect_tone_hz": self.expect_tone_hz,
                "audio_frames_at_tone": self.audio_frames_at_tone} if self.expect_tone_hz else {}),
            **({"saved_frame": self.saved_frame} if self.save_frame else {}),
            **({"latency_ms": self.latencies_ms, "unstamped_frames": self.unstamped_frames}
               if self.latency_stamps else {}),
            **({"tone_levels_db": self.tone_levels_db(),
                "tone_level_windows": min((len(p) for p in self._tone_powers.values()), default=0)}
               if self.tone_level_hz else {}),
        }

    async def stop(self) -> None:
        await cancel_tasks(self._tasks)


# --- stdin commands -------------------------------------------------------------------


def start_stdin_reader(queue: "asyncio.Queue[str]") -> None:
    """Feed stripped stdin lines into `queue` from a daemon thread (EOF: nothing more).

    A daemon thread rather than the default executor: asyncio.run would wait for a
    readline() blocked forever at shutdown."""
    import threading

    loop = asyncio.get_running_loop()

    def reader() -> None:
        for line in sys.stdin:
            line = line.strip()
            if line:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, line)
                except RuntimeError:  # the loop is closed: we are exiting
                    return

    threading.Thread(target=reader, name="stdin", daemon=True).start()


# --- the call loop shared by caller and callee ----------------------------------------


def add_media_args(p) -> None:
    p.add_argument("--min-video-frames", type=int, default=60,
                   help="decoded remote video frames needed for media_ok (default 60)")
    p.add_argument("--min-remote-audio-frames", type=int, default=20,
                   help="decoded remote 10 ms audio frames needed for media_ok (default 20)")
    p.add_argument("--min-audio-energy-frames", type=int, default=0,
                   help="remote audio frames above the energy threshold needed (default 0)")
    p.add_argument("--energy-threshold", type=float, default=0.005,
                   help="RMS (fraction of full scale) above which a frame counts as sound")
    p.add_argument("--expect-pattern", choices=sorted(pictures.PALETTES),
                   help="count only remote video frames showing this picture towards "
                        "--min-video-frames (e.g. vivid-bars: the lab's V4L2 camera)")
    p.add_argument("--expect-tone-hz", type=float,
                   help="count remote audio frames whose strongest frequency is this tone")
    p.add_argument("--min-tone-frames", type=int, default=0,
                   help="remote audio frames at --expect-tone-hz needed (default 0)")
    p.add_argument("--tone-level-hz", type=float, nargs="+",
                   help="report tone_levels_db: the received audio's level at these "
                        "frequencies (dBFS of the sinusoid, mean over 100 ms windows)")
    p.add_argument("--tone-level-after", type=float, default=0.0,
                   help="seconds after the first remote audio before --tone-level-hz counts")
    p.add_argument("--save-frame", metavar="PNG",
                   help="save the 30th remote video frame here")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to reach the thresholds before giving up (default 60)")
    p.add_argument("--hold", type=float, default=0.0,
                   help="stay at least this many seconds in the room before media_ok")
    p.add_argument("--publish-video-fps", type=float, default=30.0)
    p.add_argument("--size", type=parse_size, default=(640, 480), help="WIDTHxHEIGHT (640x480)")
    p.add_argument("--video-bitrate", type=int, default=0,
                   help="max video bitrate in bit/s (default: 0.1 bit per pixel per frame)")
    p.add_argument("--video-codec", choices=sorted(VIDEO_CODECS), default="h264",
                   help="codec of the published video (default h264, like the box)")
    p.add_argument("--audio-only", action="store_true",
                   help="publish no video and need no remote video")
    p.add_argument("--no-publish", action="store_true", help="publish nothing (receive only)")
    p.add_argument("--latency-stamps", action="store_true",
                   help="draw the capture time into each published frame and read it from "
                        "each received one (stamp.py): glass-to-glass latency in the counts")
    p.add_argument("--single-pc", action="store_true",
                   help="one peer connection for publishing and subscribing (the SDK's "
                        "default; it can silently lose remote video, see connect_room)")


def thresholds_met(counter: MediaCounter, args) -> bool:
    video_ok = args.audio_only or counter.video_frames >= args.min_video_frames
    if counter.expect_pattern and not args.audio_only:
        video_ok = video_ok and counter.pattern_frames >= args.min_video_frames
    return (
        video_ok
        and counter.audio_frames_at_tone >= args.min_tone_frames
        and counter.audio_frames >= args.min_remote_audio_frames
        and counter.audio_frames_with_energy >= args.min_audio_energy_frames
    )


async def connect_room(url: str, token: str, counter: MediaCounter, args) -> tuple[rtc.Room, MediaPublisher, asyncio.Event, dict]:
    """Join, start counting remote media and publishing synthetic media."""
    room = rtc.Room()
    disconnected = asyncio.Event()
    info: dict[str, Any] = {}

    def on_disconnected(reason: Any) -> None:
        try:
            info["reason"] = rtc.DisconnectReason.Name(reason)
        except Exception:  # noqa: BLE001
            info["reason"] = str(reason)
        disconnected.set()

    def on_participant_connected(p: rtc.RemoteParticipant) -> None:
        emit("participant_connected", participant=p.identity)

    def on_participant_disconnected(p: rtc.RemoteParticipant) -> None:
        emit("participant_disconnected", participant=p.identity)

    # The remote participants' track bookkeeping, for a failure's report: the SDK
    # (livekit 1.2.0) drops a track whose publication it no longer lists ("could not
    # find published track with sid"), e.g. after a participant update that lists fewer
    # tracks than one before it.
    def on_track_published(pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        emit("track_published", participant=p.identity, sid=pub.sid, kind=int(pub.kind))

    def on_track_unpublished(pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        emit("track_unpublished", participant=p.identity, sid=pub.sid, kind=int(pub.kind))

    def on_track_subscription_failed(p: rtc.RemoteParticipant, sid: str, error: str) -> None:
        emit("track_subscription_failed", participant=p.identity, sid=sid, error=str(error))

    room.on("disconnected", on_disconnected)
    room.on("participant_connected", on_participant_connected)
    room.on("participant_disconnected", on_participant_disconnected)
    room.on("track_published", on_track_published)
    room.on("track_unpublished", on_track_unpublished)
    room.on("track_subscription_failed", on_track_subscription_failed)
    counter.attach(room)
    # Separate publisher and subscriber peer connections. livekit 1.2.0 (ffi 0.13.2)
    # defaults to a single one (its docstring says otherwise), and then publishing our
    # video after we already receive remote video (the second to join subscribes at
    # once) rewrites the receiving m-section too (the SDK munges x-google-start-bitrate
    # into every video fmtp), libwebrtc recreates the receive stream, and an RTP packet
    # arriving in that window takes the unsignaled-SSRC path ("Could not create default
    # receive stream") which calls SetSink(ssrc, nullptr): the track keeps decoding
    # (its stats count frames) but no frame reaches any VideoStream again. Seen in a few
    # percent of testkit's python_peers runs as "2 video frames, then none".
    room_opts = rtc.RoomOptions(auto_subscribe=True,
                                single_peer_connection=bool(getattr(args, "single_pc", False)))
    await room.connect(url, token, room_opts)
    publisher = MediaPublisher(
        room,
        width=args.size[0],
        height=args.size[1],
        fps=args.publish_video_fps,
        codec=args.video_codec,
        video=not args.audio_only and not args.no_publish,
        audio=not args.no_publish,
        bitrate=args.video_bitrate,
        stamp=args.latency_stamps,
    )
    return room, publisher, disconnected, info


# --- one call: join, exchange media, end --------------------------------------------


class CallSession:
    """One participant in one call's room, with the stdin commands and hub events."""

    def __init__(self, args, hub: Optional[Hub], counter: MediaCounter,
                 commands: "asyncio.Queue[str]", hub_events: "Optional[asyncio.Queue[dict]]") -> None:
        self.args = args
        self.hub = hub
        self.counter = counter
        self.commands = commands
        self.hub_events = hub_events
        self.room: Optional[rtc.Room] = None
        self.publisher: Optional[MediaPublisher] = None
        self.disconnected: Optional[asyncio.Event] = None
        self.disconnect_info: dict = {}
        self.media_ok = False
        self.joined_at: Optional[float] = None
        self.call_id: Optional[str] = None

    async def join(self, url: str, token: str, **extra: Any) -> bool:
        """Connect and publish; emits connected or connect_failed."""
        try:
            self.room, self.publisher, self.disconnected, self.disconnect_info = await connect_room(
                url, token, self.counter, self.args)
        except Exception as e:  # noqa: BLE001 - reported as an event
            emit("connect_failed", url=url, error=f"{type(e).__name__}: {e}", **extra)
            return False
        self.joined_at = time.monotonic()
        emit("connected", url=url, room=self.room.name,
             identity=self.room.local_participant.identity,
             remote_participants=sorted(self.room.remote_participants.keys()),
             t_ms_since_invite=int((self.joined_at - self.counter.t_ref) * 1000), **extra)
        try:
            await self.publisher.start()
        except Exception as e:  # noqa: BLE001
            emit("publish_failed", error=f"{type(e).__name__}: {e}")
            return False
        return True

    def _hub_event(self, ev: dict, call_id: Optional[str]) -> Optional[str]:
        """Emit a hub event; the outcome it causes for this call, if any."""
        emit("hub_event", type=ev.get("type"), data=ev)
        if call_id is None or ev.get("callId") != call_id:
            return None
        kind = ev.get("type")
        if kind == "call_ended":
            emit("call_ended", callId=call_id, reason=ev.get("reason"))
            return "call_ended"
        if kind == "call_cancelled":
            emit("call_cancelled", callId=call_id)
            return "call_cancelled"
        if kind == "invitation_rejected":
            emit("rejected", callId=call_id, invitee=ev.get("invitee"), reason=ev.get("reason"))
            return "rejected"
        return None

    async def run(self, call_id: Optional[str], deadline: float, *,
                  hangup_after_media: bool, deadline_after_media: bool) -> str:
        """Exchange media until something ends the call; returns the outcome:
        hangup (we should end the call), leave (just disconnect), timeout, disconnected,
        call_ended, call_cancelled or rejected."""
        assert self.disconnected is not None and self.joined_at is not None
        self.call_id = call_id
        while True:
            # Media first: an end event that arrives together with the last frames
            # must not hide a media_ok that was already earned.
            if self.check_media() and hangup_after_media:
                return "hangup"
            while not self.commands.empty():
                cmd = self.commands.get_nowait()
                emit("command", command=cmd)
                if cmd in ("hangup", "end"):
                    return "hangup"
                if cmd in ("leave", "quit"):
                    return "leave"
                if cmd == "status":
                    emit("status", media_ok=self.media_ok, **self.counter.counts(),
                         video_receivers=await self.counter.video_receiver_stats())
                elif cmd == "reset_levels":
                    # tone_levels_db starts over: a level after a change, alone.
                    self.counter.reset_tone_levels()
                    emit("levels_reset")
                else:
                    log(f"unknown command {cmd!r} (want hangup, leave, status or reset_levels)")
            while self.hub_events is not None and not self.hub_events.empty():
                outcome = self._hub_event(self.hub_events.get_nowait(), call_id)
                if outcome is not None:
                    self.check_media()  # frames counted since the check above
                    return outcome
            if self.disconnected.is_set():
                emit("disconnected", reason=self.disconnect_info.get("reason"))
                self.check_media()
                return "disconnected"
            if time.monotonic() >= deadline and (not self.media_ok or deadline_after_media):
                emit("timeout", callId=call_id, media_ok=self.media_ok, **self.counter.counts(),
                     video_receivers=await self.counter.video_receiver_stats())
                return "timeout"
            await asyncio.sleep(0.05)

    async def why_disconnected(self, call_id: Optional[str], wait_s: float = 3.0) -> Optional[str]:
        """After a `disconnected` outcome: the hub usually ends a call by deleting the
        room, so its call_ended (or call_cancelled) event may arrive just after the room
        went away. Waits up to `wait_s` for it, emits it, and returns its type."""
        if self.hub_events is None:
            return None
        end_by = time.monotonic() + wait_s
        while time.monotonic() < end_by:
            try:
                ev = await asyncio.wait_for(self.hub_events.get(), end_by - time.monotonic())
            except asyncio.TimeoutError:
                return None
            if self._hub_event(ev, call_id) is not None:
                return ev.get("type")
        return None

    def check_media(self) -> bool:
        """Emit media_ok (once) when the thresholds are met and --hold has passed; True
        when it was emitted now."""
        if self.media_ok or self.joined_at is None:
            return False
        if not thresholds_met(self.counter, self.args):
            return False
        if time.monotonic() - self.joined_at < self.args.hold:
            return False
        self.media_ok = True
        emit("media_ok", callId=self.call_id, **self.counter.counts())
        return True

    async def end_call(self, call_id: Optional[str], reason: str) -> bool:
        """POST /api/calls/end (when there is a hub and a call), leave, emit hung_up."""
        status, body, ok = None, None, True
        if self.hub is not None and call_id is not None:
            status, body = await self.hub.post("/api/calls/end", {"callId": call_id, "reason": reason})
            ok = 200 <= status < 300
        await self.leave()
        emit("hung_up", callId=call_id, reason=reason, status=status, ok=ok,
             **({} if ok else {"body": body}))
        return ok

    async def leave(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()
        if self.room is not None:
            try:
                await asyncio.wait_for(self.room.disconnect(), 10)
            except Exception as e:  # noqa: BLE001
                log(f"disconnect: {type(e).__name__}: {e}")
        await self.counter.stop()

    def summary(self, outcome: str, code: int, **extra: Any) -> int:
        sent = {}
        if self.publisher is not None:
            sent = {"video_frames_sent": self.publisher.video_frames_sent,
                    "audio_frames_sent": self.publisher.audio_frames_sent}
        emit("summary", outcome=outcome, exit_code=code, media_ok=self.media_ok,
             **self.counter.counts(), **sent, **extra)
        return code


async def pump_hub_events(hub: Hub, queue: "asyncio.Queue[dict]", ready: asyncio.Event) -> None:
    """Forward hub WebSocket events into `queue` (emits hub_ws_closed when it ends)."""
    try:
        async for ev in hub.events(on_ready=ready.set):
            await queue.put(ev)
        emit("hub_ws_closed")
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001
        emit("hub_ws_closed", error=f"{type(e).__name__}: {e}")


def run_main(coro) -> None:
    """asyncio.run(coro) and exit with its result, without waiting on SDK threads."""
    import os

    try:
        code = asyncio.run(coro)
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
