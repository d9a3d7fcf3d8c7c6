//! Text reports for people: one run (as wrk prints it, plus every status and error), and a
//! comparison table of medians with ratios to the first target.

use std::fmt::Write;

use crate::compare::Medians;
use crate::latency::PERCENTILES;
use crate::outcome::Outcome;

/// One run, several lines.
pub fn outcome(o: &Outcome, open_loop: bool) -> String {
    let mut s = String::new();
    let t = &o.tally;
    let _ = writeln!(
        s,
        "{}: {} responses in {:.2} s = {:.0} req/s",
        o.target,
        t.responses(),
        o.elapsed.as_secs_f64(),
        o.rps()
    );
    let line = |label: &str, l: &crate::Latencies| {
        let p = l.percentiles();
        let mut parts: Vec<String> =
            PERCENTILES.iter().map(|(n, q)| format!("{n} {}", us(l.quantile_us(*q)))).collect();
        parts.push(format!("max {}", us(p.max)));
        format!("  {label:<13} {}\n", parts.join("  "))
    };
    s.push_str(&line("latency", &t.latency));
    if open_loop {
        s.push_str(&line("service time", &t.service));
    }
    let statuses: Vec<String> = t.statuses.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    let _ = writeln!(s, "  statuses      {}", if statuses.is_empty() { "none".into() } else { statuses.join(", ") });
    if t.non_2xx() > 0 {
        let _ = writeln!(s, "  non-2xx       {}", t.non_2xx());
    }
    if t.errors_total() > 0 {
        let errors: Vec<String> = t.errors.iter().map(|(k, n)| format!("{k:?}: {n}").to_lowercase()).collect();
        let _ = writeln!(s, "  errors        {}", errors.join(", "));
    }
    if !o.cpu_us_per_request.is_empty() {
        let cpu: Vec<String> = o.cpu_us_per_request.iter().map(|(n, v)| format!("{n} {v:.1} µs")).collect();
        let _ = writeln!(s, "  CPU/request   {}", cpu.join(", "));
    }
    s
}

/// The medians table of a comparison.
pub fn medians(rows: &[Medians], layout: &str) -> String {
    let mut s = String::new();
    let first = rows.first().map_or("", |r| r.target.as_str());
    let _ = writeln!(s, "{layout}");
    let _ = writeln!(
        s,
        "{:<12} {:>6} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}  CPU µs/request (medians)",
        "target", "trials", "req/s", "ratio", "p50", "+p50", "p90", "p99", "p99.9"
    );
    for r in rows {
        let cpu: Vec<String> = r.cpu_us_per_request.iter().map(|(n, v)| format!("{n} {v:.1}")).collect();
        let _ = writeln!(
            s,
            "{:<12} {:>6} {:>10.0} {:>7.2}× {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
            r.target,
            r.trials,
            r.rps,
            r.rps_ratio,
            us(r.p50_us),
            format!("{:+.0}µs", r.p50_added_us),
            us(r.p90_us),
            us(r.p99_us),
            us(r.p99_9_us),
            cpu.join(", ")
        );
        if r.non_2xx > 0 || r.errors > 0 {
            let _ = writeln!(s, "{:<12} ! {} non-2xx responses, {} errors over its trials", "", r.non_2xx, r.errors);
        }
    }
    let _ = writeln!(s, "(medians over trials; ratio and +p50 against {first})");
    s
}

/// Microseconds, or milliseconds from 10 ms up.
pub fn us(v: f64) -> String {
    if v >= 10_000.0 { format!("{:.1}ms", v / 1000.0) } else { format!("{v:.0}µs") }
}
