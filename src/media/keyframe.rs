//! Asks a remote participant for a keyframe while its video arrives but decodes
//! nothing: the box's own picture-loss indication (RTCP PLI, RFC 4585 §6.3.1).
//!
//! A sender such as libwebrtc sends a keyframe when a stream starts and then only when
//! a receiver asks. If that keyframe, or the SPS/PPS in front of it, never reaches the
//! box's decoder, `h264parse` drops every following slice ("broken/invalid nal") and
//! nothing in GStreamer 1.22 asks again: `rtph264depay`'s `request-keyframe` acts only
//! on a packet the jitter buffer declared lost, and a packet from before the first one
//! the box received is never declared lost. Seen with jitter from the first packet
//! (`tests/e2e_netfaults.rs`): the box showed none of the caller's frames in 5 of 6
//! calls, while the caller's video reached the SFU and the box's jitter buffer the
//! whole time.
//!
//! So each remote video is watched for the whole call: every [`WINDOW`] in which RTP
//! packets of that track left `webrtcbin` (after the jitter buffer) and not one frame
//! came out of its decoder, the box sends an upstream force-key-unit event into that
//! `webrtcbin` source pad. `rtpbin` turns it into a PLI for the track's SSRC
//! (GStreamer's `rtpptdemux` adds the payload type, `rtpssrcdemux` the SSRC, and
//! `gst_rtp_session_event_recv_rtp_src` sends the PLI when the SDP offered
//! `a=rtcp-fb:<pt> nack pli`); the SFU forwards it to the sender. A track that sends
//! nothing (muted, or its sender gone) is not asked.
//!
//! Every keyframe request the subscriber sends is a PLI, never a FIR ([`ask_by_pli`]):
//! `rtpsession` answers a request with all headers by a FIR when the SDP also offers
//! `ccm fir`, as LiveKit's does, and livekit-server 1.13 ignores that FIR. GStreamer
//! writes it as RFC 5104 §4.3.1.2 says, with media source SSRC 0 in the common header
//! and the SSRC in the FCI, while livekit-server's `DownTrack.handleRTCP` compares the
//! header's media SSRC with the track's. Measured: 40 FIRs in 20 s brought no keyframe
//! and the caller never appeared; the first PLI did.
//!
//! The same watch also tells when the box's network comes back: a remote video whose
//! packets stopped for [`RETURN_GAP`] and arrive again (seen on the packet itself,
//! from the streaming thread). The SFU has
//! then paused forwarding the box's own video (livekit-server 1.13: its stream tracker
//! declares the layer stopped, `FEED_DRY`) and resumes it from a keyframe; left alone,
//! it asks for that keyframe itself ~1 s later. So the caller of [`watch`] sends one
//! at once (`on_return`): the caller's picture came back 201 ms after a 5 s cut with
//! keyframes that often, against 1183 ms without (`make bench`'s recovery figure).
//!
//! The box's own video also sends a few keyframes as it starts, for a caller that
//! missed the first: `keyframe_start`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// How long a remote video may deliver packets and decode no frame before the box asks
/// for a keyframe; also the time between two requests while that lasts. Each request
/// costs the sender a keyframe (tens of KiB at 640x480), so not much shorter.
pub(super) const WINDOW: Duration = Duration::from_millis(500);

/// How long a remote video may send no packet before its next one counts as the box's
/// network returning (LiveKit's SFU declares a layer stopped after one 500 ms cycle
/// without packets, so by then it has paused the box's video too). See [`watch`]'s
/// `on_return`.
pub(super) const RETURN_GAP: Duration = Duration::from_secs(1);

