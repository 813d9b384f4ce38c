//! A short-lived cache of resolved viewers, so a busy client does not cost an identity lookup
//! (one transaction, several statements) on every request.
//!
//! Keyed by the verified subject and the wanted organization; only successful resolutions are
//! kept, each for at most the configured TTL (`STACKGATE_AUTH_CACHE_SECONDS`, 0 disables). The
//! token itself is verified on every request. A change of roles, memberships, grants or keys
//! publishes an `access` event on commit, and every replica clears its cache on it
//! ([`clear_on_access_events`]); the TTL bounds only what the event stream could miss.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Viewer;

/// The most entries kept; when full, expired ones are dropped, then everything.
const MAX_ENTRIES: usize = 10_000;

/// (subject, wanted org) → (viewer, expiry).
type Entries = HashMap<(String, Option<String>), (Viewer, Instant)>;

/// Resolved viewers by (subject, wanted org).
#[derive(Debug)]
pub struct ViewerCache {
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl ViewerCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// A cached viewer for the key, if fresh.
    pub fn get(&self, subject: &str, org: Option<&str>) -> Option<Viewer> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (viewer, expires) = entries.get(&(subject.to_owned(), org.map(str::to_owned)))?;
        (*expires > Instant::now()).then(|| viewer.clone())
    }

    /// Forgets every entry: after a change of memberships, roles, grants or keys, so this
    /// replica applies it at once (others within the TTL).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Keeps a freshly resolved viewer.
    pub fn put(&self, subject: &str, org: Option<&str>, viewer: &Viewer) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            (subject.to_owned(), org.map(str::to_owned)),
            (viewer.clone(), now + self.ttl),
        );
    }
}

/// Clears `cache` whenever an access change commits anywhere (or the event stream had a gap, in
/// which one may have been missed). Runs until the bus ends.
pub fn clear_on_access_events(cache: &std::sync::Arc<ViewerCache>, bus: &crate::events::EventBus) {
    use crate::events::Delivery;
    use tokio::sync::broadcast::error::RecvError;
    let cache = std::sync::Arc::downgrade(cache);
    let mut deliveries = bus.subscribe();
    tokio::spawn(async move {
        loop {
            let clear = match deliveries.recv().await {
                Ok(Delivery::Event(envelope)) => envelope.event.changes_access().is_some(),
                Ok(Delivery::Gap) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            };
            match cache.upgrade() {
                Some(cache) if clear => cache.clear(),
                Some(_) => {}
                None => return,
            }
        }
    });
}
