//! The script-facing view of the market: the properties of `s` in `decide(s)`.
//!
//! [`PROPERTIES`] is the one list of what scripts can read: the host registers one getter per
//! entry, `docs/rules.md` documents each (a test keeps them in sync), and `check-rules` walks
//! scripts against it. Reading any other property is a run-time error, never a silent `()`.
//!
//! A value that is not known (no value area yet, no level of a family above price) is `()`.
//! Distances are signed ticks: positive when the level is above the price, negative below.

/// The Rhai type of a property value (besides `()` when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A floating-point number.
    Float,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// A string.
    Str,
}

impl Kind {
    /// Name used in the documentation.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Float => "float",
            Kind::Int => "int",
            Kind::Bool => "bool",
            Kind::Str => "string",
        }
    }
}

/// One property of `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    /// Name, as scripts write it: `s.price`.
    pub name: &'static str,
    /// Value type when known.
    pub kind: Kind,
    /// Whether the value can be `()`.
    pub optional: bool,
    /// What it means, for `docs/rules.md`.
    pub doc: &'static str,
}

const fn p(name: &'static str, kind: Kind, optional: bool, doc: &'static str) -> Property {
    Property {
        name,
        kind,
        optional,
        doc,
    }
}

use Kind::{Bool, Float, Int, Str};

/// Every property of `s`, in documentation order. The index of a property is its slot in the
/// value table the host builds for each evaluation.
pub const PROPERTIES: &[Property] = &[
    // Identity and time.
    p(
        "instrument",
        Str,
        false,
        "Instrument name, the symbol root (`ES`, `NQ`, …).",
    ),
    p(
        "symbol",
        Str,
        true,
        "Sierra symbol of the last record (`ESZ25_FUT_CME`).",
    ),
    p(
        "tick_size",
        Float,
        false,
        "Minimum price increment of the instrument, in points.",
    ),
    p(
        "tick_value",
        Float,
        false,
        "Dollar value of one tick for one contract.",
    ),
    p(
        "time",
        Str,
        false,
        "Snapshot time, ISO-8601 UTC with milliseconds.",
    ),
    p(
        "minute_of_day",
        Int,
        false,
        "Minutes since midnight in the exchange time zone (09:30 is 570).",
    ),
    p(
        "in_session",
        Bool,
        false,
        "Whether the snapshot time is inside the regular session of the config.",
    ),
    // Price.
    p(
        "price",
        Float,
        true,
        "Last traded price (last trade print, else the bar close).",
    ),
    p("bid", Float, true, "Best bid (crossed quotes are ignored)."),
    p("ask", Float, true, "Best ask."),
    p("bar_open", Float, true, "Open of the last one-minute bar."),
    p("bar_high", Float, true, "High of the last one-minute bar."),
    p("bar_low", Float, true, "Low of the last one-minute bar."),
    p(
        "bar_close",
        Float,
        true,
        "Close of the last one-minute bar.",
    ),
    p(
        "bar_volume",
        Float,
        true,
        "Volume of the last one-minute bar (as capped by the dumper).",
    ),
    // VWAP.
    p("vwap", Float, true, "Session VWAP of the one-minute chart."),
    p(
        "vwap_sigma",
        Float,
        true,
        "One standard deviation of the VWAP bands, in points.",
    ),
    p(
        "vwap_z",
        Float,
        true,
        "Price against VWAP in standard deviations: (price − vwap) / σ.",
    ),
    // Value area (one-minute chart, current session).
    p(
        "vah",
        Float,
        true,
        "Value area high of the current session.",
    ),
    p("val", Float, true, "Value area low of the current session."),
    p(
        "vpoc",
        Float,
        true,
        "Volume point of control of the current session.",
    ),
    p(
        "prev_vah",
        Float,
        true,
        "Value area high of the previous session.",
    ),
    p(
        "prev_val",
        Float,
        true,
        "Value area low of the previous session.",
    ),
    p(
        "prev_vpoc",
        Float,
        true,
        "Point of control of the previous session.",
    ),
    p(
        "va_position",
        Int,
        true,
        "1 above VAH, 0 inside the value area, −1 below VAL.",
    ),
    p(
        "vah_ticks",
        Float,
        true,
        "Signed ticks from price to VAH (positive when VAH is above).",
    ),
    p("val_ticks", Float, true, "Signed ticks from price to VAL."),
    p(
        "vpoc_ticks",
        Float,
        true,
        "Signed ticks from price to the VPOC.",
    ),
    // Order flow.
    p(
        "delta",
        Float,
        true,
        "Ask minus bid volume of the current bar (NBCV).",
    ),
    p(
        "delta_ratio",
        Float,
        true,
        "Delta over total volume of the current bar, in [−1, 1].",
    ),
    p(
        "pressure",
        Int,
        true,
        "NBCV pressure of the current bar: 1 bullish, −1 bearish, 0 neutral.",
    ),
    p("cumulative_delta", Float, true, "Session cumulative delta."),
    p(
        "total_volume",
        Float,
        true,
        "Total volume of the current bar (NBCV).",
    ),
    // Volatility.
    p(
        "atr",
        Float,
        true,
        "Average true range of the one-minute bars, in points.",
    ),
    p("atr_ticks", Float, true, "The ATR in ticks."),
    p("vix", Float, true, "Last VIX value."),
    p(
        "vix_policy",
        Str,
        true,
        "VIX policy with hysteresis: \"low\", \"normal\", \"high\" or \"extreme\".",
    ),
    // Thirty-minute profile.
    p(
        "profile_vpoc",
        Float,
        true,
        "VPOC of the 30-minute volume profile.",
    ),
    p(
        "profile_vah",
        Float,
        true,
        "VAH of the 30-minute volume profile.",
    ),
    p(
        "profile_val",
        Float,
        true,
        "VAL of the 30-minute volume profile.",
    ),
    p(
        "hvn_ticks",
        Float,
        true,
        "Signed ticks from price to the high-volume node of the 30-minute profile.",
    ),
    p(
        "lvn_ticks",
        Float,
        true,
        "Signed ticks from price to the low-volume node.",
    ),
    p(
        "correlation",
        Float,
        true,
        "ES/NQ correlation coefficient from the MenthorQ chart.",
    ),
    // MenthorQ levels: signed ticks to the nearest level of each family above and at/below price.
    p(
        "resistance_above",
        Float,
        true,
        "Ticks to the nearest resistance level above (call resistance, call resistance 0DTE, gamma wall 0DTE, 1D max).",
    ),
    p(
        "resistance_below",
        Float,
        true,
        "Ticks (≤ 0) to the nearest resistance level at or below price.",
    ),
    p(
        "support_above",
        Float,
        true,
        "Ticks to the nearest support level above (put support, put support 0DTE, HVL, HVL 0DTE, 1D min).",
    ),
    p(
        "support_below",
        Float,
        true,
        "Ticks (≤ 0) to the nearest support level at or below price.",
    ),
    p(
        "gex_above",
        Float,
        true,
        "Ticks to the nearest GEX level above.",
    ),
    p(
        "gex_below",
        Float,
        true,
        "Ticks (≤ 0) to the nearest GEX level at or below price.",
    ),
    p(
        "blind_spot_above",
        Float,
        true,
        "Ticks to the nearest blind spot above.",
    ),
    p(
        "blind_spot_below",
        Float,
        true,
        "Ticks (≤ 0) to the nearest blind spot at or below price.",
    ),
    p(
        "blind_spot_ticks",
        Float,
        true,
        "Unsigned ticks to the nearest blind spot on either side.",
    ),
    p(
        "swing_above",
        Float,
        true,
        "Ticks to the nearest swing level above.",
    ),
    p(
        "swing_below",
        Float,
        true,
        "Ticks (≤ 0) to the nearest swing level at or below price.",
    ),
    p(
        "gamma_wall_ticks",
        Float,
        true,
        "Signed ticks to the 0DTE gamma wall.",
    ),
    p(
        "call_resistance_ticks",
        Float,
        true,
        "Signed ticks to the call resistance.",
    ),
    p(
        "put_support_ticks",
        Float,
        true,
        "Signed ticks to the put support.",
    ),
    p(
        "hvl_ticks",
        Float,
        true,
        "Signed ticks to the high volatility level (HVL).",
    ),
    p(
        "nearest_level",
        Str,
        true,
        "Name of the nearest MenthorQ level of any family (`put_support`, `blind_spot_3`, …).",
    ),
    p(
        "nearest_level_ticks",
        Float,
        true,
        "Signed ticks to that level.",
    ),
    p(
        "level_count",
        Int,
        false,
        "Number of MenthorQ levels in the current block.",
    ),
    p(
        "confluence",
        Int,
        false,
        "Number of distinct level families (MenthorQ families, VWAP, value-area edges and POC, HVN/LVN) within the confluence distance of price.",
    ),
    p(
        "dealer_bias",
        Float,
        true,
        "Dealer's bias in [−1, 1], EMA-smoothed (α = 0.2); positive is bullish.",
    ),
    p(
        "dealer_bias_raw",
        Float,
        true,
        "Dealer's bias of this snapshot, before smoothing.",
    ),
    // Staleness.
    p(
        "stale_minute",
        Bool,
        false,
        "The one-minute data is older than its staleness limit.",
    ),
    p("stale_profile", Bool, false, "The 30-minute data is stale."),
    p("stale_vix", Bool, false, "The VIX is stale."),
    p(
        "stale_menthorq",
        Bool,
        false,
        "The MenthorQ levels are stale (during the session only).",
    ),
];

