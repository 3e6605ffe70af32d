//! The latency stamp, for `make bench`'s glass-to-glass figures (issue #11): the
//! sender draws its capture time into the top rows of each video frame as a row of
//! black and white blocks; the receiver reads it back from the decoded frame and
//! subtracts it from its own clock (one machine in the benchmark, so one clock).
//!
//! Off unless `CALLBOX_LATENCY_STAMPS=<file>` is set in the daemon's environment:
//! then the box stamps its camera's frames and appends a line per stamped frame it
//! receives to that file, at two points: `decoded` (the remote video leaving the
//! decoder) and `shown` (the frame the call screen's tile takes for composing, after
//! the jitter buffer's sync and the screen's frame clock; the screen's sink shows it
//! as soon as it is composed). Never set on an appliance: the blocks are visible to
//! the caller.
//!
//! The code (the same in `tests/peers/stamp.py`, which the Python SDK peers use):
//! 36 square blocks of side `B = max(8, width / 40)` rounded down to even, in the
//! top-left corner: the markers `1 0`, the 32 bits of `unix_ms mod 2^32` (most
//! significant first), and the markers `0 1`. A one is luma 235, a zero luma 16 (video
//! range). Only luma is written and read: H.264 and VP8 code luma on its own, and
//! 8x8 or larger flat blocks of full contrast survive any bitrate a call uses.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use gst::prelude::*;

/// The environment variable that turns stamping on and names the file of received
/// stamps (see the module's doc).
pub const ENV: &str = "CALLBOX_LATENCY_STAMPS";

const DATA_BITS: usize = 32;
const START: [bool; 2] = [true, false];
const END: [bool; 2] = [false, true];
const BLOCKS: usize = START.len() + DATA_BITS + END.len();
const ONE: u8 = 235;
const ZERO: u8 = 16;

/// A receiver's verdict is trusted only below this, ms: a stamp read wrong by a bit
/// (which the markers do not catch) gives a wild value instead of a plausible one.
const MAX_LATENCY_MS: u32 = 10_000;

/// The side of one block, px, for a frame `width` px wide; `None` when the code does
/// not fit the frame.
pub fn block_size(width: usize, height: usize) -> Option<usize> {
    let b = (width / 40).max(8) & !1;
    (b * BLOCKS <= width && b <= height).then_some(b)
}

/// The wall clock, ms since the Unix epoch, modulo 2^32 (what a stamp holds).
pub fn now_ms32() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u32)
}

fn bits(ms: u32) -> impl Iterator<Item = bool> {
    START
        .into_iter()
        .chain((0..DATA_BITS).rev().map(move |i| ms >> i & 1 == 1))
        .chain(END)
}

/// Draws `ms` into an 8-bit luma plane (`stride` bytes per row, `width`x`height`).
/// Returns false (and draws nothing) when the frame is too small for the code.
pub fn draw(luma: &mut [u8], stride: usize, width: usize, height: usize, ms: u32) -> bool {
    let Some(b) = block_size(width, height) else {
        return false;
    };
    if luma.len() < (b - 1) * stride + BLOCKS * b {
        return false;
    }
    for (k, bit) in bits(ms).enumerate() {
        let v = if bit { ONE } else { ZERO };
        for row in 0..b {
            let at = row * stride + k * b;
            luma[at..at + b].fill(v);
        }
    }
    true
}

/// Reads a stamp from an 8-bit luma plane: each block's mean over its central half,
/// against the midpoint. `None` when the markers are not there (no stamp, or a frame
/// too damaged to trust).
pub fn read(luma: &[u8], stride: usize, width: usize, height: usize) -> Option<u32> {
    let b = block_size(width, height)?;
    if luma.len() < (b - 1) * stride + BLOCKS * b {
        return None;
    }
    let threshold = (u32::from(ONE) + u32::from(ZERO)) / 2;
    let (lo, hi) = (b / 4, b - b / 4);
    let bit = |k: usize| {
        let mut sum = 0u32;
        for row in lo..hi {
            let at = row * stride + k * b;
            sum += luma[at + lo..at + hi]
                .iter()
                .map(|&v| u32::from(v))
                .sum::<u32>();
        }
        sum / ((hi - lo) * (hi - lo)) as u32 > threshold
    };
    let got: Vec<bool> = (0..BLOCKS).map(bit).collect();
    if got[..2] != START || got[BLOCKS - 2..] != END {
        return None;
    }
    Some(
        got[2..2 + DATA_BITS]
            .iter()
            .fold(0u32, |acc, &b| acc << 1 | u32::from(b)),
    )
}

