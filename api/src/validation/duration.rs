//! Go's `time.ParseDuration`, which Knative uses for every duration-valued annotation, so that
//! `"380s"`, `"1m30s"`, `"1.5h"` and `"-2m"` mean what they mean to Knative.

/// Nanoseconds in a second.
pub const SECOND: i64 = 1_000_000_000;

/// Parses a Go duration string into nanoseconds; `None` when Go would return an error
/// (bad syntax, unknown unit, or overflow of an `int64` of nanoseconds).
pub fn parse(s: &str) -> Option<i64> {
    let mut rest = s.as_bytes();
    let mut neg = false;
    if let Some((&c, tail)) = rest.split_first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (value, tail) = component(rest)?;
        total = total.checked_add(value).filter(|t| *t <= 1 << 63)?;
        rest = tail;
    }
    if neg {
        // -(1<<63) is representable; everything else fits after the check above.
        Some(0i64.wrapping_sub_unsigned(total))
    } else {
        i64::try_from(total).ok()
    }
}

/// One `<number><unit>` component: its value in nanoseconds and what follows it.
fn component(s: &[u8]) -> Option<(u64, &[u8])> {
    if !(s[0] == b'.' || s[0].is_ascii_digit()) {
        return None;
    }
    let int_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut whole: u64 = 0;
    for &d in &s[..int_len] {
        whole = whole.checked_mul(10)?.checked_add(u64::from(d - b'0')).filter(|v| *v <= 1 << 63)?;
    }
    let mut rest = &s[int_len..];
    let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
    if rest.first() == Some(&b'.') {
        rest = &rest[1..];
        frac_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut overflow = false;
        for &d in &rest[..frac_len] {
            // Go keeps reading digits after the fraction stops fitting, but ignores them.
            if overflow {
                continue;
            }
            match frac.checked_mul(10).and_then(|f| f.checked_add(u64::from(d - b'0'))) {
                Some(f) if f <= 1 << 63 => {
                    frac = f;
                    scale *= 10.0;
                }
                _ => overflow = true,
            }
        }
        rest = &rest[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        return None;
    }
    let unit_len = rest.iter().take_while(|c| **c != b'.' && !c.is_ascii_digit()).count();
    let unit = unit_nanos(&rest[..unit_len])?;
    let mut value = whole.checked_mul(unit).filter(|v| *v <= 1 << 63)?;
    if frac > 0 {
        // Go computes the fractional part in floating point and truncates it.
        let part = (frac as f64 * (unit as f64 / scale)) as u64;
        value = value.checked_add(part).filter(|v| *v <= 1 << 63)?;
    }
    Some((value, &rest[unit_len..]))
}

fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        b"us" => 1_000,
        _ if unit == "µs".as_bytes() || unit == "μs".as_bytes() => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60 * 1_000_000_000,
        b"h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_syntax_is_accepted() {
        assert_eq!(parse("380s"), Some(380 * SECOND));
        assert_eq!(parse("1m"), Some(60 * SECOND));
        assert_eq!(parse("1h30m"), Some(5_400 * SECOND));
        assert_eq!(parse("1.5s"), Some(1_500_000_000));
        assert_eq!(parse("-2m"), Some(-120 * SECOND));
        assert_eq!(parse("+5s"), Some(5 * SECOND));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse(".5s"), Some(500_000_000));
        assert_eq!(parse("1µs"), Some(1_000));
        assert_eq!(parse("1m3s34ms"), Some(63 * SECOND + 34_000_000));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in ["", "-", "10", "s", "1x", "CLXXXIIIs", ".s", "1.s.", "1e3s", "9999999999999999999h"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
