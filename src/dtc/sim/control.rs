//! The sim's control line protocol (`--control ADDR`), and prices replayed from recorded files.
//!
//! The control protocol is one command per line over TCP, one reply line per command (`ok …`
//! or `error: …`), so it can be driven with `nc` or from a test:
//!
//! ```text
//! price 6501.25      move the price (fills what it reaches)
//! fault split        inject a fault (split, coalesce, silent, disconnect, logoff, reject-next, clear)
//! state              one line: price, connections, working orders, fills, positions
//! help               the list of commands
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{DtcSimError, Fault, Shared, TICK};
use crate::ingest::record::Payload;
use crate::ingest::{Ingestor, Outcome};

/// The chart the dumpers write one-minute bars to.
const MINUTE_BAR_CHART: u16 = 3;

const HELP: &str = "commands: price <PRICE> | fault <split|coalesce|silent|disconnect|logoff|\
                    reject-next|clear> | state | help";

/// Serves one control connection: a command per line, a reply per line.
pub(super) fn serve_control(shared: &Arc<Shared>, stream: TcpStream) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let reply = match command(shared, &line) {
            Ok(text) => format!("ok {text}\n"),
            Err(text) => format!("error: {text}\n"),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Runs one control command; the text of the reply.
fn command(shared: &Shared, line: &str) -> Result<String, String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("price"), Some(price), None) => {
            let price: f64 = price
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p > 0.0)
                .ok_or_else(|| format!("`{price}` is not a positive price"))?;
            shared.set_price(price);
            Ok(format!("price {price}"))
        }
        (Some("fault"), Some(name), None) => {
            let fault: Fault = name.parse().map_err(|e: DtcSimError| e.to_string())?;
            shared.inject(fault);
            Ok(format!("fault {}", fault.name()))
        }
        (Some("state"), None, None) => Ok(state(shared)),
        (Some("help"), None, None) => Ok(HELP.to_owned()),
        (None, ..) => Err("empty command".to_owned()),
        _ => Err(format!("unknown command `{}`; {HELP}", line.trim())),
    }
}

fn state(shared: &Shared) -> String {
    let inner = shared.lock();
    let connections = inner
        .conns
        .values()
        .filter(|c| c.flags.logged_on.load(Ordering::Relaxed))
        .count();
    let orders = inner.exchange.orders();
    let working = orders.iter().filter(|o| o.is_working()).count();
    let positions: Vec<String> = inner
        .exchange
        .positions()
        .iter()
        .filter(|p| p.quantity != 0.0)
        .map(|p| {
            format!(
                "{}/{}={}@{}",
                p.trade_account, p.symbol, p.quantity, p.average_price
            )
        })
        .collect();
    format!(
        "price {} connections {connections} orders {} working {working} fills {} positions [{}]",
        inner.exchange.price(),
        orders.len(),
        inner.exchange.fills().len(),
        positions.join(" ")
    )
}

/// Steps through `prices`, one every `interval`, until the end or the server stops.
pub(super) fn replay(shared: &Shared, prices: &[f64], interval: Duration) {
    for &price in prices {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        shared.set_price(price);
        // Sleep in ticks so that a stop is noticed quickly.
        let mut left = interval;
        while !left.is_zero() && !shared.stop.load(Ordering::Relaxed) {
            let step = left.min(TICK);
            std::thread::sleep(step);
            left -= step;
        }
    }
    tracing::info!("price replay finished; the last price stays");
}

/// An ingestor over the one-minute chart of a data folder, its files found.
fn minute_ingestor(dir: &Path) -> Result<Ingestor, DtcSimError> {
    let fail = |e: crate::ingest::IngestError| DtcSimError::Prices {
        dir: dir.to_owned(),
        why: e.to_string(),
    };
    let mut ingestor = Ingestor::new(
        dir,
        &[MINUTE_BAR_CHART],
        chrono_tz::America::New_York,
        1 << 20,
    )
    .map_err(fail)?;
    ingestor.rescan().map_err(fail)?;
    Ok(ingestor)
}

/// The price follower of [`super::SimHandle::follow_prices`]: an ingestor over the one-minute
/// chart of a data folder, polled every tick.
pub(super) struct Follower {
    dir: std::path::PathBuf,
    ingestor: Ingestor,
    symbol: Option<String>,
}

impl Follower {
    pub(super) fn open(dir: &Path) -> Result<Follower, DtcSimError> {
        Ok(Follower {
            dir: dir.to_owned(),
            ingestor: minute_ingestor(dir)?,
            symbol: None,
        })
    }

    pub(super) fn run(mut self, shared: &Shared) {
        let mut ticks = 0u32;
        while !shared.stop.load(Ordering::Relaxed) {
            // New files (a simulator that just started, a new day) every second.
            ticks += 1;
            if ticks % 20 == 0
                && let Err(e) = self.ingestor.rescan()
            {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot rescan for prices");
            }
            let mut last = None;
            let symbol = &mut self.symbol;
            self.ingestor.poll(&mut |event| {
                let Outcome::Accepted(record) = &event.outcome else {
                    return;
                };
                let price = match &record.payload {
                    Payload::Bar(bar) => bar.close,
                    Payload::Trade { price, .. } => *price,
                    _ => return,
                };
                let sym = record.sym.as_deref().unwrap_or_default();
                if symbol.get_or_insert_with(|| sym.to_owned()) == sym
                    && price.is_finite()
                    && price > 0.0
                {
                    last = Some(price);
                }
            });
            if let Some(price) = last {
                shared.set_price(price);
            }
            std::thread::sleep(TICK);
        }
    }
}

/// The closes of the one-minute bars (chart 3) of a recorded Sierra data folder, in time order:
/// the last update of each bar, for the first symbol found.
///
/// # Errors
///
/// [`DtcSimError::Prices`] when the folder cannot be read or holds no one-minute bar.
pub fn load_prices(dir: &Path) -> Result<Vec<f64>, DtcSimError> {
    let fail = |why: String| DtcSimError::Prices {
        dir: dir.to_owned(),
        why,
    };
    let mut ingestor = minute_ingestor(dir)?;
    let mut symbol: Option<String> = None;
    // Bar start time → close: a bar is rewritten while it forms, and the last write wins.
    let mut closes: BTreeMap<i64, f64> = BTreeMap::new();
    ingestor.drain(&mut |event| {
        let Outcome::Accepted(record) = &event.outcome else {
            return;
        };
        let Payload::Bar(bar) = &record.payload else {
            return;
        };
        let sym = record.sym.as_deref().unwrap_or_default();
        let first = symbol.get_or_insert_with(|| sym.to_owned());
        if first == sym && bar.close.is_finite() && bar.close > 0.0 {
            closes.insert(record.ts.as_micros(), bar.close);
        }
    });
    if closes.is_empty() {
        return Err(fail("no one-minute bar (chart 3) found".to_owned()));
    }
    tracing::info!(
        bars = closes.len(),
        symbol = symbol.as_deref().unwrap_or(""),
        "prices loaded"
    );
    Ok(closes.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>().unwrap(), fault);
        }
        assert!("splat".parse::<Fault>().is_err());
    }
}
