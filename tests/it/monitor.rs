//! The monitor's HTTP server in process: `/status`, `/metrics`, the page, and the token and
//! origin rules of the kill-switch requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use mia::monitor::metrics::{ChartLabel, TierLabel};
use mia::monitor::server::MonitorServer;
use mia::monitor::status::{
    AlertView, ChartView, Counts, DecisionView, EquityView, InstrumentView, KillView, ReloadView,
    RouteView, SetView, SourceView,
};
use mia::monitor::{Control, ControlAction, Published, Status};
use mia::risk::KillState;
use serde_json::{Value, json};

use crate::support::TestCommand;

/// A status with every part filled: two sets, decisions with reasons, an equity curve of
/// `equity_points` points.
pub(crate) fn sample_status(equity_points: usize) -> Status {
    let equity = (0..equity_points)
        .map(|i| EquityView {
            ts: format!("2025-09-19T14:{:02}:00.000000Z", 31 + i),
            equity: [250.0, -125.0, 400.0, 310.0, 820.0][i % 5],
        })
        .collect();
    let set = |name: &str, venue: &str, equity: Vec<EquityView>| SetView {
        name: name.into(),
        dir: format!("rules/{name}"),
        hash: "0123456789abcdef0123456789abcdef".into(),
        evaluations: 42,
        decisions: BTreeMap::from([("GOOD".into(), 3), ("NO_TRADE".into(), 38)]),
        rule_errors: 1,
        reloads: 2,
        reload_failures: 1,
        last_reload: Some(ReloadView {
            at: "2025-09-19T14:20:00.000000Z".into(),
            outcome: "failed".into(),
            message: "entry.rhai:3:7 unknown property s.prce".into(),
        }),
        venue: venue.into(),
        pnl: 812.5,
        realized: 820.0,
        trades: 5,
        wins: 3,
        equity,
        positions: BTreeMap::from([("ES".into(), 1)]),
    };
    let decision = |ts: &str, instrument: &str, set: &str, reasons: &[&str]| DecisionView {
        ts: ts.into(),
        instrument: instrument.into(),
        set: set.into(),
        rules: "0123456789abcdef".into(),
        score: 71.5,
        direction: "long".into(),
        tier: "GOOD".into(),
        reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
        vetoes: vec![],
        verdict: "approved".into(),
        detail: String::new(),
    };
    Status {
        format: mia::monitor::status::STATUS_FORMAT,
        version: "0.1.0".into(),
        started: "2025-09-19T13:30:00.000000Z".into(),
        now: "2025-09-19T14:40:00.000000Z".into(),
        mode: "paper".into(),
        data_dir: "/data/sierra".into(),
        journal_dir: "/data/journal".into(),
        kill_switch: KillView {
            state: KillState::Normal,
            since: "2025-09-19T13:30:00.000000Z".into(),
            reason: String::new(),
            seq: 0,
        },
        sets: vec![
            set("live", "paper", equity),
            set("shadow", "paper", Vec::new()),
        ],
        instruments: vec![
            InstrumentView {
                name: "ES".into(),
                price: Some(6650.25),
                sources: vec![
                    SourceView {
                        source: "minute".into(),
                        age_secs: Some(2.5),
                        stale: false,
                    },
                    SourceView {
                        source: "menthorq".into(),
                        age_secs: None,
                        stale: true,
                    },
                ],
            },
            InstrumentView {
                name: "NQ".into(),
                price: None,
                sources: vec![],
            },
        ],
        routes: vec![RouteView {
            instrument: "ES".into(),
            address: "127.0.0.1:11099".into(),
            state: "down".into(),
            reason: Some("connection refused".into()),
        }],
        counts: Counts {
            lines_read: 1000,
            lines_accepted: 990,
            lines_rejected: 10,
            decisions: 84,
            orders_submitted: 5,
            fills: 10,
            rejections: 0,
            trades: 5,
        },
        charts: vec![ChartView {
            chart: 3,
            read: 600,
            rejected: 4,
            lag_secs: Some(0.8),
        }],
        recent_decisions: vec![
            decision(
                "2025-09-19T14:39:00.000000Z",
                "ES",
                "live",
                &[
                    "gamma_wall +20: price at the call resistance",
                    "<b>vwap</b> +10: above",
                ],
            ),
            decision(
                "2025-09-19T14:38:00.000000Z",
                "NQ",
                "shadow",
                &["trend +15: three higher highs"],
            ),
            DecisionView {
                ts: "2025-09-19T14:37:00.000000Z".into(),
                instrument: "RTY".into(),
                set: "live".into(),
                detail: "entry.rhai:12:3 division by zero".into(),
                ..DecisionView::default()
            },
        ],
        recent_alerts: vec![AlertView {
            ts: "2025-09-19T14:20:00.000000Z".into(),
            kind: "reload_failed".into(),
            message: "live set kept".into(),
        }],
    }
}

