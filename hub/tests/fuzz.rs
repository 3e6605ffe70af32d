//! Property test (proptest) of the hub's REST bodies: random and mutated JSON posted to
//! every body-taking endpoint of a running hub (real LiveKit, real SQLite) gets a 2xx or
//! a 4xx with an `ErrorBody` in words, never a 5xx, and the hub keeps answering.

mod support;

use proptest::prelude::*;
use reqwest::StatusCode;
use support::{Env, Setup, split};

fn body() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("[\"box1\"]".to_owned()),
        Just("[\"box1\",\"box1\"]".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"video\"".to_owned()),
        Just("\"accept\"".to_owned()),
        Just("\"reject\"".to_owned()),
        Just("\"busy\"".to_owned()),
        Just("\"box1\"".to_owned()),
    ];
    let key = prop::sample::select(vec![
        "invitees",
        "callType",
        "roomName",
        "invitationId",
        "action",
        "reason",
        "callId",
        "code",
    ]);
    prop_oneof![
        prop::collection::vec((key, value), 0..6).prop_map(|fields| {
            let inner: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", inner.join(","))
        }),
        any::<String>(),
    ]
}

fn path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/api/calls/invite",
        "/api/calls/invitations/respond",
        "/api/calls/end",
        "/api/signin",
        "/api/signout",
    ])
}

#[test]
fn random_bodies_get_a_clear_4xx_never_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::start(Setup {
        max_invites_per_minute: 1000,
        ..Setup::default()
    }));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::new());
    runner
        .run(&(path(), body()), |(path, body)| {
            let (status, reply) = rt.block_on(async {
                let resp = env
                    .http
                    .post(env.url(path))
                    .bearer_auth(env.cred("alice"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                split(resp).await
            });
            *statuses.borrow_mut().entry(status.as_u16()).or_insert(0u32) += 1;
            prop_assert!(
                !status.is_server_error(),
                "{path} {body:?} → {status} {reply}"
            );
            if status.is_client_error() {
                prop_assert!(
                    reply["error"].is_string() && reply["message"].is_string(),
                    "{path} {body:?} → {status} {reply}"
                );
            }
            Ok(())
        })
        .unwrap();
    // alice signed out? Only a session signs out; her own credential still works.
    let (status, _) = rt.block_on(env.get("alice", "/api/contacts"));
    assert_eq!(status, StatusCode::OK);
    callbox_testkit::report!(
        "hub fuzz: 400 random bodies, statuses {:?}",
        statuses.borrow()
    );
}
