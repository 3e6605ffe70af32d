//! The fault matrix, part 2: the box's network fails. The box runs in a network
//! namespace of its own (testkit's `NetNs`: a veth pair to the test's namespace, where
//! livekit-server, the hub and the callers are), so its traffic can be cut or dropped
//! or delayed without touching anything else. Each case prints a `figure:` line.
//!
//! Needs root and nftables (`make setup` installs it); without them each test says
//! SKIP and why.

mod support;

use std::time::{Duration, Instant};

use callbox_testkit::{Link, report};
use support::netfault::*;
use support::*;

/// [`world_in_netns`] with the box's media to livekit-server delayed `delay` plus a
/// random time below `jitter` each way, from the start (testkit's relay: a NAT rule
/// only applies to new flows). Keep the relay for the test's length.
fn world_with_delay(
    test: &str,
    delay: Duration,
    jitter: Duration,
) -> Option<(World, callbox_testkit::UdpDelay)> {
    let link = Link {
        delay,
        jitter,
        ..Link::default()
    };
    world_with_link(test, "", link)
}

/// [`world_in_netns_with`] (`media_extra` in `[media]`) with the box's media to
/// livekit-server through a relay that stands for `link`, from the start. Keep the
/// relay for the test's length.
fn world_with_link(
    test: &str,
    media_extra: &str,
    link: Link,
) -> Option<(World, callbox_testkit::UdpDelay)> {
    let w = world_in_netns_with(test, media_extra)?;
    let ns = w.netns.as_ref().unwrap();
    let server = format!("{}:{}", ns.host_ip, w.lk.rtc_udp_port)
        .parse()
        .unwrap();
    let relay = ns.shape_udp(server, link).expect("the relay starts");
    Some((w, relay))
}

fn report_cut(cut: Duration, outcome: &Outcome) {
    match outcome {
        Outcome::MediaBack { box_ms, caller_ms } => report!(
            "faults: network cut {} s mid-call: call survived; media back {box_ms} ms (box) \
             and {caller_ms} ms (caller) after the network returned",
            cut.as_secs()
        ),
        Outcome::Ended { idle_ms } => report!(
            "faults: network cut {} s mid-call: call ended; box idle {idle_ms} ms after the \
             network returned (0: it had given the call up during the cut), hub shows no call",
            cut.as_secs()
        ),
    }
}

/// A 5 s cut is shorter than every timeout on the way (ICE consent, LiveKit's
/// signalling pings, the hub's WebSocket): the call survives and media comes back.
#[test]
fn a_5_s_network_cut_mid_call_and_media_comes_back() {
    let Some(w) = world_in_netns("a_5_s_network_cut_mid_call_and_media_comes_back") else {
        return;
    };
    let cut = Duration::from_secs(5);
    let outcome = cut_mid_call(&w, cut);
    report_cut(cut, &outcome);
    assert!(
        matches!(outcome, Outcome::MediaBack { .. }),
        "a 5 s cut must not end the call"
    );
    // The SFU paused the box's video during the cut and resumes it from a keyframe: the
    // box sends one as soon as the caller's packets come again (media::keyframe),
    // instead of the caller waiting ~1 s for the SFU to ask.
    let log = std::fs::read_to_string(&w.daemon_log).unwrap_or_default();
    assert!(
        log.contains("arrives again after a gap: sending a keyframe of the box's own video"),
        "the box did not send a keyframe when its network returned; log tail:\n{}",
        callbox_testkit::file_tail(&w.daemon_log, 40)
    );
}

/// A 30 s cut outlasts LiveKit's participant timeout: the call may end; either way
/// nothing is stuck and the next call works.
#[test]
fn a_30_s_network_cut_mid_call_recovers_or_ends_cleanly() {
    let Some(w) = world_in_netns("a_30_s_network_cut_mid_call_recovers_or_ends_cleanly") else {
        return;
    };
    let cut = Duration::from_secs(30);
    let outcome = cut_mid_call(&w, cut);
    report_cut(cut, &outcome);
}