/// An HTTP client that returns 4xx and 5xx answers instead of errors.
pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A server on a free loopback port over `status`, and the engine's end of the control
/// channel.
fn serve(status: Status) -> (MonitorServer, Arc<Published>, Receiver<Control>) {
    let published = Published::new();
    published.status.store(Arc::new(status));
    let (tx, rx) = channel();
    let server = MonitorServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&published), tx)
        .expect("start the monitor");
    (server, published, rx)
}

/// `(status code, body as JSON)` of a POST with these headers.
fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let mut req = client().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send_json(body).expect("POST answered");
    let code = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {code} is not JSON ({e}): {text}"));
    (code, value)
}

fn get(url: &str) -> (u16, String, String) {
    let mut resp = client().get(url).call().expect("GET answered");
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let code = resp.status().as_u16();
    (code, kind, resp.body_mut().read_to_string().unwrap())
}

#[test]
fn status_round_trips() {
    let status = sample_status(3);
    let (server, published, _rx) = serve(status.clone());
    let (code, kind, body) = get(&format!("{}status", server.url()));
    assert_eq!(code, 200);
    assert!(kind.starts_with("application/json"), "{kind}");
    let back: Status = serde_json::from_str(&body).unwrap();
    assert_eq!(back, status);

    // A new status is served as soon as it is published.
    let mut next = status;
    next.now = "2025-09-19T14:41:00.000000Z".into();
    published.status.store(Arc::new(next.clone()));
    let (_, _, body) = get(&format!("{}status", server.url()));
    assert_eq!(serde_json::from_str::<Status>(&body).unwrap(), next);
    server.stop();
}

