//! Alerts to the log and, optionally, to a webhook, with a cooldown per kind (product.md §10).
//!
//! [`Alerts::raise`] logs every alert with `tracing` (warn or error by [`Severity`]), keeps it in
//! a ring of recent alerts for `/status`, and, when a webhook is configured and no alert of the
//! same kind went out within `cooldown_secs`, hands it to a worker thread that POSTs it.
//! The caller never waits on the network: the hand-over is a bounded channel, and an alert that
//! finds it full is dropped from the webhook only (it was already logged), and counted.
//!
//! Choices where product.md is silent (`docs/alerts.md` explains them for traders):
//!
//! - The cooldown is measured on the alerts' own `at` times (engine time, read through the
//!   clock by the caller), so replay and tests are deterministic. It starts when an alert is
//!   handed to the worker; suppressed or dropped alerts do not extend it. Alerts whose times are
//!   closer than the cooldown in either direction count as within it, so a clock stepped back
//!   cannot flood the webhook, and one stepped back further than the cooldown cannot silence it.
//! - One attempt per alert: a failed POST (connection refused, timeout, non-2xx) is logged as a
//!   warning and not retried. Retrying would delay every later alert behind a dead webhook, and
//!   the log has the alert anyway.
//! - The webhook URL embeds a secret: it is never logged, never in an error, never in `Debug`;
//!   logs name its host only. Redirects are not followed (the body would go to another host).
//! - The body serves both Slack (`text`) and Discord (`content`, at most 2000 characters) incoming
//!   webhooks; each ignores the other's fields. Discord mentions are disabled
//!   (`allowed_mentions`), so a message containing `@everyone` pings nobody.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::AlertsConfig;
use crate::model::Timestamp;
use crate::monitor::status::AlertView;

/// How many alerts [`Alerts::recent`] returns at most.
pub const RECENT_ALERTS: usize = 20;
/// How many alerts may wait for the webhook worker; more are dropped from the webhook (logged).
pub const QUEUE_CAPACITY: usize = 64;
/// Discord rejects a `content` longer than this many characters.
const DISCORD_LIMIT: usize = 2000;
/// Slack cuts a `text` longer than this many characters.
const SLACK_LIMIT: usize = 40_000;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The kill switch changed state.
    KillSwitch,
    /// A source of an instrument is older than its threshold.
    StaleData,
    /// A rule set's `decide(s)` failed.
    RuleError,
    /// A rule reload was refused (the last good set stayed live).
    ReloadFailed,
    /// A DTC session went down.
    DtcDisconnected,
    /// The day's equity fell `drawdown_dollars` below its peak.
    Drawdown,
}

impl AlertKind {
    /// Every kind, in order.
    pub const ALL: [AlertKind; 6] = [
        AlertKind::KillSwitch,
        AlertKind::StaleData,
        AlertKind::RuleError,
        AlertKind::ReloadFailed,
        AlertKind::DtcDisconnected,
        AlertKind::Drawdown,
    ];

    /// The name used in logs, metrics labels, `/status` and the webhook body.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::KillSwitch => "kill_switch",
            AlertKind::StaleData => "stale_data",
            AlertKind::RuleError => "rule_error",
            AlertKind::ReloadFailed => "reload_failed",
            AlertKind::DtcDisconnected => "dtc_disconnected",
            AlertKind::Drawdown => "drawdown",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is: it picks the log level and the label in the webhook message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Logged at warn level.
    Warning,
    /// Logged at error level.
    Critical,
}

impl Severity {
    /// `warning` or `critical`, as in the webhook body's `severity`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// `WARNING` or `CRITICAL`, as in the webhook message.
    const fn label(self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What it is about; the cooldown is per kind.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// Engine time of the event.
    pub at: Timestamp,
    /// What happened, as a sentence for a person.
    pub message: String,
}

impl Alert {
    /// An alert of `kind` at engine time `at`.
    pub fn new(
        kind: AlertKind,
        severity: Severity,
        at: Timestamp,
        message: impl Into<String>,
    ) -> Alert {
        Alert {
            kind,
            severity,
            at,
            message: message.into(),
        }
    }

