//! Go's text forms, so that settings errors read as Knative's do: `time.Duration`'s `String`,
//! `time.ParseDuration`, and `strconv`'s parse errors.

use std::time::Duration;

pub use sluice_api::validation::duration::SECOND;

/// Go's `time.ParseDuration`: nanoseconds, negative allowed; the error is Go's text.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    sluice_api::validation::duration::parse(s).ok_or_else(|| format!("time: invalid duration {s:?}"))
}

/// Go's `strconv.ParseInt(s, 10, 32)`.
pub fn parse_i32(s: &str) -> Result<i32, String> {
    use std::num::IntErrorKind::{NegOverflow, PosOverflow};
    s.parse::<i32>().map_err(|e| {
        let why = if matches!(e.kind(), PosOverflow | NegOverflow) { "value out of range" } else { "invalid syntax" };
        format!("strconv.ParseInt: parsing {s:?}: {why}")
    })
}

/// Go's `strconv.ParseFloat(s, 64)`, except that NaN is refused: every comparison Knative
/// validates with is false for NaN, so it would pass them all and poison the arithmetic.
pub fn parse_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if !f.is_nan() => Ok(f),
        _ => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `time.Duration.String` of a nanosecond count: `1m0s`, `1h0m0s`, `1.5s`, `500ms`.
pub fn fmt_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    const S: u64 = SECOND as u64;
    if u < S {
        let (scale, unit) = match u {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{sign}{}{unit}", decimal(u, scale));
    }
    let (h, rest) = (u / (3_600 * S), u % (3_600 * S));
    let (m, s) = (rest / (60 * S), rest % (60 * S));
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", decimal(s, S)));
    out
}

/// `v / scale` with the fraction's trailing zeros dropped, as Go prints durations.
fn decimal(v: u64, scale: u64) -> String {
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A non-negative nanosecond count as a `Duration`; callers validate the sign first.
pub fn to_std(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(fmt_duration(0), "0s");
        assert_eq!(fmt_duration(60 * SECOND), "1m0s");
        assert_eq!(fmt_duration(3_600 * SECOND), "1h0m0s");
        assert_eq!(fmt_duration(5 * SECOND), "5s");
        assert_eq!(fmt_duration(1_500_000_000), "1.5s");
        assert_eq!(fmt_duration(90 * SECOND + 250_000_000), "1m30.25s");
        assert_eq!(fmt_duration(500_000_000), "500ms");
        assert_eq!(fmt_duration(1_500), "1.5µs");
        assert_eq!(fmt_duration(-2 * SECOND), "-2s");
        assert_eq!(fmt_duration(7_200 * SECOND + 61 * SECOND), "2h1m1s");
    }

    #[test]
    fn strconv_errors_quote_the_value() {
        assert_eq!(parse_i32("x1"), Err(r#"strconv.ParseInt: parsing "x1": invalid syntax"#.into()));
        assert_eq!(
            parse_i32("3000000000"),
            Err(r#"strconv.ParseInt: parsing "3000000000": value out of range"#.into())
        );
        assert_eq!(parse_bool("yes"), Err(r#"strconv.ParseBool: parsing "yes": invalid syntax"#.into()));
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_f64("NaN"), Err(r#"strconv.ParseFloat: parsing "NaN": invalid syntax"#.into()));
        assert_eq!(parse_f64("2.5"), Ok(2.5));
        assert_eq!(parse_duration("1m30s"), Ok(90 * SECOND));
        assert_eq!(parse_duration("60"), Err(r#"time: invalid duration "60""#.into()));
    }
}
