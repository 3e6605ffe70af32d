//! The caller web app's static files, embedded in the binary and served at `/`.
//!
//! The app (`hub/web/`, built with esbuild around the LiveKit JS SDK `livekit-client`)
//! is checked in built under `hub/web/dist/`, so building the hub needs no npm; `make
//! web` rebuilds it from the pinned lockfile. Everything the page loads comes from here
//! (no fonts, icons or scripts from elsewhere); its only other connection is the
//! LiveKit server named in each call's `JoinInfo.url`.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file: the body and its `Content-Type`.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_bytes!("../web/dist/index.html"),
    content_type: "text/html; charset=utf-8",
};
const APP_JS: Asset = Asset {
    body: include_bytes!("../web/dist/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const APP_CSS: Asset = Asset {
    body: include_bytes!("../web/dist/app.css"),
    content_type: "text/css; charset=utf-8",
};
const FAVICON: Asset = Asset {
    body: include_bytes!("../web/dist/favicon.svg"),
    content_type: "image/svg+xml",
};

/// The page's Content-Security-Policy: scripts, styles and images from the hub only;
/// connections to the hub and to LiveKit (whose address the hub gives per call, so any
/// `ws:`/`wss:` origin, and `http(s):` for livekit-client's connection check);
/// media from the camera and the call (`blob:`, `mediastream:`).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self' ws: wss: http: https:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

fn serve(asset: &Asset) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            // Small files, and a new hub version must never meet an old cached app.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        asset.body,
    )
        .into_response();
    if asset.content_type.starts_with("text/html") {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    response
}

/// Routes `/` (and `/index.html`), `/app.js`, `/app.css`, `/favicon.svg`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve(&INDEX) }))
        .route("/index.html", get(|| async { serve(&INDEX) }))
        .route("/app.js", get(|| async { serve(&APP_JS) }))
        .route("/app.css", get(|| async { serve(&APP_CSS) }))
        .route("/favicon.svg", get(|| async { serve(&FAVICON) }))
}