    /// The one-line message of the webhook: `[mia] CRITICAL kill_switch: …`.
    pub fn headline(&self) -> String {
        format!(
            "[mia] {} {}: {}",
            self.severity.label(),
            self.kind.as_str(),
            self.message
        )
    }

    /// The JSON body POSTed to the webhook.
    pub fn webhook_body(&self) -> String {
        let headline = self.headline();
        let body = Body {
            text: truncate_chars(&slack_escape(&headline), SLACK_LIMIT),
            content: truncate_chars(&headline, DISCORD_LIMIT),
            username: "mia",
            kind: self.kind,
            severity: self.severity,
            ts: self.at.to_iso_millis(),
            allowed_mentions: AllowedMentions { parse: [] },
        };
        // A struct of strings and unit enums always serializes.
        serde_json::to_string(&body).unwrap_or_default()
    }

    fn view(&self) -> AlertView {
        AlertView {
            ts: self.at.to_iso_millis(),
            kind: self.kind.as_str().to_owned(),
            message: self.message.clone(),
        }
    }
}

/// The webhook body: Slack reads `text`, Discord reads `content`, `username` and
/// `allowed_mentions`; the rest is for people and for other receivers.
#[derive(Serialize)]
struct Body {
    text: String,
    content: String,
    username: &'static str,
    kind: AlertKind,
    severity: Severity,
    ts: String,
    allowed_mentions: AllowedMentions,
}

/// Discord: parse no mentions at all.
#[derive(Serialize)]
struct AllowedMentions {
    parse: [&'static str; 0],
}

/// Slack reads `&`, `<` and `>` as markup; its documentation asks for these three escapes.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `limit` characters, the last one an ellipsis when cut; always on a char boundary.
fn truncate_chars(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        None => s.to_owned(),
        Some(_) => {
            let keep = limit.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            format!("{}…", &s[..end])
        }
    }
}

/// What [`Alerts::raise`] did with an alert beyond logging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Logged only: no webhook is configured.
    Logged,
    /// Logged and queued for the webhook.
    Queued,
    /// Logged; an alert of the same kind went to the webhook within the cooldown.
    Suppressed,
    /// Logged; the webhook queue was full (or its worker gone), so the webhook misses it.
    Dropped,
}

