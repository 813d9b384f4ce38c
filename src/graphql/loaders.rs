//! Per-request batch loading: the one way resolvers read rows by key.
//!
//! Every key type implements [`Loader`] for [`DbLoader`] beside the type it loads
//! (`types/project/load.rs`, `types/resource/load.rs`, `types/dock/load.rs`, `types/user.rs`,
//! `types/directory.rs`, `types/alert.rs`, `types/resource_list.rs`); all of them run on the
//! request's [`RequestDb`] transaction. List resolvers call each loader once with every key of the
//! list (see `prime` in the types), so a query costs statements per level, not per row.
//!
//! A request's [`LoaderSlot`] holds its [`Loaders`]. A subscription resolves each event afresh,
//! like a new request: the pipeline [`renew`](LoaderSlot::renew)s the slot after every event,
//! which drops the whole cache at once, whatever key types exist.
//!
//! [`Loaders::load_many`] is the single choke point every load passes through (`load_one` goes
//! through it too): there every key, and what it loaded, records its [`Topic`]s in the
//! execution's [`Reads`] (what live queries and cached answers depend on). A key type must say
//! what it reads ([`Recorded`]) to be loadable at all, so no new loader can forget.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::db::{DbError, RequestDb};
use crate::error::ApiError;
use crate::events::{Reads, Topic};

/// What loading a key reads: the [`Topic`]s a change of which may change the loaded value
/// (`value` is `None` when nothing was found, or the viewer may not see it).
pub trait Recorded: Sized + Send + Sync + Hash + Eq + Clone + 'static
where
    DbLoader: Loader<Self>,
{
    fn record(&self, value: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads);
}

/// Loads through the request's transaction; each key type's `Loader` impl lives beside its type.
pub struct DbLoader {
    db: Arc<RequestDb>,
}

impl DbLoader {
    /// The request's database handle (its transaction, scope and visibility).
    pub fn db(&self) -> &RequestDb {
        &self.db
    }
}

/// A loader failure, cloneable as DataLoader requires.
pub type LoadError = Arc<DbError>;

impl From<LoadError> for ApiError {
    fn from(err: LoadError) -> Self {
        ApiError::internal(anyhow::anyhow!("{err}"))
    }
}

/// One cache of loaded values (one per key type) for one request, or one subscription event,
/// and the topics its loads read.
pub struct Loaders {
    loader: DataLoader<DbLoader, HashMapCache>,
    reads: Mutex<Reads>,
}

impl Loaders {
    fn new(db: Arc<RequestDb>) -> Self {
        Self {
            // A batch runs in a task of its own, under the span of the operation that asked
            // for it first (its `loader` span, and its statements', are that span's children).
            loader: DataLoader::with_cache(
                DbLoader { db },
                |batch| tokio::spawn(tracing::Instrument::in_current_span(batch)),
                HashMapCache::default(),
            ),
            reads: Mutex::default(),
        }
    }

    /// Records topics read other than through a loader (a list's SQL, say).
    pub fn record(&self, topics: impl IntoIterator<Item = Topic>) {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(topics);
    }

    /// Records that the result depends on who the viewer is (see [`Reads::personal`]).
    pub fn personal(&self) {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .personal();
    }

