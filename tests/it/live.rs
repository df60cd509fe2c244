//! `mia run` end to end, as a trader runs it: real processes, real files growing, real TCP.
//!
//! `mia simulate --realtime` appends a Sierra session while `mia run` tails it in live mode,
//! with `mia dtc-sim` (its prices following the same files) as the order route and the monitor on
//! a free port. The tests read what each process wrote (journals, `/status`, `/metrics`, the
//! sim's control port) and wait on conditions with deadlines, never on sleeps.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use super::browser::browser;
use super::support::{TestCommand, manifest_dir, realtime_session, save, tmp, wait_until};

const DEADLINE: Duration = Duration::from_secs(60);
/// The demo configuration (one instrument, live mode), which the tests adapt.
const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// A child process that is stopped when the test ends, even when it fails.
struct Proc {
    child: Child,
    logs: PathBuf,
    tag: &'static str,
}

impl Proc {
    fn spawn(cmd: TestCommand, logs: &Path, tag: &'static str) -> Proc {
        Proc {
            child: cmd.spawn(logs, tag),
            logs: logs.to_path_buf(),
            tag,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.join(format!("{}.stdout", self.tag))).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.join(format!("{}.stderr", self.tag))).unwrap_or_default()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    fn line(&mut self, prefix: &str) -> String {
        let mut found = None;
        let mut exited = None;
        wait_until(
            DEADLINE,
            &format!("{} to print `{prefix}`", self.tag),
            || {
                found = self
                    .stdout()
                    .lines()
                    .find_map(|l| l.strip_prefix(prefix).map(str::to_owned));
                exited = self.child.try_wait().unwrap();
                found.is_some() || exited.is_some()
            },
        );
        found.unwrap_or_else(|| {
            panic!(
                "{} exited ({exited:?}) before printing `{prefix}`:\n{}",
                self.tag,
                self.stderr()
            )
        })
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for the exit code.
    fn interrupt(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let mut code = None;
        wait_until(
            DEADLINE,
            &format!("{} to stop after SIGINT", self.tag),
            || {
                code = self.child.try_wait().unwrap().map(|s| s.code());
                code.is_some()
            },
        );
        code.flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of the sim's control protocol, answered.
fn control(addr: &str, command: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    writeln!(stream, "{command}").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.trim().to_owned()
}

/// `working N` and the signed quantity of every position, from the sim's `state`.
fn sim_state(addr: &str) -> (u64, u64, f64) {
    let state = control(addr, "state");
    let field = |name: &str| -> u64 {
        state
            .split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {state:?}"))
    };
    let positions = state
        .split_once("positions [")
        .map(|(_, rest)| rest.trim_end_matches(']'))
        .unwrap_or_default();
    let quantity = positions
        .split_whitespace()
        .filter_map(|p| p.split_once('=')?.1.split_once('@')?.0.parse::<f64>().ok())
        .map(f64::abs)
        .sum();
    (field("working"), field("fills"), quantity)
}

fn get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

fn journal_lines(dir: &Path, prefix: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
        })
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        // Only whole lines, up to the last newline: the engine may be writing the next one, and
        // a line can be seen cut anywhere (even just after a nested `}`).
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        for line in whole.lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// The sum of a metric family's samples whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (metric, rest) = key.split_once('{').unwrap_or((key, ""));
            (metric == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// A live session: the sim, the simulator appending, and `mia run` tailing.
struct Session {
    dir: tempfile::TempDir,
    sim: Proc,
    control: String,
    simulator: Proc,
    run: Proc,
    url: String,
}

impl Session {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal")
    }
    fn rules(&self) -> PathBuf {
        self.dir.path().join("rules")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts everything; `config` adapts the demo config, `speed` is simulated seconds per
    /// wall second.
    fn start(minutes: u32, speed: u32, shadow: bool, config: impl Fn(String) -> String) -> Session {
        let dir = tmp();
        let logs = dir.path().join("logs");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::copy(
            manifest_dir().join("tests/data/live/eager/strategy.rhai"),
            rules.join("strategy.rhai"),
        )
        .unwrap();

        let mut sim = Proc::spawn(
            TestCommand::new([
                "dtc-sim",
                "--listen",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
                "--follow",
                data.to_str().unwrap(),
            ]),
            &logs,
            "dtc-sim",
        );
        let sim_addr = sim.line("listening on ");
        let control = sim.line("control on ");

        let text = DEMO_CONFIG.replacen(
            "# dtc_address = \"127.0.0.1:11099\"",
            &format!("dtc_address = \"{sim_addr}\""),
            1,
        );
        assert_ne!(text, DEMO_CONFIG, "the demo config has no dtc_address line");
        // The shadow set, if any, comes from the command line.
        let text = text.replacen("shadow_dir = \"shadow\"", "shadow_dir = \"\"", 1);
        let config_path = dir.path().join("mia.toml");
        std::fs::write(&config_path, config(text)).unwrap();

        let simulator = Proc::spawn(realtime_session(&data, minutes, speed), &logs, "simulate");
        wait_until(DEADLINE, "the simulator's manifest", || {
            data.join("mia_sim_manifest.json").is_file()
        });

        let mut args = vec![
            "--config".to_owned(),
            config_path.display().to_string(),
            "run".to_owned(),
            "--data".to_owned(),
            data.display().to_string(),
            "--journal".to_owned(),
            dir.path().join("journal").display().to_string(),
            "--state".to_owned(),
            dir.path().join("state").display().to_string(),
            "--rules".to_owned(),
            rules.display().to_string(),
            "--live".to_owned(),
            "--sim-clock".to_owned(),
            "--monitor".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        if shadow {
            args.push("--shadow".to_owned());
            args.push(manifest_dir().join("examples/rules").display().to_string());
        }
        let mut run = Proc::spawn(TestCommand::new(args), &logs, "run");
        let url = run.line("dashboard: ");
        let url = url.split_whitespace().next().unwrap().to_owned();
        Session {
            dir,
            sim,
            control,
            simulator,
            run,
            url,
        }
    }

    fn status(&self) -> Value {
        serde_json::from_str(&get(&format!("{}status", self.url))).unwrap()
    }
}

fn live_decisions(journal: &Path) -> Vec<Value> {
    journal_lines(journal, "decisions_")
        .into_iter()
        .filter(|d| d["set"] == "live")
        .collect()
}

#[test]
fn mia_run_trades_live_through_dtc_reloads_rules_and_reports_what_it_journals() {
    // 20 simulated minutes at 60×: the save below must leave bars for the saved rules to
    // decide even when start-up is slow on a loaded machine.
    let mut s = Session::start(20, 60, true, |c| c);
    let journal = s.journal();

    // Decisions are journaled as the bars complete, with the hash of the rules that made them.
    wait_until(DEADLINE, "a live decision", || {
        !live_decisions(&journal).is_empty()
    });
    let first_hash = live_decisions(&journal)[0]["rules"]
        .as_str()
        .unwrap()
        .to_owned();

    // A rule file saved during the run goes live: later decisions carry the new score and hash.
    let strategy = s.rules().join("strategy.rhai");
    let text = std::fs::read_to_string(&strategy).unwrap();
    save(&strategy, &text.replace("SCORE = 75.0", "SCORE = 76.0"));
    wait_until(DEADLINE, "a decision made by the saved rules", || {
        live_decisions(&journal)
            .iter()
            .any(|d| d["score"] == 76.0 && d["rules"] != first_hash.as_str())
    });

    // Approved orders reach the simulator as brackets and fill there.
    wait_until(DEADLINE, "an entry filled at the DTC simulator", || {
        let orders = journal_lines(&journal, "orders_");
        let parents: Vec<&str> = orders
            .iter()
            .filter(|o| o["event"] == "submitted" && o["outcome"] == "sent")
            .filter_map(|o| o["parent"].as_str())
            .collect();
        orders
            .iter()
            .filter(|o| o["order"] == "filled")
            .any(|o| parents.contains(&o["client_order_id"].as_str().unwrap_or_default()))
            && sim_state(&s.control).1 >= 1
    });

    // The whole session is written; the engine has read it all.
    wait_until(DEADLINE, "the simulator to finish", || {
        s.simulator.child.try_wait().unwrap().is_some()
    });
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(s.data().join("mia_sim_manifest.json")).unwrap(),
    )
    .unwrap();
    let lines = manifest["lines"].as_u64().unwrap();
    wait_until(DEADLINE, "every line to be read", || {
        s.status()["counts"]["lines_accepted"].as_u64() == Some(lines)
    });

    // /status and /metrics count exactly what the journals hold.
    wait_until(
        DEADLINE,
        "/status and /metrics to match the journals",
        || {
            let decisions = journal_lines(&journal, "decisions_").len() as u64;
            let orders = journal_lines(&journal, "orders_");
            let sent = orders
                .iter()
                .filter(|o| o["event"] == "submitted" && o["outcome"] == "sent")
                .count() as u64;
            let fills = orders.iter().filter(|o| o["order"] == "filled").count() as u64;
            let trades = journal_lines(&journal, "trades_").len() as u64;
            let status = s.status();
            let counts = &status["counts"];
            let metrics = get(&format!("{}metrics", s.url));
            let decided = metric(&metrics, "mia_decisions_total", "")
                + metric(&metrics, "mia_rule_errors_total", "");
            counts["decisions"] == decisions
                && counts["orders_submitted"] == sent
                && counts["fills"] == fills
                && counts["trades"] == trades
                && decided == decisions as f64
                && metric(&metrics, "mia_orders_total", "status=\"submitted\"") == sent as f64
                && metric(&metrics, "mia_orders_total", "status=\"filled\"") == fills as f64
                && metric(&metrics, "mia_lines_read_total", "") == lines as f64
        },
    );
    let status = s.status();
    assert_eq!(status["mode"], "live");
    assert_eq!(status["routes"][0]["state"], "ready");
    assert_eq!(status["sets"][1]["name"], "shadow");
    assert_eq!(status["sets"][1]["venue"], "paper");
    assert!(
        status["sets"][0]["last_reload"]["outcome"] == "swapped",
        "{status}"
    );
    assert_eq!(status["sets"][0]["reloads"], 1, "{status}");
    let metrics = get(&format!("{}metrics", s.url));
    assert_eq!(
        metric(&metrics, "mia_dtc_connected", "instrument=\"ES\""),
        1.0
    );
    assert_eq!(
        metric(&metrics, "mia_reloads_total", "outcome=\"swapped\""),
        1.0
    );
    assert!(metric(&metrics, "mia_append_to_decision_seconds_count", "") > 0.0);
    assert!(
        metrics.contains("mia_ingest_lag_seconds{chart=\"3\"}"),
        "{metrics}"
    );

    // `mia status` prints the same engine's state for a person.
    let printed = TestCommand::new(["status", "--url", s.url.as_str()]).run();
    assert_eq!(printed.code, Some(0), "{printed:?}");
    for text in ["NORMAL", "live", "shadow", "ES", "ready"] {
        assert!(
            printed.stdout.contains(text),
            "no {text:?} in\n{}",
            printed.stdout
        );
    }

    // Ctrl-C stops cleanly, and every accepted line is in the unified journal once.
    assert_eq!(s.run.interrupt(), Some(0), "{}", s.run.stderr());
    assert!(s.run.stdout().contains("journals: "), "{}", s.run.stdout());
    let unified = journal_lines(&journal, "mia_unified_");
    assert_eq!(unified.len() as u64, lines);
    assert!(
        !s.run.stderr().contains("ERROR"),
        "errors in the log:\n{}",
        s.run.stderr()
    );
    drop(s.sim);
}

/// A webhook receiver on loopback: every POST body arrives on the channel, answered 200.
fn webhook() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if std::io::Read::read_exact(&mut reader, &mut body).is_ok() {
                let _ = reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
        }
    });
    (url, rx)
}

