//! The HTTP surface (design §3): routes, bearer authentication, JSON error bodies,
//! `/health`, `/metrics` and the LiveKit webhook endpoint. Handlers reach the database
//! only through `hub.store` (an `AsyncStore`: tokio's blocking pool), never on a
//! worker thread.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callbox_protocol::{
    Ack, CallStatus, EndRequest, ErrorBody, Health, InviteRequest, Me, RespondRequest,
    SigninRequest, SigninResponse,
};
use serde::Deserialize;

use crate::auth::{AuthError, Principal, bearer_from_header, hash_credential};
use crate::livekit::LiveKitError;
use crate::model::CallError;
use crate::service::{Hub, Responded, ServiceError, now_ms};
use crate::sessions::{self, SessionError};

/// An error response: status + [`ErrorBody`].
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`ErrorBody.error`).
    pub code: &'static str,
    /// Human sentence (`ErrorBody.message`).
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the hub log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        let (status, code) = match &e {
            ServiceError::Call(c) => match c {
                CallError::CallNotFound(_) => (S::NOT_FOUND, "call_not_found"),
                CallError::InvitationNotFound(_) => (S::NOT_FOUND, "invitation_not_found"),
                CallError::NotYourInvitation(_) => (S::FORBIDDEN, "not_your_invitation"),
                CallError::InvitationNotPending { .. } => (S::CONFLICT, "invitation_not_pending"),
                CallError::NotAParticipant(_) => (S::FORBIDDEN, "not_a_participant"),
                CallError::CallNotActive { .. } => (S::CONFLICT, "call_not_active"),
            },
            ServiceError::NoInvitees => (S::BAD_REQUEST, "no_invitees"),
            ServiceError::SelfInvite => (S::BAD_REQUEST, "self_invite"),
            ServiceError::DuplicateInvitee(_) => (S::BAD_REQUEST, "duplicate_invitee"),
            ServiceError::TooManyParticipants { .. } => (S::BAD_REQUEST, "too_many_participants"),
            ServiceError::UnknownInvitee(_) => (S::NOT_FOUND, "unknown_invitee"),
            ServiceError::RoomNameFromClient => (S::BAD_REQUEST, "room_name_not_allowed"),
            ServiceError::NotAllowed { .. } => (S::FORBIDDEN, "not_allowed"),
            ServiceError::RoomInUse(_) => (S::CONFLICT, "room_in_use"),
            ServiceError::TooManyInvitations { .. } => {
                (S::TOO_MANY_REQUESTS, "too_many_invitations")
            }
            ServiceError::BadReason => (S::BAD_REQUEST, "bad_reason"),
            ServiceError::LiveKitUnavailable(_) => (S::BAD_GATEWAY, "livekit_unavailable"),
            ServiceError::Store(_) | ServiceError::Token(_) => return Self::internal(&e),
        };
        Self::new(status, code, msg)
    }
}

/// Runs a state-changing request on its own task, so a client that disconnects
/// mid-request cannot leave a call half set up (hyper drops the handler future).
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, ServiceError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// The authenticated caller (`Authorization: Bearer <credential>`).
pub struct Caller(pub Principal);

/// The authenticated caller of `/ws`: the header, or `?access_token=` for browsers.
pub struct WsCaller(pub Principal);

/// A principal's own credential, else a browser session's (`crate::sessions`).
async fn authenticate(hub: &Hub, credential: Option<&str>) -> Result<Principal, ApiError> {
    let credential = credential.ok_or(AuthError::MissingCredential)?;
    let hash = hash_credential(credential);
    let found = hub
        .store
        .run(move |s| match s.principal_by_credential_hash(&hash)? {
            None => sessions::principal(s, &hash),
            own => Ok(own),
        })
        .await;
    match found {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(AuthError::UnknownCredential.into()),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

fn header_credential(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_from_header)
}

impl FromRequestParts<Arc<Hub>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        authenticate(hub, header_credential(parts))
            .await
            .map(Caller)
    }
}

impl FromRequestParts<Arc<Hub>> for WsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        if let Some(cred) = header_credential(parts) {
            return authenticate(hub, Some(cred)).await.map(WsCaller);
        }
        let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri).ok();
        let cred = query
            .as_ref()
            .and_then(|q| q.get("access_token"))
            .map(String::as_str);
        authenticate(hub, cred.filter(|c| !c.is_empty()))
            .await
            .map(WsCaller)
    }
}

/// Builds the router with every route of design §3.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/livekit/webhook", post(webhook))
        .route("/api/calls/invite", post(invite))
        .route("/api/calls/invitations/respond", post(respond))
        .route("/api/calls/end", post(end))
        .route("/api/calls/{call_id}/token", post(token))
        .route("/api/calls/{call_id}/tracks", get(tracks))
        .route("/api/calls/active", get(active))
        .route("/api/contacts", get(contacts))
        .route("/api/calls/history", get(history))
        .route("/api/me", get(me))
        .route("/api/signin", post(signin))
        .route("/api/signout", post(signout))
        .route("/ws", get(ws))
        .merge(crate::web::router())
        .fallback(not_found)
        .with_state(hub)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// `/metrics` for a scraper with `Authorization: Bearer <metrics_token>`; off (403)
