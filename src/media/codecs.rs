//! Which video codec the box answers LiveKit's offers with, per offer.
//!
//! LiveKit's SFU offers the box's subscriber every codec it knows on each video m-line
//! (VP8 first), whatever codec the caller actually publishes, and only forwards a track
//! if the answer contains that track's codec. GStreamer 1.22's `webrtcbin` answers with
//! one codec per m-line: the first of `livekitwebrtcsrc`'s `video-codecs` that the
//! offer has (`gst_sdp_media_set_media_from_caps` writes one format). With a fixed
//! `video-codecs`, a caller publishing another codec reached the box with audio only.
//!
//! So, for every offer, before `livekitwebrtcsrc` handles it: read the video tracks'
//! SIDs from the SDP (`a=msid:<participant>|<track> <track>`), ask a
//! [`TrackCodecSource`] (the hub, which asks LiveKit's RoomService) which codecs those
//! tracks are published in, and choose one codec per video m-line. Each such m-line of
//! the offer is then narrowed to its codec ([`keep_only_codec`]: the other video
//! codecs' formats and their RTX go), and `video-codecs` is set to the codecs chosen.
//! So in a group call one caller's VP8 and another's H.264 are both answered, each on
//! its own m-line. The hook is a GObject emission hook on the signaller's
//! `session-description` signal: it runs before any handler, so before
//! `livekitwebrtcsrc` reads the offer and `video-codecs`.
//!
//! One more step for a group call: LiveKit's SFU (pion) takes the video codecs it may
//! ever send to the box from the first video m-line of the first answer that has one
//! (pion's MediaEngine negotiates once per kind). Answered VP8 there, a second caller's
//! H.264 track cannot be bound and the SFU drops it from the subscription (its next
//! offer turns that m-line `recvonly`); answered H.264 there, a later VP8 track is
//! offered as H.264 only. So the answer, on its way out (an emission hook on
//! `send-session-description`, before the signaller sends it), also lists on its first
//! video m-line every offered codec this box decodes ([`complete_first_video_mline`]).
//! webrtcbin's own local description is unchanged; the SFU only ever sends each track
//! in its own codec on its own m-line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use callbox_protocol::PublishedTrack;
use gst::glib;
use gst::glib::translate::IntoGlib;
use gst::prelude::*;

use crate::config::ReceiveVideoCodec;

/// How long one offer may wait for the codecs of its tracks, in total. LiveKit offers a
/// track only once it is published, so the first answer normally has them.
pub const LOOKUP_BUDGET: Duration = Duration::from_millis(2000);
/// Pause between lookups while a track's codecs are still unknown.
const LOOKUP_RETRY: Duration = Duration::from_millis(150);

/// Where the box learns the codecs of the tracks published in its call's room.
pub trait TrackCodecSource: Send + Sync + 'static {
    /// The tracks published in `call_id`'s room. Blocking; called from a GStreamer
    /// signalling thread, never from a tokio worker. Errors: a sentence for the log.
    fn published_tracks(&self, call_id: &str) -> Result<Vec<PublishedTrack>, String>;
}

/// No source (a box without a hub, e.g. the media tests): every offer is answered with
/// the `media.receive_video_codec` preference.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTrackCodecs;

impl TrackCodecSource for NoTrackCodecs {
    fn published_tracks(&self, _call_id: &str) -> Result<Vec<PublishedTrack>, String> {
        Err("no track codec source (no hub)".into())
    }
}

/// The video m-lines of the offer that carry a track: (m-line index counting every
/// m-line, track SID), in m-line order.
pub fn video_tracks_by_mline(sdp: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    let mut index: Option<u32> = None;
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            index = Some(index.map_or(0, |i| i + 1));
            in_video = media.starts_with("video ");
        } else if in_video && let Some(msid) = line.strip_prefix("a=msid:") {
            let mut parts = msid.split_whitespace();
            let stream = parts.next().unwrap_or_default();
            let sid = parts
                .next()
                .or_else(|| stream.split('|').nth(1))
                .unwrap_or(stream);
            let i = index.unwrap_or(0);
            if !sid.is_empty() && !out.iter().any(|(m, _)| *m == i) {
                out.push((i, sid.to_owned()));
            }
        }
    }
    out
}

