use super::*;

#[test]
fn one_caller_fills_the_screen_and_a_crowd_shares_a_grid() {
    let l = layout(1, 1280, 720, None);
    assert_eq!(
        l.remotes,
        vec![Rect {
            x: 0,
            y: 0,
            w: 1280,
            h: 720
        }]
    );
    assert_eq!(l.self_view, None);
    let l = layout(2, 1280, 720, None);
    assert_eq!(
        l.remotes[1],
        Rect {
            x: 640,
            y: 0,
            w: 640,
            h: 720
        }
    );
    let l = layout(3, 1920, 1080, None);
    assert_eq!(l.remotes.len(), 3);
    assert_eq!(
        l.remotes[2],
        Rect {
            x: 0,
            y: 540,
            w: 960,
            h: 540
        }
    );
    let l = layout(7, 1920, 1080, None);
    assert_eq!(
        l.remotes[6],
        Rect {
            x: 0,
            y: 720,
            w: 640,
            h: 360
        }
    );
    // Tiles never overlap and stay on the screen.
    for n in 1..=8 {
        let l = layout(n, 1280, 720, None);
        for (i, a) in l.remotes.iter().enumerate() {
            assert!(a.x >= 0 && a.y >= 0 && a.x + a.w <= 1280 && a.y + a.h <= 720);
            for b in &l.remotes[i + 1..] {
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{n} tiles: {a:?} overlaps {b:?}");
            }
        }
    }
}

#[test]
fn the_self_view_sits_in_its_corner_clear_of_the_text() {
    for (corner, left, top) in [
        (Corner::TopLeft, true, true),
        (Corner::TopRight, false, true),
        (Corner::BottomLeft, true, false),
        (Corner::BottomRight, false, false),
    ] {
        let r = layout(1, 1280, 720, Some(corner)).self_view.unwrap();
        assert_eq!((r.w, r.h), (320, 180));
        assert_eq!(r.x < 640, left, "{corner:?}");
        assert_eq!(r.y < 360, top, "{corner:?}");
        assert!(
            r.y >= 720 / 5 || r.y + r.h <= 720 - 720 / 10,
            "{corner:?}: {r:?}"
        );
    }
}

#[test]
fn each_scene_says_what_is_happening_in_words() {
    let idle = |hub_online, dnd| Scene::Idle {
        name: "Hallway".into(),
        hub_online,
        hub_url: "http://hub.local:8080".into(),
        dnd,
    };
    let (head, foot) = idle(true, false).texts("14:05");
    assert_eq!(head, "Hallway\n14:05");
    assert_eq!(foot, "Ready for calls");
    let (_, foot) = idle(false, false).texts("14:05");
    assert!(foot.starts_with("Offline: cannot reach the call server at http://hub.local:8080"));
    assert!(foot.contains("hub.url"), "names the key to fix: {foot}");
    assert!(idle(true, true).texts("").1.contains("Do not disturb"));

    let (head, foot) = Scene::Ringing {
        peer: "Grandma".into(),
        video: false,
    }
    .texts("");
    assert_eq!(head, "Incoming audio call from\nGrandma");
    assert!(foot.contains("CALL to answer"), "{foot}");
    let in_call = Scene::InCall {
        peer: "Grandma".into(),
        elapsed: Duration::from_secs(65),
        muted: true,
        video: false,
        connecting: false,
    };
    let (head, foot) = in_call.texts("");
    assert_eq!(head, "Grandma\nAudio call · 1:05");
    assert!(foot.contains("Microphone muted"), "{foot}");
    assert!(in_call.shows_video() && !in_call.shows_self_view());

    let ended = |e| Scene::Ended(e).texts("").0;
    assert_eq!(ended(Ending::Missed { peer: "A".into() }), "Missed call");
    assert_eq!(
        ended(Ending::Declined { peer: "A".into() }),
        "Call declined"
    );
    let busy = Ending::NotAnswered {
        peer: "A".into(),
        reason: Some("busy".into()),
    };
    assert_eq!(ended(busy), "Busy");
    let ended_call = Ending::Ended {
        peer: "A".into(),
        duration: Duration::from_secs(3723),
    };
    assert_eq!(Scene::Ended(ended_call).texts("").1, "A · 1:02:03");
    assert_eq!(Scene::Blank.texts("12:00"), (String::new(), String::new()));
}

#[test]
fn a_video_is_fitted_into_its_tile_with_its_aspect_kept() {
    let screen = Rect {
        x: 0,
        y: 0,
        w: 1280,
        h: 720,
    };
    // 4:3 on 16:9: pillarboxed, centred.
    assert_eq!(
        fit(640, 480, (1, 1), &screen),
        Rect {
            x: 160,
            y: 0,
            w: 960,
            h: 720
        }
    );
    // 16:9 on 16:9: fills it.
    assert_eq!(fit(1920, 1080, (1, 1), &screen), screen);
    // Portrait (a phone held upright) on a grid cell: pillarboxed inside the cell.
    let cell = Rect {
        x: 640,
        y: 0,
        w: 640,
        h: 360,
    };
    assert_eq!(
        fit(720, 1280, (1, 1), &cell),
        Rect {
            x: 859,
            y: 0,
            w: 202,
            h: 360
        }
    );
    // Wide on a 4:3 tile: letterboxed.
    let tile = Rect {
        x: 10,
        y: 20,
        w: 400,
        h: 300,
    };
    assert_eq!(
        fit(1280, 720, (1, 1), &tile),
        Rect {
            x: 10,
            y: 57,
            w: 400,
            h: 225
        }
    );
    // Non-square pixels: 720x576 at 16:15 is 4:3 on screen.
    assert_eq!(
        fit(720, 576, (16, 15), &screen),
        Rect {
            x: 160,
            y: 0,
            w: 960,
            h: 720
        }
    );
    // Nonsense in, the tile out (never a zero or negative size).
    assert_eq!(fit(0, 480, (1, 1), &screen), screen);
    assert_eq!(fit(640, 480, (1, 0), &screen), screen);
    assert_eq!(fit(100_000, 1, (1, 1), &tile).h, 1);
}