/// Renders the property table of `docs/rules.md`.
pub fn markdown_table() -> String {
    let mut out = String::from("| Property | Type | Meaning |\n|---|---|---|\n");
    for p in PROPERTIES {
        let unit = if p.optional { " or `()`" } else { "" };
        out.push_str(&format!(
            "| `s.{}` | {}{unit} | {} |\n",
            p.name,
            p.kind.name(),
            p.doc
        ));
    }
    out
}

/// The property whose name is closest to a misspelt `name`, if one is close enough to be what
/// was meant (an edit distance of at most a third of the name, and at least 1).
pub fn suggest(name: &str) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).max(1);
    PROPERTIES
        .iter()
        .map(|p| (strsim::damerau_levenshtein(name, p.name), p.name))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, n)| n)
}

/// Returns the slot of a property name.
pub fn slot(name: &str) -> Option<usize> {
    PROPERTIES.iter().position(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/rules.md` documents exactly the properties the host offers.
    #[test]
    fn docs_rules_md_lists_every_property() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let begin = doc.find("<!-- properties:begin").expect("begin marker");
        let body_start = begin + doc[begin..].find("-->\n").expect("end of begin marker") + 4;
        let end = doc.find("<!-- properties:end -->").expect("end marker");
        let table = markdown_table();
        if std::env::var_os("MIA_BLESS").is_some_and(|v| v == "1") {
            let updated = format!("{}{table}{}", &doc[..body_start], &doc[end..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        pretty_assertions::assert_eq!(
            &doc[body_start..end],
            table,
            "run MIA_BLESS=1 cargo test rules::schema"
        );
    }

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate property name");
        for p in PROPERTIES {
            assert!(p.doc.ends_with('.'), "{} doc must be a sentence", p.name);
        }
    }
}