/// Why [`Alerts::new`] failed. Messages never contain the webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// `webhook_url_env` names a variable that is not set.
    #[error("{0}")]
    WebhookEnv(String),
    /// The webhook URL cannot be used.
    #[error("the alerts webhook URL {0}")]
    InvalidWebhook(&'static str),
    /// The webhook worker thread could not be started.
    #[error("cannot start the alerts webhook thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Alerts of a running engine: the log, the recent ring, counts, and the webhook worker.
pub struct Alerts {
    cooldown_micros: i64,
    /// When an alert of each kind was last handed to the webhook.
    last_sent: BTreeMap<AlertKind, Timestamp>,
    recent: VecDeque<Alert>,
    counts: BTreeMap<AlertKind, u64>,
    dropped: u64,
    worker: Option<Worker>,
    /// How long `Drop` waits for queued alerts: one request's timeout.
    drop_timeout: Duration,
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand, so that the webhook URL (a secret) can never be printed: the host only.
        f.debug_struct("Alerts")
            .field("cooldown_micros", &self.cooldown_micros)
            .field("webhook_host", &self.worker.as_ref().map(|w| &w.host))
            .field("counts", &self.counts)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// The webhook worker thread and the ways to talk to it.
struct Worker {
    /// Host (and port) of the webhook, the only part of its URL that may be logged.
    host: String,
    queue: SyncSender<Alert>,
    /// Disconnects when the worker thread ends (normally or not).
    finished: Receiver<()>,
    /// Asks the worker to send nothing more (shutdown timed out).
    abandon: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Alerts {
    /// Alerts as configured: with a webhook worker when `webhook_url` or `webhook_url_env` is set.
    ///
    /// # Errors
    ///
    /// [`AlertError::WebhookEnv`] when `webhook_url_env` names an unset variable (the message
    /// names it), [`AlertError::InvalidWebhook`] when the URL is not `http(s)://host/…`, and
    /// [`AlertError::Spawn`] when the worker thread cannot start.
    pub fn new(config: &AlertsConfig) -> Result<Alerts, AlertError> {
        let timeout = Duration::from_secs(config.webhook_timeout_secs.max(1));
        let mut alerts = Alerts::disabled();
        alerts.cooldown_micros = i64::try_from(config.cooldown_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        alerts.drop_timeout = timeout;
        if let Some(url) = config.webhook().map_err(AlertError::WebhookEnv)? {
            alerts.worker = Some(Worker::start(url, timeout)?);
        }
        Ok(alerts)
    }

    /// Log-only alerts without a cooldown to keep (no webhook): for tests and replay.
    pub fn disabled() -> Alerts {
        Alerts {
            cooldown_micros: 0,
            last_sent: BTreeMap::new(),
            recent: VecDeque::with_capacity(RECENT_ALERTS),
            counts: BTreeMap::new(),
            dropped: 0,
            worker: None,
            drop_timeout: Duration::ZERO,
        }
    }

    /// Logs `alert`, remembers it, and queues it for the webhook unless its kind is cooling down.
    /// Never waits on the network.
    pub fn raise(&mut self, alert: Alert) -> Delivery {
        match alert.severity {
            Severity::Warning => {
                tracing::warn!(kind = alert.kind.as_str(), message = %alert.message, at = %alert.at, "alert");
            }
            Severity::Critical => {
                tracing::error!(kind = alert.kind.as_str(), message = %alert.message, at = %alert.at, "alert");
            }
        }
        *self.counts.entry(alert.kind).or_default() += 1;
        if self.recent.len() == RECENT_ALERTS {
            self.recent.pop_front();
        }
        self.recent.push_back(alert.clone());

        let Some(worker) = &self.worker else {
            return Delivery::Logged;
        };
        if let Some(last) = self.last_sent.get(&alert.kind) {
            // Either direction: see the module doc on clocks stepped back.
            let apart = alert.at.as_micros().abs_diff(last.as_micros());
            if apart < self.cooldown_micros.unsigned_abs() {
                return Delivery::Suppressed;
            }
        }
        let (kind, at) = (alert.kind, alert.at);
        match worker.queue.try_send(alert) {
            Ok(()) => {
                self.last_sent.insert(kind, at);
                Delivery::Queued
            }
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                tracing::warn!(
                    kind = kind.as_str(),
                    host = %worker.host,
                    dropped = self.dropped,
                    "alert webhook queue full ({QUEUE_CAPACITY}); this alert is in the log only"
                );
                Delivery::Dropped
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                tracing::warn!(
                    kind = kind.as_str(),
                    host = %worker.host,
                    dropped = self.dropped,
                    "alert webhook worker is gone; this alert is in the log only"
                );
                Delivery::Dropped
            }
        }
    }

    /// The latest alerts, newest first (at most [`RECENT_ALERTS`]).
    pub fn recent(&self) -> Vec<AlertView> {
        self.recent.iter().rev().map(Alert::view).collect()
    }

    /// Alerts raised since start, per kind (kinds never raised are absent), whatever their
    /// delivery: the figures of `mia_alerts_total{kind}`.
    pub fn counts(&self) -> BTreeMap<AlertKind, u64> {
        self.counts.clone()
    }

    /// Alerts the webhook missed because its queue was full or its worker gone.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Stops the webhook worker once it has sent what is queued, waiting at most `timeout`.
    /// Past it, the worker is told to send nothing more and left to end on its own (a request
    /// in flight ends within `webhook_timeout_secs`).
    pub fn shutdown(mut self, timeout: Duration) {
        self.stop_worker(timeout);
    }

    fn stop_worker(&mut self, timeout: Duration) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        let Worker {
            host,
            queue,
            finished,
            abandon,
            thread,
        } = worker;
        // Closing the queue is the stop signal: the worker sends what is left, then ends.
        drop(queue);
        match finished.recv_timeout(timeout) {
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {
                // Ended: the join is immediate. A panic in the worker was already reported.
                let _ = thread.join();
            }
            Err(RecvTimeoutError::Timeout) => {
                abandon.store(true, Ordering::Relaxed);
                tracing::warn!(
                    host = %host,
                    "alert webhook still busy after {timeout:?} at shutdown; undelivered alerts are in the log"
                );
            }
        }
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        self.stop_worker(self.drop_timeout);
    }
}

impl Worker {
    fn start(url: String, timeout: Duration) -> Result<Worker, AlertError> {
        let host = webhook_host(&url)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // A non-2xx answer is a response to log with its status, not an error to unpack.
            .http_status_as_error(false)
            // A webhook does not redirect; following one would send the alert elsewhere.
            .max_redirects(0)
            .build()
            .into();
        let (queue, inbox) = mpsc::sync_channel::<Alert>(QUEUE_CAPACITY);
        let (finished_tx, finished) = mpsc::channel::<()>();
        let abandon = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("mia-alerts".to_owned())
            .spawn({
                let host = host.clone();
                let abandon = Arc::clone(&abandon);
                move || {
                    // Dropped when this thread ends, which is what `stop_worker` waits for.
                    let _finished = finished_tx;
                    deliver_all(&agent, &url, &host, &inbox, &abandon);
                }
            })
            .map_err(AlertError::Spawn)?;
        Ok(Worker {
            host,
            queue,
            finished,
            abandon,
            thread,
        })
    }
}

/// The host (and port, if any) of a webhook URL, checking it is `http(s)://host…`.
fn webhook_host(url: &str) -> Result<String, AlertError> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| AlertError::InvalidWebhook("is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(AlertError::InvalidWebhook(
                "must start with http:// or https://",
            ));
        }
    }
    let Some(authority) = uri.authority() else {
        return Err(AlertError::InvalidWebhook("has no host"));
    };
    let host = authority.host();
    if host.is_empty() {
        return Err(AlertError::InvalidWebhook("has no host"));
    }
    // `authority` may carry `user:password@`; only host and port are safe to log.
    Ok(match authority.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The worker's loop: one POST per queued alert until the queue is closed and empty.
fn deliver_all(
    agent: &ureq::Agent,
    url: &str,
    host: &str,
    inbox: &Receiver<Alert>,
    abandon: &AtomicBool,
) {
    while let Ok(alert) = inbox.recv() {
        if abandon.load(Ordering::Relaxed) {
            let left = 1 + inbox.try_iter().count();
            tracing::warn!(
                host,
                left,
                "alert webhook stopped at shutdown before sending"
            );
            return;
        }
        post(agent, url, host, &alert);
    }
}

/// One attempt, never retried (see the module doc). Errors are logged, never raised.
fn post(agent: &ureq::Agent, url: &str, host: &str, alert: &Alert) {
    let kind = alert.kind.as_str();
    let result = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(alert.webhook_body());
    match result {
        Ok(response) if response.status().is_success() => {
            tracing::debug!(
                host,
                kind,
                status = response.status().as_u16(),
                "alert sent"
            );
        }
        Ok(response) => {
            tracing::warn!(
                host,
                kind,
                status = response.status().as_u16(),
                "alert webhook refused the alert"
            );
        }
        Err(error) => {
            tracing::warn!(host, kind, error = %describe(&error), "alert webhook failed");
        }
    }
}

/// ureq's error, minus anything that could echo the URL.
fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::BadUri(_) => "bad uri".to_owned(),
        ureq::Error::Http(_) => "invalid request".to_owned(),
        other => other.to_string(),
    }
}

