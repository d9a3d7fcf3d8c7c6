//! [`RevisionKey`]: how the router, the runtime and the controller name one revision.

use std::fmt;

/// Names a revision: `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevisionKey {
    /// Namespace.
    pub namespace: String,
    /// Revision name.
    pub name: String,
}

// === impl RevisionKey ===

impl RevisionKey {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
