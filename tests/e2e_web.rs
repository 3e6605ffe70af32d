//! Issue #9 end to end: the hub's caller web app in a real browser (Debian's chromium,
//! driven by Playwright through `tests/peers/browser.py`, with chromium's fake camera
//! and microphone), calling the real `callbox` daemon through a real LiveKit server.
//!
//! Screenshots of each screen, phone and desktop sizes, land in `target/web/`.

mod support;

use std::time::Duration;

use support::World;
use support::browser::Browser;

const SECS: Duration = Duration::from_secs(30);

#[test]
fn a_browser_signed_in_by_link_calls_the_box_sees_it_mutes_and_hangs_up() {
    let w = World::with_online_box("", "");
    let db = w.dir.path().join("hub.sqlite3");
    callbox_hub::set_display_name(&db, "box1", Some("Hallway box")).unwrap();
    callbox_hub::set_display_name(&db, "grandma", Some("Grandma")).unwrap();
    let code = callbox_hub::signin_link_code(&db, "grandma", 1).unwrap();

    // The one-time link signs her in; the code leaves the address bar.
    let mut page = Browser::open(&w, "grandma-page", &format!("/#signin={code}"), &[]);
    page.run("presence box1 online 20", SECS);
    assert!(
        !page.run("url", SECS)["url"]
            .as_str()
            .unwrap_or_default()
            .contains(&code)
    );
    page.run("shot contacts", SECS);

    page.run("call box1 video", SECS);
    // grandma is a trusted contact of box1: the box answers by itself.
    page.state("in-call", 30);
    let s = w.wait_status("in call with grandma", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    assert_eq!(s.caller.as_deref(), Some("grandma"));
    assert_eq!(s.caller_name.as_deref(), Some("Grandma"));
    // The page shows the box's video: frames counted in the page.
    let d = page.run("frames 60 30", Duration::from_secs(40));
    let size = &d["size"];
    assert!(
        size[0].as_u64().unwrap_or(0) > 0,
        "remote video has a size: {d}"
    );
    assert_eq!(d["micMuted"], false, "{d}");
    // The page's own set-up times (`make bench` reads them): the join and the
    // subscription after the invite, in either order (the SDK can report the box's
    // track before `connect` returns to the page), and the first frame after both.
    let at = |k: &str| d["setup"][k].as_f64().unwrap_or(f64::NAN);
    let steps = [
        "placedUnixMs",
        "connectedUnixMs",
        "videoSubscribedUnixMs",
        "firstFrameUnixMs",
    ]
    .map(at);
    assert!(
        steps.iter().all(|t| t.is_finite())
            && steps[0] <= steps[1].min(steps[2])
            && steps[1].max(steps[2]) <= steps[3]
            && steps[3] - steps[0] < 60_000.0,
        "the page's set-up times are in order: {d}"
    );
    callbox_testkit::report!(
        "web: the page showed {} frames of the box's video at {}x{}; the box decoded {} frames from the browser; invite → the page's first frame {:.0} ms",
        d["frames"],
        size[0],
        size[1],
        w.status().map_or(0, |s| s.video_frames_received),
        steps[3] - steps[0]
    );
    page.run("shot in-call", SECS);

    // Muting is asynchronous in the page (the SDK mutes the published track first).
    page.run("click mute", SECS);
    page.run("pressed mute true 10", SECS);
    page.run("wait-debug micMuted true 10", SECS);

    page.run("click hangup", SECS);
    page.state("idle", 20);
    w.wait_status("idle", Duration::from_secs(20), |s| s.state == "idle");
    let h = page.run("history", SECS);
    let first = h["history"][0]["text"].as_str().unwrap_or_default();
    assert!(
        first.contains("Hallway box"),
        "the newest history row names the box: {h}"
    );
    page.run("shot history", SECS);
    assert!(page.page_errors().is_empty(), "{:?}", page.page_errors());
}

#[test]
fn the_box_speed_dials_the_browser_which_answers() {
    let mut w = World::start();
    let cred = w.box_credential.clone();
    w.start_daemon_with(
        &cred,
        "[call]\nanswer = \"manual\"\nspeed_dial = \"grandma\"\n",
    );
    w.wait_status("online", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    let mut page = Browser::open(&w, "grandma-page", "/", &[]);
    page.run("shot signin", SECS);
    let grandma = w.grandma.clone();
    page.run(&format!("signin {grandma}"), SECS);
    page.run("presence box1 online 20", SECS);

    // From the keyboard: Escape declines; the box hears `declined` and is idle again.
    assert_eq!(
        w.ctl(&["press", "speed_dial"]),
        serde_json::json!({"ok": true})
    );
    page.state("incoming", 20);
    page.run("key Escape", SECS);
    let declined = page.state("ended", 10);
    assert!(
        declined["message"]
            .as_str()
            .unwrap_or_default()
            .contains("declined"),
        "{declined}"
    );
    w.wait_status("idle after the decline", Duration::from_secs(20), |s| {
        s.state == "idle"
    });

    assert_eq!(
        w.ctl(&["press", "speed_dial"]),
        serde_json::json!({"ok": true})
    );
    page.state("incoming", 20);
    page.run("shot incoming", SECS);
    page.run("click accept", SECS);
    page.state("in-call", 30);
    page.run("frames 30 30", Duration::from_secs(40));
    w.wait_status("in call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    // The box hangs up; the page says so.
    w.ctl(&["hangup"]);
    let ended = page.state("idle", 20);
    let msg = ended["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        msg.contains("ended"),
        "the page says the call ended: {ended}"
    );
    assert!(page.page_errors().is_empty(), "{:?}", page.page_errors());
}

#[test]
fn a_caller_taken_off_the_list_gets_the_refusal_and_the_box_never_rings() {
    let w = World::with_online_box("", "");
    let db = w.dir.path().join("hub.sqlite3");
    let mut page = Browser::open(&w, "neighbour-page", "/", &[]);
    let neighbour = w.neighbour.clone();
    page.run(&format!("signin {neighbour}"), SECS);
    page.run("presence box1 online 20", SECS);
    // The owner takes the neighbour off box1's list while her page still shows box1:
    // its contact polls keep getting the list from before (the invite goes to the
    // real hub).
    page.run("freeze-contacts", SECS);
    assert!(callbox_hub::revoke_caller(&db, "box1", "neighbour").unwrap());
    page.run("call box1 video", SECS);
    let refused = page.state("ended", 10);
    let msg = refused["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("may not call"),
        "the page shows the hub's refusal: {refused}"
    );
    page.run("shot refused", SECS);
    let s = w.status().expect("box status");
    assert_eq!(s.state, "idle");
    assert!(
        !w.daemon_log().contains("invitation"),
        "the box's log shows no invitation:\n{}",
        w.daemon_log()
    );
}

#[test]
fn an_audio_call_from_the_browser_opens_no_camera_at_either_end() {
    let w = World::with_online_box("", "");
    let mut page = Browser::open(&w, "alice-page", "/", &[]);
    let alice = w.alice.clone();
    page.run(&format!("signin {alice}"), SECS);
    page.run("presence box1 online 20", SECS);
    page.run("call box1 audio", SECS);
    page.state("in-call", 30);
    let s = w.wait_status("in an audio call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.audio_buffers_received >= 50
    });
    assert_eq!(s.caller.as_deref(), Some("alice"));
    assert_eq!(s.video_frames_sent, 0, "the box's camera stays off: {s:?}");
    assert_eq!(s.video_encoder, None, "{s:?}");
    let d = page.run("debug", SECS);
    assert_eq!(
        d["tracks"],
        serde_json::json!(["audio"]),
        "the page publishes its microphone only: {d}"
    );
    assert_eq!(d["frames"], 0, "{d}");
    page.run("shot audio-call", SECS);
    page.run("click hangup", SECS);
    w.wait_status("idle", Duration::from_secs(20), |s| s.state == "idle");
}