/// Watches one set's equity (the day's P&L) for a drawdown of `threshold` dollars from its peak.
///
/// It fires once when the drawdown reaches the threshold, and again only after equity has made
/// a new peak (strictly above the previous one). The day starts at a peak of 0: the day's P&L
/// starts at 0, so a day that only loses is measured from there.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawdownWatch {
    threshold: f64,
    peak: f64,
    fired: bool,
}

impl DrawdownWatch {
    /// A watch that fires at a drawdown of `threshold` dollars (`drawdown_dollars`).
    /// A threshold that is not a positive number never fires.
    pub fn new(threshold: f64) -> DrawdownWatch {
        DrawdownWatch {
            threshold,
            peak: 0.0,
            fired: false,
        }
    }

    /// Takes the latest equity; returns the drawdown from the peak when it has just reached the
    /// threshold. A non-finite equity is ignored.
    pub fn update(&mut self, equity: f64) -> Option<f64> {
        if !equity.is_finite() {
            return None;
        }
        if equity > self.peak {
            self.peak = equity;
            self.fired = false;
            return None;
        }
        let drawdown = self.peak - equity;
        let armed = !self.fired && self.threshold > 0.0 && self.threshold.is_finite();
        if armed && drawdown >= self.threshold {
            self.fired = true;
            return Some(drawdown);
        }
        None
    }