/// Video encodings a caller may publish; on a narrowed m-line all but one go.
const VIDEO_ENCODINGS: [&str; 5] = ["VP8", "VP9", "H264", "H265", "AV1"];

/// Narrows one m-line of an offer to `codec` (`VP8`, `H264`, …): removes the formats
/// of the other video encodings (and, for H.264, those not in `packetization-mode=1`
/// when one is), the RTX formats that repair them (`a=fmtp:<pt> apt=<removed>`), and
/// their `rtpmap`/`fmtp`/`rtcp-fb` lines. Audio, RED, ULPFEC and
/// the chosen codec's formats stay. Returns false (and changes nothing) when the
/// m-line has no format of `codec`.
pub fn keep_only_codec(media: &mut gst_webrtc::gst_sdp::SDPMediaRef, codec: &str) -> bool {
    let mut encoding: HashMap<String, String> = HashMap::new();
    let mut apt: HashMap<String, String> = HashMap::new();
    // H.264 formats with `packetization-mode=1` (what WebRTC senders publish).
    let mut h264_mode1: Vec<String> = Vec::new();
    for a in media.attributes() {
        let value = a.value().unwrap_or_default();
        let (pt, rest) = value.split_once(' ').unwrap_or((value, ""));
        match a.key() {
            "rtpmap" => {
                let name = rest
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                encoding.insert(pt.to_owned(), name);
            }
            "fmtp" => {
                if rest.split(';').any(|p| p.trim() == "packetization-mode=1") {
                    h264_mode1.push(pt.to_owned());
                }
                if let Some(target) = rest.split(';').find_map(|p| p.trim().strip_prefix("apt=")) {
                    apt.insert(pt.to_owned(), target.trim().to_owned());
                }
            }
            _ => {}
        }
    }
    if !encoding.values().any(|e| e == codec) {
        return false;
    }
    // LiveKit offers H.264 in packetization mode 0 first; answered with it, the SFU
    // cannot bind a caller's mode-1 track to the box and drops it from the
    // subscription (seen with two callers: the H.264 m-line went `recvonly`).
    let mode1 = |pt: &str| h264_mode1.iter().any(|m| m == pt);
    let h264_mode1_offered = encoding.iter().any(|(pt, e)| e == "H264" && mode1(pt));
    let mut drop: Vec<String> = encoding
        .iter()
        .filter(|(pt, e)| {
            (*e != codec && VIDEO_ENCODINGS.contains(&e.as_str()))
                || (codec == "H264" && *e == "H264" && h264_mode1_offered && !mode1(pt))
        })
        .map(|(pt, _)| pt.clone())
        .collect();
    let repairs: Vec<String> = apt
        .iter()
        .filter(|(_, target)| drop.contains(target))
        .map(|(pt, _)| pt.clone())
        .collect();
    drop.extend(repairs);
    for i in (0..media.formats_len()).rev() {
        if media.format(i).is_some_and(|f| drop.iter().any(|d| d == f)) {
            let _ = media.remove_format(i);
        }
    }
    for i in (0..media.attributes_len()).rev() {
        let Some(a) = media.attribute(i) else {
            continue;
        };
        let per_format = matches!(a.key(), "rtpmap" | "fmtp" | "rtcp-fb");
        let pt = a
            .value()
            .unwrap_or_default()
            .split(' ')
            .next()
            .unwrap_or_default();
        if per_format && drop.iter().any(|d| d == pt) {
            let _ = media.remove_attribute(i);
        }
    }
    true
}

