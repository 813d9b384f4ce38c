//! The outbox relay: one per cluster, chosen by a lease, publishes committed outbox rows with
//! NOTIFY on [`super::CHANNEL`] (`docs/events.md`, "How events travel"), or, with the NATS bus,
//! to JetStream ([`super::nats`]: the same lease, rows deleted only once acknowledged).
//!
//! Every replica runs one. Each round is a single call of `stackgate_relay_events` on a dedicated
//! connection (as `stackgate_app`, named `stackgate-relay`): the function takes or renews the
//! lease, publishes up to [`BATCH`] rows in order with a cluster-wide sequence number, deletes
//! them and records the last number, all in one transaction. The holder runs a round every
//! `poll` (at once again while a full batch came back); the others every quarter of the lease,
//! to take over when the holder stops renewing it. An idle holder's round only reads.
//!
//! The connection's `statement_timeout` is the lease, so a round stuck in the database cannot
//! hold the lease row's lock past the lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Int4, Int8, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::nats::Publisher;
use super::settings::{Bus, EventSettings};

/// Outbox rows one round publishes at most.
pub const BATCH: i32 = 1000;
/// How long connecting or giving up the lease may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A relay, not yet running.
pub struct Relay {
    url: SecretString,
    owner: String,
    settings: EventSettings,
}

/// A running relay; [`RelayHandle::stop`] gives up the lease.
pub struct RelayHandle {
    owner: String,
    stop: watch::Sender<bool>,
    holding: watch::Receiver<bool>,
    rounds: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

#[derive(QueryableByName)]
struct Round {
    #[diesel(sql_type = Bool)]
    held: bool,
    #[diesel(sql_type = Int4)]
    published: i32,
    #[diesel(sql_type = Nullable<Int8>)]
    last_seq: Option<i64>,
}

impl Relay {
    /// A relay logging in with `url` (as `stackgate_app`), under a lease owner name unique to it.
    pub fn new(url: SecretString, settings: EventSettings) -> Self {
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            url,
            owner,
            settings,
        }
    }

    /// Runs rounds in the background until stopped.
    pub fn spawn(self) -> RelayHandle {
        let (stop, stopped) = watch::channel(false);
        let (holding_tx, holding) = watch::channel(false);
        let owner = self.owner.clone();
        let rounds = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(self.run(stopped, holding_tx, rounds.clone()));
        RelayHandle {
            owner,
            stop,
            holding,
            rounds,
            task,
        }
    }