/// without a configured token.
async fn metrics(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let expected = &hub.config.metrics_token;
    if expected.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics_disabled",
            "/metrics is off: set metrics_token in the hub config and scrape with \
             Authorization: Bearer <metrics_token>",
        ));
    }
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_from_header)
        .unwrap_or_default();
    // Compared as hashes: equal-length values, so the time says nothing about a prefix.
    if hash_credential(sent) != hash_credential(expected) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "/metrics needs Authorization: Bearer <metrics_token>",
        ));
    }
    let counts = hub
        .store
        .run(|s| s.call_status_counts())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let mut out = String::new();
    out.push_str("# HELP callbox_hub_calls_total Calls in the hub database, by status.\n");
    out.push_str("# TYPE callbox_hub_calls_total gauge\n");
    for s in CallStatus::ALL {
        let n = counts.get(s.as_str()).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "callbox_hub_calls_total{{status=\"{}\"}} {n}",
            s.as_str()
        );
    }
    out.push_str("# HELP callbox_hub_websocket_clients Open WebSocket connections.\n");
    out.push_str("# TYPE callbox_hub_websocket_clients gauge\n");
    let _ = writeln!(out, "callbox_hub_websocket_clients {}", hub.clients.count());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

async fn invite(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let join = detached(async move { hub.invite(&caller, req).await }).await?;
    Ok((StatusCode::CREATED, Json(join)).into_response())
}

async fn respond(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    body: Result<Json<RespondRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    Ok(
        match detached(async move { hub.respond(&caller, req).await }).await? {
            Responded::Joined(join) => Json(*join).into_response(),
            Responded::Rejected => Json(Ack { ok: true }).into_response(),
        },
    )
}

async fn end(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    body: Result<Json<EndRequest>, JsonRejection>,
) -> Result<Json<Ack>, ApiError> {
    let Json(req) = body?;
    detached(async move { hub.end(&caller, req).await }).await?;
    Ok(Json(Ack { ok: true }))
}

async fn token(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(hub.token(&caller, &call_id).await?).into_response())
}

async fn tracks(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    let tracks = detached(async move { hub.tracks(&caller, &call_id).await }).await?;
    Ok(Json(tracks).into_response())
}

async fn contacts(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    Ok(Json(hub.contacts(&caller).await?).into_response())
}

async fn me(State(hub): State<Arc<Hub>>, Caller(caller): Caller) -> Result<Json<Me>, ApiError> {
    let identity = caller.identity.clone();
    let display_name = hub
        .store
        .run(move |s| crate::contacts::display_name(s, &identity))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(Me {
        identity: caller.identity,
        display_name,
        kind: caller.kind.as_str().to_owned(),
    }))
}

async fn signin(
    State(hub): State<Arc<Hub>>,
    body: Result<Json<SigninRequest>, JsonRejection>,
) -> Result<Json<SigninResponse>, ApiError> {
    let Json(req) = body?;
    let now = now_ms();
    match hub
        .store
        .run(move |s| sessions::redeem(s, &req.code, now))
        .await
    {
        Ok((identity, credential)) => {
            tracing::info!(identity, "signed in with a one-time link");
            Ok(Json(SigninResponse {
                identity,
                credential,
            }))
        }
        Err(e @ SessionError::InvalidLink) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_link",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// Forgets the browser session the request authenticates with; a principal's own
/// credential stays valid (the page forgets it itself).
async fn signout(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Json<Ack>, ApiError> {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_from_header)
        .unwrap_or_default();
    let hash = hash_credential(credential);
    let forgot = hub
        .store
        .run(move |s| sessions::forget(s, &hash))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tracing::info!(identity = caller.identity, session = forgot, "signed out");
    Ok(Json(Ack { ok: true }))
}

async fn active(State(hub): State<Arc<Hub>>, Caller(caller): Caller) -> Result<Response, ApiError> {
    Ok(Json(hub.active(&caller).await?).into_response())
}

/// Query of `GET /api/calls/history`.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    /// Page size, default 50, capped at 200.
    limit: Option<u32>,
    /// Records to skip, default 0.
    offset: Option<u32>,
}

async fn history(
    State(hub): State<Arc<Hub>>,
    Caller(caller): Caller,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let records = hub
        .history(&caller, q.limit.unwrap_or(50), q.offset.unwrap_or(0))
        .await?;
    Ok(Json(records).into_response())
}

async fn ws(
    State(hub): State<Arc<Hub>>,
    WsCaller(caller): WsCaller,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(alive) = hub.ws_alive_token() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "hub is shutting down",
        )
        .into_response();
    };
    upgrade
        .max_message_size(crate::ws::MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(crate::ws::MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| crate::ws::run_connection(hub, caller, socket, alive))
}

async fn webhook(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<Ack>, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing webhook signature",
            )
        })?;
    let notice = hub
        .livekit
        .verify_webhook(&body, auth)
        .map_err(|e| match e {
            LiveKitError::WebhookBody(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            _ => {
                tracing::warn!(error = %e, "rejected LiveKit webhook");
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
        })?;
    tracing::debug!(
        event = %notice.event, room = notice.room.as_deref().unwrap_or(""),
        participant = notice.participant.as_deref().unwrap_or(""), "LiveKit webhook"
    );
    detached(async move { hub.on_webhook(notice).await }).await?;
    Ok(Json(Ack { ok: true }))
}