/// Watches the remote video `remote` (a `livekitwebrtcsrc` source pad in `pipeline`)
/// whose decoded frames pass `decoded` (the sink pad of its playback branch), and asks
/// for a keyframe as the module says, until the pipeline leaves PAUSED/PLAYING, is
/// gone, or the branch is unlinked (checked once per [`WINDOW`]). One thread per remote
/// video, named `keyframe-watch`; `track` names the video in the log. A track without
/// an `msid` (webrtcbin's pad property, the SDP's `a=msid`) cannot be told from the
/// call's other videos and is not watched.
///
/// `on_return` runs on a streaming thread of the subscriber when the video's packets
/// arrive again after [`RETURN_GAP`] or more without any (the box's network came back,
/// or the remote video was unmuted); it must not block or change a pipeline's state.
pub(super) fn watch(
    pipeline: &gst::Pipeline,
    remote: &gst::Pad,
    decoded: &gst::Pad,
    track: &str,
    on_return: Box<dyn Fn() + Send + Sync>,
) {
    let msid = remote
        .find_property("msid")
        .and_then(|_| remote.property::<Option<String>>("msid"));
    let Some(msid) = msid else {
        tracing::debug!(
            track,
            "the remote video has no msid: not watched for a missing keyframe"
        );
        return;
    };
    let frames = count_buffers(decoded);
    let gaps = Arc::new(Gaps::new(RETURN_GAP, track, on_return));
    let weak_pipeline = pipeline.downgrade();
    let weak_decoded = decoded.downgrade();
    let name = track.to_owned();
    let spawned = std::thread::Builder::new()
        .name("keyframe-watch".into())
        .spawn(move || {
            let track = name;
            // The webrtcbin pads of this track, with their packet counters (found
            // again while none is known: the watch may start before webrtcbin's pad).
            let mut sources: Vec<(gst::Pad, Arc<AtomicU64>)> = Vec::new();
            let mut watch = Watch::default();
            loop {
                std::thread::sleep(WINDOW);
                let Some(pipeline) = weak_pipeline.upgrade() else {
                    return;
                };
                // A call's pipelines go to NULL when it ends; the branch stays linked.
                if pipeline.current_state() < gst::State::Paused
                    || !weak_decoded.upgrade().is_some_and(|p| p.is_linked())
                {
                    return;
                }
                if sources.is_empty() {
                    sources = webrtcbin_video_pads(&pipeline, &msid)
                        .into_iter()
                        .map(|pad| {
                            let packets = count_media_packets(&pad, gaps.clone());
                            (pad, packets)
                        })
                        .collect();
                }
                let packets = sources.iter().map(|(_, n)| n.load(Ordering::Relaxed)).sum();
                match watch.tick(packets, frames.load(Ordering::Relaxed)) {
                    Verdict::Fine => {}
                    Verdict::Recovered { requests } => tracing::info!(
                        track = %track, requests,
                        "the remote video decodes again"
                    ),
                    Verdict::Stalled { request } => {
                        let sent = sources.iter().filter(|(pad, _)| request_keyframe(pad)).count();
                        if request == 1 {
                            tracing::info!(
                                track = %track, sent,
                                "the remote video arrives but decodes nothing: asking its sender for a keyframe"
                            );
                        } else {
                            tracing::debug!(track = %track, request, sent, "asking again for a keyframe");
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(track = %track, error = %e, "cannot watch the remote video for a missing keyframe");
    }
}

/// What one [`WINDOW`] of a remote video says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Frames decoded, or no packets arrived (nothing to ask for).
    Fine,
    /// Packets arrived and no frame decoded: ask for a keyframe (`request`: 1 for the
    /// first window of this stall).
    Stalled { request: u32 },
    /// Frames decode again after a stall that took `requests` keyframe requests.
    Recovered { requests: u32 },
}

/// The pure part of a watch: packet and frame counts at the end of each window.
#[derive(Debug, Default)]
pub(super) struct Watch {
    packets: u64,
    frames: u64,
    requests: u32,
}

impl Watch {
    /// Feeds the counters (totals since the watch started) at the end of a window.
    pub(super) fn tick(&mut self, packets: u64, frames: u64) -> Verdict {
        let new_packets = packets > self.packets;
        let new_frames = frames > self.frames;
        self.packets = packets;
        self.frames = frames;
        if new_frames {
            let requests = std::mem::take(&mut self.requests);
            return if requests > 0 {
                Verdict::Recovered { requests }
            } else {
                Verdict::Fine
            };
        }
        if !new_packets {
            return Verdict::Fine;
        }
        self.requests += 1;
        Verdict::Stalled {
            request: self.requests,
        }
    }
}

/// The gaps in one remote video's packets: calls its `on_return` on the first packet
/// after a gap of at least `gap` (not on the call's first packet).
pub(super) struct Gaps {
    gap: Duration,
    track: String,
    last: std::sync::Mutex<Option<Instant>>,
    on_return: Box<dyn Fn() + Send + Sync>,
}

impl Gaps {
    pub(super) fn new(gap: Duration, track: &str, on_return: Box<dyn Fn() + Send + Sync>) -> Self {
        Self {
            gap,
            track: track.to_owned(),
            last: std::sync::Mutex::new(None),
            on_return,
        }
    }

    /// A media packet passed at `now`; returns the gap before it when that ended one.
    pub(super) fn packet(&self, now: Instant) -> Option<Duration> {
        let ended = {
            let Ok(mut last) = self.last.lock() else {
                return None;
            };
            let gap = last.map(|t| now.saturating_duration_since(t));
            *last = Some(now);
            gap.filter(|g| *g >= self.gap)
        };
        if let Some(gap) = ended {
            tracing::info!(
                track = %self.track,
                gap_ms = gap.as_millis() as u64,
                "the remote video arrives again after a gap: sending a keyframe of the box's own video"
            );
            (self.on_return)();
        }
        ended
    }
}

/// Asks `encoder` (a video encoder of the box's publisher) for a keyframe, with its
/// headers, as a PLI from the SFU does: an upstream force-key-unit event into its
/// source pad (GstVideoEncoder). False if the event was not handled.
pub(super) fn force_keyframe(encoder: &gst::Element) -> bool {
    encoder.static_pad("src").is_some_and(|pad| {
        pad.send_event(
            gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build(),
        )
    })
}

/// The `on_return` of [`watch`] for a call: asks each of the call's publisher video
/// encoders (`counters.video_encoders`) for a keyframe with [`force_keyframe`].
pub(super) fn ask_own_encoders(counters: Arc<super::Counters>) -> Box<dyn Fn() + Send + Sync> {
    Box::new(move || {
        let list: Vec<gst::Element> = counters
            .video_encoders
            .lock()
            .map(|l| l.iter().filter_map(|e| e.upgrade()).collect())
            .unwrap_or_default();
        let sent = list.iter().filter(|e| force_keyframe(e)).count();
        tracing::debug!(
            encoders = list.len(),
            sent,
            "keyframe of the box's video asked"
        );
    })
}

/// Counts the buffers (decoded frames) that pass `pad` from now on.
fn count_buffers(pad: &gst::Pad) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            super::guarded("keyframe-count-probe", gst::PadProbeReturn::Ok, || {
                let add = match &info.data {
                    Some(gst::PadProbeData::BufferList(list)) => list.len() as u64,
                    _ => 1,
                };
                counter.fetch_add(add, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            })
        },
    );
    n
}

/// Counts the RTP packets with media in them that pass `pad` from now on. Padding-only
/// packets ([`rtp_has_payload`]), which an SFU sends to probe the bandwidth, also to a
/// track it has paused, are not counted: they bring no frame to wait for.
fn count_media_packets(pad: &gst::Pad, gaps: Arc<Gaps>) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    let with_media = |buffer: &gst::BufferRef| {
        buffer
            .map_readable()
            .is_ok_and(|map| rtp_has_payload(map.as_slice()))
    };
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            super::guarded("keyframe-packet-probe", gst::PadProbeReturn::Ok, || {
                let add = match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => u64::from(with_media(buffer)),
                    Some(gst::PadProbeData::BufferList(list)) => {
                        list.iter().filter(|b| with_media(b)).count() as u64
                    }
                    _ => 0,
                };
                counter.fetch_add(add, Ordering::Relaxed);
                if add > 0 {
                    gaps.packet(Instant::now());
                }
                gst::PadProbeReturn::Ok
            })
        },
    );
    n
}

