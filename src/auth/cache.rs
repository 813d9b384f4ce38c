//! A short-lived cache of resolved viewers, so a busy client does not cost an identity lookup
//! (one transaction, several statements) on every request.
//!
//! Keyed by the verified subject and the wanted organization; only successful resolutions are
//! kept, each for at most the configured TTL (`STACKGATE_AUTH_CACHE_SECONDS`, 0 disables). The
//! token itself is verified on every request. A change of roles, memberships, grants or keys
//! publishes an `access` event on commit, and every replica clears its cache on it
//! ([`clear_on_access_events`]); the TTL bounds only what the event stream could miss.
//!
//! A busy key never expires under its callers: past three quarters of the TTL one request
//! resolves the viewer again ([`Lookup::Refresh`]) while the others keep using the cached one.
//! Without that, every caller arriving in the moment after expiry resolved the viewer itself,
//! each waiting for a pool connection behind the requests holding them: under the dashboard
//! bench that stalled every in-flight request every five seconds and made the 99th percentile.
//! A resolution begun before a [`ViewerCache::clear`] is not kept ([`Ticket`]): it may have read
//! the access the clear was about.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Viewer;

/// The most entries kept; when full, expired ones are dropped, then everything.
const MAX_ENTRIES: usize = 10_000;

/// (subject, wanted org).
type Key = (String, Option<String>);

fn key(subject: &str, org: Option<&str>) -> Key {
    (subject.to_owned(), org.map(str::to_owned))
}

struct Entry<V> {
    viewer: V,
    expires: Instant,
    /// From here on the next caller resolves the viewer again (the others go on with this one).
    refresh_at: Instant,
    /// A caller is resolving it again.
    refreshing: bool,
}

struct State<V> {
    entries: HashMap<Key, Entry<V>>,
    /// Counts [`ViewerCache::clear`]s: a resolution that saw another number began before one.
    generation: u64,
}

impl<V> Default for State<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            generation: 0,
        }
    }
}

/// Resolved viewers by (subject, wanted org).
pub struct ViewerCache<V = Viewer> {
    ttl: Duration,
    state: Mutex<State<V>>,
}

impl<V> std::fmt::Debug for ViewerCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// What the cache holds for a key.
pub enum Lookup<V = Viewer> {
    /// A viewer to use.
    Hit(V),
    /// This caller resolves the viewer again (no other does meanwhile); the cached one is still
    /// within the TTL, for when resolving fails for a reason other than the caller's access.
    Refresh(V, Ticket),
    /// Nothing usable: resolve.
    Miss(Ticket),
}

/// When a resolution began, relative to [`ViewerCache::clear`]: [`ViewerCache::put`] keeps its
/// result only if no clear happened since.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl<V: Clone> ViewerCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What to do for the key: use a cached viewer, or resolve (then [`ViewerCache::put`]).
    pub fn lookup(&self, subject: &str, org: Option<&str>) -> Lookup<V> {
        self.lookup_at(subject, org, Instant::now())
    }

    fn lookup_at(&self, subject: &str, org: Option<&str>, now: Instant) -> Lookup<V> {
        let mut state = self.state();
        let ticket = Ticket(state.generation);
        if self.ttl.is_zero() {
            return Lookup::Miss(ticket);
        }
        match state.entries.get_mut(&key(subject, org)) {
            Some(entry) if entry.expires > now => {
                if now < entry.refresh_at || entry.refreshing {
                    Lookup::Hit(entry.viewer.clone())
                } else {
                    entry.refreshing = true;
                    Lookup::Refresh(entry.viewer.clone(), ticket)
                }
            }
            _ => Lookup::Miss(ticket),
        }
    }

    /// A ticket for a resolution that does not read the cache (a socket's re-check).
    pub fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Forgets every entry: after a change of memberships, roles, grants or keys, so this
    /// replica applies it at once (others within the TTL). Resolutions under way are not kept.
    pub fn clear(&self) {
        let mut state = self.state();
        state.entries.clear();
        state.generation = state.generation.wrapping_add(1);
    }

    /// Keeps a viewer resolved under `ticket`, unless the cache was cleared since.
    pub fn put(&self, ticket: Ticket, subject: &str, org: Option<&str>, viewer: &V) {
        self.put_at(ticket, subject, org, viewer, Instant::now());
    }

    fn put_at(&self, ticket: Ticket, subject: &str, org: Option<&str>, viewer: &V, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if state.generation != ticket.0 {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.retain(|_, entry| entry.expires > now);
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.clear();
            }
        }
        state.entries.insert(
            key(subject, org),
            Entry {
                viewer: viewer.clone(),
                expires: now + self.ttl,
                refresh_at: now + self.ttl.mul_f64(0.75),
                refreshing: false,
            },
        );
    }

    /// Ends a [`Lookup::Refresh`] that could not resolve (the database failed): the entry stays
    /// until it expires, and the next caller tries again.
    pub fn refresh_failed(&self, subject: &str, org: Option<&str>) {
        if let Some(entry) = self.state().entries.get_mut(&key(subject, org)) {
            entry.refreshing = false;
        }
    }

    /// Drops the key's entry: resolving it again refused the caller.
    pub fn forget(&self, subject: &str, org: Option<&str>) {
        self.state().entries.remove(&key(subject, org));
    }
}

