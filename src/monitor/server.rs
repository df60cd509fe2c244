//! The monitor's HTTP server: `/metrics`, `/status`, the dashboard at `/`, and the two
//! kill-switch requests.
//!
//! It runs on its own thread with a current-thread tokio runtime, so a slow or hostile client
//! can never take time from the engine: every answer is built from what the engine already
//! published ([`Published`]), and a kill-switch request is only forwarded over the
//! [`Control`] channel, the engine staying the one writer of the kill switch.
//!
//! Requests that change state must carry the per-run token (header `X-Mia-Token`), which only
//! the dashboard page holds, and are refused when the browser says they come from another
//! origin (`Origin`, `Sec-Fetch-Site`): a web page open in the trader's browser can send a POST
//! to 127.0.0.1, but cannot read the page to learn the token nor pass the origin check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::TryRngCore;
use serde::Deserialize;
use serde_json::json;

use super::status::KillView;
use super::{Control, ControlAction, Published};
use crate::risk::KillState;

/// The dashboard page; `{{TOKEN}}` is replaced by the run's token.
const DASHBOARD: &str = include_str!("dashboard.html");

/// How long a kill-switch request waits for the engine's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The header that carries the per-run token.
pub const TOKEN_HEADER: &str = "x-mia-token";

/// The content type of `/metrics` (OpenMetrics, which `prometheus-client` writes).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The page may run only its own inline script and style and talk only to this server; it may
/// not be framed, so another site cannot lay it under a decoy and have the trader click
/// "Engage" or "Reset" (clickjacking).
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Why the monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr} for the monitor: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not be set up.
    #[error("cannot start the monitor's server: {0}")]
    Runtime(#[source] std::io::Error),
    /// The operating system gave no random bytes for the token.
    #[error("cannot draw the monitor's token from the operating system: {0}")]
    Token(String),
}

/// The running HTTP server; stops (and joins its thread) on [`MonitorServer::stop`] or drop.
#[derive(Debug)]
pub struct MonitorServer {
    addr: SocketAddr,
    token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the handlers share.
#[derive(Debug)]
struct AppState {
    published: Arc<Published>,
    control: Sender<Control>,
    token: String,
    page: String,
    /// Origins whose requests are this server's own (`http://host:port`).
    origins: Vec<String>,
    /// `Host` values accepted for the page and the requests; empty accepts any (bound to an
    /// unspecified address, where the names the machine is reached by are not known).
    hosts: Vec<String>,
}

impl MonitorServer {
    /// Binds `addr` (port 0 picks a free port) and serves on its own thread.
    ///
    /// # Errors
    ///
    /// [`MonitorError::Bind`] when the address cannot be bound, [`MonitorError::Runtime`] and
    /// [`MonitorError::Token`] when the thread, its runtime or the token cannot be made.
    pub fn start(
        addr: SocketAddr,
        published: Arc<Published>,
        control: Sender<Control>,
    ) -> Result<MonitorServer, MonitorError> {
        let token = new_token()?;
        // Bound here rather than on the thread, so that a busy port is the caller's error.
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| MonitorError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| MonitorError::Bind { addr, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(MonitorError::Runtime)?;
        let (origins, hosts) = own_origins(bound);
        let state = Arc::new(AppState {
            published,
            control,
            page: DASHBOARD.replace("{{TOKEN}}", &token),
            token: token.clone(),
            origins,
            hosts,
        });
        let app = router(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mia-monitor".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "monitor: cannot register the listener");
                            return;
                        }
                    };
                    let shutdown = async {
                        // A dropped sender (the server dropped) stops the server too.
                        let _ = rx.await;
                    };
                    if let Err(e) = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(error = %e, "monitor: the server stopped");
                    }
                });
            })
            .map_err(MonitorError::Runtime)?;
        tracing::info!(url = %format!("http://{bound}/"), "monitor: serving");
        Ok(MonitorServer {
            addr: bound,
            token,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The dashboard's address, `http://127.0.0.1:PORT/` (loopback when bound to every
    /// interface).
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], self.addr.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.addr.port()))
            }
            _ => self.addr,
        };
        format!("http://{host}/")
    }

    /// The per-run token that kill-switch requests must carry in `X-Mia-Token`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Stops accepting, lets requests in flight finish, and joins the thread.
    pub fn stop(mut self) {
        self.shutdown_and_join();
    }

    fn shutdown_and_join(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("monitor: the server thread panicked");
            }
        }
    }
}

impl Drop for MonitorServer {
    fn drop(&mut self) {
        self.shutdown_and_join();
    }
}

