//! The Prometheus text exposition format (version 0.0.4): writing families and samples with
//! escaped label values, and a strict reader of the same format for clients (`sluice
//! rollout`) and tests.

use std::fmt::Write as _;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One sample read back: metric name, labels in the order written, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Label pairs.
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

/// Why an exposition could not be read: the line (1-based) and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

/// Appends a family's `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends one sample line; label values are escaped as the format requires.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    sample_raw(out, name, labels, &value.to_string());
}

/// Appends one sample line whose value is already written as the format wants (a float).
pub fn sample_raw(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Reads every sample of an exposition; comments must be well-formed `# HELP`/`# TYPE` lines
/// or free text, every sample line a valid name, label set and value (an optional timestamp
/// is accepted and dropped).
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fail = |what: String| ParseError { line: i + 1, what };
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            comment_line(comment).map_err(fail)?;
            continue;
        }
        samples.push(sample_line(line).map_err(fail)?);
    }
    Ok(samples)
}

/// The value of the sample named `name` whose labels include all of `labels`, summed over
/// every such sample (0 when none).
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v)))
        .map(|s| s.value)
        .sum()
}

fn comment_line(comment: &str) -> Result<(), String> {
    let mut words = comment.split_whitespace();
    match words.next() {
        Some("TYPE") => {
            let name = words.next().ok_or("TYPE without a metric name")?;
            check_name(name)?;
            match words.next() {
                Some("counter" | "gauge" | "histogram" | "summary" | "untyped") => Ok(()),
                other => Err(format!("TYPE {name}: unknown type {other:?}")),
            }
        }
        Some("HELP") => check_name(words.next().ok_or("HELP without a metric name")?),
        _ => Ok(()),
    }
}

fn sample_line(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ', '\t']).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (pairs, after) = label_set(inner)?;
        labels = pairs;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or_else(|| format!("{name}: no value"))?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|e| format!("{name}: value {v:?}: {e}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|e| format!("{name}: timestamp {ts:?}: {e}"))?;
    }
    if let Some(extra) = fields.next() {
        return Err(format!("{name}: unexpected {extra:?} after the value"));
    }
    Ok(Sample { name: name.to_string(), labels, value })
}

/// Label pairs as read, in order.
pub type Labels = Vec<(String, String)>;

/// Reads `k="v",…}` and returns the pairs and what follows the `}`.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut pairs = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((pairs, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim();
        check_label_name(key)?;
        let body =
            s[eq + 1..].trim_start().strip_prefix('"').ok_or_else(|| format!("label {key}: value not quoted"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("label {key}: bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key}: unterminated value")),
            }
        };
        if pairs.iter().any(|(k, _): &(String, String)| k == key) {
            return Err(format!("label {key} given twice"));
        }
        pairs.push((key.to_string(), value));
        s = body[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !ok {
        return Err(format!("invalid metric name {name:?}"));
    }
    Ok(())
}

fn check_label_name(name: &str) -> Result<(), String> {
    let ok =
        name.chars().enumerate().all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !ok {
        return Err(format!("invalid label name {name:?}"));
    }
    Ok(())
}
