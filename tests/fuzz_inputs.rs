//! Property tests (proptest) for what the box parses from outside: the hub's event
//! frames (`ServerEvent::parse`) and the config file (`Config::parse`). Random and
//! mutated inputs must give a value or an error, never a panic; a config error names
//! the file.

use std::path::Path;

use callbox::config::Config;
use callbox_protocol::ServerEvent;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../config/callbox.example.toml");

/// JSON-ish text: real event shapes with random values, and fragments.
fn frame() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("call_invitation".to_owned()),
        Just("invitation_accepted".to_owned()),
        Just("invitation_rejected".to_owned()),
        Just("call_cancelled".to_owned()),
        Just("call_ended".to_owned()),
        any::<String>(),
    ];
    let value = prop_oneof![
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"video\"".to_owned()),
        Just("\"dnd\"".to_owned()),
    ];
    let key = prop::sample::select(vec![
        "invitationId",
        "callId",
        "inviter",
        "inviterName",
        "callType",
        "roomName",
        "trusted",
        "invitee",
        "reason",
        "type",
    ]);
    prop_oneof![
        (word, prop::collection::vec((key, value), 0..8)).prop_map(|(t, fields)| {
            let mut s = format!("{{\"type\":{}", serde_json::Value::String(t));
            for (k, v) in fields {
                s.push_str(&format!(",\"{k}\":{v}"));
            }
            s.push('}');
            s
        }),
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn hub_frames_parse_or_fail_cleanly(text in frame()) {
        if let Ok(event) = ServerEvent::parse(&text) {
            // What parsed has a call id, and serialises back.
            let _ = event.call_id();
            prop_assert!(serde_json::to_string(&event).is_ok());
        }
    }
}

/// The example config with one line replaced, removed or duplicated, or random text.
fn config_text() -> impl Strategy<Value = String> {
    let lines: Vec<String> = EXAMPLE.lines().map(str::to_owned).collect();
    let n = lines.len();
    prop_oneof![
        (0..n, any::<String>()).prop_map({
            let lines = lines.clone();
            move |(i, junk)| {
                let mut l = lines.clone();
                l[i] = junk;
                l.join("\n")
            }
        }),
        (
            0..n,
            prop::sample::select(vec![
                "= 1",
                "= -1",
                "= \"\"",
                "= []",
                "= {}",
                "= 1e309",
                "= 99999999999999999999",
                "= \"x\"",
                "= true",
                "=",
            ])
        )
            .prop_map({
                let lines = lines.clone();
                move |(i, value)| {
                    let mut l = lines.clone();
                    if let Some((key, _)) = l[i].split_once('=') {
                        l[i] = format!("{key}{value}");
                    }
                    l.join("\n")
                }
            }),
        (0..n).prop_map({
            let lines = lines.clone();
            move |i| {
                let mut l = lines.clone();
                let dup = l[i].clone();
                l.insert(i, dup);
                l.join("\n")
            }
        }),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn config_files_load_or_name_the_file(text in config_text()) {
        let path = Path::new("/etc/callbox/callbox.toml");
        if let Err(e) = Config::parse(&text, path) {
            prop_assert!(e.to_string().contains("callbox.toml"), "{}", e);
        }
    }
}
