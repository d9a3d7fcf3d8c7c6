//! Header lines copied from a head as they lie in it, a run of fields at a time.
//!
//! The fast lane forwards a request's fields, and passes an instance's response fields back,
//! as `name: value\r\n` lines. Written field by field, each line is four small copies. Most
//! fields already lie in the head read from the socket in exactly that form, one after the
//! other, so a run of them is copied in one go; a field written any other way (no space or
//! several after the colon, a bare `\n`), or not in the head at all, is written out as such a
//! line. The bytes that come out are the same either way.

use std::ops::Range;

/// Writes header lines into a buffer, copying runs that lie in `source` as they are.
pub(crate) struct Runs<'s> {
    source: &'s [u8],
    /// The run of `source` not yet copied (empty when there is none).
    run: Range<usize>,
}

impl<'s> Runs<'s> {
    /// A writer of fields that are slices of `source` (or of anything else, written out).
    pub(crate) fn new(source: &'s [u8]) -> Self {
        Self { source, run: 0..0 }
    }

    /// Adds the line `name: value\r\n` after those before it.
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        match self.line(name, value) {
            Some(line) if line.start == self.run.end && !self.run.is_empty() => self.run.end = line.end,
            Some(line) => {
                self.flush(out);
                self.run = line;
            }
            None => {
                self.flush(out);
                line(out, name, value);
            }
        }
    }

    /// Copies the run not yet copied into `out`; call it before writing anything else there.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) {
        if !self.run.is_empty() {
            out.extend_from_slice(&self.source[self.run.clone()]);
            self.run = 0..0;
        }
    }

    /// Where `source` holds `name: value\r\n` exactly, `name` and `value` being its slices there.
    fn line(&self, name: &[u8], value: &[u8]) -> Option<Range<usize>> {
        let start = self.offset(name)?;
        let colon = start + name.len();
        let at = self.offset(value)?;
        let end = at + value.len();
        let framed = at == colon + 2
            && self.source.get(colon..at) == Some(b": ".as_slice())
            && self.source.get(end..end + 2) == Some(b"\r\n".as_slice());
        framed.then_some(start..end + 2)
    }

    /// Where `part` starts in `source`, when it is a slice of it.
    fn offset(&self, part: &[u8]) -> Option<usize> {
        let start = (part.as_ptr() as usize).checked_sub(self.source.as_ptr() as usize)?;
        (start.checked_add(part.len())? <= self.source.len()).then_some(start)
    }
}

/// Writes the header line `name: value\r\n` into `out`.
pub(crate) fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `head` (one per line, `name:value` split at the first colon, values
    /// trimmed as a parser trims them) written with `keep` deciding which are kept.
    fn written(head: &str, keep: impl Fn(&str) -> bool) -> String {
        let source = head.as_bytes();
        let mut runs = Runs::new(source);
        let mut out = b"start\r\n".to_vec();
        let mut at = 0;
        for line in head.split_inclusive('\n') {
            let colon = line.find(':').expect("a colon");
            let name = &source[at..at + colon];
            let raw = &line[colon + 1..];
            let trimmed = raw.trim_start_matches([' ', '\t']).trim_end_matches(['\r', '\n', ' ', '\t']);
            let from = at + colon + 1 + (raw.len() - raw.trim_start_matches([' ', '\t']).len());
            let value = &source[from..from + trimmed.len()];
            if keep(std::str::from_utf8(name).expect("text")) {
                runs.push(&mut out, name, value);
            }
            at += line.len();
        }
        runs.flush(&mut out);
        out.extend_from_slice(b"end");
        String::from_utf8(out).expect("text")
    }

    #[test]
    fn fields_come_out_as_plain_lines_whatever_their_form_in_the_head() {
        let head = "A: 1\r\nB: 2\r\nSkip: x\r\nC:3\r\nD:   4  \r\nE: 5\nF: \r\nG: 7\r\n";
        assert_eq!(
            written(head, |name| name != "Skip"),
            "start\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: \r\nG: 7\r\nend"
        );
        assert_eq!(written(head, |_| true).matches("Skip: x\r\n").count(), 1);
        assert_eq!(written(head, |_| false), "start\r\nend");
    }

    #[test]
    fn fields_from_elsewhere_are_written_out_between_runs() {
        let source = b"A: 1\r\nB: 2\r\n";
        let mut runs = Runs::new(source);
        let mut out = Vec::new();
        runs.push(&mut out, &source[0..1], &source[3..4]);
        runs.push(&mut out, b"X", b"other");
        runs.push(&mut out, &source[6..7], &source[9..10]);
        // A's line repeated: not after the run before it, so a run of its own.
        runs.push(&mut out, &source[0..1], &source[3..4]);
        runs.flush(&mut out);
        assert_eq!(out, b"A: 1\r\nX: other\r\nB: 2\r\nA: 1\r\n");
    }

    proptest::proptest! {
        /// Whatever the head, the lines are those written field by field.
        #[test]
        fn runs_write_what_field_by_field_writes(
            fields in proptest::collection::vec(("[A-Za-z-]{1,8}", "[ \t]{0,2}", "[a-z0-9 ]{0,6}", "\r?\n", proptest::bool::ANY), 0..12),
        ) {
            let mut head = String::new();
            let mut spans = Vec::new();
            for (name, space, value, end, keep) in &fields {
                let value = value.trim();
                let start = head.len();
                head.push_str(&format!("{name}:{space}"));
                let at = head.len();
                head.push_str(value);
                head.push_str(end);
                spans.push((start..start + name.len(), at..at + value.len(), *keep));
            }
            let source = head.as_bytes();
            let mut runs = Runs::new(source);
            let (mut out, mut plain) = (Vec::new(), Vec::new());
            for (name, value, _) in spans.into_iter().filter(|s| s.2) {
                runs.push(&mut out, &source[name.clone()], &source[value.clone()]);
                plain.extend_from_slice(&source[name]);
                plain.extend_from_slice(b": ");
                plain.extend_from_slice(&source[value]);
                plain.extend_from_slice(b"\r\n");
            }
            runs.flush(&mut out);
            proptest::prop_assert_eq!(out, plain);
        }
    }
}
