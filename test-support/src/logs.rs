//! Reading a revision's log as tests need it: the `[sluice] <timestamp> <note>` lines the
//! runtime writes between the instance's own output, with their times, so a test can measure
//! what happened when (a restart's delay) from the record rather than from its own clock.

use std::time::Duration;

/// One `[sluice]` note.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// When it was written, as time since the Unix epoch.
    pub at: Duration,
    /// The note after the timestamp.
    pub text: String,
}

/// The `[sluice]` notes in `log`, in order; lines that are not notes are skipped.
pub fn markers(log: &str) -> Vec<Marker> {
    log.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("[sluice] ")?;
            let (stamp, text) = rest.split_once(' ')?;
            Some(Marker { at: parse_rfc3339_utc(stamp)?, text: text.to_string() })
        })
        .collect()
}

/// `2026-11-30T13:02:44.123456789Z` as time since the epoch; None for any other shape.
fn parse_rfc3339_utc(stamp: &str) -> Option<Duration> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(str::parse::<u64>);
    let (h, min, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let nanos = if frac.is_empty() { 0 } else { format!("{frac:0<9}").get(..9)?.parse::<u32>().ok()? };
    let days = u64::try_from(days_from_civil(y, m, day)).ok()?;
    Some(Duration::new(days * 86_400 + h * 3600 + min * 60 + s, nanos))
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_read_with_their_times() {
        let log = "[sluice] 1970-01-02T00:00:01.5Z instance 1 starting on port 1\napp output\n[sluice] 2000-03-01T00:00:00Z x y\n";
        let m = markers(log);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0],
            Marker { at: Duration::from_millis(86_401_500), text: "instance 1 starting on port 1".into() }
        );
        assert_eq!(m[1].at, Duration::from_secs(951_868_800));
        assert_eq!(m[1].text, "x y");
    }
}
