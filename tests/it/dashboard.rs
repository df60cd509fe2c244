//! The dashboard in a real headless Chromium, against an in-process server whose engine side
//! is a real kill switch over a state folder.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use headless_chrome::Tab;
use mia::model::Timestamp;
use mia::monitor::server::MonitorServer;
use mia::monitor::status::KillView;
use mia::monitor::{Control, ControlAction, Published};
use mia::risk::{FileStore, KillState, KillSwitch};
use serde_json::Value;

use crate::browser::browser;
use crate::monitor::sample_status;
use crate::support::{tmp, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// 2025-09-19T14:40:00Z, the engine time of the sample status.
const NOW: Timestamp = Timestamp::from_secs(1_758_292_800);

fn kill_view(switch: &KillSwitch<FileStore>) -> KillView {
    KillView::of(switch.status())
}

/// Plays the engine: applies each request to the kill switch, republishes the status with the
/// new state, and answers. Ends when the server is gone (the channel closes).
fn engine(
    mut switch: KillSwitch<FileStore>,
    published: Arc<Published>,
    requests: Receiver<Control>,
) -> Vec<ControlAction> {
    let mut seen = Vec::new();
    for control in requests {
        let result = match &control.action {
            ControlAction::Engage { level, reason } => switch.engage(NOW, *level, reason),
            ControlAction::Reset { reason } => switch.reset(NOW, reason),
        };
        let answer = match result {
            Ok(_) => {
                let view = kill_view(&switch);
                let mut status = (**published.status.load()).clone();
                status.kill_switch = view.clone();
                published.status.store(Arc::new(status));
                Ok(view)
            }
            Err(e) => Err(e.to_string()),
        };
        seen.push(control.action);
        let _ = control.reply.send(answer);
    }
    seen
}

/// Evaluates `expr` in the page; `None` when it throws or the page is not there yet.
fn eval(tab: &Tab, expr: &str) -> Option<Value> {
    tab.evaluate(expr, false).ok().and_then(|r| r.value)
}

/// Waits until `expr` evaluates to `expected`.
fn wait_for(tab: &Tab, what: &str, expr: &str, expected: Value) {
    wait_until(DEADLINE, what, || {
        eval(tab, expr).as_ref() == Some(&expected)
    });
}

#[test]
fn dashboard_shows_the_engine_and_engages_the_real_kill_switch() {
    let Some(chrome) = browser("dashboard_shows_the_engine_and_engages_the_real_kill_switch")
    else {
        return;
    };
    let state_dir = tmp();
    let switch = KillSwitch::open(FileStore::new(state_dir.path()), NOW).unwrap();
    assert_eq!(switch.state(), KillState::Normal);

    let published = Published::new();
    let mut status = sample_status(4);
    status.kill_switch = kill_view(&switch);
    published.status.store(Arc::new(status));
    let (tx, rx) = channel();
    let server =
        MonitorServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&published), tx).unwrap();
    let engine = {
        let published = Arc::clone(&published);
        std::thread::spawn(move || engine(switch, published, rx))
    };

    let tab = chrome.new_tab().unwrap();
    tab.set_default_timeout(DEADLINE);
    tab.navigate_to(&server.url()).unwrap();
    tab.wait_until_navigated().unwrap();

    // The status is rendered: mode, kill state, the decisions with their reasons.
    wait_for(
        &tab,
        "the decisions table",
        "document.querySelectorAll('#decisions tr').length",
        Value::from(3),
    );
    let decisions = eval(&tab, "document.getElementById('decisions').textContent")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap();
    for text in [
        "ES",
        "NQ",
        "RTY",
        "gamma_wall +20: price at the call resistance",
        "trend +15: three higher highs",
        "entry.rhai:12:3 division by zero",
        // Reasons come from user scripts: shown as text, never parsed as HTML.
        "<b>vwap</b> +10: above",
    ] {
        assert!(decisions.contains(text), "no {text:?} in {decisions:?}");
    }
    assert_eq!(
        eval(&tab, "document.querySelectorAll('#decisions b').length"),
        Some(Value::from(0)),
        "a reason was rendered as HTML"
    );
    assert_eq!(
        eval(&tab, "document.getElementById('kill-state').textContent"),
        Some(Value::from("NORMAL"))
    );
    assert_eq!(
        eval(&tab, "document.getElementById('mode').textContent"),
        Some(Value::from("paper"))
    );
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('#instruments .stale').textContent"
        ),
        Some(Value::from("menthorq never STALE"))
    );

    // The equity curve has one point per closed trade; the shadow set has none yet.
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('#equity-live polyline').getAttribute('points')\
             .trim().split(/\\s+/).length"
        ),
        Some(Value::from(4))
    );
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('#set-shadow .equity-empty').hidden"
        ),
        Some(Value::from(false))
    );
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('#set-live .equity-empty').hidden"
        ),
        Some(Value::from(true))
    );

    // MIA_SCREENSHOT=file.png keeps a picture of the page, for people changing its look.
    if let Some(path) = std::env::var_os("MIA_SCREENSHOT") {
        let png = tab
            .capture_screenshot(
                headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption::Png,
                None,
                None,
                true,
            )
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    // A click on Engage, with a typed reason, engages the real kill switch.
    tab.wait_for_element("#reason")
        .unwrap()
        .click()
        .unwrap()
        .type_into("FOMC at 14:00")
        .unwrap();
    tab.wait_for_element("#engage").unwrap().click().unwrap();
    let state_path = state_dir.path().to_path_buf();
    wait_until(DEADLINE, "the kill switch on disk to be EMERGENCY", || {
        KillSwitch::open(FileStore::new(&state_path), NOW)
            .is_ok_and(|s| s.state() == KillState::Emergency)
    });
    let on_disk = KillSwitch::open(FileStore::new(&state_path), NOW).unwrap();
    assert!(
        on_disk
            .status()
            .trigger
            .as_ref()
            .is_some_and(|t| t.to_string().contains("FOMC at 14:00")),
        "{:?}",
        on_disk.status()
    );
    wait_for(
        &tab,
        "the page to show EMERGENCY",
        "document.getElementById('kill-state').textContent",
        Value::from("EMERGENCY"),
    );
    wait_for(
        &tab,
        "the answer line",
        "document.getElementById('answer').textContent",
        Value::from("now EMERGENCY"),
    );
    assert_eq!(
        eval(&tab, "document.getElementById('kill-state').className"),
        Some(Value::from("k-EMERGENCY"))
    );
    // The status poll (not only the POST's answer) carries the new state.
    wait_for(
        &tab,
        "the kill reason from /status",
        "document.getElementById('kill-reason').textContent.includes('FOMC at 14:00')",
        Value::from(true),
    );

    // Reset returns it to NORMAL, on disk and on the page.
    tab.wait_for_element("#reset").unwrap().click().unwrap();
    wait_for(
        &tab,
        "the page to show NORMAL",
        "document.getElementById('kill-state').textContent",
        Value::from("NORMAL"),
    );
    assert_eq!(
        KillSwitch::open(FileStore::new(&state_path), NOW)
            .unwrap()
            .state(),
        KillState::Normal
    );

    drop(tab);
    server.stop();
    let seen = engine.join().unwrap();
    assert_eq!(
        seen,
        [
            ControlAction::Engage {
                level: KillState::Emergency,
                reason: "FOMC at 14:00".into()
            },
            ControlAction::Reset {
                reason: "FOMC at 14:00".into()
            }
        ]
    );
}
