//! What picked a backend, when a rule or a tag did, with its request counter
//! (`route_rule_request_count`, `route_tag_request_count`).
//!
//! Each rule target and tag target of a table holds an `Arc<Choice>` resolved when the table
//! is built, so counting a request is one relaxed atomic add on the picked backend. The table
//! keeps a registry of its choices keyed by namespace, route, rule or tag, and revision: a
//! rebuild hands the same `Arc` to the same key, so counts survive rebuilds, and a key the new
//! table no longer has (route, rule, tag or revision gone) is dropped with the old table. The
//! registry holds only the `Arc`s (each choice is its own key), so a table edited route by
//! route copies it as pointers and drops the edited route's entries. The
//! registry is capped at [`MAX_CHOICES`] per table: past it, a choice still names its rule or
//! tag (for the access log) but its count is neither exposed nor carried over, and the
//! rebuild logs a warning.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashTable;

/// The most (route, rule or tag, revision) counters one table exposes.
pub const MAX_CHOICES: usize = 10_000;

/// Whether a rule or a tag picked the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChoiceKind {
    /// A rule of `spec.rules`.
    Rule,
    /// A tag: its host, or the `Knative-Serving-Tag` header.
    Tag,
}

/// A rule or tag target: its labels and the requests it picked.
#[derive(Debug)]
pub struct Choice {
    /// The route's namespace.
    pub namespace: Box<str>,
    /// The route's name.
    pub route: Box<str>,
    /// Rule or tag.
    pub kind: ChoiceKind,
    /// The rule's name (else `rules[i]`) or the tag.
    pub name: Box<str>,
    /// The revision it sends to.
    pub revision: Box<str>,
    count: AtomicU64,
}

/// Namespace, route, kind, name, revision.
type Key<'a> = (&'a str, &'a str, ChoiceKind, &'a str, &'a str);

/// A table's registered choices.
#[derive(Clone, Debug, Default)]
pub(crate) struct Choices {
    /// Each choice under the hash of its [`Key`].
    registered: HashTable<Arc<Choice>>,
    state: RandomState,
    /// Choices left unregistered because the registry was full.
    pub(crate) over_cap: usize,
}

/// Where the choices of one route are made while a table is built: the route's names, the
/// table being replaced (whose choices carry over) and the one being built.
pub(crate) struct ChoiceScope<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) route: &'a str,
    pub(crate) previous: &'a Choices,
    pub(crate) next: &'a mut Choices,
}

// === impl Choice ===

impl Choice {
    /// Counts one request this rule or tag picked.
    pub fn picked(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests picked so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn key(&self) -> Key<'_> {
        (&self.namespace, &self.route, self.kind, &self.name, &self.revision)
    }
}

// === impl Choices ===

impl Choices {
    /// Every registered choice, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Choice>> {
        self.registered.iter()
    }

    /// Number of registered choices.
    pub(crate) fn len(&self) -> usize {
        self.registered.len()
    }

    /// The registered choice for `key`.
    fn get(&self, key: Key<'_>) -> Option<&Arc<Choice>> {
        self.registered.find(self.state.hash_one(key), |c| c.key() == key)
    }

    /// Registers `choice` (its key not registered yet).
    fn insert(&mut self, choice: Arc<Choice>) {
        let Self { registered, state, .. } = self;
        registered.insert_unique(state.hash_one(choice.key()), choice, |c| state.hash_one(c.key()));
    }

    /// Drops the choices of route `namespace/route` (a table edited without it, or with its
    /// new version, which registers its own again).
    pub(crate) fn forget_route(&mut self, namespace: &str, route: &str) {
        self.registered.retain(|c| !(&*c.namespace == namespace && &*c.route == route));
    }
}

// === impl ChoiceScope ===

impl ChoiceScope<'_> {
    /// The choice for `kind` `name` sending to `revision` in this route: the one this table
    /// already made for the same key (a revision listed twice), else the previous table's,
    /// else a new one (registered while the registry has room).
    pub(crate) fn choice(&mut self, kind: ChoiceKind, name: &str, revision: &str) -> Arc<Choice> {
        let key = (self.namespace, self.route, kind, name, revision);
        if let Some(made) = self.next.get(key) {
            return made.clone();
        }
        let choice = match self.previous.get(key) {
            Some(kept) => kept.clone(),
            None => Arc::new(Choice {
                namespace: self.namespace.into(),
                route: self.route.into(),
                kind,
                name: name.into(),
                revision: revision.into(),
                count: AtomicU64::new(0),
            }),
        };
        if self.next.len() < MAX_CHOICES {
            self.next.insert(choice.clone());
        } else {
            self.next.over_cap += 1;
        }
        choice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(previous: &'a Choices, next: &'a mut Choices) -> ChoiceScope<'a> {
        ChoiceScope { namespace: "default", route: "hello", previous, next }
    }

    #[test]
    fn the_same_key_shares_one_counter_across_tables() {
        let empty = Choices::default();
        let mut first = Choices::default();
        let a = scope(&empty, &mut first).choice(ChoiceKind::Rule, "beta", "hello-00002");
        let twice = scope(&empty, &mut first).choice(ChoiceKind::Rule, "beta", "hello-00002");
        assert!(Arc::ptr_eq(&a, &twice), "a revision listed twice in a rule is one counter");
        a.picked();
        let mut second = Choices::default();
        let kept = scope(&first, &mut second).choice(ChoiceKind::Rule, "beta", "hello-00002");
        assert_eq!(kept.count(), 1, "carried over");
        let tag = scope(&first, &mut second).choice(ChoiceKind::Tag, "beta", "hello-00002");
        assert_eq!(tag.count(), 0, "a tag of the same name is another counter");
        assert_eq!(second.iter().count(), 2);
    }

    #[test]
    fn past_the_cap_choices_are_neither_registered_nor_carried() {
        let empty = Choices::default();
        let mut full = Choices::default();
        for i in 0..MAX_CHOICES {
            scope(&empty, &mut full).choice(ChoiceKind::Tag, &format!("t{i}"), "r");
        }
        let extra = scope(&empty, &mut full).choice(ChoiceKind::Tag, "one-more", "r");
        extra.picked();
        assert_eq!((full.iter().count(), full.over_cap), (MAX_CHOICES, 1));
        let mut next = Choices::default();
        let again = scope(&full, &mut next).choice(ChoiceKind::Tag, "one-more", "r");
        assert_eq!(again.count(), 0);
    }
}
