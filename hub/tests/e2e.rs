//! End-to-end tests of callbox-hub against a real livekit-server (callbox-testkit):
//! REST + WebSocket flows, ring timeouts, restarts, LiveKit outages.

mod support;

use std::time::Duration;

use callbox_protocol::{CallStatus, ErrorBody, JoinInfo, RejectReason, ServerEvent};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use support::{Env, Setup, split};

fn error_code(body: &serde_json::Value) -> String {
    let e: ErrorBody = serde_json::from_value(body.clone()).expect("an ErrorBody");
    e.error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_accept_end_round_trip() {
    let env = Env::start(Setup::default()).await;
    let mut box_ws = env.ws("box1").await;
    let mut alice_ws = env.ws("alice").await;

    let join: JoinInfo = serde_json::from_value(env.invite("alice", &["box1"]).await).unwrap();
    assert_eq!(join.url, env.lk.ws_url);
    assert!(join.token.is_some(), "a user gets one token");
    assert!(join.publisher.is_none() && join.subscriber.is_none());
    assert!(
        env.livekit_rooms().await.contains(&join.room_name),
        "room created first"
    );

    let ServerEvent::CallInvitation {
        invitation_id,
        call_id,
        inviter,
        room_name,
        ..
    } = box_ws.next_event().await
    else {
        panic!("expected call_invitation")
    };
    assert_eq!(
        (call_id.as_str(), inviter.as_str()),
        (join.call_id.as_str(), "alice")
    );
    assert_eq!(room_name, join.room_name);

    // Only the invitee may answer.
    let (status, body) = env
        .post(
            "bob",
            "/api/calls/invitations/respond",
            json!({"invitationId": invitation_id, "action": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = env
        .post(
            "box1",
            "/api/calls/invitations/respond",
            json!({"invitationId": invitation_id, "action": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let box_join: JoinInfo = serde_json::from_value(body).unwrap();
    assert!(
        box_join.token.is_none(),
        "a device gets publisher + subscriber"
    );
    assert_eq!(box_join.publisher.unwrap().identity, "box1");
    assert_eq!(box_join.subscriber.unwrap().identity, "box1~rx");

    assert_eq!(
        alice_ws.next_event().await,
        ServerEvent::InvitationAccepted {
            invitation_id: invitation_id.clone(),
            call_id: call_id.clone(),
            invitee: "box1".into()
        }
    );

    // Answering twice conflicts.
    let (status, body) = env
        .post(
            "box1",
            "/api/calls/invitations/respond",
            json!({"invitationId": invitation_id, "action": "reject"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "invitation_not_pending");

    // Active calls, fresh tokens.
    let (status, active) = env.get("box1", "/api/calls/active").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(active.as_array().unwrap().len(), 1);
    assert_eq!(active[0]["status"], "connected");
    let (status, body) = env
        .post("box1", &format!("/api/calls/{call_id}/token"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["publisher"]["token"].is_string());
    let (status, _) = env
        .post("bob", &format!("/api/calls/{call_id}/token"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = env.post("bob", "/api/calls/nope/token", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Strangers may not end it.
    let (status, _) = env
        .post("bob", "/api/calls/end", json!({"callId": call_id}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = env
        .post("alice", "/api/calls/end", json!({"callId": call_id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"ok": true}));
    assert_eq!(
        box_ws.next_event().await,
        ServerEvent::CallEnded {
            call_id: call_id.clone(),
            reason: "hangup".into()
        }
    );
    assert_eq!(
        alice_ws.try_next_event(Duration::from_millis(300)).await,
        None,
        "no echo to the one who hung up"
    );

    // Idempotent; the record is final; the room is gone; tokens are refused.
    let (status, _) = env
        .post("alice", "/api/calls/end", json!({"callId": call_id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let rec = env.record("box1", &call_id).await;
    assert_eq!(rec["status"], "ended");
    assert_eq!(rec["endReason"], "hangup");
    assert!(rec["answeredAtMs"].as_i64().unwrap() >= rec["createdAtMs"].as_i64().unwrap());
    assert!(rec["endedAtMs"].is_i64());
    assert_eq!(rec["invitees"][0]["status"], "accepted");
    assert!(
        !env.livekit_rooms().await.contains(&join.room_name),
        "room deleted"
    );
    let (status, body) = env
        .post("alice", &format!("/api/calls/{call_id}/token"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "call_not_active");
    let (status, active) = env.get("box1", "/api/calls/active").await;
    assert_eq!((status, active), (StatusCode::OK, json!([])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_validated() {
    let env = Env::start(Setup {
        ring_timeout_secs: 30.0,
        ..Setup::default()
    })
    .await;
    let (status, body) = env
        .post(
            "alice",
            "/api/calls/invite",
            json!({"invitees": ["box1", "ghost"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "unknown_invitee");
    assert!(
        body["message"].as_str().unwrap().contains("ghost"),
        "{body}"
    );

    for (invitees, code) in [
        (json!([]), "no_invitees"),
        (json!(["alice"]), "self_invite"),
        (json!(["box1", "box1"]), "duplicate_invitee"),
        (
            json!(["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"]),
            "too_many_participants",
        ),
    ] {
        let (status, body) = env
            .post(
                "alice",
                "/api/calls/invite",
                json!({ "invitees": invitees }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), code);
    }
    let (status, body) = env
        .post("alice", "/api/calls/invite", json!({"invitees": "box1"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "bad_request");
    // Rooms are named by the hub only: a token never grants a room outside its calls.
    for name in ["front-door", "bad name"] {
        let (status, body) = env
            .post(
                "alice",
                "/api/calls/invite",
                json!({"invitees": ["box1"], "roomName": name}),
            )
            .await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (StatusCode::BAD_REQUEST, "room_name_not_allowed")
        );
    }
    let join = env
        .post(
            "alice",
            "/api/calls/invite",
            json!({"invitees": ["box1"], "callType": "audio"}),
        )
        .await;
    assert_eq!(join.0, StatusCode::CREATED);
    assert!(
        join.1["roomName"]
            .as_str()
            .is_some_and(|r| r.starts_with("callbox-")),
        "{}",
        join.1
    );
    let rec = env.record("box1", join.1["callId"].as_str().unwrap()).await;
    assert_eq!(
        (rec["callType"].as_str(), rec["status"].as_str()),
        (Some("audio"), Some("ringing"))
    );

    let (status, body) = env
        .post(
            "box1",
            "/api/calls/invitations/respond",
            json!({"invitationId": "nope", "action": "accept"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "invitation_not_found")
    );
    let (status, body) = env
        .post("alice", "/api/calls/end", json!({"callId": "nope"}))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "call_not_found")
    );
    let (status, body) = env.get("alice", "/api/nothing-here").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

/// Only callers on a callee's contact list make it ring; the invitation says whether
/// the caller is trusted; a caller sees whom it may call, with presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_callers_ring_and_contacts_show_presence() {
    let mut env = Env::start(Setup::default()).await;
    env.add_principal("stranger", callbox_hub::PrincipalKind::User);
    env.add_principal("neighbour", callbox_hub::PrincipalKind::User);
    callbox_hub::allow_caller(&env.config.database, "box1", "neighbour", false).unwrap();
    callbox_hub::set_display_name(&env.config.database, "box1", Some("Hallway box")).unwrap();
    callbox_hub::set_display_name(&env.config.database, "alice", Some("Alice")).unwrap();
    let mut box1 = env.ws("box1").await;

    let (status, body) = env
        .post(
            "stranger",
            "/api/calls/invite",
            json!({"invitees": ["box1"]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "not_allowed")
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("box1") && message.contains("allow"),
        "the refusal says who and how: {message}"
    );
    assert!(env.history("box1").await.is_empty(), "no call was made");

    // The first event box1 gets is the neighbour's invitation, not the stranger's:
    // untrusted, so a box on `answer = "auto"` rings for it.
    let join = env.invite("neighbour", &["box1"]).await;
    match box1.next_event().await {
        ServerEvent::CallInvitation {
            inviter, trusted, ..
        } => assert_eq!((inviter.as_str(), trusted), ("neighbour", false)),
        other => panic!("expected the neighbour's invitation, got {other:?}"),
    }
    let call_id = join["callId"].as_str().unwrap();
    let (status, _) = env
        .post("neighbour", "/api/calls/end", json!({"callId": call_id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let _ = box1.next_event().await; // call_cancelled
    env.invite("alice", &["box1"]).await;
    match box1.next_event().await {
        ServerEvent::CallInvitation {
            inviter,
            inviter_name,
            trusted,
            ..
        } => assert_eq!(
            (inviter.as_str(), inviter_name.as_deref(), trusted),
            ("alice", Some("Alice"), true)
        ),
        other => panic!("expected alice's invitation, got {other:?}"),
    }

    let (status, contacts) = env.get("alice", "/api/contacts").await;
    assert_eq!(status, StatusCode::OK);
    let list: Vec<(String, String, String)> = contacts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["identity"].as_str().unwrap().to_owned(),
                c["displayName"].as_str().unwrap_or("").to_owned(),
                c["presence"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        list.contains(&("box1".into(), "Hallway box".into(), "online".into())),
        "{list:?}"
    );
    assert!(
        list.contains(&("box2".into(), String::new(), "offline".into())),
        "{list:?}"
    );
    assert!(!list.iter().any(|(i, ..)| i == "alice" || i == "stranger"));
    let (_, none) = env.get("stranger", "/api/contacts").await;
    assert_eq!(none, json!([]), "a stranger may call nobody");
}

/// A client message over the limit closes that connection only; the hub serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_websocket_message_closes_the_connection() {
    let env = Env::start(Setup::default()).await;
    let mut ws = env.ws("alice").await;
    ws.send_text("x".repeat(callbox_hub::ws::MAX_CLIENT_MESSAGE_BYTES + 1))
        .await;
    assert!(ws.closed_within(Duration::from_secs(5)).await);
    let mut again = env.ws("alice").await;
    env.invite("bob", &["alice"]).await;
    assert!(matches!(
        again.next_event().await,
        ServerEvent::CallInvitation { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_required() {
    let env = Env::start(Setup::default()).await;
    let http = &env.http;
    // No header, wrong credential, wrong scheme.
    let r = http.get(env.url("/api/calls/active")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(env.url("/api/calls/history"))
        .bearer_auth("0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error, "unauthorized");
    let r = http
        .post(env.url("/api/calls/invite"))
        .basic_auth("alice", Some(env.cred("alice")))
        .json(&json!({"invitees": ["box1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // WebSocket: header or ?access_token=, nothing else.
    match tokio_tungstenite::connect_async(env.hub().ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let bad = format!("{}?access_token=nope", env.hub().ws_url());
    match tokio_tungstenite::connect_async(bad).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let good = format!("{}?access_token={}", env.hub().ws_url(), env.cred("box1"));
    let (mut ws, _) = tokio_tungstenite::connect_async(good).await.unwrap();
    env.invite("alice", &["box1"]).await;
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        msg.to_text()
            .unwrap()
            .contains("\"type\":\"call_invitation\"")
    );

    // Open endpoints.
    let r = http.get(env.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    // /metrics only for the scraper's token.
    let r = http.get(env.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(env.url("/metrics"))
        .bearer_auth(env.cred("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let metrics = http
        .get(env.url("/metrics"))
        .bearer_auth(support::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("callbox_hub_calls_total{status=\"ringing\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callbox_hub_calls_total{status=\"missed\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callbox_hub_websocket_clients 1"),
        "{metrics}"
    );

    // Rotating a credential invalidates the old one.
    let new = callbox_hub::add_principal(
        &env.config.database,
        "alice",
        callbox_hub::PrincipalKind::User,
    )
    .unwrap();
    let r = http
        .get(env.url("/api/calls/active"))
        .bearer_auth(env.cred("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(env.url("/api/calls/active"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_timeout_with_an_offline_invitee_is_missed() {
    let env = Env::start(Setup {
        ring_timeout_secs: 1.0,
        ..Setup::default()
    })
    .await;
    let mut alice_ws = env.ws("alice").await;
    let join = env.invite("alice", &["box1"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();
    let room = join["roomName"].as_str().unwrap().to_owned();

    let ev = alice_ws.next_event().await;
    assert_eq!(
        ev,
        ServerEvent::CallEnded {
            call_id: call_id.clone(),
            reason: "missed".into()
        }
    );
    let rec = env.record("alice", &call_id).await;
    assert_eq!(rec["status"], "missed");
    assert_eq!(rec["endReason"], "no_answer");
    assert_eq!(rec["invitees"][0]["status"], "missed");
    assert!(!env.livekit_rooms().await.contains(&room), "room deleted");

    // A box coming online later is not rung for it.
    let mut box_ws = env.ws("box1").await;
    assert_eq!(
        box_ws.try_next_event(Duration::from_millis(500)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_invitee_gets_the_invitation_and_can_reject_it() {
    let env = Env::start(Setup::default()).await;
    let mut alice_ws = env.ws("alice").await;
    let join = env.invite("alice", &["box1"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();

    // Two connections of the same box, both after the invite.
    let mut box_ws = env.ws("box1").await;
    let mut box_ws2 = env.ws("box1").await;
    let ServerEvent::CallInvitation {
        invitation_id,
        call_id: got,
        ..
    } = box_ws.next_event().await
    else {
        panic!("expected call_invitation")
    };
    assert_eq!(got, call_id);
    assert!(matches!(
        box_ws2.next_event().await,
        ServerEvent::CallInvitation { .. }
    ));

    let (status, body) = env
        .post(
            "box1",
            "/api/calls/invitations/respond",
            json!({"invitationId": invitation_id, "action": "reject", "reason": "busy"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));
    assert_eq!(
        alice_ws.next_event().await,
        ServerEvent::InvitationRejected {
            invitation_id,
            call_id: call_id.clone(),
            invitee: "box1".into(),
            reason: RejectReason::Busy
        }
    );
    let rec = env.record("alice", &call_id).await;
    assert_eq!(
        (rec["status"].as_str(), rec["endReason"].as_str()),
        (Some("rejected"), Some("busy"))
    );
    assert_eq!(rec["invitees"][0]["reason"], "busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inviter_cancels_while_ringing_and_group_calls_fan_out() {
    let env = Env::start(Setup::default()).await;
    let mut box1 = env.ws("box1").await;
    let mut box2 = env.ws("box2").await;
    let mut bob = env.ws("bob").await;
    let mut alice = env.ws("alice").await;

    // Cancel while ringing: every invitee hears call_cancelled.
    let join = env.invite("alice", &["box1", "box2"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();
    assert!(matches!(
        box1.next_event().await,
        ServerEvent::CallInvitation { .. }
    ));
    assert!(matches!(
        box2.next_event().await,
        ServerEvent::CallInvitation { .. }
    ));
    let (status, _) = env
        .post("alice", "/api/calls/end", json!({"callId": call_id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for ws in [&mut box1, &mut box2] {
        assert_eq!(
            ws.next_event().await,
            ServerEvent::CallCancelled {
                call_id: call_id.clone()
            }
        );
    }
    assert_eq!(env.record("alice", &call_id).await["status"], "cancelled");

    // Group call: two accept, one is still ringing when an invitee hangs up.
    let join = env.invite("alice", &["box1", "box2", "bob"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();
    let mut invitations = Vec::new();
    for ws in [&mut box1, &mut box2, &mut bob] {
        let ServerEvent::CallInvitation { invitation_id, .. } = ws.next_event().await else {
            panic!()
        };
        invitations.push(invitation_id);
    }
    let accept = |id: &str| json!({"invitationId": id, "action": "accept"});
    assert_eq!(
        env.post(
            "box1",
            "/api/calls/invitations/respond",
            accept(&invitations[0])
        )
        .await
        .0,
        StatusCode::OK
    );
    assert!(
        matches!(alice.next_event().await, ServerEvent::InvitationAccepted { invitee, .. } if invitee == "box1")
    );
    assert_eq!(
        env.post(
            "box2",
            "/api/calls/invitations/respond",
            accept(&invitations[1])
        )
        .await
        .0,
        StatusCode::OK
    );
    assert!(
        matches!(alice.next_event().await, ServerEvent::InvitationAccepted { invitee, .. } if invitee == "box2")
    );
    assert!(
        matches!(box1.next_event().await, ServerEvent::InvitationAccepted { invitee, .. } if invitee == "box2")
    );
    assert!(
        matches!(box2.next_event().await, ServerEvent::InvitationAccepted { invitee, .. } if invitee == "box1"),
        "the later participant hears who is already in the call"
    );

    let (status, _) = env
        .post(
            "box2",
            "/api/calls/end",
            json!({"callId": call_id, "reason": "media_failed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended = ServerEvent::CallEnded {
        call_id: call_id.clone(),
        reason: "media_failed".into(),
    };
    assert_eq!(alice.next_event().await, ended);
    assert_eq!(box1.next_event().await, ended);
    assert_eq!(
        bob.next_event().await,
        ServerEvent::CallCancelled {
            call_id: call_id.clone()
        }
    );
    let rec = env.record("bob", &call_id).await;
    assert_eq!(rec["status"], "ended");
    assert_eq!(rec["invitees"][2]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_a_hub_restart() {
    let mut env = Env::start(Setup {
        ring_timeout_secs: 4.0,
        ..Setup::default()
    })
    .await;
    let mut alice_ws = env.ws("alice").await;
    let join = env.invite("alice", &["box1"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();

    env.stop_hub().await;
    assert!(
        alice_ws.closed_within(Duration::from_secs(2)).await,
        "shutdown closes WebSockets"
    );
    env.restart_hub().await;

    // Still ringing after the restart, credentials still valid, invitation re-sent.
    assert_eq!(env.record("alice", &call_id).await["status"], "ringing");
    let mut box_ws = env.ws("box1").await;
    assert!(
        matches!(box_ws.next_event().await, ServerEvent::CallInvitation { call_id: c, .. } if c == call_id)
    );
    // The timer was re-armed for the rest of the ring time.
    let mut alice_ws = env.ws("alice").await;
    assert_eq!(
        box_ws.next_event().await,
        ServerEvent::CallCancelled {
            call_id: call_id.clone()
        }
    );
    assert_eq!(
        alice_ws.next_event().await,
        ServerEvent::CallEnded {
            call_id: call_id.clone(),
            reason: "missed".into()
        }
    );

    // A ring deadline that passes while the hub is down is applied at start.
    let join = env.invite("alice", &["box2"]).await;
    let call2 = join["callId"].as_str().unwrap().to_owned();
    env.stop_hub().await;
    tokio::time::sleep(Duration::from_millis(4_200)).await;
    env.restart_hub().await;
    let rec = env.record("alice", &call2).await;
    assert_eq!(
        (rec["status"].as_str(), rec["endReason"].as_str()),
        (Some("missed"), Some("no_answer"))
    );
    let mut box2 = env.ws("box2").await;
    assert_eq!(box2.try_next_event(Duration::from_millis(300)).await, None);

    let history = env.history("alice").await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["callId"], call2, "newest first");
    let (status, page) = env
        .get("alice", "/api/calls/history?limit=1&offset=1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["callId"], call_id);
    let (status, _) = env.get("alice", "/api/calls/history?limit=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livekit_down_is_502_and_the_call_failed() {
    let mut env = Env::start(Setup::default()).await;
    env.lk.kill();
    let (status, body) = env
        .post("alice", "/api/calls/invite", json!({"invitees": ["box1"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(error_code(&body), "livekit_unavailable");
    let history = env.history("alice").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], CallStatus::Failed.as_str());
    assert_eq!(history[0]["endReason"], "livekit_unavailable");
    // Nobody was rung.
    let mut box_ws = env.ws("box1").await;
    assert_eq!(
        box_ws.try_next_event(Duration::from_millis(300)).await,
        None
    );
}

/// The caller app's sign-in: a one-time link opens a browser session for its user
/// (without rotating the user's own credential), `/api/me` says who is signed in, the
/// link works once, and sign-out ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_works_once_and_sign_out_ends_the_session() {
    let env = Env::start(Setup::default()).await;
    callbox_hub::set_display_name(&env.config.database, "alice", Some("Alice")).unwrap();
    let code = callbox_hub::signin_link_code(&env.config.database, "alice", 1).unwrap();
    let signin = |code: String| {
        let http = env.http.clone();
        let url = env.url("/api/signin");
        async move {
            let resp = http
                .post(url)
                .json(&serde_json::json!({ "code": code }))
                .send()
                .await
                .unwrap();
            split(resp).await
        }
    };
    let (status, body) = signin(code.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["identity"], "alice");
    let session = body["credential"].as_str().unwrap().to_owned();
    assert_ne!(session, env.cred("alice"));

    let me = |cred: String| {
        let http = env.http.clone();
        let url = env.url("/api/me");
        async move { split(http.get(url).bearer_auth(cred).send().await.unwrap()).await }
    };
    let (status, body) = me(session.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"identity": "alice", "displayName": "Alice", "kind": "user"})
    );
    // The session works on /ws too, and alice's own credential still works.
    let (status, _) = me(env.cred("alice").to_owned()).await;
    assert_eq!(status, StatusCode::OK);

    // Used once: refused the second time, in words.
    let (status, body) = signin(code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_link");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ask for a new one")
    );

    let resp = env
        .http
        .post(env.url("/api/signout"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = me(session).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = me(env.cred("alice").to_owned()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "alice's own credential is untouched"
    );
}

/// The caller app is served by the hub itself: the page, its script and style, with a
/// Content-Security-Policy that loads nothing from elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_the_caller_app() {
    let env = Env::start(Setup::default()).await;
    let page = env.http.get(env.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("app.js") && html.contains("app.css"),
        "{html}"
    );
    assert!(
        !html.contains("://"),
        "the page loads nothing from another address: {html}"
    );
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let resp = env.http.get(env.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert!(!resp.bytes().await.unwrap().is_empty(), "{path}");
    }
}

/// An invite storm does not make a box ring non-stop: past `max_invites_per_minute` a
/// caller's invitations get 429 and never reach the box. A `reason` is a short code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_storm_is_cut_off_and_reasons_are_short_codes() {
    let env = Env::start(Setup {
        max_invites_per_minute: 3,
        ..Setup::default()
    })
    .await;
    let mut box1 = env.ws("box1").await;
    for _ in 0..3 {
        let join = env.invite("alice", &["box1"]).await;
        assert!(matches!(
            box1.next_event().await,
            ServerEvent::CallInvitation { .. }
        ));
        let (status, body) = env
            .post(
                "alice",
                "/api/calls/end",
                json!({"callId": join["callId"], "reason": "cancelled"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(matches!(
            box1.next_event().await,
            ServerEvent::CallCancelled { .. }
        ));
    }
    let (status, body) = env
        .post("alice", "/api/calls/invite", json!({"invitees": ["box1"]}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_invitations");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 a minute"),
        "{body}"
    );
    assert_eq!(
        box1.try_next_event(Duration::from_millis(500)).await,
        None,
        "the box did not ring a 4th time"
    );
    // Another caller is not affected.
    let join = env.invite("bob", &["box1"]).await;
    assert!(matches!(
        box1.next_event().await,
        ServerEvent::CallInvitation { .. }
    ));
    for bad in [json!("Hang up!"), json!("x".repeat(65))] {
        let (status, body) = env
            .post(
                "bob",
                "/api/calls/end",
                json!({"callId": join["callId"], "reason": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "bad_reason");
    }
}
