//! The three file-naming schemes of the Sierra dumpers (sierra-format.md §1), in both directions:
//! parsing a path found on disk and building the path a dumper would write.

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// French month folder names of the organised tree, January first (uppercase, no accents).
pub const MONTHS_FR: [&str; 12] = [
    "JANVIER",
    "FEVRIER",
    "MARS",
    "AVRIL",
    "MAI",
    "JUIN",
    "JUILLET",
    "AOUT",
    "SEPTEMBRE",
    "OCTOBRE",
    "NOVEMBRE",
    "DECEMBRE",
];

/// How the dumpers lay files out below the data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `chart_<N>_<kind>_<YYYYMMDD>.jsonl` directly in the data folder.
    Flat,
    /// `DATA_SIERRA_CHART/DATA_<YYYY>/<MONTH_FR>/<YYYYMMDD>/CHART_<N>/chart_<N>_<kind>_<YYYYMMDD>.jsonl`
    /// for charts 3 and 10, flat for charts 4 and 8: what the current dumpers write.
    #[default]
    Organised,
    /// One file per chart and day, `chart_<N>_<YYYYMMDD>.jsonl`, all record types mixed (the
    /// naming of the original design document).
    PerChart,
}

/// What a file name says about its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceName {
    /// Chart number.
    pub chart: u16,
    /// Record kind (`basedata`, `quote`, `menthorq`, …); `None` for one-file-per-chart names.
    pub kind: Option<String>,
    /// Date in the name; `None` for the undated `chart_<N>.jsonl` of the first generation.
    pub date: Option<NaiveDate>,
}

impl SourceName {
    /// Parses a file name (not a path). Returns `None` for files that are not chart dumps
    /// (`debug_g3_*.log`, `study_inventory_*`, unified journals, …).
    pub fn parse(file_name: &str) -> Option<SourceName> {
        let stem = file_name.strip_suffix(".jsonl")?;
        let rest = stem.strip_prefix("chart_")?;
        let (chart_str, rest) = match rest.find('_') {
            Some(idx) => (&rest[..idx], Some(&rest[idx + 1..])),
            None => (rest, None),
        };
        let chart: u16 = chart_str.parse().ok()?;
        if chart_str.is_empty() || !chart_str.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let Some(rest) = rest else {
            return Some(SourceName {
                chart,
                kind: None,
                date: None,
            });
        };
        // The date is the last 8 digits; the kind, which may contain underscores, is between.
        let (kind, date_str) = match rest.rfind('_') {
            Some(idx) => (Some(&rest[..idx]), &rest[idx + 1..]),
            None => (None, rest),
        };
        let date = parse_yyyymmdd(date_str)?;
        if let Some(kind) = kind {
            let valid = !kind.is_empty()
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return None;
            }
        }
        Some(SourceName {
            chart,
            kind: kind.map(str::to_owned),
            date: Some(date),
        })
    }

    /// Returns the file name this source has on disk.
    pub fn file_name(&self) -> String {
        match (&self.kind, self.date) {
            (Some(kind), Some(date)) => {
                format!("chart_{}_{kind}_{}.jsonl", self.chart, yyyymmdd(date))
            }
            (None, Some(date)) => format!("chart_{}_{}.jsonl", self.chart, yyyymmdd(date)),
            (Some(kind), None) => format!("chart_{}_{kind}.jsonl", self.chart),
            (None, None) => format!("chart_{}.jsonl", self.chart),
        }
    }
}

/// Parses `YYYYMMDD`.
pub fn parse_yyyymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y%m%d").ok()
}

/// Formats a date as `YYYYMMDD`.
pub fn yyyymmdd(date: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", date.year(), date.month(), date.day())
}

/// Returns the folder of the organised tree that holds `chart`'s files for `date`.
pub fn organised_dir(root: &Path, date: NaiveDate, chart: u16) -> PathBuf {
    root.join("DATA_SIERRA_CHART")
        .join(format!("DATA_{:04}", date.year()))
        .join(MONTHS_FR[date.month0() as usize])
        .join(yyyymmdd(date))
        .join(format!("CHART_{chart}"))
}

/// Returns the path where a dumper using `layout` writes `kind` of `chart` for `date`.
///
/// With [`Layout::PerChart`] the kind is ignored: every record of the chart goes to one file.
pub fn source_path(
    root: &Path,
    layout: Layout,
    chart: u16,
    kind: &str,
    date: NaiveDate,
) -> PathBuf {
    match layout {
        Layout::Flat => root.join(
            SourceName {
                chart,
                kind: Some(kind.to_owned()),
                date: Some(date),
            }
            .file_name(),
        ),
        Layout::Organised => {
            let name = SourceName {
                chart,
                kind: Some(kind.to_owned()),
                date: Some(date),
            }
            .file_name();
            // Only G3 and G10 write the organised tree; G4 and G8 stay flat (sierra-format.md §1.2).
            if chart == 4 || chart == 8 {
                root.join(name)
            } else {
                organised_dir(root, date, chart).join(name)
            }
        }
        Layout::PerChart => root.join(
            SourceName {
                chart,
                kind: None,
                date: Some(date),
            }
            .file_name(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, chart: u16, kind: Option<&str>, date: Option<&str>) {
        let parsed = SourceName::parse(name).unwrap_or_else(|| panic!("{name} did not parse"));
        assert_eq!(parsed.chart, chart);
        assert_eq!(parsed.kind.as_deref(), kind);
        assert_eq!(parsed.date, date.and_then(parse_yyyymmdd));
        assert_eq!(parsed.file_name(), name);
    }

    #[test]
    fn parses_the_three_schemes() {
        check(
            "chart_3_basedata_20250919.jsonl",
            3,
            Some("basedata"),
            Some("20250919"),
        );
        check(
            "chart_3_cumulative_delta_20250919.jsonl",
            3,
            Some("cumulative_delta"),
            Some("20250919"),
        );
        check(
            "chart_4_vva_previous_20250919.jsonl",
            4,
            Some("vva_previous"),
            Some("20250919"),
        );
        check("chart_10_20250910.jsonl", 10, None, Some("20250910"));
        check("chart_3.jsonl", 3, None, None);
    }

    #[test]
    fn rejects_other_files() {
        for name in [
            "debug_g3_20250919.log",
            "study_inventory_chart_3_20250919.jsonl",
            "mia_unified_20250919.jsonl",
            "chart_x_basedata_20250919.jsonl",
            "chart_3_basedata_2025091.jsonl",
            "chart_3_basedata_20251319.jsonl",
            "chart_3_basedata_20250919.json",
            "chart__20250919.jsonl",
        ] {
            assert_eq!(SourceName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn organised_paths_match_the_dumpers() {
        let date = parse_yyyymmdd("20250919").unwrap();
        let root = Path::new("D");
        assert_eq!(
            source_path(root, Layout::Organised, 3, "basedata", date),
            Path::new(
                "D/DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250919/CHART_3/chart_3_basedata_20250919.jsonl"
            )
        );
        assert_eq!(
            source_path(root, Layout::Organised, 8, "vix", date),
            Path::new("D/chart_8_vix_20250919.jsonl")
        );
        assert_eq!(
            source_path(root, Layout::PerChart, 10, "menthorq", date),
            Path::new("D/chart_10_20250919.jsonl")
        );
    }
}