    async fn run(
        self,
        mut stopped: watch::Receiver<bool>,
        holding: watch::Sender<bool>,
        rounds: Arc<AtomicU64>,
    ) {
        let mut backoff = Duration::from_millis(100);
        // In NATS mode, the JetStream connection (kept across database reconnections).
        let mut publisher: Option<Publisher> = None;
        loop {
            let connected = match (&self.settings.bus, &publisher) {
                (Bus::Nats(url), None) => Publisher::connect(url).await.map(|p| {
                    publisher = Some(p);
                }),
                _ => Ok(()),
            };
            match connected.and(self.connect().await) {
                Ok(mut conn) => {
                    backoff = Duration::from_millis(100);
                    let lost = self
                        .rounds(
                            &mut conn,
                            publisher.as_ref(),
                            &mut stopped,
                            &holding,
                            &rounds,
                        )
                        .await;
                    set_holding(&holding, false);
                    match lost {
                        None => {
                            self.release(&mut conn).await;
                            return;
                        }
                        Some(e) => tracing::warn!(error = %e, "event relay lost its connection"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event relay cannot connect"),
            }
            let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
            let pause = backoff + Duration::from_millis(jitter);
            if tokio::time::timeout(pause, stopped.wait_for(|s| *s))
                .await
                .is_ok()
            {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The connection of this relay's rounds.
    async fn connect(&self) -> Result<AsyncPgConnection, String> {
        let url = self.url.expose_secret().to_owned();
        let connecting = crate::db::connect_as_app(url, "stackgate-relay");
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let timeout = self.settings.lease.as_millis();
        conn.batch_execute(&format!("SET statement_timeout = {timeout}"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    /// Runs rounds until stopped (`None`) or the connection fails (why): NOTIFY rounds, or
    /// JetStream rounds through `publisher`.
    async fn rounds(
        &self,
        conn: &mut AsyncPgConnection,
        publisher: Option<&Publisher>,
        stopped: &mut watch::Receiver<bool>,
        holding: &watch::Sender<bool>,
        count: &AtomicU64,
    ) -> Option<String> {
        let lease_seconds = i32::try_from(self.settings.lease.as_secs().max(1)).unwrap_or(3600);
        let standby = (self.settings.lease / 4).max(self.settings.poll);
        loop {
            if *stopped.borrow() {
                return None;
            }
            let started = std::time::Instant::now();
            let round = match publisher {
                None => diesel::sql_query(
                    "select held, published, last_seq from stackgate_relay_events($1, $2, $3)",
                )
                .bind::<Text, _>(&self.owner)
                .bind::<Integer, _>(lease_seconds)
                .bind::<Integer, _>(BATCH)
                .get_result::<Round>(conn)
                .await
                .map_err(|e| e.to_string()),
                Some(publisher) => publisher
                    .round(conn, &self.owner, lease_seconds, BATCH)
                    .await
                    .map(|p| Round {
                        held: p.held,
                        published: p.published,
                        last_seq: p.last_seq,
                    }),
            };
            let round = match round {
                Ok(round) => round,
                Err(e) => return Some(e),
            };
            if round.held != *holding.borrow() {
                tracing::info!(
                    holding = round.held,
                    last_seq = round.last_seq,
                    "event relay lease changed hands"
                );
            }
            set_holding(holding, round.held);
            count.fetch_add(1, Ordering::Relaxed);
            if round.published > 0 {
                // A round that published is traced once it is known to have (the polls between
                // would each be a trace): its duration is an attribute.
                let _span = tracing::info_span!(
                    "relay.publish",
                    relay.published = round.published,
                    relay.last_seq = round.last_seq,
                    relay.round_ms = started.elapsed().as_millis() as u64
                )
                .entered();
                metrics::counter!("stackgate_outbox_published_total")
                    .increment(round.published as u64);
            }
            let wait = match (round.held, round.published >= BATCH) {
                (true, true) => continue,
                (true, false) => self.settings.poll,
                (false, _) => standby,
            };
            if tokio::time::timeout(wait, stopped.wait_for(|s| *s))
                .await
                .is_ok()
            {
                return None;
            }
        }
    }

    /// Gives up the lease, so another replica's relay takes over at its next round.
    async fn release(&self, conn: &mut AsyncPgConnection) {
        let releasing = diesel::sql_query("select stackgate_relay_release($1)")
            .bind::<Text, _>(&self.owner)
            .execute(conn);
        match tokio::time::timeout(CONNECT_TIMEOUT, releasing).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "event relay could not give up its lease"),
            Err(_) => tracing::warn!("event relay timed out giving up its lease"),
        }
    }
}

fn set_holding(holding: &watch::Sender<bool>, held: bool) {
    holding.send_if_modified(|h| std::mem::replace(h, held) != held);
    metrics::gauge!("stackgate_outbox_relay_holding").set(if held { 1.0 } else { 0.0 });
}

impl RelayHandle {
    /// The name this relay holds the lease under (`event_relay.lease_owner`).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// True while this relay holds the lease (as of its last round).
    pub fn is_holding(&self) -> bool {
        *self.holding.borrow()
    }

    /// Rounds completed so far.
    pub fn rounds(&self) -> u64 {
        AtomicU64::load(&self.rounds, Ordering::Relaxed)
    }

    /// Waits until this relay holds the lease; false after `timeout`.
    pub async fn wait_holding(&self, timeout: Duration) -> bool {
        let mut holding = self.holding.clone();
        tokio::time::timeout(timeout, holding.wait_for(|h| *h))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops after the current round and gives up the lease.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops at once without giving up the lease, as a crash would: another relay takes over
    /// when the lease expires.
    pub fn abort(self) {
        self.task.abort();
    }
}
