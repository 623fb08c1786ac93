//! The metric names a PromQL expression queries: what is left once strings, label matchers,
//! ranges, `$variables`, grouping clauses, functions, aggregations, keywords and numbers are
//! taken out, with the `_bucket`, `_sum` and `_count` of a histogram's series stripped.
//! Enough for the dashboard's expressions, not a PromQL parser.

use std::collections::BTreeSet;

/// Operators written before their parenthesis or followed by a grouping clause.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a parenthesised list of labels.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Binary operators and modifiers spelt as words.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2"];

/// The series suffixes of a histogram.
const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

/// `name` without a histogram series' suffix.
pub fn base_name(name: &str) -> &str {
    HISTOGRAM_SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// The index just past the bracket that closes the one at `start` (quotes respected).
fn past_closing(bytes: &[u8], start: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = past_quote(bytes, i) - 1,
            b if b == open => depth += 1,
            b if b == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index just past the string literal that starts at `start`.
fn past_quote(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b if b == quote => return i + 1,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Whether `b` may be part of a metric name.
fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// The metric names `expr` queries, histogram suffixes stripped.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b'"' | b'\'' | b'`') {
            i = past_quote(bytes, i);
        } else if b == b'{' {
            i = past_closing(bytes, i, b'{', b'}');
        } else if b == b'[' {
            i = past_closing(bytes, i, b'[', b']');
        } else if b == b'$' || b.is_ascii_digit() || b == b'.' {
            // A variable, a number or a duration.
            i += 1;
            while i < bytes.len() && (is_name(bytes[i]) || bytes[i] == b'.') {
                i += 1;
            }
        } else if is_name(b) {
            let start = i;
            while i < bytes.len() && is_name(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let rest = expr[i..].trim_start();
            if GROUPING.contains(&word) {
                let open = expr.len() - rest.len();
                i = if rest.starts_with('(') {
                    past_closing(bytes, open, b'(', b')')
                } else {
                    open
                };
            } else if !(rest.starts_with('(')
                || AGGREGATIONS.contains(&word)
                || KEYWORDS.contains(&word))
            {
                names.insert(base_name(word).to_owned());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn names_are_found_and_the_rest_is_not() {
    let cases: &[(&str, &[&str])] = &[
        (
            "histogram_quantile(0.99, sum by (le, query) (rate(db_query_duration_seconds_bucket{query=~\"save.*\", le!=\"+Inf\"}[$__rate_interval])))",
            &["db_query_duration_seconds"],
        ),
        (
            "sum(rate(cache_hits_total[5m])) / (sum(rate(cache_hits_total[5m])) + sum without (instance) (rate(cache_misses_total[5m])))",
            &["cache_hits_total", "cache_misses_total"],
        ),
        (
            "sum(rate(ingest_batch_size_sum[1m])) / sum(rate(ingest_batch_size_count[1m])) > bool 2.5e1",
            &["ingest_batch_size"],
        ),
        (
            "max by (topic, partition) (kafka_consumer_lag offset 5m) or on (partition) vector(0)",
            &["kafka_consumer_lag"],
        ),
        ("cache_entries", &["cache_entries"]),
        (
            "sum(orders_rejected_total{reason=\"a } b\"})",
            &["orders_rejected_total"],
        ),
    ];
    for (expr, want) in cases {
        let got: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(got, *want, "{expr}");
    }
}
