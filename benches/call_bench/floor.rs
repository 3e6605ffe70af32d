//! The floor of this media stack: a bare `livekitwebrtcsink` + `livekitwebrtcsrc`
//! pipeline in a call with a Python SDK peer, this program re-run as a child.

use std::time::Duration;

use serde_json::Value;

use crate::cost::direct_peer;
use crate::proc::{rss_breakdown, sample};
use crate::support::{self, World};

/// The floor child's first argument
/// (`call_bench --floor WxH URL PUB_ID PUB_TOKEN SUB_TOKEN COUNT_FILE`).
pub(crate) const FLOOR_ARG: &str = "--floor";

/// What a bare pipeline of the same media stack costs: this program re-run as a child
/// with [`FLOOR_ARG`] (see [`floor_child`]) publishing test sources at `w`x`h`@30 and
/// subscribing to a Python SDK peer that does the same job as in [`cost`], over `secs` s.
pub(crate) fn floor(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Floor {
    let w = World::start();
    let size = format!("{w_px}x{h_px}");
    let room = format!("bench-floor-{size}");
    let lk = callbox_hub::config::LiveKitConfig::new(&w.lk.ws_url, &w.lk.api_key, &w.lk.api_secret);
    let minter = callbox_hub::tokens::TokenMinter::new(&lk, Duration::from_secs(3600));
    let info = minter
        .join_info(
            "floor",
            &room,
            "floor",
            callbox_hub::auth::PrincipalKind::Device,
        )
        .expect("device tokens");
    let (publisher, subscriber) = (info.publisher.unwrap(), info.subscriber.unwrap());
    let count_file = dir.join(format!("floor-frames-{size}.txt"));
    let _ = std::fs::remove_file(&count_file);
    let received = || -> u64 {
        std::fs::read_to_string(&count_file)
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([FLOOR_ARG, &size, &w.lk.ws_url, &publisher.identity])
        .args([&publisher.token, &subscriber.token])
        .arg(&count_file)
        .spawn()
        .expect("re-run the bench as the floor pipeline");
    let mut peer = direct_peer(&w, &room, "floor-peer", &size);
    peer.expect_event("media_ok", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let peer_pid = peer.pid().expect("the peer runs");
    let frames = |peer: &mut callbox_testkit::PyPeer| {
        let c = support::caller_counts(peer);
        (received(), c["video_frames"].as_u64().unwrap_or(0))
    };
    let frames0 = frames(&mut peer);
    let s = sample(child.id(), peer_pid, secs);
    let rss = rss_breakdown(child.id()).unwrap_or(Value::Null);
    let frames1 = frames(&mut peer);
    let csv = format!(
        "t_s,floor_cpu_pct,floor_rss_mib,peer_cpu_pct,peer_rss_mib\n{}",
        s.csv
    );
    std::fs::write(dir.join(format!("floor-{size}.csv")), csv).unwrap();
    peer.send_line("leave");
    let _ = child.kill();
    let _ = child.wait();
    Floor {
        cpu_s_per_min: s.a_cpu_s_per_min,
        peak_rss_mib: s.a_peak_mib,
        fps_received: frames1.0.saturating_sub(frames0.0) as f64 / s.secs,
        peer_cpu_s_per_min: s.b_cpu_s_per_min,
        peer_fps_received: frames1.1.saturating_sub(frames0.1) as f64 / s.secs,
        rss,
    }
}

/// The floor's figures over the sampled seconds of its call.
pub(crate) struct Floor {
    pub(crate) cpu_s_per_min: f64,
    pub(crate) peak_rss_mib: f64,
    /// The peer's video as the floor's `fakesink` got it, fps.
    pub(crate) fps_received: f64,
    pub(crate) peer_cpu_s_per_min: f64,
    /// The floor's video as the Python SDK peer decoded it, fps.
    pub(crate) peer_fps_received: f64,
    /// [`rss_breakdown`] of the floor at the end of the sampled seconds.
    pub(crate) rss: Value,
}

/// The floor itself: the `gst-launch-1.0` line below, with GStreamer's own
/// `livekitwebrtcsink`/`livekitwebrtcsrc` (gst-plugins-rs, registered statically as in
/// the daemon) and nothing of ours: no call screen, echo canceller, mixer or stamps.
/// Each remote track goes to a `fakesink` that syncs to the clock. Runs until killed.
pub(crate) fn floor_child(args: &[String]) {
    use gst::prelude::*;
    let [size, url, publisher, pub_token, sub_token, count_file] = args else {
        panic!("usage: call_bench --floor WxH URL PUB_ID PUB_TOKEN SUB_TOKEN COUNT_FILE");
    };
    let (w, h) = size.split_once('x').expect("WxH");
    gst::init().expect("gst init");
    gstrswebrtc::plugin_register_static().expect("register gst-plugin-webrtc");
    // video-codecs is set below (an array property), shown here as gst-launch takes it.
    let line = format!(
        "livekitwebrtcsink name=pub video-caps=video/x-h264 audio-caps=audio/x-opus \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate=30/1 ! pub. \
         audiotestsrc is-live=true ! pub. \
         livekitwebrtcsrc name=sub video-codecs=<H264>"
    );
    eprintln!("bench floor: gst-launch-1.0 {line}, each src pad ! queue ! fakesink sync=true");
    let pipeline = gst::parse::launch(&line.replace(" video-codecs=<H264>", ""))
        .expect("the floor's pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let signaller = |name: &str| {
        pipeline
            .by_name(name)
            .expect("element")
            .property::<gst::glib::Object>("signaller")
    };
    let (ps, ss) = (signaller("pub"), signaller("sub"));
    ps.set_property("ws-url", url);
    ps.set_property("auth-token", pub_token);
    ss.set_property("ws-url", url);
    ss.set_property("auth-token", sub_token);
    ss.set_property("excluded-producer-peer-ids", gst::Array::new([publisher]));
    // livekitwebrtcsrc 0.15 on GStreamer 1.22 answers with the first of its
    // `video-codecs` only (VP8); the Python SDK peer publishes H.264, as the box does.
    pipeline
        .by_name("sub")
        .unwrap()
        .set_property("video-codecs", gst::Array::new(["H264"]));
    // livekit-server listens on loopback only here; libnice leaves loopback out of its
    // candidates unless told (the daemon does the same with `media.ice_local_addresses`).
    let loopback = |webrtcbin: &gst::Element| {
        let agent = webrtcbin.property::<gst::glib::Object>("ice-agent");
        agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
    };
    pipeline.connect("deep-element-added", false, move |args| {
        let element = args[2].get::<gst::Element>().ok()?;
        if element.factory().is_some_and(|f| f.name() == "webrtcbin") {
            loopback(&element);
        }
        None
    });
    let pub_sink = pipeline.by_name("pub").unwrap();
    pub_sink.connect("consumer-added", false, move |args| {
        if let Some(webrtcbin) = args.get(2).and_then(|v| v.get::<gst::Element>().ok()) {
            loopback(&webrtcbin);
        }
        None
    });
    let weak = pipeline.downgrade();
    let video = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = video.clone();
    pipeline
        .by_name("sub")
        .unwrap()
        .connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let bin = gst::parse::bin_from_description("queue ! fakesink sync=true", true).unwrap();
            pipeline.add(&bin).unwrap();
            let sink = bin.static_pad("sink").unwrap();
            eprintln!(
                "bench floor: remote pad {} {:?}",
                pad.name(),
                pad.current_caps()
            );
            if pad.name().starts_with("video") {
                let n = counted.clone();
                sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            }
            pad.link(&sink).unwrap();
            bin.sync_state_with_parent().unwrap();
        });
    let file = count_file.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let n = video.load(std::sync::atomic::Ordering::Relaxed);
            let _ = std::fs::write(&file, format!("{n}\n"));
        }
    });
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Latency(_) => {
                let _ = pipeline.recalculate_latency();
            }
            gst::MessageView::Error(e) => panic!("bench floor: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
    }
}
