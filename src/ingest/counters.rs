//! Line counters per chart and record type, for the summary table and the metrics.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts for one (chart, type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Complete lines read (blank lines excluded).
    pub read: u64,
    /// Lines accepted: valid and not duplicates.
    pub accepted: u64,
    /// Lines rejected as invalid (each is reported with its file and line).
    pub invalid: u64,
    /// Valid lines dropped as duplicates.
    pub duplicates: u64,
    /// Accepted lines of a type mia does not know (kept in the journal).
    pub unknown: u64,
    /// Accepted lines that look wrong and are not trusted (crossed quotes, inverted value areas).
    pub flagged: u64,
    /// Accepted lines kept out of the journal by a configured filter.
    pub filtered: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.accepted += other.accepted;
        self.invalid += other.invalid;
        self.duplicates += other.duplicates;
        self.unknown += other.unknown;
        self.flagged += other.flagged;
        self.filtered += other.filtered;
    }
}

/// Counters keyed by chart, then type. Invalid lines, which have no type, count under the file
/// kind (or `?` for one-file-per-chart files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    charts: BTreeMap<u16, Vec<(Box<str>, Counts)>>,
    /// Blank lines seen (no content, nothing lost).
    pub blank: u64,
}

impl Counters {
    /// Returns the counts of (chart, kind), creating them. A linear scan: a chart has about a
    /// dozen types, and this avoids allocating a key per line.
    pub fn entry(&mut self, chart: u16, kind: &str) -> &mut Counts {
        let types = self.charts.entry(chart).or_default();
        let idx = match types.iter().position(|(k, _)| &**k == kind) {
            Some(idx) => idx,
            None => {
                types.push((kind.into(), Counts::default()));
                types.len() - 1
            }
        };
        &mut types[idx].1
    }

    /// Returns every (chart, type, counts), sorted by chart then type.
    pub fn rows(&self) -> Vec<(u16, String, Counts)> {
        let mut rows: Vec<_> = self
            .charts
            .iter()
            .flat_map(|(chart, types)| types.iter().map(|(k, c)| (*chart, k.to_string(), *c)))
            .collect();
        rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        rows
    }

    /// Returns the sum over every chart and type.
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for types in self.charts.values() {
            for (_, c) in types {
                total.add(c);
            }
        }
        total
    }

    /// Returns the sum for one chart.
    pub fn chart_total(&self, chart: u16) -> Counts {
        let mut total = Counts::default();
        for (_, c) in self.charts.get(&chart).into_iter().flatten() {
            total.add(c);
        }
        total
    }
}