/// A 90 s cut: the hub and LiveKit have given the box up; it comes back idle and online.
#[test]
fn a_90_s_network_cut_mid_call_ends_cleanly() {
    let Some(w) = world_in_netns("a_90_s_network_cut_mid_call_ends_cleanly") else {
        return;
    };
    let cut = Duration::from_secs(90);
    let outcome = cut_mid_call(&w, cut);
    report_cut(cut, &outcome);
    w.wait_status("online", Duration::from_secs(30), |s| s.hub_online);
}

/// 10 % of the box's packets lost each way for 30 s, in a call whose media has 200 ms
/// of RTT (100 ms each way through testkit's UDP delay relay, from the start of the
/// call: a NAT rule only applies to new flows): the call goes on and the caller keeps
/// getting frames. Reports the caller's frame rate and freezes (seconds without a new
/// frame).
#[test]
fn a_lossy_network_for_30_s_keeps_the_call_going() {
    let Some((w, relay)) = world_with_delay(
        "a_lossy_network_for_30_s_keeps_the_call_going",
        Duration::from_millis(100),
        Duration::ZERO,
    ) else {
        return;
    };
    let ns = w.netns.as_ref().unwrap();
    let mut caller = call_box(&w);
    ns.drop_percent(10).unwrap();
    let box_before = w.status().unwrap().video_frames_received;
    let mut last = caller_video(&mut caller);
    let first = last;
    let mut freezes = 0;
    let t0 = Instant::now();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_secs(1));
        let now = caller_video(&mut caller);
        if now == last {
            freezes += 1;
        }
        last = now;
        assert_eq!(
            w.status().unwrap().state,
            "in_call",
            "the call goes on through the loss"
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    let after = w.status().unwrap();
    let caller_fps = (last - first) as f64 / secs;
    let box_fps = (after.video_frames_received - box_before) as f64 / secs;
    let rtt = after
        .network
        .and_then(|n| n.rtt_ms)
        .map_or("?".to_owned(), |ms| format!("{ms:.0}"));
    let relayed = relay.relayed();
    report!(
        "faults: 10 % loss each way and 200 ms RTT (box measures {rtt} ms; {relayed} \
         datagrams delayed), {secs:.0} s: caller {caller_fps:.1} fps with {freezes} \
         one-second freezes; box {box_fps:.1} fps"
    );
    assert!(
        relayed > 1000,
        "the call's media went through the delay relay"
    );
    assert!(
        freezes < 15,
        "the caller saw no new frame in {freezes} of 30 seconds"
    );
    ns.restore().unwrap();
    hang_up(&w, caller);
}

