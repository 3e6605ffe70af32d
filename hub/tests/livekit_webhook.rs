//! LiveKit webhooks end calls: a signed webhook against a real livekit-server, and real
//! Python SDK participants leaving a room (livekit-server sends the webhooks itself).

mod support;

use std::time::Duration;

use base64::Engine as _;
use callbox_protocol::ServerEvent;
use callbox_testkit::PyPeer;
use livekit_api::access_token::AccessToken;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::{Env, Setup};

/// Signs `body` the way livekit-server does: a JWT from the API key carrying the body's
/// base64 SHA-256.
fn sign(env: &Env, body: &str) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()));
    AccessToken::with_api_key(&env.lk.api_key, &env.lk.api_secret)
        .with_sha256(&hash)
        .to_jwt()
        .unwrap()
}

async fn post_webhook(env: &Env, body: &str, auth: &str) -> StatusCode {
    env.http
        .post(env.url("/livekit/webhook"))
        .header("content-type", "application/webhook+json")
        .header("authorization", auth)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

/// Accepts the invitation `ws` just received as `who`; returns the JoinInfo JSON.
async fn accept(env: &Env, who: &str, ws: &mut support::Ws) -> serde_json::Value {
    let ServerEvent::CallInvitation { invitation_id, .. } = ws.next_event().await else {
        panic!("expected call_invitation")
    };
    let (status, body) = env
        .post(
            who,
            "/api/calls/invitations/respond",
            json!({"invitationId": invitation_id, "action": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_participant_left_webhook_ends_an_empty_call() {
    let env = Env::start(Setup::default()).await;
    let mut box_ws = env.ws("box1").await;
    let mut alice_ws = env.ws("alice").await;
    let join = env.invite("alice", &["box1"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();
    let room = join["roomName"].as_str().unwrap().to_owned();
    accept(&env, "box1", &mut box_ws).await;
    assert!(matches!(
        alice_ws.next_event().await,
        ServerEvent::InvitationAccepted { .. }
    ));

    let body = json!({
        "event": "participant_left",
        "room": {"name": room, "sid": "RM_x"},
        "participant": {"identity": "alice", "sid": "PA_x", "state": "DISCONNECTED"},
        "id": "EV_x",
        "createdAt": "1700000000"
    })
    .to_string();

    // Forged or missing signatures are refused and change nothing.
    assert_eq!(
        post_webhook(&env, &body, "garbage").await,
        StatusCode::UNAUTHORIZED
    );
    let other_body = body.replace("EV_x", "EV_y");
    assert_eq!(
        post_webhook(&env, &body, &sign(&env, &other_body)).await,
        StatusCode::UNAUTHORIZED
    );
    let forged = AccessToken::with_api_key(&env.lk.api_key, "not-the-secret-not-the-secret-not")
        .with_sha256(
            &base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes())),
        )
        .to_jwt()
        .unwrap();
    assert_eq!(
        post_webhook(&env, &body, &forged).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(env.record("alice", &call_id).await["status"], "connected");

    // Genuine: the real room has nobody in it, so the call ends for everyone.
    assert_eq!(
        post_webhook(&env, &body, &sign(&env, &body)).await,
        StatusCode::OK
    );
    let ended = ServerEvent::CallEnded {
        call_id: call_id.clone(),
        reason: "participant_left".into(),
    };
    assert_eq!(box_ws.next_event().await, ended);
    assert_eq!(alice_ws.next_event().await, ended);
    let rec = env.record("alice", &call_id).await;
    assert_eq!(
        (rec["status"].as_str(), rec["endReason"].as_str()),
        (Some("ended"), Some("participant_left"))
    );
    assert!(!env.livekit_rooms().await.contains(&room));

    // Unrelated events and rooms are acknowledged and ignored.
    let other = json!({"event": "room_started", "room": {"name": "elsewhere"}}).to_string();
    assert_eq!(
        post_webhook(&env, &other, &sign(&env, &other)).await,
        StatusCode::OK
    );
}

/// Runs `tests/peers/caller.py` joining `room` directly with `token`, publishing nothing.
fn join_peer(name: &str, url: &str, token: &str) -> PyPeer {
    PyPeer::spawn_named(
        name,
        "caller.py",
        [
            "dial",
            "--direct-url",
            url,
            "--direct-token",
            token,
            "--no-publish",
            "--no-hangup",
            "--timeout",
            "120",
        ],
    )
}

async fn wait_for_participants(env: &Env, room: &str, want: &[&str]) {
    let client = livekit_api::services::room::RoomClient::with_api_key(
        &env.lk.http_url,
        &env.lk.api_key,
        &env.lk.api_secret,
    );
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut got: Vec<String> = client
            .list_participants(room)
            .await
            .map(|ps| ps.into_iter().map(|p| p.identity).collect())
            .unwrap_or_default();
        got.sort();
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "participants {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_participants_leaving_end_the_call() {
    const GRACE_SECS: f64 = 4.0;
    let env = Env::start(Setup {
        webhooks: true,
        rejoin_grace_secs: GRACE_SECS,
        ..Setup::default()
    })
    .await;
    let mut box_ws = env.ws("box1").await;
    let mut alice_ws = env.ws("alice").await;
    let join = env.invite("alice", &["box1"]).await;
    let call_id = join["callId"].as_str().unwrap().to_owned();
    let room = join["roomName"].as_str().unwrap().to_owned();
    let box_join = accept(&env, "box1", &mut box_ws).await;
    assert!(matches!(
        alice_ws.next_event().await,
        ServerEvent::InvitationAccepted { .. }
    ));

    let url = env.lk.ws_url.clone();
    let alice = join_peer("alice", &url, join["token"].as_str().unwrap());
    let mut box_pub = join_peer(
        "box1-pub",
        &url,
        box_join["publisher"]["token"].as_str().unwrap(),
    );
    let mut box_sub = join_peer(
        "box1-sub",
        &url,
        box_join["subscriber"]["token"].as_str().unwrap(),
    );
    tokio::task::block_in_place(|| {
        for peer in [&alice, &box_pub, &box_sub] {
            peer.expect_event("connected", Duration::from_secs(30));
        }
    });
    wait_for_participants(&env, &room, &["alice", "box1", "box1~rx"]).await;

    // The box's publisher drops (e.g. a pipeline restart): its subscriber is still
    // there, so two principals remain and the call goes on.
    box_pub.send_line("leave");
    wait_for_participants(&env, &room, &["alice", "box1~rx"]).await;
    assert_eq!(alice_ws.try_next_event(Duration::from_secs(2)).await, None);
    assert_eq!(env.record("alice", &call_id).await["status"], "connected");

    // The box's subscriber drops too: only alice is left. The box comes back within the
    // grace period (media rebuilt after a fault), so the call goes on.
    box_sub.send_line("leave");
    wait_for_participants(&env, &room, &["alice"]).await;
    let mut box_back = join_peer(
        "box1-back",
        &url,
        box_join["publisher"]["token"].as_str().unwrap(),
    );
    tokio::task::block_in_place(|| {
        box_back.expect_event("connected", Duration::from_secs(30));
    });
    let quiet = Duration::from_secs_f64(GRACE_SECS + 1.0);
    assert_eq!(
        alice_ws.try_next_event(quiet).await,
        None,
        "no end during a rejoin"
    );
    assert_eq!(env.record("alice", &call_id).await["status"], "connected");

    // Now the box is gone for good: after the grace period the hub ends the call.
    box_back.send_line("leave");
    let ended = ServerEvent::CallEnded {
        call_id: call_id.clone(),
        reason: "participant_left".into(),
    };
    assert_eq!(alice_ws.next_event().await, ended);
    assert_eq!(box_ws.next_event().await, ended);
    let rec = env.record("box1", &call_id).await;
    assert_eq!(
        (rec["status"].as_str(), rec["endReason"].as_str()),
        (Some("ended"), Some("participant_left"))
    );
    // The room was deleted, which disconnects alice's SDK client.
    tokio::task::block_in_place(|| {
        alice.expect_event("disconnected", Duration::from_secs(20));
    });
    let _ = (
        box_pub.wait_exit(Duration::from_secs(10)),
        box_sub.wait_exit(Duration::from_secs(10)),
        box_back.wait_exit(Duration::from_secs(10)),
    );
}
