//! [`Reason`]: the one-line text of an error response, built once when a table or router is
//! built so that answering a request with it formats nothing.

use std::fmt;

use bytes::Bytes;

/// A reason precomputed when a table or router is built: one line of text, sent as the body of
/// an error response (ending in `"\n"`) without formatting anything per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason(Bytes);

// === impl Reason ===

impl Reason {
    /// A reason from one line of text; line breaks are replaced so the body stays one line.
    pub fn new(text: impl fmt::Display) -> Self {
        let mut line = text.to_string().replace(['\r', '\n'], " ");
        line.push('\n');
        Self(Bytes::from(line))
    }

    /// The response body: the text and its newline.
    pub fn body(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.0.strip_suffix(b"\n").unwrap_or(&self.0);
        f.write_str(&String::from_utf8_lossy(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_line_and_end_in_a_newline() {
        let r = Reason::new("two\nlines");
        assert_eq!(r.body().as_ref(), b"two lines\n");
        assert_eq!(r.to_string(), "two lines");
    }
}
