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
//! tracks are published in, and set `video-codecs` to the one to answer with. The hook
//! is a GObject emission hook on the signaller's `session-description` signal: it runs
//! before any handler, so before `livekitwebrtcsrc` reads `video-codecs`.

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

/// The SIDs of the tracks on the offer's video m-lines, in m-line order. m-lines
/// without `a=msid` (a track that was removed, or a receive-only slot) are skipped.
pub fn video_track_sids(sdp: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            in_video = media.starts_with("video ");
        } else if in_video && let Some(msid) = line.strip_prefix("a=msid:") {
            // `<stream id> <track id>`; LiveKit: `PA_x|TR_y TR_y`.
            let mut parts = msid.split_whitespace();
            let stream = parts.next().unwrap_or_default();
            let sid = parts
                .next()
                .or_else(|| stream.split('|').nth(1))
                .unwrap_or(stream);
            if !sid.is_empty() && !out.iter().any(|s| s == sid) {
                out.push(sid.to_owned());
            }
        }
    }
    out
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

type OfferHook = Arc<dyn Fn(&gst_webrtc::WebRTCSessionDescription) + Send + Sync>;

/// The `livekitwebrtcsrc` elements whose signaller the emission hook watches, with what
/// to do on each offer. A signaller is a plain (not thread-safe) GObject, so it is
/// found through its element, checked by identity; entries of gone elements are pruned.
static WATCHED: Mutex<Vec<(glib::WeakRef<gst::Element>, OfferHook)>> = Mutex::new(Vec::new());
/// Installed once per process; `Err` if the signal does not exist.
static HOOK: OnceLock<Result<(), String>> = OnceLock::new();

/// The emission hook on `session-description` (params: signaller, session id,
/// description). Never unwinds into C; always stays installed.
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
        let (Ok(instance), Ok(desc)) = (
            values[0].get::<glib::Object>(),
            values[2].get::<gst_webrtc::WebRTCSessionDescription>(),
        ) else {
            return;
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
            hook(&desc);
        }
    });
    glib::ffi::GTRUE
}

fn install_hook(signaller: &glib::Object) -> Result<(), String> {
    HOOK.get_or_init(|| {
        let id = glib::subclass::signal::SignalId::lookup("session-description", signaller.type_())
            .ok_or_else(|| {
                format!(
                    "{} has no session-description signal",
                    signaller.type_().name()
                )
            })?;
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
    let hook: OfferHook = Arc::new(move |desc| {
        if desc.type_() != gst_webrtc::WebRTCSDPType::Offer {
            return;
        }
        let Some(src) = weak_src.upgrade() else {
            return;
        };
        let sdp = desc.sdp().as_text().unwrap_or_default();
        let sids = video_track_sids(&sdp);
        if sids.is_empty() {
            return;
        }
        let choice = lookup_and_choose(&call_id, &sids, source.as_ref(), preference);
        tracing::info!(
            call_id = %call_id, codec = %choice.codec, reason = %choice.reason,
            "answering LiveKit's video offer"
        );
        src.set_property("video-codecs", gst::Array::new([choice.codec.as_str()]));
    });
    WATCHED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((src.downgrade(), hook));
    Ok(())
}

/// Asks `source` until the first offered track's codecs are known or
/// [`LOOKUP_BUDGET`] is spent, then [`choose`]s.
fn lookup_and_choose(
    call_id: &str,
    sids: &[String],
    source: &dyn TrackCodecSource,
    preference: ReceiveVideoCodec,
) -> Choice {
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
        let known = tracks
            .iter()
            .any(|t| t.sid == sids[0] && !t.codecs.is_empty());
        if known || Instant::now() + LOOKUP_RETRY > deadline {
            break;
        }
        std::thread::sleep(LOOKUP_RETRY);
    }
    choose(sids, &tracks, &can_decode, preference)
}

#[cfg(test)]
#[path = "codecs_tests.rs"]
mod tests;