    /// The peak so far today.
    pub fn peak(&self) -> f64 {
        self.peak
    }

    /// A new trading day: peak back to 0, armed.
    pub fn new_day(&mut self) {
        self.peak = 0.0;
        self.fired = false;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::clock::Stopwatch;

    /// Upper bound on any wait for something that should happen at once.
    const WAIT: Duration = Duration::from_secs(10);

    /// One request the receiver got.
    #[derive(Debug)]
    struct Request {
        line: String,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    }

    impl Request {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn kind(&self) -> &str {
            self.body["kind"].as_str().unwrap()
        }
    }

    /// A webhook on loopback answering `status` to each request, or never answering (`None`).
    /// Returns its URL (with a secret-looking path) and the requests it receives.
    fn receiver(status: Option<u16>) -> (String, Receiver<Request>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/T000/secret-token",
            listener.local_addr().unwrap()
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Unanswered connections are kept open so that the client waits.
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let request_line = line.trim_end().to_owned();
                let mut headers = Vec::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 {
                        break;
                    }
                    let header = line.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (k, v) = header.split_once(':').unwrap();
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .expect("a Content-Length header");
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                match status {
                    Some(code) => {
                        let reason = if code == 200 { "OK" } else { "Error" };
                        write!(
                            stream,
                            "HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .unwrap();
                    }
                    None => held.push(stream),
                }
                let request = Request {
                    line: request_line,
                    headers,
                    body: serde_json::from_slice(&body).unwrap(),
                };
                if tx.send(request).is_err() {
                    return;
                }
            }
        });
        (url, rx)
    }

    fn config(url: Option<String>, cooldown_secs: u64) -> AlertsConfig {
        AlertsConfig {
            webhook_url: url,
            webhook_url_env: None,
            cooldown_secs,
            drawdown_dollars: 500.0,
            webhook_timeout_secs: 5,
        }
    }

    fn at(secs: i64) -> Timestamp {
        // 2025-09-19T16:40:00Z.
        Timestamp::from_secs(1_758_300_000 + secs)
    }

    fn alert(kind: AlertKind, secs: i64) -> Alert {
        Alert::new(
            kind,
            Severity::Warning,
            at(secs),
            format!("{kind} at {secs}"),
        )
    }

    #[test]
    fn the_post_is_json_for_slack_and_discord() {
        let (url, requests) = receiver(Some(200));
        let mut alerts = Alerts::new(&config(Some(url), 300)).unwrap();
        let delivery = alerts.raise(Alert::new(
            AlertKind::KillSwitch,
            Severity::Critical,
            at(0),
            "HALT_TRADING: daily loss 1,020.00 ≥ 1,000.00",
        ));
        assert_eq!(delivery, Delivery::Queued);
        let request = requests.recv_timeout(WAIT).unwrap();
        assert_eq!(request.line, "POST /hooks/T000/secret-token HTTP/1.1");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let headline = "[mia] CRITICAL kill_switch: HALT_TRADING: daily loss 1,020.00 ≥ 1,000.00";
        assert_eq!(
            request.body,
            serde_json::json!({
                "text": headline,
                "content": headline,
                "username": "mia",
                "kind": "kill_switch",
                "severity": "critical",
                "ts": "2025-09-19T16:40:00.000Z",
                "allowed_mentions": { "parse": [] },
            })
        );
        alerts.shutdown(WAIT);
    }

    #[test]
    fn the_cooldown_is_per_kind_on_engine_time() {
        let (url, requests) = receiver(Some(200));
        let mut alerts = Alerts::new(&config(Some(url), 300)).unwrap();
        assert_eq!(
            alerts.raise(alert(AlertKind::StaleData, 0)),
            Delivery::Queued
        );
        assert_eq!(
            alerts.raise(alert(AlertKind::StaleData, 299)),
            Delivery::Suppressed
        );
        // Another kind is not held back by the first one's cooldown.
        assert_eq!(
            alerts.raise(alert(AlertKind::RuleError, 299)),
            Delivery::Queued
        );
        // The worker sends in order: had the suppressed one been queued, it would come second.
        let first = requests.recv_timeout(WAIT).unwrap();
        assert_eq!(
            first.body["content"],
            "[mia] WARNING stale_data: stale_data at 0"
        );
        assert_eq!(requests.recv_timeout(WAIT).unwrap().kind(), "rule_error");

        // The cooldown runs from the alert that was sent (at 0), not from the suppressed one.
        assert_eq!(
            alerts.raise(alert(AlertKind::StaleData, 300)),
            Delivery::Queued
        );
        let third = requests.recv_timeout(WAIT).unwrap();
        assert_eq!(
            third.body["content"],
            "[mia] WARNING stale_data: stale_data at 300"
        );

        // Every alert is remembered and counted, suppressed or not.
        let recent: Vec<_> = alerts.recent().into_iter().map(|v| v.message).collect();
        assert_eq!(
            recent,
            [
                "stale_data at 300",
                "rule_error at 299",
                "stale_data at 299",
                "stale_data at 0"
            ]
        );
        assert_eq!(
            alerts.counts(),
            BTreeMap::from([(AlertKind::StaleData, 3), (AlertKind::RuleError, 1)])
        );
        alerts.shutdown(WAIT);
    }

    #[test]
    fn a_clock_stepped_back_neither_floods_nor_silences() {
        let (url, requests) = receiver(Some(200));
        let mut alerts = Alerts::new(&config(Some(url), 300)).unwrap();
        assert_eq!(
            alerts.raise(alert(AlertKind::Drawdown, 1000)),
            Delivery::Queued
        );
        assert_eq!(
            alerts.raise(alert(AlertKind::Drawdown, 990)),
            Delivery::Suppressed
        );
        assert_eq!(
            alerts.raise(alert(AlertKind::Drawdown, 600)),
            Delivery::Queued
        );
        for secs in [1000, 600] {
            let request = requests.recv_timeout(WAIT).unwrap();
            assert_eq!(
                request.body["content"],
                format!("[mia] WARNING drawdown: drawdown at {secs}")
            );
        }
        alerts.shutdown(WAIT);
    }

    #[test]
    fn every_kind_goes_out_at_the_same_time() {
        let (url, requests) = receiver(Some(200));
        let mut alerts = Alerts::new(&config(Some(url), 300)).unwrap();
        for kind in AlertKind::ALL {
            assert_eq!(alerts.raise(alert(kind, 0)), Delivery::Queued, "{kind}");
        }
        for kind in AlertKind::ALL {
            assert_eq!(requests.recv_timeout(WAIT).unwrap().kind(), kind.as_str());
        }
        alerts.shutdown(WAIT);
    }

    #[test]
    fn a_refused_connection_neither_blocks_nor_panics() {
        // A port that was just free: nothing listens on it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/hook");
        let mut alerts = Alerts::new(&config(Some(url), 0)).unwrap();
        for secs in 0..3 {
            assert_eq!(
                alerts.raise(alert(AlertKind::DtcDisconnected, secs)),
                Delivery::Queued
            );
        }
        let timeout = Duration::from_secs(5);
        let watch = Stopwatch::start();
        alerts.shutdown(timeout);
        assert!(watch.elapsed() < timeout, "{:?}", watch.elapsed());
    }

    #[test]
    fn a_500_is_logged_and_the_next_alert_still_goes_out() {
        let (url, requests) = receiver(Some(500));
        let mut alerts = Alerts::new(&config(Some(url), 300)).unwrap();
        assert_eq!(
            alerts.raise(alert(AlertKind::ReloadFailed, 0)),
            Delivery::Queued
        );
        assert_eq!(requests.recv_timeout(WAIT).unwrap().kind(), "reload_failed");
        assert_eq!(
            alerts.raise(alert(AlertKind::RuleError, 1)),
            Delivery::Queued
        );
        assert_eq!(requests.recv_timeout(WAIT).unwrap().kind(), "rule_error");
        let timeout = Duration::from_secs(5);
        let watch = Stopwatch::start();
        alerts.shutdown(timeout);
        assert!(watch.elapsed() < timeout, "{:?}", watch.elapsed());
    }

    #[test]
    fn a_hanging_webhook_fills_the_queue_and_shutdown_still_returns() {
        let (url, requests) = receiver(None);
        let mut alerts = Alerts::new(&config(Some(url), 0)).unwrap();
        assert_eq!(
            alerts.raise(alert(AlertKind::StaleData, 0)),
            Delivery::Queued
        );
        // The worker is now stuck in that POST (the webhook timeout is 5 s)...
        requests.recv_timeout(WAIT).unwrap();
        // ...so the queue takes exactly its capacity and the rest is dropped, without waiting.
        let deliveries: Vec<_> = (1..=100)
            .map(|secs| alerts.raise(alert(AlertKind::StaleData, secs)))
            .collect();
        let queued = deliveries
            .iter()
            .filter(|d| **d == Delivery::Queued)
            .count();
        assert_eq!(queued, QUEUE_CAPACITY);
        assert_eq!(alerts.dropped(), (100 - QUEUE_CAPACITY) as u64);
        assert_eq!(alerts.counts()[&AlertKind::StaleData], 101);
        assert_eq!(alerts.recent().len(), RECENT_ALERTS);
        assert_eq!(alerts.recent()[0].message, "stale_data at 100");

        let timeout = Duration::from_millis(200);
        let watch = Stopwatch::start();
        alerts.shutdown(timeout);
        // Well under one webhook timeout (5 s): shutdown did not wait for the POST.
        assert!(
            watch.elapsed() < Duration::from_secs(2),
            "{:?}",
            watch.elapsed()
        );
    }

    #[test]
    fn an_unset_webhook_variable_is_an_error_naming_it() {
        let mut config = config(None, 300);
        config.webhook_url_env = Some("MIA_TEST_ALERTS_WEBHOOK_NEVER_SET_8C1F".to_owned());
        let error = Alerts::new(&config).unwrap_err();
        assert!(matches!(error, AlertError::WebhookEnv(_)));
        assert!(
            error
                .to_string()
                .contains("MIA_TEST_ALERTS_WEBHOOK_NEVER_SET_8C1F"),
            "{error}"
        );
    }

    #[test]
    fn the_webhook_url_never_shows() {
        for bad in [
            "ftp://hooks.example/secret-token",
            "http:///secret-token",
            "secret-token",
        ] {
            let error = Alerts::new(&config(Some(bad.to_owned()), 300)).unwrap_err();
            assert!(
                matches!(error, AlertError::InvalidWebhook(_)),
                "{bad}: {error:?}"
            );
            assert!(!error.to_string().contains("secret-token"), "{error}");
        }
        let url = "https://user:pw-secret@hooks.example:8443/services/secret-token".to_owned();
        assert_eq!(webhook_host(&url).unwrap(), "hooks.example:8443");
        let alerts = Alerts::new(&config(Some(url), 300)).unwrap();
        let debug = format!("{alerts:?}");
        assert!(debug.contains("hooks.example:8443"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
        alerts.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn the_body_is_cut_for_discord_and_escaped_for_slack() {
        let long = "é".repeat(3000);
        let body: serde_json::Value = serde_json::from_str(
            &Alert::new(AlertKind::RuleError, Severity::Warning, at(0), long).webhook_body(),
        )
        .unwrap();
        let content = body["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), DISCORD_LIMIT);
        assert!(content.ends_with("é…"), "{content}");
        // Slack's limit is higher: the text is whole.
        let prefix = "[mia] WARNING rule_error: ";
        assert_eq!(
            body["text"].as_str().unwrap().chars().count(),
            prefix.len() + 3000
        );

        let body: serde_json::Value = serde_json::from_str(
            &Alert::new(
                AlertKind::RuleError,
                Severity::Warning,
                at(0),
                "<@everyone> & co",
            )
            .webhook_body(),
        )
        .unwrap();
        assert_eq!(
            body["text"],
            "[mia] WARNING rule_error: &lt;@everyone&gt; &amp; co"
        );
        assert_eq!(
            body["content"],
            "[mia] WARNING rule_error: <@everyone> & co"
        );
    }

    #[test]
    fn disabled_alerts_log_and_remember_the_latest() {
        let mut alerts = Alerts::disabled();
        for secs in 0..25 {
            assert_eq!(
                alerts.raise(alert(AlertKind::Drawdown, secs)),
                Delivery::Logged
            );
        }
        let recent = alerts.recent();
        assert_eq!(recent.len(), RECENT_ALERTS);
        assert_eq!(recent[0].message, "drawdown at 24");
        assert_eq!(recent[0].kind, "drawdown");
        assert_eq!(recent[0].ts, "2025-09-19T16:40:24.000Z");
        assert_eq!(recent[19].message, "drawdown at 5");
        assert_eq!(alerts.counts(), BTreeMap::from([(AlertKind::Drawdown, 25)]));
    }

    #[test]
    fn kinds_serialize_as_their_names() {
        for kind in AlertKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
    }

    #[test]
    fn drawdown_fires_once_at_the_crossing_and_rearms_on_a_new_peak() {
        let mut watch = DrawdownWatch::new(500.0);
        assert_eq!(watch.update(200.0), None);
        assert_eq!(watch.update(-299.0), None); // 499 below the peak of 200
        assert_eq!(watch.update(-300.0), Some(500.0));
        assert_eq!(watch.update(-450.0), None); // already fired
        assert_eq!(watch.update(200.0), None); // back to the peak, not above it
        assert_eq!(watch.update(-300.0), None); // so still not armed
        assert_eq!(watch.update(250.0), None); // a new peak re-arms
        assert_eq!(watch.peak(), 250.0);
        assert_eq!(watch.update(f64::NAN), None);
        assert_eq!(watch.update(-260.0), Some(510.0));

        // A new day measures from 0.
        watch.new_day();
        assert_eq!(watch.peak(), 0.0);
        assert_eq!(watch.update(-499.99), None);
        assert_eq!(watch.update(-500.0), Some(500.0));
    }
}
