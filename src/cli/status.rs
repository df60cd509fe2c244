//! `mia status`: what a running engine shows on its dashboard, as tables in the terminal.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use mia::monitor::Status as Document;
use mia::perf::fmt_money;

use super::{Status, align_right, short_hash, table};

/// How long to wait for the engine: it answers from memory, so a slow answer means trouble.
const TIMEOUT: Duration = Duration::from_secs(3);

/// How many decisions the table shows.
const DECISIONS: usize = 10;

/// Shown after the options of `mia status --help`.
const GUIDE: &str = "\
Asks a running engine (`mia run`) for its /status document and prints it: the kill switch,
each rule set (hash, venue, evaluations, rule errors, P&L, trades), the age of every data
source per instrument (STALE when older than its limit), the DTC order routes, the totals, and
the last 10 decisions. It changes nothing; the same figures are on the dashboard page, at the
same address.

The address is the configuration's [monitor] address (default 127.0.0.1:9464) unless --url
gives another.

Examples:
  mia status
  mia status --url http://127.0.0.1:9464
  mia status --json | jq .kill_switch

Exit codes: 0 the engine answered, 2 no engine answers at that address.";

/// `mia status`.
#[derive(Debug, clap::Args)]
#[command(after_help = GUIDE)]
pub(crate) struct Args {
    /// The engine's monitor, for example http://127.0.0.1:9464. Default: monitor.address of the
    /// configuration.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Print the /status document as the engine sent it (JSON), for scripts.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args, config: Option<&Path>) -> anyhow::Result<Status> {
    let base = match args.url {
        Some(url) => url,
        None => {
            let mut addr = super::load_config(config)
                .context("cannot find the monitor's address (give it with --url)")?
                .monitor
                .address;
            // Listening on every interface includes loopback, the one name sure to reach it.
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            addr.to_string()
        }
    };
    let url = status_url(&base);
    let body = fetch(&url).map_err(|e| {
        anyhow::anyhow!("no mia engine answers at {url}: is `mia run` running? ({e})")
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", body.trim_end())?;
        return Ok(Status::Ok);
    }
    let doc: Document = serde_json::from_str(&body)
        .with_context(|| format!("{url} answered, but not with a mia status document"))?;
    print(&mut out, &doc)?;
    Ok(Status::Ok)
}

/// `http://host:port/status` from a bare address, a URL, or a URL already ending in `/status`.
fn status_url(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    let base = if base.contains("://") {
        base.to_owned()
    } else {
        format!("http://{base}")
    };
    if base.ends_with("/status") {
        base
    } else {
        format!("{base}/status")
    }
}

fn fetch(url: &str) -> anyhow::Result<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut response = agent.get(url).call()?;
    Ok(response.body_mut().read_to_string()?)
}

fn print(out: &mut impl Write, doc: &Document) -> anyhow::Result<()> {
    writeln!(
        out,
        "mia {} ({}) engine time {}, started {}\ndata {}  journal {}",
        doc.version, doc.mode, doc.now, doc.started, doc.data_dir, doc.journal_dir
    )?;

    let k = &doc.kill_switch;
    let mut kill = table(vec!["kill switch".into(), "since".into(), "reason".into()]);
    kill.add_row(vec![
        k.state.to_string(),
        k.since.clone(),
        if k.reason.is_empty() {
            "-".into()
        } else {
            k.reason.clone()
        },
    ]);
    writeln!(out, "{kill}")?;

    let mut sets = table(
        [
            "set",
            "hash",
            "venue",
            "evaluations",
            "errors",
            "P&L",
            "realized",
            "trades",
            "wins",
        ]
        .map(String::from)
        .to_vec(),
    );
    for s in &doc.sets {
        sets.add_row(vec![
            s.name.clone(),
            short_hash(&s.hash).to_owned(),
            s.venue.clone(),
            s.evaluations.to_string(),
            s.rule_errors.to_string(),
            fmt_money(s.pnl),
            fmt_money(s.realized),
            s.trades.to_string(),
            s.wins.to_string(),
        ]);
    }
    align_right(&mut sets, 3);
    writeln!(out, "{sets}")?;
    for s in &doc.sets {
        if let Some(reload) = s.last_reload.as_ref().filter(|r| r.outcome == "failed") {
            writeln!(
                out,
                "{}: last reload failed at {}, the previous set stays live:\n  {}",
                s.name,
                reload.at,
                reload.message.replace('\n', "\n  ")
            )?;
        }
    }

    let mut instruments = table(vec!["instrument".into(), "price".into(), "sources".into()]);
    for i in &doc.instruments {
        let sources = i
            .sources
            .iter()
            .map(|s| {
                let age = s.age_secs.map_or_else(|| "never".to_owned(), age);
                let stale = if s.stale { " STALE" } else { "" };
                format!("{} {age}{stale}", s.source)
            })
            .collect::<Vec<_>>()
            .join(", ");
        instruments.add_row(vec![
            i.name.clone(),
            i.price.map_or_else(|| "-".into(), |p| p.to_string()),
            sources,
        ]);
    }
    writeln!(out, "{instruments}")?;

    if !doc.routes.is_empty() {
        let mut routes = table(
            ["route", "address", "state", "reason"]
                .map(String::from)
                .to_vec(),
        );
        for r in &doc.routes {
            routes.add_row(vec![
                r.instrument.clone(),
                r.address.clone(),
                r.state.clone(),
                r.reason.clone().unwrap_or_default(),
            ]);
        }
        writeln!(out, "{routes}")?;
    }

    let c = &doc.counts;
    let mut counts = table(
        [
            "lines read",
            "accepted",
            "rejected",
            "decisions",
            "orders",
            "fills",
            "rejections",
            "trades",
        ]
        .map(String::from)
        .to_vec(),
    );
    counts.add_row(
        [
            c.lines_read,
            c.lines_accepted,
            c.lines_rejected,
            c.decisions,
            c.orders_submitted,
            c.fills,
            c.rejections,
            c.trades,
        ]
        .map(|n| n.to_string())
        .to_vec(),
    );
    align_right(&mut counts, 0);
    writeln!(out, "{counts}")?;

    if doc.recent_decisions.is_empty() {
        writeln!(out, "no decision yet")?;
    } else {
        let mut decisions = table(
            [
                "time",
                "instrument",
                "set",
                "score",
                "direction",
                "tier",
                "verdict",
                "why",
            ]
            .map(String::from)
            .to_vec(),
        );
        for d in doc.recent_decisions.iter().take(DECISIONS) {
            let why = if d.detail.is_empty() {
                d.reasons.first().cloned().unwrap_or_default()
            } else {
                d.detail.clone()
            };
            decisions.add_row(vec![
                d.ts.clone(),
                d.instrument.clone(),
                d.set.clone(),
                format!("{:.1}", d.score),
                d.direction.clone(),
                d.tier.clone(),
                d.verdict.clone(),
                why,
            ]);
        }
        writeln!(out, "{decisions}")?;
    }
    Ok(())
}

fn age(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{:.1}min", secs / 60.0)
    } else {
        format!("{:.1}h", secs / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_completed() {
        assert_eq!(status_url("127.0.0.1:9464"), "http://127.0.0.1:9464/status");
        assert_eq!(status_url("http://h:1/"), "http://h:1/status");
        assert_eq!(status_url("http://h:1/status"), "http://h:1/status");
    }
}