#[test]
fn the_dashboards_kill_switch_cancels_working_orders_and_flattens_at_the_simulator() {
    let (hook, posts) = webhook();
    // The browser starts before the session: the simulator writes on wall time, and Chromium's
    // start must not eat the bars left for the checks after the switch.
    let name = "the_dashboards_kill_switch_cancels_working_orders_and_flattens_at_the_simulator";
    let chrome = browser(name);
    // Wide stops, so that the bracket is still working when the switch is engaged; alerts to a
    // webhook on loopback.
    let mut s = Session::start(10, 10, false, |c| {
        c.replacen(
            "webhook_url = \"\"",
            &format!("webhook_url = \"{hook}\""),
            1,
        )
        .replacen(
            "max_risk_per_trade = 400.0",
            "max_risk_per_trade = 5000.0",
            1,
        )
        .replacen("min_ticks = 7", "min_ticks = 40", 1)
        .replacen("max_ticks = 20", "max_ticks = 60", 1)
        .replacen("reward_ratio = 2.5", "reward_ratio = 1.0", 1)
    });
    wait_until(
        DEADLINE,
        "a filled entry with its target and stop working",
        || {
            let (working, _, position) = sim_state(&s.control);
            working >= 2 && position > 0.0
        },
    );

    // Engage from the dashboard: a click in a real browser when there is one, else the same
    // request with the page's token.
    if let Some(chrome) = chrome {
        let tab = chrome.new_tab().unwrap();
        tab.set_default_timeout(DEADLINE);
        tab.navigate_to(&s.url).unwrap();
        tab.wait_until_navigated().unwrap();
        wait_until(DEADLINE, "the page to show the engine's decisions", || {
            tab.evaluate(
                "document.querySelectorAll('#decisions tr').length > 0",
                false,
            )
            .ok()
            .and_then(|r| r.value)
                == Some(Value::from(true))
        });
        tab.wait_for_element("#reason")
            .unwrap()
            .click()
            .unwrap()
            .type_into("test: stop everything")
            .unwrap();
        tab.wait_for_element("#engage").unwrap().click().unwrap();
    } else {
        let page = get(&s.url);
        let token = page
            .split("name=\"mia-token\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page carries the token")
            .to_owned();
        let answer = ureq::post(&format!("{}api/kill-switch/engage", s.url))
            .header("X-Mia-Token", &token)
            .send_json(serde_json::json!({"reason": "test: stop everything"}))
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(answer.contains("EMERGENCY"), "{answer}");
        // The status is published before the answer: no wait.
        assert_eq!(s.status()["kill_switch"]["state"], "EMERGENCY");
    }

    // The engine cancels the target and the stop and flattens the position at the sim.
    wait_until(
        DEADLINE,
        "no working order and a flat position at the sim",
        || {
            let (working, _, position) = sim_state(&s.control);
            working == 0 && position == 0.0
        },
    );
    let journal = s.journal();
    wait_until(DEADLINE, "the flattened trade in the trade journal", || {
        journal_lines(&journal, "trades_")
            .iter()
            .any(|t| t["exit_reason"] == "flatten")
    });
    let status = s.status();
    assert_eq!(status["kill_switch"]["state"], "EMERGENCY");
    assert!(
        status["kill_switch"]["reason"]
            .as_str()
            .unwrap()
            .contains("test: stop everything"),
        "{status}"
    );
    let changes = std::fs::read_to_string(s.state().join("kill_switch.jsonl")).unwrap();
    assert!(changes.contains("EMERGENCY"), "{changes}");
    assert!(
        status["recent_alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "kill_switch")
    );
    // The alert also went to the webhook, as JSON that Slack and Discord read.
    let alert: Value = loop {
        let body = posts
            .recv_timeout(DEADLINE)
            .expect("a kill-switch alert POSTed to the webhook");
        let alert: Value = serde_json::from_str(&body).unwrap();
        if alert["kind"] == "kill_switch" {
            break alert;
        }
    };
    assert!(
        alert["text"].as_str().unwrap().contains("EMERGENCY"),
        "{alert}"
    );
    assert!(
        alert["content"].as_str().unwrap().contains("EMERGENCY"),
        "{alert}"
    );

    // No new entry while the switch is engaged: every later approval is refused.
    let sent_before = journal_lines(&journal, "orders_")
        .iter()
        .filter(|o| o["event"] == "submitted")
        .count();
    let decided = live_decisions(&journal).len();
    wait_until(DEADLINE, "two more decisions", || {
        live_decisions(&journal).len() >= decided + 2
    });
    let sent_after = journal_lines(&journal, "orders_")
        .iter()
        .filter(|o| o["event"] == "submitted")
        .count();
    assert_eq!(sent_before, sent_after);

    // It latches across a restart: the state file says EMERGENCY after a clean stop.
    assert_eq!(s.run.interrupt(), Some(0), "{}", s.run.stderr());
    let state = std::fs::read_to_string(s.state().join("kill_switch.json")).unwrap();
    assert!(state.contains("EMERGENCY"), "{state}");
    drop(s.simulator);
}

#[test]
fn live_mode_needs_both_the_config_and_the_flag_and_says_which_is_missing() {
    let dir = tmp();
    let ran = TestCommand::new(["run", "--live", "--no-monitor"])
        .current_dir(dir.path())
        .run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr
            .contains("--live was given but execution.mode is \"read-only\" in the config"),
        "{}",
        ran.stderr
    );
    let config = dir.path().join("live.toml");
    std::fs::write(&config, DEMO_CONFIG).unwrap();
    let ran = TestCommand::new(["--config", config.to_str().unwrap(), "run", "--no-monitor"])
        .current_dir(dir.path())
        .run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr
            .contains("execution.mode is \"live\" in the config but --live is missing"),
        "{}",
        ran.stderr
    );
    // Nothing was started: no journal, no state.
    assert!(!dir.path().join("journal").exists());
    assert!(!dir.path().join("state").exists());
}

#[test]
fn mia_demo_runs_the_live_path_and_writes_its_report() {
    let dir = tmp();
    let out = dir.path().join("demo");
    let ran = TestCommand::new([
        "demo",
        "--dir",
        out.to_str().unwrap(),
        "--minutes",
        "6",
        "--speed",
        "120",
        "--monitor",
        "127.0.0.1:0",
    ])
    .run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    for text in [
        "dashboard: http://127.0.0.1:",
        "simulated 6 minutes",
        "journals: ",
        "report: ",
    ] {
        assert!(ran.stdout.contains(text), "no {text:?} in\n{}", ran.stdout);
    }
    // Five completed bars, each decided by both sets.
    let decisions = journal_lines(&out.join("journal"), "decisions_");
    assert_eq!(decisions.len(), 10, "{decisions:?}");
    assert!(decisions.iter().any(|d| d["set"] == "shadow"));
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<svg"), "the report draws its charts");
    assert!(out.join("rules/strategy.rhai").is_file());
}