/// Jitter from the first packet of a call: the box's media runs through testkit's UDP
/// relay with 30 ms of delay and up to 40 ms of random jitter each way (datagrams
/// overtake each other), and the box must still show the caller's video, smoothly.
///
/// Before the box asked for keyframes itself (`media::keyframe`), it decoded no frame
/// in 30 s in 5 of 6 runs: the stream reached `h264parse` without the first keyframe's
/// SPS/PPS, nothing was declared lost, and libwebrtc sends a keyframe only on request.
/// Reports how many keyframe requests the box sent in the call (log lines with
/// `sent` ≥ 1).
#[test]
fn a_jittery_network_from_the_start_still_shows_the_caller() {
    let Some((w, relay)) = world_with_delay(
        "a_jittery_network_from_the_start_still_shows_the_caller",
        Duration::from_millis(30),
        Duration::from_millis(40),
    ) else {
        return;
    };
    let ns = w.netns.as_ref().unwrap();
    // Waits (30 s at most) for the box's first decoded frame of the caller.
    let caller = call_box(&w);
    let before = w.status().unwrap().video_frames_received;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let after = w.status().unwrap();
    let fps = (after.video_frames_received - before) as f64 / t0.elapsed().as_secs_f64();
    let log = w.daemon_log();
    let requests = log
        .lines()
        .filter(|l| {
            (l.contains("asking its sender for a keyframe")
                || l.contains("asking again for a keyframe"))
                && !l.contains("sent=0")
        })
        .count();
    report!(
        "faults: 30 ms delay + up to 40 ms jitter each way from the start: the box shows \
         the caller at {fps:.1} fps after {requests} keyframe requests of its own \
         ({} datagrams relayed)",
        relay.relayed()
    );
    assert!(
        relay.relayed() > 100,
        "the call's media went through the relay"
    );
    assert!(
        fps >= 10.0,
        "the box decoded {fps:.1} fps of the caller's video through the jitter; log tail:\n{}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    ns.restore().unwrap();
    hang_up(&w, caller);
}

/// A narrow uplink, as a home's DSL upload: the box's datagrams to livekit-server leave
/// through testkit's relay at 500 kbit/s with a 200 ms drop-tail queue (and 20 ms each
/// way), from the start of the call, and the box's test camera shows noise
/// (`test_pattern = "snow"`), which x264 fills any bitrate with. The caller must get
/// a moving picture, and the link must stop overflowing: the box's congestion control
/// (`media::pipeline::rate_control`) brings its video under what the uplink carries.
///
/// Without congestion control the box sent x264's 2048 kbit/s start bitrate into the
/// link whatever `max_video_bitrate_kbps` said, and the caller did not get 30 frames
/// in 60 s. Reports the caller's frame rate and the uplink's rate and drops over
/// 15 s, after 10 s to settle.
#[test]
fn a_narrow_uplink_slows_the_box_down_instead_of_losing_its_video() {
    let test = "a_narrow_uplink_slows_the_box_down_instead_of_losing_its_video";
    // The cap pinned at its default: the call starts at 1200 kbit/s, over twice what
    // the link carries.
    let media = "test_pattern = \"snow\"\nmax_video_bitrate_kbps = 1500";
    let link = Link {
        delay: Duration::from_millis(20),
        uplink_kbps: Some(500),
        uplink_queue: Duration::from_millis(200),
        ..Link::default()
    };
    let Some((w, relay)) = world_with_link(test, media, link) else {
        return;
    };
    let ns = w.netns.as_ref().unwrap();
    let mut caller = call_box(&w);
    // Congestion control's time to find the rate (it steps 2-30 % at a time).
    std::thread::sleep(Duration::from_secs(10));
    let (bytes0, dropped0, video0) = (
        relay.uplink_bytes(),
        relay.uplink_dropped(),
        caller_video(&mut caller),
    );
    let passed0 = relay.uplink_passed();
    let t0 = Instant::now();
    let mut freezes = 0;
    let mut last = video0;
    for _ in 0..15 {
        std::thread::sleep(Duration::from_secs(1));
        let now = caller_video(&mut caller);
        if now == last {
            freezes += 1;
        }
        last = now;
    }
    let secs = t0.elapsed().as_secs_f64();
    let kbps = (relay.uplink_bytes() - bytes0) as f64 * 8.0 / secs / 1000.0;
    let dropped = relay.uplink_dropped() - dropped0;
    let offered = dropped + relay.uplink_passed() - passed0;
    let dropped_pct = 100.0 * dropped as f64 / offered.max(1) as f64;
    let fps = (last - video0) as f64 / secs;
    report!(
        "faults: a 500 kbit/s uplink with a 200 ms queue, the box sending noise: the \
         caller sees {fps:.1} fps ({freezes} one-second freezes); the box sends \
         {kbps:.0} kbit/s through it, {dropped_pct:.1} % of its datagrams dropped \
         ({dropped} of {offered}) in {secs:.0} s"
    );
    // webrtcsink's controller holds its rate while loss stays under 10 %, and probes
    // upwards without loss: some loss is how it finds the link's rate. (Without it,
    // the caller did not get 30 frames in 60 s: `call_box` fails.)
    assert!(
        offered > 100 && dropped_pct < 20.0,
        "the uplink dropped {dropped} of the box's {offered} datagrams in {secs:.0} s: \
         it sends more than the link carries ({kbps:.0} kbit/s got through)"
    );
    // ... and uses the link: a controller stuck at its 100 kbit/s floor would show mush.
    assert!(
        kbps >= 150.0,
        "the box sent only {kbps:.0} kbit/s through a 500 kbit/s link"
    );
    // The controller probes upwards into the link's loss now and then, and a frame
    // that cannot be repaired costs the caller up to a second, until the keyframe it
    // asks for: a moving picture, not a perfect one (without congestion control the
    // caller does not get 30 frames in a minute).
    assert!(
        fps >= 8.0 && freezes <= 5,
        "the caller saw {fps:.1} fps with {freezes} one-second freezes in {secs:.0} s"
    );
    ns.restore().unwrap();
    hang_up(&w, caller);
}
