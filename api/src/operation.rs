//! [`Operation`]: which kind of write an admission, and the defaults it applies, is for.

/// What the write is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to the main resource (spec and metadata).
    Update,
    /// A change through the `/status` subresource.
    UpdateStatus,
}
