//! The shared response cache of HTTP queries, and their `ETag`s.
//!
//! A query's answer is kept (serialized, as sent) under its viewer — organization, user, API key —
//! its document id, operation name and variables, with the topics its execution read
//! ([`Reads`]), and served again to that viewer until an event could have changed it: a committed
//! event of the organization that changed a topic it read, an access change, or a gap in the
//! event stream (`docs/http-api.md`, "Caching").
//!
//! Invalidation is lazy, by generation: every event bumps its organization's generation and is
//! kept in the organization's short log of recent changes (a gap or a user-level access change
//! bumps everyone's generation). An entry answers while no change logged since the generation it
//! was filled under touches what it read; when the log no longer reaches back that far, it is
//! dropped. A fill notes the generations *before* its query ran and checks the log when it
//! stores, so an answer computed while a touching event arrived is never kept.
//!
//! Some writes publish no event (a health probe that changes no state still moves `checkedAt`),
//! so an entry also expires after `STACKGATE_RESPONSE_CACHE_SECONDS` (10 s): how stale such a
//! field may be in a cached answer.
//!
//! Memory is bounded in bytes (`STACKGATE_RESPONSE_CACHE_BYTES`, 0 turns caching off); the least
//! recently used entries go first. An answer's `ETag` is a hash of its body: a poller sending it
//! back in `If-None-Match` gets `304 Not Modified` while nothing changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use std::collections::VecDeque;

use crate::events::{Changes, Delivery, Event, Reads};

/// How many recent changes each organization's log keeps.
const LOG: usize = 256;

/// A kept answer.
pub struct Cached {
    pub body: axum::body::Bytes,
    pub etag: String,
    reads: Reads,
    org: Uuid,
    /// The organization's and everyone's generations it is known current at.
    generation: u64,
    everyone: u64,
    at: std::time::Instant,
}

/// Where a fresh answer may be kept, decided before its query ran.
pub struct Fill {
    cache: Arc<ResponseCache>,
    /// Where an answer that read nothing of the viewer's own is kept: shared by every viewer
    /// with the same permissions.
    shared: [u8; 32],
    /// Where any other answer is kept: the viewer's own.
    key: [u8; 32],
    org: Uuid,
    generation: u64,
    everyone: u64,
    /// What the query read: anything, until the pipeline says more precisely.
    reads: Reads,
}

impl Fill {
    /// The kept answer, when it is still current.
    pub fn lookup(&self) -> Option<Arc<Cached>> {
        let mut inner = self.cache.lock();
        let found = [self.shared, self.key].into_iter().find_map(|key| {
            let hit = inner.entries.get(&key)?.clone();
            let current = hit.everyone == inner.everyone
                && hit.at.elapsed() < self.cache.max_age
                && inner.untouched(hit.org, hit.generation, &hit.reads);
            if !current {
                inner.forget(&key);
            }
            current.then_some(hit)
        });
        if found.is_some() {
            (self.cache.hits).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("stackgate_response_cache_hits_total").increment(1);
        }
        found
    }

    /// Says what the query's execution read (without it, anything).
    pub fn reading(mut self, reads: Reads) -> Self {
        self.reads = reads;
        self
    }

    /// Keeps `body` (unless an event that touches what the query read arrived since it began),
    /// and returns its `ETag`.
    pub fn store(self, body: axum::body::Bytes) -> String {
        let reads = self.reads;
        let key = if reads.is_personal() {
            self.key
        } else {
            self.shared
        };
        let etag = etag_of(&body);
        let mut inner = self.cache.lock();
        if self.cache.max_bytes == 0
            || body.len() > self.cache.max_bytes
            || inner.everyone != self.everyone
            || !inner.untouched(self.org, self.generation, &reads)
        {
            return etag;
        }
        let cached = Arc::new(Cached {
            body,
            etag: etag.clone(),
            reads,
            org: self.org,
            generation: inner.generation(self.org),
            everyone: self.everyone,
            at: std::time::Instant::now(),
        });
        inner.bytes += cached.body.len();
        if let Some(old) = inner.entries.put(key, cached) {
            inner.bytes -= old.body.len();
        }
        while inner.bytes > self.cache.max_bytes {
            match inner.entries.pop_lru() {
                Some((_, old)) => inner.bytes -= old.body.len(),
                None => break,
            }
        }
        etag
    }
}

struct Inner {
    entries: lru::LruCache<[u8; 32], Arc<Cached>>,
    bytes: usize,
    /// Bumped by events that may concern every organization.
    everyone: u64,
    /// Each organization's recent changes.
    orgs: HashMap<Uuid, OrgLog>,
}

/// An organization's generation (how many events it had) and its latest changes.
#[derive(Default)]
struct OrgLog {
    generation: u64,
    /// `(generation, changes)` of the latest [`LOG`] events, oldest first.
    recent: VecDeque<(u64, Changes)>,
}

impl Inner {
    fn generation(&self, org: Uuid) -> u64 {
        self.orgs.get(&org).map_or(0, |log| log.generation)
    }

