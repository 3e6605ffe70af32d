//! The box's side of the hub protocol (design §3): REST calls ([`HubClient`]), the
//! event WebSocket ([`ws::run`]) with capped, jittered exponential reconnect, and the
//! hub as the media thread's source of the callers' track codecs ([`HubTrackCodecs`]).

pub mod ws;

use std::time::Duration;

use callbox_protocol::{
    CallType, EndRequest, ErrorBody, InviteRequest, JoinInfo, PublishedTrack, RejectReason,
    RespondAction, RespondRequest,
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::config::HubConfig;
use crate::media::TrackCodecSource;

/// A failed request to the hub.
#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    /// Could not reach the hub at all (DNS, refused, timeout, TLS).
    #[error("hub unreachable at {url}: {source}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// What reqwest said.
        source: reqwest::Error,
    },
    /// The hub did not accept the device credential.
    #[error("hub at {url} rejected the device credential (HTTP 401): check hub.credential")]
    Unauthorized {
        /// The request URL.
        url: String,
    },
    /// Any other non-2xx answer.
    #[error("hub at {url} answered HTTP {status}: {error}: {message}")]
    Status {
        /// The request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// `ErrorBody.error`, or `unknown`.
        error: String,
        /// `ErrorBody.message`, or the raw body.
        message: String,
    },
    /// A 2xx answer whose body was not the expected JSON.
    #[error("hub at {url} sent an unexpected body: {detail}")]
    Decode {
        /// The request URL.
        url: String,
        /// What serde said.
        detail: String,
    },
    /// The HTTP client could not be built (TLS roots).
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// REST client for the hub, authenticated with the device credential.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: String,
    credential: SecretString,
}

impl HubClient {
    /// `base` is `hub.url` without a trailing slash.
    pub fn new(cfg: &HubConfig, credential: &str) -> Result<Self, SignalingError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.request_timeout_ms.min(5000)))
            .build()
            .map_err(SignalingError::Client)?;
        Ok(Self {
            http,
            base: cfg.url.clone(),
            credential: SecretString::from(credential),
        })
    }

    /// The hub's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The credential, for the WebSocket's `Authorization` header.
    pub fn credential(&self) -> &str {
        self.credential.expose_secret()
    }

    async fn post<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(String, String), SignalingError> {
        let url = format!("{}{}", self.base, path);
        let request = self.http.post(&url).json(body);
        self.send(url, request).await
    }

    /// Sends `request` to `url` with the credential; the body of a 2xx answer, else
    /// the hub's error.
    async fn send(
        &self,
        url: String,
        request: reqwest::RequestBuilder,
    ) -> Result<(String, String), SignalingError> {
        let unreachable = |source| SignalingError::Unreachable {
            url: url.clone(),
            source,
        };
        let resp = request
            .bearer_auth(self.credential.expose_secret())
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(SignalingError::Unauthorized { url });
        }
        if !status.is_success() {
            let (error, message) = match serde_json::from_str::<ErrorBody>(&text) {
                Ok(b) => (b.error, b.message),
                Err(_) => ("unknown".into(), text),
            };
            return Err(SignalingError::Status {
                url,
                status: status.as_u16(),
                error,
                message,
            });
        }
        Ok((url, text))
    }

    async fn post_json<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, SignalingError> {
        let (url, text) = self.post(path, body).await?;
        serde_json::from_str(&text).map_err(|e| SignalingError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    /// Accepts an invitation; returns the join tokens.
    pub async fn accept(&self, invitation_id: &str) -> Result<JoinInfo, SignalingError> {
        let body = RespondRequest {
            invitation_id: invitation_id.to_owned(),
            action: RespondAction::Accept,
            reason: None,
        };
        self.post_json("/api/calls/invitations/respond", &body)
            .await
    }

    /// Rejects an invitation with `reason`.
    pub async fn reject(
        &self,
        invitation_id: &str,
        reason: RejectReason,
    ) -> Result<(), SignalingError> {
        let body = RespondRequest {
            invitation_id: invitation_id.to_owned(),
            action: RespondAction::Reject,
            reason: Some(reason),
        };
        self.post("/api/calls/invitations/respond", &body)
            .await
            .map(drop)
    }

    /// Places a video call to `callee`; returns the box's join tokens.
    pub async fn invite(&self, callee: &str) -> Result<JoinInfo, SignalingError> {
        let body = InviteRequest {
            call_type: CallType::Video,
            invitees: vec![callee.to_owned()],
            room_name: None,
        };
        self.post_json("/api/calls/invite", &body).await
    }

    /// Ends (hangs up) a call.
    pub async fn end(&self, call_id: &str, reason: &str) -> Result<(), SignalingError> {
        let body = EndRequest {
            call_id: call_id.to_owned(),
            reason: Some(reason.to_owned()),
        };
        self.post("/api/calls/end", &body).await.map(drop)
    }

    /// The tracks published in a call's room (`GET /api/calls/{callId}/tracks`).
    pub async fn tracks(&self, call_id: &str) -> Result<Vec<PublishedTrack>, SignalingError> {
        let url = format!("{}/api/calls/{call_id}/tracks", self.base);
        let request = self.http.get(&url);
        let (url, text) = self.send(url, request).await?;
        serde_json::from_str(&text).map_err(|e| SignalingError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    /// Fresh join tokens for a call the box is in (rejoin after a media fault).
    pub async fn token(&self, call_id: &str) -> Result<JoinInfo, SignalingError> {
        self.post_json(
            &format!("/api/calls/{call_id}/token"),
            &serde_json::json!({}),
        )
        .await
    }
}

/// The hub as the media thread's [`TrackCodecSource`]: `GET /api/calls/{id}/tracks`,
/// run on the daemon's tokio runtime, waited for on the calling (GStreamer) thread.
pub struct HubTrackCodecs {
    hub: HubClient,
    runtime: tokio::runtime::Handle,
}

impl HubTrackCodecs {
    /// How long one request may take before the box answers with its preference.
    pub const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

    /// Uses `hub` on `runtime` (the daemon's).
    pub fn new(hub: HubClient, runtime: tokio::runtime::Handle) -> Self {
        Self { hub, runtime }
    }
}

impl TrackCodecSource for HubTrackCodecs {
    fn published_tracks(&self, call_id: &str) -> Result<Vec<PublishedTrack>, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let hub = self.hub.clone();
        let call_id = call_id.to_owned();
        self.runtime.spawn(async move {
            let _ = tx.send(hub.tracks(&call_id).await);
        });
        match rx.recv_timeout(Self::TIMEOUT) {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the hub did not list the call's tracks within {} ms",
                Self::TIMEOUT.as_millis()
            )),
        }
    }
}