/// One video format of an offer: its payload type, encoding name (`VP8`, `H264`,
/// `RTX`, …), what an RTX format repairs (`apt`), and its `rtpmap`/`fmtp`/`rtcp-fb`
/// lines as (key, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedFormat {
    pub pt: String,
    pub encoding: String,
    pub apt: Option<String>,
    /// H.264 in `packetization-mode=1`.
    pub mode1: bool,
    pub lines: Vec<(String, String)>,
}

/// The video formats of an offer, by payload type, in offer order (LiveKit uses the
/// same payload types on every video m-line; the first one seen wins).
pub fn offered_formats(sdp: &gst_webrtc::gst_sdp::SDPMessageRef) -> Vec<OfferedFormat> {
    let mut out: Vec<OfferedFormat> = Vec::new();
    for m in sdp.medias().filter(|m| m.media() == Some("video")) {
        for pt in m.formats() {
            if out.iter().any(|f| f.pt == pt) {
                continue;
            }
            let lines: Vec<(String, String)> = m
                .attributes()
                .filter(|a| matches!(a.key(), "rtpmap" | "fmtp" | "rtcp-fb"))
                .filter_map(|a| {
                    let v = a.value()?;
                    (v.split(' ').next() == Some(pt)).then(|| (a.key().to_owned(), v.to_owned()))
                })
                .collect();
            let param = |key: &str| {
                lines
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.split_once(' ').map_or("", |(_, r)| r).to_owned())
            };
            let encoding = param("rtpmap")
                .map(|r| r.split('/').next().unwrap_or_default().to_ascii_uppercase())
                .unwrap_or_default();
            let fmtp = param("fmtp").unwrap_or_default();
            let apt = fmtp
                .split(';')
                .find_map(|p| p.trim().strip_prefix("apt="))
                .map(|a| a.trim().to_owned());
            let mode1 = fmtp.split(';').any(|p| p.trim() == "packetization-mode=1");
            out.push(OfferedFormat {
                pt: pt.to_owned(),
                encoding,
                apt,
                mode1,
                lines,
            });
        }
    }
    out
}

/// Completes the answer's first video m-line for the SFU: adds every video codec of
/// the offer (`offered`, from [`offered_formats`]) that this box decodes
/// (`decodable`; for H.264 only `packetization-mode=1` when offered), with the RTX
/// formats that repair them, after the codec webrtcbin answered there; and gives the
/// m-line's own formats the offer's `fmtp`. Returns the payload types added.
///
/// Why: LiveKit's SFU (pion) negotiates the video codecs it may ever send to this
/// subscriber once, from the first video m-line of the first answer that has one, and
/// of that m-line it keeps only the exactly matched codecs when there are any (H.264
/// matches exactly only with `profile-level-id`, which webrtcbin's answer leaves out).
/// A track in a codec outside that set is never offered to the box (seen: a second
/// caller's VP8 track after a first caller's H.264 one, offered as H.264 only).
pub fn complete_first_video_mline(
    sdp: &mut gst_webrtc::gst_sdp::SDPMessageRef,
    offered: &[OfferedFormat],
    decodable: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let Some(first) =
        (0..sdp.medias_len()).find(|&i| sdp.media(i).and_then(|m| m.media()) == Some("video"))
    else {
        return Vec::new();
    };
    let Some(m) = sdp.media_mut(first) else {
        return Vec::new();
    };
    let present: Vec<String> = m.formats().map(str::to_owned).collect();
    let h264_mode1 = offered.iter().any(|f| f.encoding == "H264" && f.mode1);
    let codecs: Vec<&OfferedFormat> = offered
        .iter()
        .filter(|f| {
            VIDEO_ENCODINGS.contains(&f.encoding.as_str())
                && decodable(&f.encoding)
                && (f.encoding != "H264" || !h264_mode1 || f.mode1)
        })
        .collect();
    let repairs: Vec<&OfferedFormat> = offered
        .iter()
        .filter(|f| f.encoding == "RTX")
        .filter(|f| {
            f.apt
                .as_ref()
                .is_some_and(|apt| present.contains(apt) || codecs.iter().any(|c| &c.pt == apt))
        })
        .collect();
    // The m-line's own formats take the offer's fmtp.
    for i in 0..m.attributes_len() {
        let Some(a) = m.attribute(i) else { continue };
        if a.key() != "fmtp" {
            continue;
        }
        let Some((pt, params)) = a.value().and_then(|v| v.split_once(' ')) else {
            continue;
        };
        let offer = offered
            .iter()
            .find(|f| f.pt == pt)
            .and_then(|f| f.lines.iter().find(|(k, _)| k == "fmtp"))
            .map(|(_, v)| v.clone());
        if let Some(offer) = offer.filter(|o| o.split_once(' ').map(|(_, r)| r) != Some(params)) {
            let _ = m.replace_attribute(
                i,
                gst_webrtc::gst_sdp::SDPAttribute::new("fmtp", Some(&offer)),
            );
        }
    }
    let mut added = Vec::new();
    for f in codecs.into_iter().chain(repairs) {
        if present.contains(&f.pt) || added.contains(&f.pt) {
            continue;
        }
        m.add_format(&f.pt);
        for (key, value) in &f.lines {
            m.add_attribute(key, Some(value));
        }
        added.push(f.pt.clone());
    }
    added
}