/// Clears `cache` whenever an access change commits anywhere (or the event stream had a gap, in
/// which one may have been missed). Runs until the bus ends.
pub fn clear_on_access_events(cache: &std::sync::Arc<ViewerCache>, bus: &crate::events::EventBus) {
    use crate::events::Delivery;
    use tokio::sync::broadcast::error::RecvError;
    let cache = std::sync::Arc::downgrade(cache);
    let mut deliveries = bus.subscribe_access();
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

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(4);

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    fn hit(lookup: Lookup<u32>) -> Option<u32> {
        match lookup {
            Lookup::Hit(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn one_caller_refreshes_a_busy_entry_while_the_others_use_it() {
        let cache = ViewerCache::<u32>::new(TTL);
        let t0 = Instant::now();
        let Lookup::Miss(ticket) = cache.lookup_at("alice", None, t0) else {
            panic!("an empty cache misses");
        };
        cache.put_at(ticket, "alice", None, &1, t0);
        assert_eq!(hit(cache.lookup_at("alice", None, at(t0, 2_999))), Some(1));
        assert!(matches!(
            cache.lookup_at("alice", Some("acme"), t0),
            Lookup::Miss(_)
        ));
        // Past three quarters of the TTL: the first caller refreshes, every other one goes on.
        let Lookup::Refresh(cached, ticket) = cache.lookup_at("alice", None, at(t0, 3_000)) else {
            panic!("past 3/4 of the TTL the first caller refreshes");
        };
        assert_eq!(cached, 1);
        for ms in [3_000, 3_500, 3_999] {
            assert_eq!(
                hit(cache.lookup_at("alice", None, at(t0, ms))),
                Some(1),
                "{ms}"
            );
        }
        cache.put_at(ticket, "alice", None, &2, at(t0, 3_100));
        // The new entry lives a whole TTL from its resolution.
        assert_eq!(hit(cache.lookup_at("alice", None, at(t0, 5_000))), Some(2));
        assert!(matches!(
            cache.lookup_at("alice", None, at(t0, 6_100)),
            Lookup::Refresh(2, _)
        ));
        // Nobody refreshed it in time: it expires.
        assert!(matches!(
            cache.lookup_at("alice", None, at(t0, 7_100)),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn a_failed_refresh_lets_the_next_caller_try_and_a_refusal_drops_the_entry() {
        let cache = ViewerCache::<u32>::new(TTL);
        let t0 = Instant::now();
        cache.put_at(cache.ticket(), "alice", None, &1, t0);
        assert!(matches!(
            cache.lookup_at("alice", None, at(t0, 3_200)),
            Lookup::Refresh(1, _)
        ));
        cache.refresh_failed("alice", None);
        assert!(matches!(
            cache.lookup_at("alice", None, at(t0, 3_300)),
            Lookup::Refresh(1, _)
        ));
        cache.forget("alice", None);
        assert!(matches!(
            cache.lookup_at("alice", None, at(t0, 3_400)),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn a_resolution_begun_before_a_clear_is_not_kept() {
        let cache = ViewerCache::<u32>::new(TTL);
        let t0 = Instant::now();
        let Lookup::Miss(before) = cache.lookup_at("alice", None, t0) else {
            panic!("an empty cache misses");
        };
        cache.clear();
        cache.put_at(before, "alice", None, &1, t0);
        assert!(matches!(
            cache.lookup_at("alice", None, t0),
            Lookup::Miss(_)
        ));
        // A refresh under way when the clear came is dropped the same way.
        cache.put_at(cache.ticket(), "alice", None, &1, t0);
        let Lookup::Refresh(_, ticket) = cache.lookup_at("alice", None, at(t0, 3_500)) else {
            panic!("past 3/4 of the TTL the first caller refreshes");
        };
        cache.clear();
        cache.put_at(ticket, "alice", None, &2, at(t0, 3_600));
        assert!(matches!(
            cache.lookup_at("alice", None, at(t0, 3_700)),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = ViewerCache::<u32>::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.put_at(cache.ticket(), "alice", None, &1, t0);
        assert!(matches!(
            cache.lookup_at("alice", None, t0),
            Lookup::Miss(_)
        ));
    }
}