#[test]
fn metrics_show_what_the_engine_counted() {
    let (server, published, _rx) = serve(Status::default());
    let m = &published.metrics;
    m.lines_read
        .get_or_create(&ChartLabel { chart: "3".into() })
        .inc_by(17);
    m.decisions
        .get_or_create(&TierLabel {
            set: "live".into(),
            tier: "PREMIUM".into(),
        })
        .inc();
    m.set_kill_state(KillState::HaltTrading);
    let (code, kind, text) = get(&format!("{}metrics", server.url()));
    assert_eq!(code, 200);
    assert_eq!(
        kind,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(
        text.contains("mia_lines_read_total{chart=\"3\"} 17"),
        "{text}"
    );
    assert!(
        text.contains("mia_decisions_total{set=\"live\",tier=\"PREMIUM\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mia_kill_switch_state{state=\"HALT_TRADING\"} 1"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[test]
fn unknown_paths_are_404() {
    let (server, _published, _rx) = serve(Status::default());
    let (code, _, body) = get(&format!("{}nothing/here", server.url()));
    assert_eq!(code, 404);
    assert!(body.contains("not found"), "{body}");
    // A known path with the wrong method.
    let (code, _, _) = get(&format!("{}api/kill-switch/engage", server.url()));
    assert_eq!(code, 405);
}

#[test]
fn a_foreign_host_gets_neither_the_page_nor_the_switch() {
    // What a DNS-rebinding page would send: its own name, resolved to 127.0.0.1.
    let (server, _published, rx) = serve(Status::default());
    let host = format!("evil.example:{}", server.addr().port());
    let mut resp = client()
        .get(&server.url())
        .header("Host", &host)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let page = resp.body_mut().read_to_string().unwrap();
    assert!(!page.contains(server.token()));
    let token = server.token().to_owned();
    let (code, _) = post(
        &format!("{}api/kill-switch/engage", server.url()),
        &[("X-Mia-Token", &token), ("Host", &host)],
        &json!({}),
    );
    assert_eq!(code, 403);
    assert!(rx.try_recv().is_err());
    // The loopback names are this server's own.
    let own = format!("localhost:{}", server.addr().port());
    let resp = client()
        .get(&server.url())
        .header("Host", &own)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn engage_needs_the_token() {
    let (server, _published, rx) = serve(Status::default());
    let url = format!("{}api/kill-switch/engage", server.url());
    let body = json!({"reason": "test"});

    let (code, answer) = post(&url, &[], &body);
    assert_eq!(code, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("X-Mia-Token"));

    let wrong = "0".repeat(server.token().len());
    let (code, _) = post(&url, &[("X-Mia-Token", &wrong)], &body);
    assert_eq!(code, 403);
    // The server answers only after forwarding, so a refusal means nothing was forwarded.
    assert!(
        rx.try_recv().is_err(),
        "a refused request reached the engine"
    );
}

#[test]
fn requests_from_another_origin_are_refused() {
    let (server, _published, rx) = serve(Status::default());
    let token = server.token().to_owned();
    for path in ["engage", "reset"] {
        let url = format!("{}api/kill-switch/{path}", server.url());
        let (code, answer) = post(
            &url,
            &[("X-Mia-Token", &token), ("Origin", "http://evil.example")],
            &json!({}),
        );
        assert_eq!(code, 403, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("origin"));
        let (code, _) = post(
            &url,
            &[("X-Mia-Token", &token), ("Sec-Fetch-Site", "cross-site")],
            &json!({}),
        );
        assert_eq!(code, 403, "{path} with Sec-Fetch-Site: cross-site");
        // Another port of the same host is another origin.
        let other = format!("http://127.0.0.1:{}", server.addr().port() ^ 1);
        let (code, _) = post(
            &url,
            &[("X-Mia-Token", &token), ("Origin", &other)],
            &json!({}),
        );
        assert_eq!(code, 403, "{path} from {other}");
    }
    assert!(
        rx.try_recv().is_err(),
        "a refused request reached the engine"
    );
}

/// Sends a POST on another thread, plays the engine for one request, and returns what the
/// engine received and the HTTP answer.
fn one_request(
    server: &MonitorServer,
    rx: &Receiver<Control>,
    path: &str,
    headers: Vec<(String, String)>,
    body: Value,
    reply: Result<KillView, String>,
) -> (ControlAction, u16, Value) {
    let url = format!("{}api/kill-switch/{path}", server.url());
    let http = std::thread::spawn(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post(&url, &headers, &body)
    });
    let control = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the request reached the engine");
    control.reply.send(reply).unwrap();
    let (code, answer) = http.join().unwrap();
    (control.action, code, answer)
}

#[test]
fn engage_with_the_token_reaches_the_engine_and_returns_its_answer() {
    let (server, _published, rx) = serve(Status::default());
    let token = server.token().to_owned();
    let engaged = KillView {
        state: KillState::Emergency,
        since: "2025-09-19T14:40:00.000000Z".into(),
        reason: "manual: FOMC".into(),
        seq: 3,
    };
    let (action, code, answer) = one_request(
        &server,
        &rx,
        "engage",
        vec![("X-Mia-Token".into(), token.clone())],
        json!({"reason": "FOMC"}),
        Ok(engaged.clone()),
    );
    assert_eq!(
        action,
        ControlAction::Engage {
            level: KillState::Emergency,
            reason: "FOMC".into()
        }
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(serde_json::from_value::<KillView>(answer).unwrap(), engaged);

    // The page's own origin is accepted, a level is passed on, an empty reason is "dashboard".
    let origin = format!("http://localhost:{}", server.addr().port());
    let (action, code, _) = one_request(
        &server,
        &rx,
        "engage",
        vec![
            ("X-Mia-Token".into(), token.clone()),
            ("Origin".into(), origin),
            ("Sec-Fetch-Site".into(), "same-origin".into()),
        ],
        json!({"level": "HALT_ENTRIES", "reason": "  "}),
        Ok(engaged),
    );
    assert_eq!(code, 200);
    assert_eq!(
        action,
        ControlAction::Engage {
            level: KillState::HaltEntries,
            reason: "dashboard".into()
        }
    );
}

#[test]
fn a_refusal_by_the_engine_is_409() {
    let (server, _published, rx) = serve(Status::default());
    let token = server.token().to_owned();
    let (action, code, answer) = one_request(
        &server,
        &rx,
        "reset",
        vec![("X-Mia-Token".into(), token)],
        json!({"reason": "reviewed"}),
        Err("the KILL file is still present".into()),
    );
    assert_eq!(
        action,
        ControlAction::Reset {
            reason: "reviewed".into()
        }
    );
    assert_eq!(code, 409);
    assert_eq!(answer["error"], "the KILL file is still present");
}

#[test]
fn bad_requests_are_answered_not_crashed_on() {
    let (server, _published, rx) = serve(Status::default());
    let token = server.token().to_owned();
    let url = format!("{}api/kill-switch/engage", server.url());
    for body in [
        json!({"level": "NORMAL"}),
        json!({"level": "LOUD"}),
        json!([1, 2]),
    ] {
        let (code, answer) = post(&url, &[("X-Mia-Token", &token)], &body);
        assert_eq!(code, 400, "{body}: {answer}");
    }
    let mut resp = client()
        .post(&url)
        .header("X-Mia-Token", &token)
        .send("{not json")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let _ = resp.body_mut().read_to_string();
    assert!(rx.try_recv().is_err());

    // An engine that went away: 503, not a hang.
    drop(rx);
    let (code, answer) = post(&url, &[("X-Mia-Token", &token)], &json!({}));
    assert_eq!(code, 503, "{answer}");
    // And the server still serves.
    assert_eq!(get(&format!("{}status", server.url())).0, 200);
}

#[test]
fn the_page_carries_the_token_and_loads_nothing_from_outside() {
    let (server, _published, _rx) = serve(sample_status(3));
    let (code, kind, page) = get(&server.url());
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(server.token().len() >= 32);
    assert!(
        page.contains(&format!(
            "<meta name=\"mia-token\" content=\"{}\">",
            server.token()
        )),
        "the page does not carry the token"
    );
    for needle in ["http://", "https://", "//cdn", "@import", "url("] {
        assert!(!page.contains(needle), "the page contains {needle:?}");
    }
    // No attribute points anywhere: every src/href would be external or pointless.
    for attr in ["src=", "href=", "srcset="] {
        assert!(!page.contains(attr), "the page has a {attr} attribute");
    }
    for id in [
        "id=\"engage\"",
        "id=\"reset\"",
        "id=\"reason\"",
        "id=\"decisions\"",
        "id=\"equity-live\"",
        "id=\"equity-shadow\"",
    ] {
        assert!(page.contains(id), "the page has no {id}");
    }
}

#[test]
fn a_busy_port_is_an_error_naming_the_address() {
    let (server, _published, _rx) = serve(Status::default());
    let (tx, _rx2) = channel();
    let err = MonitorServer::start(server.addr(), Published::new(), tx).unwrap_err();
    assert!(
        err.to_string().contains(&server.addr().to_string()),
        "{err}"
    );
}

#[test]
fn two_servers_have_different_tokens_and_stop_cleanly() {
    let (a, _pa, _ra) = serve(Status::default());
    let (b, _pb, _rb) = serve(Status::default());
    assert_ne!(a.token(), b.token());
    let addr = a.addr();
    a.stop();
    // Stopped means the port no longer answers.
    assert!(
        client()
            .get(&format!("http://{addr}/status"))
            .call()
            .is_err()
    );
    drop(b);
}

#[test]
fn mia_status_prints_the_engine_s_tables() {
    let status = sample_status(3);
    let (server, _published, _rx) = serve(status.clone());
    let url = server.url();
    let ran = TestCommand::new(["status", "--url", url.as_str()]).run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    for text in [
        "NORMAL",
        "0123456789ab",
        "812.50",
        "menthorq never STALE",
        "minute 2.5s",
        "connection refused",
        "gamma_wall +20: price at the call resistance",
        "entry.rhai:12:3 division by zero",
        "last reload failed",
    ] {
        assert!(ran.stdout.contains(text), "no {text:?} in\n{}", ran.stdout);
    }
    assert!(
        !ran.stdout.contains("0123456789abc"),
        "hashes are shortened to 12 characters"
    );

    let ran = TestCommand::new(["status", "--json", "--url", url.as_str()]).run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(serde_json::from_str::<Status>(&ran.stdout).unwrap(), status);
}

#[test]
fn mia_status_without_an_engine_exits_2_with_one_line() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("127.0.0.1:{port}");
    let ran = TestCommand::new(["status", "--url", url.as_str()]).run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "no mia engine answers at http://127.0.0.1:{port}/status: is `mia run` running?"
        )),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    assert!(ran.stdout.is_empty());
}