    /// True when no change of `org` since generation `since` touches `reads`.
    fn untouched(&self, org: Uuid, since: u64, reads: &Reads) -> bool {
        let Some(log) = self.orgs.get(&org) else {
            return true;
        };
        if log.generation == since {
            return true;
        }
        match log.recent.front() {
            Some((oldest, _)) if *oldest <= since + 1 => log
                .recent
                .iter()
                .filter(|(generation, _)| *generation > since)
                .all(|(_, changes)| !reads.touched_by(changes)),
            // The log no longer reaches back that far.
            _ => false,
        }
    }

    fn forget(&mut self, key: &[u8; 32]) {
        if let Some(old) = self.entries.pop(key) {
            self.bytes -= old.body.len();
        }
    }
}

/// The replica's response cache.
pub struct ResponseCache {
    max_bytes: usize,
    max_age: std::time::Duration,
    inner: Mutex<Inner>,
    hits: std::sync::atomic::AtomicU64,
}

impl ResponseCache {
    pub fn new(max_bytes: usize, max_age: std::time::Duration) -> Arc<Self> {
        Arc::new(Self {
            max_bytes,
            max_age,
            hits: Default::default(),
            inner: Mutex::new(Inner {
                entries: lru::LruCache::unbounded(),
                bytes: 0,
                everyone: 0,
                orgs: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fill of one query: `parts` name everything its answer depends on besides the data
    /// (the document id, the operation name, the variables); `shared` what decides it for
    /// viewers with the same permissions (their permission fingerprint); `personal` the viewer
    /// (organization, user, API key).
    pub fn fill(
        self: &Arc<Self>,
        org: Uuid,
        (shared, personal): (&[u8], &[&[u8]]),
        parts: &[&[u8]],
    ) -> Fill {
        let key = |tag: &[u8], first: &[&[u8]]| {
            key_of(
                std::iter::once(tag)
                    .chain(first.iter().copied())
                    .chain(parts.iter().copied()),
            )
        };
        let inner = self.lock();
        Fill {
            cache: self.clone(),
            shared: key(b"shared", &[shared]),
            key: key(b"personal", personal),
            org,
            generation: inner.generation(org),
            everyone: inner.everyone,
            reads: Reads::everything(),
        }
    }

    /// Forgets what `delivery` may have changed.
    pub fn invalidate(&self, delivery: &Delivery) {
        let mut inner = self.lock();
        match delivery {
            Delivery::Gap => inner.everyone += 1,
            Delivery::Event(envelope) => match &envelope.event {
                Event::Access(access) if access.org_id.is_none() => inner.everyone += 1,
                event => {
                    let log = inner.orgs.entry(event.org_id()).or_default();
                    log.generation += 1;
                    if log.recent.len() == LOG {
                        log.recent.pop_front();
                    }
                    let generation = log.generation;
                    log.recent.push_back((generation, event.changes()));
                }
            },
        }
    }

    /// Follows this replica's events for as long as the bus runs.
    pub fn follow(self: &Arc<Self>, mut deliveries: tokio::sync::broadcast::Receiver<Delivery>) {
        use tokio::sync::broadcast::error::RecvError;
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let delivery = match deliveries.recv().await {
                    Ok(delivery) => delivery,
                    Err(RecvError::Lagged(_)) => Delivery::Gap,
                    Err(RecvError::Closed) => return,
                };
                match cache.upgrade() {
                    Some(cache) => cache.invalidate(&delivery),
                    None => return,
                }
            }
        });
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Answers served from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A key naming `parts` together: the SHA-256 of each part, length first (so no two lists of
/// parts share a key). Cache entries and live query groups are keyed so.
pub fn key_of<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A strong `ETag` of a body: its rapidhash and its length. A dashboard's body is some 400 KB,
/// hashed on every answer; rapidhash reads it several times faster than SipHash did. Replicas of
/// one build give one body the same `ETag`.
pub fn etag_of(body: &[u8]) -> String {
    let hash = rapidhash::v3::rapidhash_v3(body);
    format!("\"{hash:016x}{:08x}\"", body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: std::time::Duration = std::time::Duration::from_secs(60);

    /// Viewers: a permission fingerprint, and who they are.
    type Viewer = (&'static [u8], &'static [&'static [u8]]);
    const ALICE: Viewer = (b"members", &[b"alice"]);
    const BOB: Viewer = (b"members", &[b"bob"]);
    const GUEST: Viewer = (b"guests", &[b"gus"]);

    #[test]
    fn answers_that_read_nothing_personal_are_shared_by_permissions() {
        use crate::events::Topic;
        let cache = ResponseCache::new(4096, AGE);
        let org = Uuid::new_v4();
        let mut projects = Reads::default();
        projects.add(Topic::Projects);
        cache
            .fill(org, ALICE, &[b"q"])
            .reading(projects.clone())
            .store("shared".into());
        let hit = |viewer| {
            cache
                .fill(org, viewer, &[b"q"])
                .lookup()
                .map(|c| c.body.clone())
        };
        assert_eq!(
            hit(BOB).as_deref(),
            Some(&b"shared"[..]),
            "same permissions"
        );
        assert_eq!(hit(GUEST), None, "other permissions");
        let mut personal = projects;
        personal.personal();
        cache
            .fill(org, ALICE, &[b"me"])
            .reading(personal)
            .store("alice's".into());
        let own = |viewer| cache.fill(org, viewer, &[b"me"]).lookup().is_some();
        assert!(own(ALICE));
        assert!(!own(BOB), "a personal answer is the viewer's alone");
    }

    fn all() -> Reads {
        Reads::everything()
    }

    fn change(org: Uuid) -> Delivery {
        Delivery::Event(Arc::new(crate::events::Envelope::new(Event::Change(
            crate::events::ChangeEvent {
                org_id: org,
                table: "projects".into(),
                id: Uuid::new_v4(),
            },
        ))))
    }

    #[test]
    fn an_answer_is_served_until_an_event_of_its_organization() {
        let cache = ResponseCache::new(1024, AGE);
        let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
        cache
            .fill(org, ALICE, &[b"q"])
            .reading(all())
            .store("answer".into());
        assert_eq!(
            &cache.fill(org, ALICE, &[b"q"]).lookup().expect("hit").body[..],
            b"answer"
        );
        assert!(cache.fill(org, ALICE, &[b"other"]).lookup().is_none());
        cache.invalidate(&change(other));
        assert!(
            cache.fill(org, ALICE, &[b"q"]).lookup().is_some(),
            "another org's event"
        );
        cache.invalidate(&change(org));
        assert!(cache.fill(org, ALICE, &[b"q"]).lookup().is_none());
        cache
            .fill(org, ALICE, &[b"q"])
            .reading(all())
            .store("again".into());
        cache.invalidate(&Delivery::Gap);
        assert!(
            cache.fill(org, ALICE, &[b"q"]).lookup().is_none(),
            "a gap forgets all"
        );
    }

    #[test]
    fn an_answer_stays_until_an_event_touches_what_it_read() {
        use crate::events::Topic;
        let cache = ResponseCache::new(1024, AGE);
        let org = Uuid::new_v4();
        let mut docks = Reads::default();
        docks.add(Topic::Docks);
        cache
            .fill(org, ALICE, &[b"q"])
            .reading(docks.clone())
            .store("docks".into());
        cache.invalidate(&change(org));
        assert!(
            cache.fill(org, ALICE, &[b"q"]).lookup().is_some(),
            "a project's change does not touch a list of docks"
        );
        let fill = cache.fill(org, ALICE, &[b"r"]);
        cache.invalidate(&change(org));
        fill.reading(docks.clone()).store("kept".into());
        assert!(
            cache.fill(org, ALICE, &[b"r"]).lookup().is_some(),
            "an untouching event during the query"
        );
        let mut projects = Reads::default();
        projects.add(Topic::Projects);
        let fill = cache.fill(org, ALICE, &[b"p"]);
        cache.invalidate(&change(org));
        fill.reading(projects).store("stale".into());
        assert!(
            cache.fill(org, ALICE, &[b"p"]).lookup().is_none(),
            "a touching one"
        );
        for _ in 0..=LOG {
            cache.invalidate(&change(org));
        }
        assert!(
            cache.fill(org, ALICE, &[b"q"]).lookup().is_none(),
            "beyond the log, an answer cannot be shown current"
        );
    }

    #[test]
    fn an_answer_computed_across_an_event_is_not_kept() {
        let cache = ResponseCache::new(1024, AGE);
        let org = Uuid::new_v4();
        let fill = cache.fill(org, ALICE, &[b"q"]);
        cache.invalidate(&change(org));
        fill.reading(all()).store("stale".into());
        assert!(cache.fill(org, ALICE, &[b"q"]).lookup().is_none());
    }

    #[test]
    fn memory_is_bounded_and_zero_turns_it_off() {
        let cache = ResponseCache::new(100, AGE);
        let org = Uuid::new_v4();
        for i in 0..10u8 {
            cache
                .fill(org, ALICE, &[&[i]])
                .reading(all())
                .store(vec![b'x'; 30].into());
        }
        assert!(cache.bytes() <= 100);
        assert!(
            cache.fill(org, ALICE, &[&[9]]).lookup().is_some(),
            "the newest stay"
        );
        assert!(
            cache.fill(org, ALICE, &[&[0]]).lookup().is_none(),
            "the oldest go"
        );
        let off = ResponseCache::new(0, AGE);
        off.fill(org, ALICE, &[b"q"])
            .reading(all())
            .store("x".into());
        assert!(off.fill(org, ALICE, &[b"q"]).lookup().is_none());
    }

    #[test]
    fn answers_expire() {
        let cache = ResponseCache::new(1024, std::time::Duration::ZERO);
        let org = Uuid::new_v4();
        cache
            .fill(org, ALICE, &[b"q"])
            .reading(all())
            .store("answer".into());
        assert!(cache.fill(org, ALICE, &[b"q"]).lookup().is_none());
    }

    #[test]
    fn etags_follow_the_body() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
    }
}