/// Whether the RTP packet `data` carries payload (RFC 3550 §5.1: the payload follows
/// the 12-byte header, 4 bytes per CSRC and, with the X bit, the header extension, and
/// ends before the padding the P bit announces in the last byte); `false` for a
/// padding-only packet or anything too short to be RTP version 2.
pub(super) fn rtp_has_payload(data: &[u8]) -> bool {
    let Some(&first) = data.first() else {
        return false;
    };
    if data.len() < 12 || first >> 6 != 2 {
        return false;
    }
    let mut header = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let Some(words) = data.get(header + 2..header + 4) else {
            return false;
        };
        header += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let padding = if first & 0x20 != 0 {
        data.last().map_or(0, |&p| usize::from(p))
    } else {
        0
    };
    data.len() > header + padding
}

/// The video source pads of every `webrtcbin` inside `pipeline` that carry the track
/// `msid` (GstWebRTCBinPad's `msid`, the SDP's `a=msid`), each once.
fn webrtcbin_video_pads(pipeline: &gst::Pipeline, msid: &str) -> Vec<gst::Pad> {
    let mut pads: Vec<gst::Pad> = Vec::new();
    // The iterator starts over when the bin changes meanwhile: a pad may come twice.
    let found = pipeline
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.factory().is_some_and(|f| f.name() == "webrtcbin"))
        .flat_map(|webrtcbin| webrtcbin.src_pads())
        .filter(|pad| {
            let video = pad
                .current_caps()
                .and_then(|c| {
                    c.structure(0)
                        .map(|s| s.get::<&str>("media") == Ok("video"))
                })
                .unwrap_or(false);
            video
                && pad.find_property("msid").is_some()
                && pad.property::<Option<String>>("msid").as_deref() == Some(msid)
        });
    for pad in found {
        if !pads.contains(&pad) {
            pads.push(pad);
        }
    }
    pads
}

