//! Shared helpers of the hub end-to-end tests: a real livekit-server (callbox-testkit),
//! the hub in-process on a temporary SQLite file, an HTTP client and WebSocket clients.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use callbox_hub::{HubConfig, LiveKitConfig, PrincipalKind, RunningHub};
use callbox_protocol::ServerEvent;
use callbox_testkit::{LiveKit, LiveKitOptions};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a test waits for an event that should come.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The hub's `metrics_token` in tests.
pub const METRICS_TOKEN: &str = "metrics-token-for-tests";

/// One test's world: LiveKit, a hub, principals and their credentials.
pub struct Env {
    pub lk: LiveKit,
    pub dir: tempfile::TempDir,
    pub config: HubConfig,
    pub hub: Option<RunningHub>,
    pub http: reqwest::Client,
    /// identity → bearer credential.
    pub creds: HashMap<String, String>,
}

/// What to set up.
pub struct Setup {
    /// Ring timeout in seconds.
    pub ring_timeout_secs: f64,
    /// Seconds the hub waits for a rejoin before ending a call nobody is left in.
    pub rejoin_grace_secs: f64,
    /// Give LiveKit the hub's webhook URL.
    pub webhooks: bool,
    /// Principals to create.
    pub principals: Vec<(&'static str, PrincipalKind)>,
    /// `max_invites_per_minute`.
    pub max_invites_per_minute: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            ring_timeout_secs: 30.0,
            rejoin_grace_secs: 0.5,
            webhooks: false,
            principals: vec![
                ("alice", PrincipalKind::User),
                ("bob", PrincipalKind::User),
                ("box1", PrincipalKind::Device),
                ("box2", PrincipalKind::Device),
            ],
            max_invites_per_minute: 10,
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "callbox_hub=debug,info".into()),
        )
        .with_test_writer()
        .try_init();
}

impl Env {
    pub async fn start(setup: Setup) -> Env {
        init_tracing();
        // Bind first so LiveKit can be told the webhook URL before the hub exists.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let webhook_urls = if setup.webhooks {
            vec![format!("http://{addr}/livekit/webhook")]
        } else {
            vec![]
        };
        let lk = tokio::task::spawn_blocking(move || {
            LiveKit::start(LiveKitOptions {
                webhook_urls,
                ..Default::default()
            })
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = HubConfig::new(
            dir.path().join("hub.sqlite3"),
            LiveKitConfig::new(lk.ws_url.clone(), lk.api_key.clone(), lk.api_secret.clone()),
        );
        config.listen = addr;
        config.ring_timeout_secs = setup.ring_timeout_secs;
        config.rejoin_grace_secs = setup.rejoin_grace_secs;
        config.max_invites_per_minute = setup.max_invites_per_minute;
        config.metrics_token = METRICS_TOKEN.to_owned();
        let mut creds = HashMap::new();
        for (identity, kind) in &setup.principals {
            let cred = callbox_hub::add_principal(&config.database, identity, *kind).unwrap();
            creds.insert((*identity).to_owned(), cred);
        }
        // The set-up's principals may all call each other (trusted); a test that
        // needs a stranger adds one.
        for (callee, _) in &setup.principals {
            for (caller, _) in &setup.principals {
                if callee != caller {
                    callbox_hub::allow_caller(&config.database, callee, caller, true).unwrap();
                }
            }
        }
        let hub = callbox_hub::start_with_listener(config.clone(), listener)
            .await
            .unwrap();
        Env {
            lk,
            dir,
            config,
            hub: Some(hub),
            http: reqwest::Client::new(),
            creds,
        }
    }

    pub fn hub(&self) -> &RunningHub {
        self.hub.as_ref().expect("hub running")
    }

    /// Creates another principal (allowed to call nobody, callable by nobody).
    pub fn add_principal(&mut self, who: &str, kind: PrincipalKind) {
        let cred = callbox_hub::add_principal(&self.config.database, who, kind).unwrap();
        self.creds.insert(who.to_owned(), cred);
    }

    pub fn cred(&self, who: &str) -> &str {
        &self.creds[who]
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub().url())
    }

    /// Stops the hub (keeps LiveKit and the database).
    pub async fn stop_hub(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown().await;
        }
    }

    /// Starts a new hub on the same database and address.
    pub async fn restart_hub(&mut self) {
        self.stop_hub().await;
        self.hub = Some(callbox_hub::start(self.config.clone()).await.unwrap());
    }

    pub async fn post(&self, who: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(self.cred(who))
            .json(&body)
            .send()
            .await
            .unwrap();
        split(resp).await
    }

    pub async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(self.cred(who))
            .send()
            .await
            .unwrap();
        split(resp).await
    }

    /// `alice` (or `who`) invites `invitees`; asserts 201 and returns the JoinInfo.
    pub async fn invite(&self, who: &str, invitees: &[&str]) -> Value {
        let (status, body) = self
            .post(
                who,
                "/api/calls/invite",
                serde_json::json!({ "invitees": invitees }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn history(&self, who: &str) -> Vec<Value> {
        let (status, body) = self.get(who, "/api/calls/history").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    /// The history record of `call_id` as seen by `who`.
    pub async fn record(&self, who: &str, call_id: &str) -> Value {
        self.history(who)
            .await
            .into_iter()
            .find(|c| c["callId"] == call_id)
            .unwrap_or_else(|| panic!("call {call_id} not in {who}'s history"))
    }

    /// Opens `/ws` for `who` with the Authorization header.
    pub async fn ws(&self, who: &str) -> Ws {
        let mut req = self.hub().ws_url().into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.cred(who)).parse().unwrap(),
        );
        let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Ws { stream }
    }

    /// Names of the rooms LiveKit has right now.
    pub async fn livekit_rooms(&self) -> Vec<String> {
        let client = livekit_api::services::room::RoomClient::with_api_key(
            &self.lk.http_url,
            &self.lk.api_key,
            &self.lk.api_secret,
        );
        client
            .list_rooms(vec![])
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect()
    }
}

pub async fn split(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A test's WebSocket client.
pub struct Ws {
    pub stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// The next server event, skipping control frames; panics after `EVENT_TIMEOUT`.
    pub async fn next_event(&mut self) -> ServerEvent {
        self.try_next_event(EVENT_TIMEOUT)
            .await
            .expect("expected a hub event in time")
    }

    /// The next server event within `wait`, or `None`.
    pub async fn try_next_event(&mut self, wait: Duration) -> Option<ServerEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match msg {
                Ok(Message::Text(text)) => {
                    return Some(ServerEvent::parse(text.as_str()).expect("valid event"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        let _ = self.stream.send(Message::Text(text.into())).await;
    }

    /// True when the server closes the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