    /// Everything read so far.
    pub fn reads(&self) -> Reads {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads one value by key (batched with every other key of its type asked for meanwhile).
    pub async fn load_one<K>(
        &self,
        key: K,
    ) -> Result<Option<<DbLoader as Loader<K>>::Value>, ApiError>
    where
        K: Send + Sync + Hash + Eq + Clone + Recorded + 'static,
        DbLoader: Loader<K, Error = LoadError>,
    {
        let mut values = self.load_many(std::iter::once(key.clone())).await?;
        Ok(values.remove(&key))
    }

    /// Loads many values by key, in one batch per key type, and records what they read. Every
    /// load passes here.
    pub async fn load_many<K, I>(
        &self,
        keys: I,
    ) -> Result<HashMap<K, <DbLoader as Loader<K>>::Value>, ApiError>
    where
        K: Send + Sync + Hash + Eq + Clone + Recorded + 'static,
        I: IntoIterator<Item = K>,
        DbLoader: Loader<K, Error = LoadError>,
    {
        let keys: Vec<K> = keys.into_iter().collect();
        let values = self.loader.load_many(keys.iter().cloned()).await?;
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &keys {
            key.record(values.get(key), &mut reads);
        }
        Ok(values)
    }
}

/// The request's current [`Loaders`] (request data); renewed, not cleared, between events.
pub struct LoaderSlot {
    db: Arc<RequestDb>,
    current: Mutex<Arc<Loaders>>,
}

impl LoaderSlot {
    /// Fresh loaders over a request's database handle.
    pub fn new(db: Arc<RequestDb>) -> Arc<Self> {
        let current = Mutex::new(Arc::new(Loaders::new(db.clone())));
        Arc::new(Self { db, current })
    }

    /// The loaders to use now.
    pub fn current(&self) -> Arc<Loaders> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the current loaders' loads read.
    pub fn reads(&self) -> Reads {
        self.current().reads()
    }

    /// Replaces the loaders with empty ones: nothing loaded before is seen again.
    pub fn renew(&self) {
        let fresh = Arc::new(Loaders::new(self.db.clone()));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
}

/// Groups keys by a part they share (a filter), preserving order of first appearance.
pub fn group_by<K, G: Eq + Hash + Clone>(keys: &[K], group: impl Fn(&K) -> G) -> Vec<(G, Vec<&K>)> {
    let mut groups: Vec<(G, Vec<&K>)> = Vec::new();
    for key in keys {
        let g = group(key);
        match groups.iter_mut().find(|(existing, _)| *existing == g) {
            Some((_, members)) => members.push(key),
            None => groups.push((g, vec![key])),
        }
    }
    groups
}

/// Defines a loader of rows by id behind a key newtype; `$sees` (visibility, row) is the type's
/// visibility rule, applied here so every path to a row (`node`, nested fields, events) agrees;
/// `$record` (id, row if found, reads) says what loading it reads ([`Recorded`]).
macro_rules! by_id_loader {
    ($(#[$doc:meta])* $key:ident, $value:ty, $load:path, $sees:expr, $record:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub uuid::Uuid);

        impl async_graphql::dataloader::Loader<$key> for $crate::graphql::loaders::DbLoader {
            type Value = std::sync::Arc<$value>;
            type Error = $crate::graphql::loaders::LoadError;

            async fn load(
                &self,
                keys: &[$key],
            ) -> Result<
                std::collections::HashMap<$key, std::sync::Arc<$value>>,
                $crate::graphql::loaders::LoadError,
            > {
                let ids: Vec<uuid::Uuid> = keys.iter().map(|k| k.0).collect();
                let rows = self
                    .db()
                    .run(async |conn| $load(conn, &ids).await)
                    .await
                    .map_err(std::sync::Arc::new)?;
                let sees: fn(&$crate::db::models::visibility::Visibility, &$value) -> bool = $sees;
                let visibility = self.db().visibility();
                Ok(rows
                    .into_iter()
                    .filter(|row| sees(&visibility, row))
                    .map(|row| ($key(row.id), std::sync::Arc::new(row)))
                    .collect())
            }
        }

        impl $crate::graphql::loaders::Recorded for $key {
            fn record(
                &self,
                value: Option<&std::sync::Arc<$value>>,
                reads: &mut $crate::events::Reads,
            ) {
                let record: fn(uuid::Uuid, Option<&$value>, &mut $crate::events::Reads) = $record;
                record(self.0, value.map(|v| &**v), reads);
            }
        }
    };
}

pub(crate) use by_id_loader;