/// Makes every keyframe request that leaves through a source pad of the subscriber's
/// `webrtcbin` a PLI (see the module): an upstream force-key-unit event asking for all
/// headers (as `rtph264depay`'s `request-keyframe` sends after a lost packet) is
/// rewritten to ask for none. libwebrtc puts SPS/PPS in front of every IDR picture
/// anyway. Applies to the pads the element adds from now on.
pub(super) fn ask_by_pli(webrtcbin: &gst::Element) {
    webrtcbin.connect_pad_added(|_, pad| {
        super::guarded("pad-added", (), || {
            if pad.direction() == gst::PadDirection::Src {
                pli_not_fir(pad);
            }
        })
    });
}

/// The probe of [`ask_by_pli`] on one pad.
pub(super) fn pli_not_fir(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, |_, info| {
        super::guarded("keyframe-request-probe", gst::PadProbeReturn::Ok, || {
            let Some(gst::PadProbeData::Event(event)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let Ok(request) = gst_video::UpstreamForceKeyUnitEvent::parse(event) else {
                return gst::PadProbeReturn::Ok;
            };
            if request.all_headers {
                let pli = gst_video::UpstreamForceKeyUnitEvent::builder()
                    .running_time(request.running_time)
                    .all_headers(false)
                    .count(request.count)
                    .seqnum(event.seqnum())
                    .build();
                info.data = Some(gst::PadProbeData::Event(pli));
            }
            gst::PadProbeReturn::Ok
        })
    });
}