/// The latency of a frame stamped `stamp` and received at `now` (both
/// [`now_ms32`]), ms; `None` beyond [`MAX_LATENCY_MS`] (a misread).
pub fn latency_ms(stamp: u32, now: u32) -> Option<u32> {
    Some(now.wrapping_sub(stamp)).filter(|&l| l < MAX_LATENCY_MS)
}

/// Where received stamps go: the file named by [`ENV`], or nowhere.
static LOG: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Whether stamping is on (the daemon's environment has [`ENV`]); opens its file
/// (append) on the first call. An unusable file is logged once and turns it off.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let Some(path) = std::env::var_os(ENV) else {
            return false;
        };
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => {
                tracing::warn!(
                    file = %path.to_string_lossy(),
                    "latency stamps on ({ENV}): the camera's frames carry a visible code; \
                     for benchmarks only"
                );
                *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
                true
            }
            Err(e) => {
                tracing::error!(file = %path.to_string_lossy(), error = %e, "cannot open {ENV}'s file; latency stamps off");
                false
            }
        }
    })
}

/// The luma plane of an I420/NV12/YV12/NV21 buffer: (plane, stride, width, height).
fn luma_of(caps: &gst::CapsRef) -> Option<(usize, usize, usize)> {
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    use gst_video::VideoFormat as F;
    matches!(info.format(), F::I420 | F::Yv12 | F::Nv12 | F::Nv21).then(|| {
        (
            info.stride()[0] as usize,
            info.width() as usize,
            info.height() as usize,
        )
    })
}

/// Stamps every buffer leaving `pad` (raw video, I420/NV12-like) with the time it
/// passes. The buffer is made writable first (a copy when it is shared).
pub fn stamp_on(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        super::guarded("latency-stamp", gst::PadProbeReturn::Ok, || {
            let Some(caps) = pad.current_caps() else {
                return gst::PadProbeReturn::Ok;
            };
            let Some((stride, w, h)) = luma_of(&caps) else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(buffer) = info.buffer_mut() else {
                return gst::PadProbeReturn::Ok;
            };
            let buffer = buffer.make_mut();
            if let Ok(mut map) = buffer.map_writable() {
                draw(map.as_mut_slice(), stride, w, h, now_ms32());
            }
            gst::PadProbeReturn::Ok
        })
    });
}