/// `video/VP8` → `VP8`: the encoding name `livekitwebrtcsrc`'s `video-codecs` uses.
pub fn encoding_name(mime: &str) -> String {
    mime.rsplit('/').next().unwrap_or(mime).to_ascii_uppercase()
}

/// What to answer an offer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The encoding name for `video-codecs` (`VP8`, `H264`, …).
    pub codec: String,
    /// Why: `track TR_x publishes video/VP8`, or why the preference was used.
    pub reason: String,
}

/// Picks the codec for an offer whose video m-lines carry `sids`, given what the tracks
/// are published in (`tracks`), which encodings this box can decode, and the
/// preference for when nothing is known.
///
/// The first m-line's track decides: `webrtcbin` answers every m-line from the same
/// `video-codecs`, and the first m-line is the track the box subscribed to first, which
/// must keep its picture when a second caller with another codec joins. Of that track's
/// codecs (primary first, then backup codecs) the first one this box decodes is taken.
pub fn choose(
    sids: &[String],
    tracks: &[PublishedTrack],
    decodable: &dyn Fn(&str) -> bool,
    preference: ReceiveVideoCodec,
) -> Choice {
    let by_sid: HashMap<&str, &PublishedTrack> =
        tracks.iter().map(|t| (t.sid.as_str(), t)).collect();
    for sid in sids {
        let Some(track) = by_sid.get(sid.as_str()) else {
            continue;
        };
        if let Some(codec) = track
            .codecs
            .iter()
            .map(|m| encoding_name(m))
            .find(|c| decodable(c))
        {
            return Choice {
                reason: format!(
                    "track {sid} of {} is published in {}",
                    track.identity,
                    track.codecs.join(", ")
                ),
                codec,
            };
        }
        if !track.codecs.is_empty() {
            return Choice {
                codec: preference.encoding_name().to_owned(),
                reason: format!(
                    "track {sid} of {} is published in {}, which this box cannot decode",
                    track.identity,
                    track.codecs.join(", ")
                ),
            };
        }
    }
    Choice {
        codec: preference.encoding_name().to_owned(),
        reason: "the codecs of the offered tracks are unknown: media.receive_video_codec".into(),
    }
}

/// True if an installed decoder takes `encoding` (`VP8`, `H264`, `VP9`, `AV1`, `H265`).
pub fn can_decode(encoding: &str) -> bool {
    let caps = match encoding {
        "H264" => "video/x-h264",
        "H265" => "video/x-h265",
        "VP8" => "video/x-vp8",
        "VP9" => "video/x-vp9",
        "AV1" => "video/x-av1",
        _ => return false,
    };
    let caps = gst::Caps::builder(caps).build();
    gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER | gst::ElementFactoryType::MEDIA_VIDEO,
        gst::Rank::MARGINAL,
    )
    .into_iter()
    .any(|f| f.can_sink_any_caps(&caps))
}

