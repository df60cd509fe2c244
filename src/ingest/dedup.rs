//! Duplicate detection (product.md §3, sierra-format.md §5.6).
//!
//! * A quote or trade is a duplicate when its stream (chart, symbol, type) already produced the
//!   same Time & Sales `seq`: the G3 dumper replays up to 1000 records after quiet periods and
//!   re-dumps the T&S tail after a DLL reload.
//! * Any other record is a duplicate when its bytes equal the previous line accepted for the same
//!   key (chart, symbol, type, bar index and, for MenthorQ levels, study and subgraph). Bar
//!   records are last-wins per (type, i), so an identical repeat carries nothing new.

use std::collections::{HashMap, HashSet, VecDeque};

use xxhash_rust::xxh3::xxh3_64;

use super::record::Record;

/// How many recent sequences each T&S stream remembers. Sierra rewinds at most 1000 records and
/// a DLL reload re-emits the T&S buffer tail, so 64 Ki covers both with a wide margin.
const SEQ_WINDOW: usize = 1 << 16;
/// How many bar indices each bar stream remembers; bars only move forward, and a chart
/// recalculation that re-emits older bars is rare enough to be journaled again.
const INDEX_WINDOW: usize = 64;

#[derive(Debug, Default)]
struct SeqWindow {
    seen: HashSet<u32>,
    order: VecDeque<u32>,
}

impl SeqWindow {
    /// Records `seq`; returns false when it was already there.
    fn insert(&mut self, seq: u32) -> bool {
        if !self.seen.insert(seq) {
            return false;
        }
        self.order.push_back(seq);
        if self.order.len() > SEQ_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

/// Remembers what has been accepted, to drop repeats.
#[derive(Debug, Default)]
pub struct Dedup {
    seqs: HashMap<(u16, u64), SeqWindow>,
    bars: HashMap<(u16, u64), VecDeque<(i64, u64)>>,
}

fn stream_hash(record: &Record<'_>) -> u64 {
    let sym = record.sym.as_deref().unwrap_or("");
    let mut key = Vec::with_capacity(sym.len() + record.kind.len() + 18);
    key.extend_from_slice(sym.as_bytes());
    key.push(0);
    key.extend_from_slice(record.kind.as_bytes());
    if let Some((study, subgraph)) = record.level_slot {
        key.extend_from_slice(&study.to_le_bytes());
        key.extend_from_slice(&subgraph.to_le_bytes());
    }
    xxh3_64(&key)
}

impl Dedup {
    /// Returns true when `record` (parsed from `line` of `chart`) is new, and remembers it.
    pub fn accept(&mut self, chart: u16, record: &Record<'_>, line: &str) -> bool {
        let stream = (chart, stream_hash(record));
        if let Some(seq) = record.seq() {
            return self.seqs.entry(stream).or_default().insert(seq);
        }
        // Records without a bar index (trade summaries, VIX closes) form one slot per stream.
        let index = record.index.unwrap_or(i64::MIN);
        let hash = xxh3_64(line.as_bytes());
        let recent = self.bars.entry(stream).or_default();
        match recent.iter_mut().rev().find(|(i, _)| *i == index) {
            Some((_, last)) if *last == hash => false,
            Some((_, last)) => {
                *last = hash;
                true
            }
            None => {
                recent.push_back((index, hash));
                if recent.len() > INDEX_WINDOW {
                    recent.pop_front();
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::record::{LineContext, parse_line};

    fn ctx(kind: &'static str) -> LineContext<'static> {
        LineContext {
            chart: 3,
            kind: Some(kind),
            file_date: None,
            tz: chrono_tz::UTC,
        }
    }

    fn accept(d: &mut Dedup, kind: &'static str, line: &str) -> bool {
        let record = parse_line(line, &ctx(kind)).unwrap();
        d.accept(3, &record, line)
    }

    #[test]
    fn quotes_by_seq_per_stream() {
        let mut d = Dedup::default();
        let q = |seq: u32| {
            format!(r#"{{"t":45919.5,"sym":"ES","type":"quote","bid":1,"ask":2,"seq":{seq}}}"#)
        };
        let t = |seq: u32| {
            format!(r#"{{"t":45919.5,"sym":"ES","type":"trade","px":1,"vol":2,"seq":{seq}}}"#)
        };
        assert!(accept(&mut d, "quote", &q(1)));
        assert!(accept(&mut d, "quote", &q(2)));
        assert!(!accept(&mut d, "quote", &q(1)), "replayed seq");
        assert!(
            accept(&mut d, "trade", &t(1)),
            "trades are their own stream"
        );
        assert!(!accept(&mut d, "trade", &t(1)));
    }

    #[test]
    fn bars_last_wins_identical_repeat_is_a_duplicate() {
        let mut d = Dedup::default();
        let v = |i: u32, c: f64| {
            format!(
                r#"{{"t":45919.5,"sym":"ES","type":"basedata","i":{i},"o":1,"h":2,"l":1,"c":{c}}}"#
            )
        };
        assert!(accept(&mut d, "basedata", &v(1, 1.5)));
        assert!(!accept(&mut d, "basedata", &v(1, 1.5)));
        assert!(
            accept(&mut d, "basedata", &v(1, 1.75)),
            "an intrabar update is new"
        );
        assert!(accept(&mut d, "basedata", &v(2, 1.75)));
        assert!(
            accept(&mut d, "basedata", &v(1, 1.5)),
            "differs from the last line of bar 1"
        );
    }

    #[test]
    fn menthorq_levels_are_keyed_by_subgraph() {
        let mut d = Dedup::default();
        let l = |sg: u32| {
            format!(
                r#"{{"t":45919.5,"sym":"ES","type":"menthorq_level","level_type":"gex_1","price":6500.0,"subgraph":{sg},"study_id":1,"i":9}}"#
            )
        };
        assert!(accept(&mut d, "menthorq", &l(9)));
        assert!(accept(&mut d, "menthorq", &l(10)));
        assert!(!accept(&mut d, "menthorq", &l(9)));
    }
}