/// 16 bytes from the operating system, as 32 hex characters.
fn new_token() -> Result<String, MonitorError> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| MonitorError::Token(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The origins and `Host` values of this server as a browser names them.
fn own_origins(bound: SocketAddr) -> (Vec<String>, Vec<String>) {
    let port = bound.port();
    let mut hosts = vec![bound.to_string()];
    if bound.ip().is_loopback() {
        hosts.push(format!("localhost:{port}"));
    }
    let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
    if bound.ip().is_unspecified() {
        // Reached by any of the machine's names: the Host check cannot be made, and the origin
        // check compares with the Host of the request instead (see `same_origin`).
        hosts.clear();
    }
    (origins, hosts)
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/kill-switch/engage", post(engage))
        .route("/api/kill-switch/reset", post(reset))
        .fallback(not_found)
        .with_state(state)
}

fn json_response(code: StatusCode, body: &serde_json::Value) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn error(code: StatusCode, message: &str) -> Response {
    json_response(code, &json!({ "error": message }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

async fn page(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // A page served under a foreign Host (DNS rebinding) would hand that site the token.
    if !host_ok(&app, &headers) {
        return error(StatusCode::FORBIDDEN, "unknown Host");
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        app.page.clone(),
    )
        .into_response()
}

async fn status(State(app): State<Arc<AppState>>) -> Response {
    let status = app.published.status.load();
    match serde_json::to_string(&**status) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, METRICS_CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        app.published.metrics.render(),
    )
        .into_response()
}

/// Body of `POST /api/kill-switch/engage` and `/reset`; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    level: Option<String>,
    reason: Option<String>,
}

async fn engage(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match authorize(&app, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let level = match request.level.as_deref() {
        None => KillState::Emergency,
        Some(text) => match text.parse::<KillState>() {
            Ok(KillState::Normal) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "NORMAL is not a level to engage: use /api/kill-switch/reset",
                );
            }
            Ok(level) => level,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        },
    };
    let reason = reason_or_default(request.reason);
    forward(&app, ControlAction::Engage { level, reason }).await
}

async fn reset(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match authorize(&app, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let reason = reason_or_default(request.reason);
    forward(&app, ControlAction::Reset { reason }).await
}

fn reason_or_default(reason: Option<String>) -> String {
    match reason {
        Some(r) if !r.trim().is_empty() => r.trim().to_owned(),
        _ => "dashboard".to_owned(),
    }
}

/// The checks of a state-changing request, then its body: the token first (nothing about the
/// request is looked at before it), then the origin, then the JSON.
fn authorize(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Request, Response> {
    let token = headers.get(TOKEN_HEADER).map(HeaderValue::as_bytes);
    if !token.is_some_and(|t| constant_time_eq(t, app.token.as_bytes())) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "missing or wrong X-Mia-Token: use the dashboard page of this run",
        ));
    }
    if !host_ok(app, headers) || !same_origin(app, headers) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "refused: the request comes from another origin",
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("bad JSON body: {e}")))
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn host_ok(app: &AppState, headers: &HeaderMap) -> bool {
    if app.hosts.is_empty() {
        return true;
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| app.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)))
}

/// No `Origin` is a non-browser client (curl, `mia`), which the token alone admits; a browser
/// always sends `Origin` on a POST, and it must be ours.
fn same_origin(app: &AppState, headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if fetch_site.eq_ignore_ascii_case("cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if app.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    // Bound to every interface: the page's origin is whatever host the browser used.
    app.hosts.is_empty()
        && headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| origin.eq_ignore_ascii_case(&format!("http://{host}")))
}

/// Sends the request to the engine and waits (off the runtime's thread) for its answer.
async fn forward(app: &AppState, action: ControlAction) -> Response {
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    if app
        .control
        .send(Control {
            action,
            reply: reply_tx,
        })
        .is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine does not take requests (stopping?)",
        );
    }
    let answer = tokio::task::spawn_blocking(move || reply_rx.recv_timeout(REPLY_TIMEOUT)).await;
    match answer {
        Ok(Ok(Ok(view))) => kill_view(&view),
        Ok(Ok(Err(message))) => error(StatusCode::CONFLICT, &message),
        Ok(Err(RecvTimeoutError::Timeout)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer within 5 s; check `mia kill-switch status`",
        ),
        Ok(Err(RecvTimeoutError::Disconnected)) | Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine dropped the request; check `mia kill-switch status`",
        ),
    }
}

fn kill_view(view: &KillView) -> Response {
    match serde_json::to_value(view) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn loopback_accepts_localhost_as_its_origin() {
        let (origins, hosts) = own_origins("127.0.0.1:9464".parse().unwrap());
        assert_eq!(origins, ["http://127.0.0.1:9464", "http://localhost:9464"]);
        assert_eq!(hosts, ["127.0.0.1:9464", "localhost:9464"]);
        let (_, hosts) = own_origins("0.0.0.0:9464".parse().unwrap());
        assert!(hosts.is_empty());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn the_page_embeds_the_token_and_no_url() {
        assert!(DASHBOARD.contains("{{TOKEN}}"));
        assert!(!DASHBOARD.contains("http://") && !DASHBOARD.contains("https://"));
    }
}