/// What to do with a description: its type, and its SDP to read and narrow in place.
type OfferHook =
    Arc<dyn Fn(gst_webrtc::WebRTCSDPType, &mut gst_webrtc::gst_sdp::SDPMessageRef) + Send + Sync>;

/// The `livekitwebrtcsrc` elements whose signaller the emission hook watches, with what
/// to do on each offer. A signaller is a plain (not thread-safe) GObject, so it is
/// found through its element, checked by identity; entries of gone elements are pruned.
static WATCHED: Mutex<Vec<(glib::WeakRef<gst::Element>, OfferHook)>> = Mutex::new(Vec::new());
/// Installed once per process; `Err` if the signal does not exist.
static HOOK: OnceLock<Result<(), String>> = OnceLock::new();

/// The emission hook on `session-description` and `send-session-description` (params:
/// signaller, session id, description). Never unwinds into C; always stays installed.
unsafe extern "C" fn on_session_description(
    _hint: *mut glib::gobject_ffi::GSignalInvocationHint,
    n_params: u32,
    params: *const glib::gobject_ffi::GValue,
    _data: glib::ffi::gpointer,
) -> glib::ffi::gboolean {
    let _ = std::panic::catch_unwind(|| {
        if params.is_null() || n_params < 3 {
            return;
        }
        // SAFETY: GLib passes `n_params` initialised GValues; `glib::Value` is a
        // transparent wrapper of `GValue`.
        let values =
            unsafe { std::slice::from_raw_parts(params as *const glib::Value, n_params as usize) };
        let Ok(instance) = values[0].get::<glib::Object>() else {
            return;
        };
        if !values[2]
            .type_()
            .is_a(gst_webrtc::WebRTCSessionDescription::static_type())
        {
            return;
        }
        // The description itself, not a copy (`Value::get` would copy the boxed
        // value): the handlers after this hook get the same one, narrowed.
        // SAFETY: the GValue holds a GstWebRTCSessionDescription (checked above),
        // alive for the emission.
        let raw = unsafe { glib::gobject_ffi::g_value_get_boxed(params.add(2)) }
            as *mut gst_webrtc::ffi::GstWebRTCSessionDescription;
        if raw.is_null() || unsafe { (*raw).sdp.is_null() } {
            return;
        }
        // SAFETY: non-null, owned by the description; nothing else uses it during the
        // hook (the signaller emitted it and waits for the emission to return).
        let (type_, sdp) = unsafe {
            (
                glib::translate::from_glib((*raw).type_),
                &mut *((*raw).sdp as *mut gst_webrtc::gst_sdp::SDPMessageRef),
            )
        };
        let hook = {
            let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
            watched.retain(|(w, _)| w.upgrade().is_some());
            watched
                .iter()
                .find(|(w, _)| {
                    w.upgrade()
                        .is_some_and(|src| src.property::<glib::Object>("signaller") == instance)
                })
                .map(|(_, h)| h.clone())
        };
        if let Some(hook) = hook {
            hook(type_, sdp);
        }
    });
    glib::ffi::GTRUE
}

/// Installs [`on_session_description`] on the signaller's `session-description` (the
/// SFU's offers) and `send-session-description` (the box's answers; same parameters).
fn install_hook(signaller: &glib::Object) -> Result<(), String> {
    HOOK.get_or_init(|| {
        for signal in ["session-description", "send-session-description"] {
            let id = glib::subclass::signal::SignalId::lookup(signal, signaller.type_())
                .ok_or_else(|| format!("{} has no {signal} signal", signaller.type_().name()))?;
            // SAFETY: a static C callback, no user data, for a signal that exists.
            unsafe {
                glib::gobject_ffi::g_signal_add_emission_hook(
                    id.into_glib(),
                    0,
                    Some(on_session_description),
                    std::ptr::null_mut(),
                    None,
                );
            }
        }
        Ok(())
    })
    .clone()
}

