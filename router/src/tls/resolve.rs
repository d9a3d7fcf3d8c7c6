//! Choosing the certificate for a TLS connection from the name the client asked for (SNI):
//! a certificate given for that exact host, else one given for `*.` its parent domain, else
//! — for a host under the service domain — one the local CA issues for that host alone
//! (cached), else the default: the local CA's `*.{domain}` certificate.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{HostCertSpec, LocalCa, TlsError};

/// Most certificates the local CA keeps issued; past it, one is dropped for each new one (a
/// client asking for many names costs a signature each, never unbounded memory).
pub const ISSUED_CACHE: usize = 1024;

/// The router's [`ResolvesServerCert`].
pub struct CertResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By parent domain: `default.example.com` for `*.default.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    local: Option<Local>,
    default: Option<Arc<CertifiedKey>>,
}

/// The local CA and what it issued, for names under `domain`.
struct Local {
    ca: LocalCa,
    /// `.{domain}`, the suffix of the hosts it issues for.
    suffix: String,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// [`ISSUED_CACHE`], smaller in tests.
    capacity: usize,
}

// === impl CertResolver ===

impl CertResolver {
    /// Certificates given per host, each read and checked now (the first error is returned,
    /// naming its file); and the local CA for hosts under `domain` that none of them covers.
    /// Without a local CA, the first given certificate is the default.
    pub fn new(given: &[HostCertSpec], local: Option<(LocalCa, &str)>) -> Result<Self, TlsError> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut first = None;
        for spec in given {
            let certified = spec.load()?;
            first.get_or_insert_with(|| certified.clone());
            match spec.wildcard_parent() {
                Some(parent) => wildcard.insert(parent.to_string(), certified),
                None => exact.insert(spec.domain.clone(), certified),
            };
        }
        let (local, default) = match local {
            Some((ca, domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                let default = ca.issue(&[format!("*.{domain}"), domain.clone()])?;
                let local = Local {
                    ca,
                    suffix: format!(".{domain}"),
                    issued: Mutex::new(HashMap::new()),
                    capacity: ISSUED_CACHE,
                };
                (Some(local), Some(default))
            }
            None => (None, first),
        };
        Ok(Self { exact, wildcard, local, default })
    }

    /// The certificate for a connection that asked for `server_name` (None: no SNI).
    pub fn certificate_for(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = server_name.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return self.default.clone();
        };
        if let Some(c) = self.exact.get(&name) {
            return Some(c.clone());
        }
        if let Some(c) = name.split_once('.').and_then(|(_, parent)| self.wildcard.get(parent)) {
            return Some(c.clone());
        }
        if let Some(local) = &self.local
            && let Some(c) = local.certificate_for(&name)
        {
            return Some(c);
        }
        self.default.clone()
    }

    /// How many certificates the local CA keeps issued (tests make it small).
    #[cfg(test)]
    pub(crate) fn set_issued_capacity(&mut self, capacity: usize) {
        if let Some(local) = &mut self.local {
            local.capacity = capacity;
        }
    }

    /// How many certificates the local CA holds issued now.
    pub fn issued(&self) -> usize {
        self.local.as_ref().map_or(0, |l| l.issued.lock().len())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(client_hello.server_name())
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .field("local", &self.local.as_ref().map(|l| &l.ca))
            .finish_non_exhaustive()
    }
}

// === impl Local ===

impl Local {
    /// A certificate for `name` alone when it is a host under the domain: X.509 wildcards
    /// cover one label, and Knative hosts are `name.namespace.domain`, so no one certificate
    /// made at start could cover them all.
    fn certificate_for(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if !name.ends_with(&self.suffix) {
            return None;
        }
        if let Some(c) = self.issued.lock().get(name) {
            return Some(c.clone());
        }
        // Signed without the lock held; two handshakes racing for a new name both sign, and
        // the later insert wins (either certificate is valid).
        let certified = match self.ca.issue(&[name.to_string()]) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, host = %name, "issuing a certificate failed; using the default");
                return None;
            }
        };
        let mut issued = self.issued.lock();
        if issued.len() >= self.capacity
            && let Some(evicted) = issued.keys().next().cloned()
        {
            issued.remove(&evicted);
        }
        issued.insert(name.to_string(), certified.clone());
        Some(certified)
    }
}