/// Sends an upstream force-key-unit event into `webrtcbin_pad` (no headers asked: a
/// PLI, see [`ask_by_pli`]); whether it was delivered (`rtpsession` takes it even for
/// an SSRC it does not know, so not proof that a PLI went out).
fn request_keyframe(webrtcbin_pad: &gst::Pad) -> bool {
    webrtcbin_pad.send_event(
        gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(false)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyframe request asking for all headers (a FIR to `rtpsession`) leaves a
    /// subscriber's `webrtcbin` pad asking for none (a PLI), with its running time and
    /// count; other upstream events pass as they are.
    #[test]
    fn a_keyframe_request_leaves_as_a_pli() {
        gst::init().expect("gstreamer");
        let pipeline =
            gst::parse::launch("fakesrc name=src num-buffers=1 ! identity name=webrtcbin ! fakesink name=sink async=false")
                .expect("pipeline")
                .downcast::<gst::Pipeline>()
                .expect("a pipeline");
        let pad_of = |element: &str, pad: &str| {
            pipeline
                .by_name(element)
                .and_then(|e| e.static_pad(pad))
                .expect("pad")
        };
        pli_not_fir(&pad_of("webrtcbin", "src"));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        pad_of("src", "src").add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                record.lock().unwrap().push(e.clone());
            }
            gst::PadProbeReturn::Ok
        });
        // Pads pass events only once active.
        pipeline.set_state(gst::State::Paused).expect("paused");
        let sink = pad_of("sink", "sink");
        let fir = gst_video::UpstreamForceKeyUnitEvent::builder()
            .running_time(gst::ClockTime::from_mseconds(1500))
            .all_headers(true)
            .count(3)
            .build();
        let seqnum = fir.seqnum();
        sink.push_event(fir);
        sink.push_event(gst::event::Reconfigure::new());
        pipeline.set_state(gst::State::Null).expect("stopped");
        let seen = seen.lock().unwrap();
        let requests: Vec<_> = seen
            .iter()
            .filter_map(|e| gst_video::UpstreamForceKeyUnitEvent::parse(e).ok())
            .collect();
        assert_eq!(requests.len(), 1, "one keyframe request reached upstream");
        assert!(!requests[0].all_headers, "asks for no headers: a PLI");
        assert_eq!(
            requests[0].running_time,
            Some(gst::ClockTime::from_mseconds(1500))
        );
        assert_eq!(requests[0].count, 3);
        let request = seen
            .iter()
            .find(|e| e.type_() == gst::EventType::CustomUpstream);
        assert_eq!(request.map(|e| e.seqnum()), Some(seqnum));
        assert!(
            seen.iter()
                .any(|e| e.type_() == gst::EventType::Reconfigure),
            "other events pass"
        );
    }

    /// A video that decodes is never asked for a keyframe.
    #[test]
    fn a_video_that_decodes_is_left_alone() {
        let mut w = Watch::default();
        assert_eq!(w.tick(40, 15), Verdict::Fine);
        assert_eq!(w.tick(80, 30), Verdict::Fine);
    }

    /// Packets without frames ask once per window until a frame decodes, which is
    /// reported once with the number of requests.
    #[test]
    fn packets_without_frames_ask_each_window_until_a_frame_decodes() {
        let mut w = Watch::default();
        assert_eq!(w.tick(40, 0), Verdict::Stalled { request: 1 });
        assert_eq!(w.tick(80, 0), Verdict::Stalled { request: 2 });
        assert_eq!(w.tick(120, 3), Verdict::Recovered { requests: 2 });
        assert_eq!(w.tick(160, 18), Verdict::Fine);
        // A freeze later in the call starts counting from one again.
        assert_eq!(w.tick(200, 18), Verdict::Stalled { request: 1 });
    }

    /// RTP packets with media count; padding-only ones (an SFU's bandwidth probes), and
    /// what is not RTP, do not.
    #[test]
    fn only_packets_with_payload_count_as_media() {
        let header = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 42];
        let with = |extra: &[u8]| [&header[..], extra].concat();
        assert!(rtp_has_payload(&with(&[0x65, 1, 2])), "a slice");
        assert!(!rtp_has_payload(&header), "header only");
        // P bit, 4 bytes of padding, nothing else.
        let mut padding = with(&[0, 0, 0, 4]);
        padding[0] |= 0x20;
        assert!(!rtp_has_payload(&padding), "padding only");
        let mut padded = with(&[0x65, 0, 0, 0, 4]);
        padded[0] |= 0x20;
        assert!(rtp_has_payload(&padded), "a byte of payload, then padding");
        // One CSRC, and a one-word header extension: the payload is after both.
        let mut extended = with(&[0, 0, 0, 7, 0xbe, 0xde, 0, 1, 0x10, 0, 0, 0]);
        extended[0] |= 0x10 | 0x01;
        assert!(
            !rtp_has_payload(&extended),
            "CSRC and extension, no payload"
        );
        extended.push(0x65);
        assert!(rtp_has_payload(&extended), "CSRC, extension and payload");
        assert!(!rtp_has_payload(&[0x40; 20]), "not RTP version 2");
        assert!(!rtp_has_payload(&[]), "nothing");
    }

    /// A track that sends nothing (muted, or its sender gone) is not asked.
    #[test]
    fn a_silent_track_is_not_asked() {
        let mut w = Watch::default();
        assert_eq!(w.tick(0, 0), Verdict::Fine);
        assert_eq!(w.tick(40, 15), Verdict::Fine);
        assert_eq!(w.tick(40, 15), Verdict::Fine);
    }

    /// The first packet after a gap of [`RETURN_GAP`] or more calls `on_return`, once;
    /// the call's first packet and shorter gaps do not.
    #[test]
    fn a_packet_after_a_gap_counts_as_the_network_returning() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let gaps = Gaps::new(
            RETURN_GAP,
            "video_0",
            Box::new(move || {
                counted.fetch_add(1, Ordering::Relaxed);
            }),
        );
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(gaps.packet(at(0)), None, "the first packet is no return");
        assert_eq!(gaps.packet(at(33)), None);
        assert_eq!(gaps.packet(at(999)), None, "966 ms is no gap");
        assert_eq!(gaps.packet(at(6_000)), Some(Duration::from_millis(5_001)));
        assert_eq!(gaps.packet(at(6_033)), None, "once per gap");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    /// A keyframe asked of a running x264enc comes out within a few frames, where without
    /// the request every frame after the first is a delta frame (key-int-max 300).
    #[test]
    fn a_forced_keyframe_comes_out_of_the_encoder() {
        gst::init().expect("gstreamer");
        if gst::ElementFactory::find("x264enc").is_none() {
            println!("skipped: no x264enc here (gstreamer1.0-plugins-ugly)");
            return;
        }
        let pipeline = gst::parse::launch(
            "videotestsrc is-live=true num-buffers=45 ! video/x-raw,width=160,height=120,framerate=30/1 \
             ! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=300 \
             ! fakesink sync=false",
        )
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let enc = pipeline.by_name("enc").expect("enc");
        // (frames out, the frame numbers that were keyframes)
        let seen = Arc::new(std::sync::Mutex::new((0u32, Vec::<u32>::new())));
        let record = seen.clone();
        enc.static_pad("src")
            .expect("src")
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let mut s = record.lock().unwrap();
                    if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                        let n = s.0;
                        s.1.push(n);
                    }
                    s.0 += 1;
                }
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).expect("playing");
        let out = |seen: &Arc<std::sync::Mutex<(u32, Vec<u32>)>>| seen.lock().unwrap().0;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while out(&seen) < 10 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let asked_at = out(&seen);
        assert!(force_keyframe(&enc), "the encoder takes the request");
        while out(&seen) < 45 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        pipeline.set_state(gst::State::Null).expect("null");
        let keyframes = seen.lock().unwrap().1.clone();
        assert_eq!(
            keyframes.first(),
            Some(&0),
            "the stream starts with a keyframe"
        );
        assert!(
            keyframes
                .iter()
                .any(|&n| n >= asked_at && n <= asked_at + 4),
            "a keyframe within a few frames of the request at frame {asked_at}: {keyframes:?}"
        );
        assert_eq!(keyframes.len(), 2, "no other keyframe: {keyframes:?}");
    }
}