/// Makes `src` (a `livekitwebrtcsrc`) answer every offer of `call_id` with the codec of
/// the offered video track, learnt from `source`; `preference` when unknown. Logs the
/// choice. Errors: the hook could not be installed (the box then answers with
/// `preference` only).
pub fn answer_with_the_offered_codec(
    src: &gst::Element,
    call_id: &str,
    source: Arc<dyn TrackCodecSource>,
    preference: ReceiveVideoCodec,
) -> Result<(), String> {
    src.set_property(
        "video-codecs",
        gst::Array::new([preference.encoding_name()]),
    );
    let signaller = src.property::<glib::Object>("signaller");
    install_hook(&signaller)?;
    let weak_src = src.downgrade();
    let call_id = call_id.to_owned();
    // The last offer's video formats (before narrowing), for the answer to it.
    let offered = Mutex::new(Vec::new());
    let hook: OfferHook = Arc::new(move |type_, sdp| {
        if type_ == gst_webrtc::WebRTCSDPType::Answer {
            let offered = offered.lock().unwrap_or_else(|p| p.into_inner());
            let added = complete_first_video_mline(sdp, &offered, &can_decode);
            if !added.is_empty() {
                tracing::info!(
                    call_id = %call_id, payload_types = %added.join(" "),
                    "the answer's first video m-line also lists every codec this box decodes (for the SFU)"
                );
            }
            return;
        }
        if type_ != gst_webrtc::WebRTCSDPType::Offer {
            return;
        }
        let Some(src) = weak_src.upgrade() else {
            return;
        };
        *offered.lock().unwrap_or_else(|p| p.into_inner()) = offered_formats(sdp);
        let text = sdp.as_text().unwrap_or_default();
        let mlines = video_tracks_by_mline(&text);
        if mlines.is_empty() {
            return;
        }
        let sids: Vec<String> = mlines.iter().map(|(_, s)| s.clone()).collect();
        let tracks = lookup(&call_id, &sids, source.as_ref());
        let mut codecs: Vec<String> = Vec::new();
        for (mline, sid) in &mlines {
            let choice = choose(std::slice::from_ref(sid), &tracks, &can_decode, preference);
            let narrowed = sdp
                .media_mut(*mline)
                .is_some_and(|m| keep_only_codec(m, &choice.codec));
            tracing::info!(
                call_id = %call_id, mline, codec = %choice.codec, reason = %choice.reason,
                narrowed, "answering LiveKit's video offer"
            );
            if !codecs.contains(&choice.codec) {
                codecs.push(choice.codec);
            }
        }
        src.set_property("video-codecs", gst::Array::new(codecs));
    });
    WATCHED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((src.downgrade(), hook));
    Ok(())
}

/// Asks `source` for the room's tracks until every offered track's codecs are known
/// or [`LOOKUP_BUDGET`] is spent.
fn lookup(call_id: &str, sids: &[String], source: &dyn TrackCodecSource) -> Vec<PublishedTrack> {
    let deadline = Instant::now() + LOOKUP_BUDGET;
    let mut tracks = Vec::new();
    loop {
        match source.published_tracks(call_id) {
            Ok(t) => tracks = t,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "cannot learn the caller's video codec");
                break;
            }
        }
        let known = sids
            .iter()
            .all(|sid| tracks.iter().any(|t| t.sid == *sid && !t.codecs.is_empty()));
        if known || Instant::now() + LOOKUP_RETRY > deadline {
            break;
        }
        std::thread::sleep(LOOKUP_RETRY);
    }
    tracks
}

#[cfg(test)]
#[path = "codecs_tests.rs"]
mod tests;
