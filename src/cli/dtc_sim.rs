//! `mia dtc-sim`: a DTC server that behaves like Sierra Chart's trade simulation service.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use mia::dtc::sim::{Fault, SimConfig, SimServer, load_prices};

use super::Status;

/// What `mia dtc-sim --help` teaches after the options.
const GUIDE: &str = "\
What it does:
  Point mia's live mode (or any DTC client) at it to try order routing without Sierra Chart and
  without risk. It speaks the same protocol: the 16-byte binary ENCODING_REQUEST answered with
  JSON (or JSON at once when the first byte is `{`), LOGON with heartbeats (a client silent for
  2x its interval is dropped), account Sim1, security definitions (tick 0.25 for ES, NQ, MES,
  MNQ; an unknown symbol gets an empty description, never a reject), market, limit, stop and
  stop-limit orders, OCO, brackets (parent with IsParentOrder=1 then at once its OCO; children
  PENDING_CHILD until the parent fills; a filled leg cancels the other), cancel, cancel-replace,
  flatten, ORDER_UPDATE and POSITION_UPDATE after every fill to every logged-on connection, and
  open orders, positions and fills on request.

Prices:
  One price for every symbol: --price, the control protocol, the one-minute bar closes of
  recorded Sierra files (--prices), or the bars and trade prints of files as they grow
  (--follow). A buy limit fills when price <= limit, a sell limit when
  price >= limit, a buy stop when price >= stop, a sell stop when price <= stop. No slippage, no
  partial fills.

Control protocol (--control ADDR), one command per line, one reply line `ok ...`/`error: ...`:
  price PRICE    move the price (fills what it reaches)
  fault NAME     inject a fault (names below)
  state          price, connections, orders, fills, positions
  help           the commands
  e.g.  printf 'price 6501.25\\n' | nc -q1 127.0.0.1 11199

Faults (--fault NAME at start for split, coalesce and reject-next; --fault NAME@SECONDS for any,
SECONDS after the start; or `fault NAME` on the control port at any time):
  split          write every message one byte at a time, flushing each
  coalesce       gather several messages into one write
  silent         the connections open now send nothing (no heartbeats) and answer nothing
  disconnect     close every connection now
  logoff         send LOGOFF with DoNotReconnect=1 to every connection, then close them
  reject-next    reject the next new order, with an InfoText naming the fault
  clear          end split, coalesce, silent and a pending reject-next

Examples:
  mia dtc-sim --listen 127.0.0.1:11099 --control 127.0.0.1:11199 --price 6500.25
  mia dtc-sim --prices demo-data --speed 120
  mia dtc-sim --follow demo-data            # prices from files a simulator is appending
  mia dtc-sim --listen 127.0.0.1:0 --fault split --fault logoff@30

It prints `listening on ADDR` (and `control on ADDR`) and runs until Ctrl-C. See docs/dtc-sim.md.";

/// Run a DTC server that behaves like Sierra Chart's trade simulation service.
#[derive(Debug, clap::Args)]
#[command(after_long_help = GUIDE, after_help = "More (protocol, prices, control, faults): --help")]
pub(crate) struct Args {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:11099")]
    listen: SocketAddr,
    /// Starting price of every symbol.
    #[arg(long, value_name = "PRICE", default_value_t = 6500.0)]
    price: f64,
    /// Replay the one-minute bar closes of a recorded Sierra data folder (chart 3, first symbol
    /// found), one bar every 60/--speed seconds; the last price stays.
    #[arg(long, value_name = "DATA_DIR")]
    prices: Option<PathBuf>,
    /// Follow a Sierra data folder while it grows (chart 3): every new bar update or trade print
    /// moves the price, as Sierra's trade simulation fills from the live market (what
    /// `mia demo` does with the simulator's files).
    #[arg(long, value_name = "DATA_DIR", conflicts_with = "prices")]
    follow: Option<PathBuf>,
    /// Replay speed of --prices: 60 plays one recorded minute per second.
    #[arg(long, value_name = "FACTOR", default_value_t = 60.0)]
    speed: f64,
    /// Address of the control line protocol (price, fault, state, help).
    #[arg(long, value_name = "ADDR")]
    control: Option<SocketAddr>,
    /// Inject a fault at start, or SECONDS after it (NAME@SECONDS); repeatable. Names: split,
    /// coalesce, silent, disconnect, logoff, reject-next, clear.
    #[arg(long, value_name = "NAME[@SECONDS]", value_parser = parse_fault)]
    fault: Vec<(Fault, Option<f64>)>,
}

/// The faults that mean something before any client connects (modes, not events).
const STARTING_FAULTS: [Fault; 3] = [
    Fault::SplitFrames,
    Fault::CoalesceFrames,
    Fault::RejectNextOrder,
];

fn parse_fault(s: &str) -> Result<(Fault, Option<f64>), String> {
    let (name, at) = match s.split_once('@') {
        Some((name, secs)) => {
            let secs: f64 = secs
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("`{secs}` is not a number of seconds"))?;
            (name, Some(secs))
        }
        None => (s, None),
    };
    let fault: Fault = name.parse().map_err(|e| format!("{e}"))?;
    Ok((fault, at))
}

pub(crate) fn run(args: Args) -> anyhow::Result<Status> {
    if !(args.price.is_finite() && args.price > 0.0) {
        anyhow::bail!("--price must be a positive price, got {}", args.price);
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a positive factor, got {}", args.speed);
    }
    if let Some((fault, _)) = args
        .fault
        .iter()
        .find(|(f, at)| at.is_none() && !STARTING_FAULTS.contains(f))
    {
        anyhow::bail!(
            "--fault {0} acts on the connections open at that moment, so at start it would do \
             nothing; give it a time: --fault {0}@SECONDS",
            fault.name()
        );
    }
    let prices = match &args.prices {
        Some(dir) => Some(load_prices(dir)?),
        None => None,
    };
    let stop = super::stop_flag();
    let config = SimConfig {
        listen: args.listen,
        price: prices
            .as_ref()
            .and_then(|p| p.first().copied())
            .unwrap_or(args.price),
        control: args.control,
        faults: args
            .fault
            .iter()
            .filter(|(_, at)| at.is_none())
            .map(|(f, _)| *f)
            .collect(),
        ..SimConfig::default()
    };
    let sim = SimServer::start(config).context("cannot start the DTC simulator")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", sim.addr())?;
        if let Some(control) = sim.control_addr() {
            writeln!(out, "control on {control}")?;
        }
        out.flush()?;
    }
    if let Some(dir) = &args.follow {
        sim.follow_prices(dir)
            .with_context(|| format!("cannot follow prices in {}", dir.display()))?;
    }
    if let Some(prices) = prices {
        let interval = Duration::from_secs_f64(60.0 / args.speed);
        sim.replay_prices(prices, interval);
    }
    let mut timed: Vec<(Fault, Duration)> = args
        .fault
        .iter()
        .filter_map(|(f, at)| at.map(|secs| (*f, Duration::from_secs_f64(secs))))
        .collect();
    timed.sort_by_key(|(_, at)| *at);
    let started = mia::clock::Stopwatch::start();
    while !stop.load(Ordering::Relaxed) {
        while let Some(&(fault, at)) = timed.first()
            && started.elapsed() >= at
        {
            sim.inject(fault);
            timed.remove(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("stopping");
    sim.stop();
    Ok(Status::Ok)
}