/// Reads the stamp of every buffer passing `pad` and appends `<stage> <unix_ms mod
/// 2^32> <latency ms>` to [`ENV`]'s file. A frame seen again (a source repeating
/// its last frame) is written once, when first seen.
pub fn read_on(pad: &gst::Pad, stage: &'static str) {
    let last = std::sync::atomic::AtomicU32::new(u32::MAX);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        super::guarded("latency-read", gst::PadProbeReturn::Ok, || {
            let now = now_ms32();
            let (Some(caps), Some(buffer)) = (pad.current_caps(), info.buffer()) else {
                return gst::PadProbeReturn::Ok;
            };
            let Some((stride, w, h)) = luma_of(&caps) else {
                return gst::PadProbeReturn::Ok;
            };
            let Ok(map) = buffer.map_readable() else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(stamp) = read(map.as_slice(), stride, w, h) else {
                return gst::PadProbeReturn::Ok;
            };
            if last.swap(stamp, std::sync::atomic::Ordering::Relaxed) == stamp {
                return gst::PadProbeReturn::Ok;
            }
            if let Some(l) = latency_ms(stamp, now)
                && let Some(f) = LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
            {
                let _ = writeln!(f, "{stage} {now} {l}");
            }
            gst::PadProbeReturn::Ok
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, fill: u8) -> Vec<u8> {
        vec![fill; w * h]
    }

    #[test]
    fn a_stamp_reads_back_at_both_call_sizes_and_on_any_background() {
        for (w, h) in [(640, 480), (1280, 720), (320, 240)] {
            for fill in [0u8, 128, 255] {
                for ms in [0u32, 1, 0xdead_beef, u32::MAX] {
                    let mut f = frame(w, h, fill);
                    assert!(draw(&mut f, w, w, h, ms));
                    assert_eq!(read(&f, w, w, h), Some(ms), "{w}x{h} on {fill}");
                }
            }
        }
    }

    #[test]
    fn a_frame_without_a_stamp_reads_as_none() {
        for fill in [0u8, 128, 255] {
            assert_eq!(read(&frame(640, 480, fill), 640, 640, 480), None);
        }
    }

    #[test]
    fn a_stamp_survives_coding_noise_and_honours_the_stride() {
        let (w, h, stride) = (640, 480, 704);
        let mut f = vec![90u8; stride * h];
        assert!(draw(&mut f, stride, w, h, 123_456_789));
        // ±40 of noise: far more than a call's H.264 leaves in flat blocks.
        for (i, v) in f.iter_mut().enumerate() {
            *v = v.saturating_add_signed(((i * 7919) % 81) as i8 - 40);
        }
        assert_eq!(read(&f, stride, w, h), Some(123_456_789));
    }

    #[test]
    fn a_frame_too_small_is_left_alone() {
        let mut f = frame(160, 120, 7);
        assert!(!draw(&mut f, 160, 160, 120, 5));
        assert!(f.iter().all(|&v| v == 7));
    }

    #[test]
    fn latency_wraps_with_the_clock_and_rejects_misreads() {
        assert_eq!(latency_ms(u32::MAX - 9, 20), Some(30));
        assert_eq!(latency_ms(1000, 1045), Some(45));
        assert_eq!(latency_ms(1045, 1000), None, "from the future: a misread");
        assert_eq!(latency_ms(0, 20_000), None);
    }
}

#[cfg(test)]
mod pipeline_tests {
    use std::sync::{Arc, Mutex};

    use gst::prelude::*;

    /// Stamped at 640x480, coded with x264 at 300 kbit/s (less than a call's), decoded:
    /// every frame reads back a time from this test's run, in order.
    #[test]
    fn a_stamp_survives_h264_at_a_low_call_bitrate() {
        gst::init().unwrap();
        if gst::ElementFactory::find("x264enc").is_none()
            || gst::ElementFactory::find("avdec_h264").is_none()
        {
            println!("skipped: x264enc or avdec_h264 missing (make setup installs them)");
            return;
        }
        let p = gst::parse::launch(
            "videotestsrc num-buffers=30 pattern=ball ! \
             video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! \
             identity name=stamp ! x264enc bitrate=300 tune=zerolatency speed-preset=ultrafast ! \
             avdec_h264 ! identity name=read ! fakesink",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let t0 = super::now_ms32();
        let stamp = p.by_name("stamp").unwrap();
        super::stamp_on(&stamp.static_pad("src").unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        p.by_name("read")
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let caps = pad.current_caps().unwrap();
                let (stride, w, h) = super::luma_of(&caps).expect("I420 out of avdec_h264");
                let map = info.buffer().unwrap().map_readable().unwrap();
                sink.lock()
                    .unwrap()
                    .push(super::read(map.as_slice(), stride, w, h));
                gst::PadProbeReturn::Ok
            });
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("the pipeline ends");
        p.set_state(gst::State::Null).unwrap();
        assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
        let t1 = super::now_ms32();
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 30, "every frame decoded");
        let stamps: Vec<u32> = got
            .iter()
            .map(|s| s.expect("a stamp on every frame"))
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
        assert!(
            stamps[0] >= t0 && stamps[29] <= t1,
            "{t0}..{t1}: {stamps:?}"
        );
    }
}
