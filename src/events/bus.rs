//! One LISTEN connection per replica, fanned out in-process to every subscriber.
//!
//! The transport is the only thing that differs between buses: a source (the LISTEN connection
//! here, or the NATS JetStream consumer of [`super::consume`]) hands payloads to an [`Inlet`],
//! which checks the numbering, stamps and broadcasts them the same way for both.
//!
//! The listener is a dedicated connection (never a pooled one: a connection buffers every
//! notification it receives), as `stackgate_app`, named `stackgate-events` in
//! `pg_stat_activity`. Each notification is parsed once and broadcast as an [`Envelope`]; with
//! no subscriber it is not even parsed.
//!
//! Losing the connection (an error, or a ping unanswered while idle) means events may have been
//! missed: the listener reconnects with capped, jittered back-off and then broadcasts
//! [`Delivery::Gap`], on which subscribers tell their clients to refetch. A subscriber that falls
//! more than [`CAPACITY`] events behind is told the same, and so is every subscriber when the
//! relay's sequence number (`{"seq":N,…}`, see [`super::relay`]) jumps: events were published
//! that this connection did not receive.
//!
//! With read replicas, the listener also stamps each batch of notifications with the primary's
//! WAL insert position, read on the listening connection once the batch has arrived: a
//! notification is delivered only after its transaction committed, so that position is at or
//! past every commit of the batch. [`EventBus::position`] is advanced *before* the batch is
//! broadcast, and reads that follow events (live re-runs, cache fills, subscription events)
//! wait for a replica that has replayed it (`docs/scale-out.md`, "Reads after events").

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, broadcast, watch};
use tokio::task::JoinHandle;

use super::{CHANNEL, Event};
use crate::db::models::action::{self, ActionRun};
use crate::db::models::dock::{self, Dock, SyncRunRow};
use crate::db::models::resource::{self, Kind, Resource};
use crate::db::replicas::{self, Lsn, Watermark};
use crate::db::{DbError, Pool, Scope};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

/// Events a subscriber may fall behind by before it is told it missed some.
pub const CAPACITY: usize = 4096;
/// How long the listener waits for a notification before checking the connection is alive.
const PING_AFTER: Duration = Duration::from_secs(30);
/// How long a ping or a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What subscribers receive.
#[derive(Clone, Debug)]
pub enum Delivery {
    Event(Arc<Envelope>),
    /// The listener lost its connection and is back: events may have been missed; refetch.
    Gap,
}

/// One received event, shared by every subscriber of this replica, with what they resolve of it
/// loaded once for all of them.
#[derive(Debug)]
pub struct Envelope {
    pub event: Event,
    /// When this replica received it: a query whose transaction began later sees its change.
    pub received: std::time::Instant,
    /// The primary's WAL position when it was received, at or past its commit (stamped only
    /// when read replicas are configured).
    pub position: Option<Lsn>,
    sync_objects: OnceCell<SyncObjects>,
    resource: OnceCell<Option<Arc<Resource>>>,
    action_run: OnceCell<Option<Arc<ActionRun>>>,
}

/// A sync event's dock (`None` when deleted or gone) and run.
pub type SyncObjects = (Option<Arc<Dock>>, Option<Arc<SyncRunRow>>);

impl Envelope {
    pub fn new(event: Event) -> Self {
        Self {
            event,
            received: std::time::Instant::now(),
            position: None,
            sync_objects: OnceCell::new(),
            resource: OnceCell::new(),
            action_run: OnceCell::new(),
        }
    }

    /// A sync event's dock and run, loaded in the event's organization by the first subscriber
    /// that asks (one transaction per event per replica, however many subscribers resolve it).
    /// Subscribers check visibility before they ask.
    pub async fn sync_objects(&self, pool: &Pool) -> Result<SyncObjects, DbError> {
        let Event::Sync(event) = &self.event else {
            return Ok((None, None));
        };
        self.sync_objects
            .get_or_try_init(|| async {
                let scope = Scope {
                    org_id: Some(event.org_id),
                    ..Scope::default()
                };
                let (docks, runs) = scope
                    .transaction(pool, async |conn| {
                        let docks = dock::by_ids(conn, &[event.dock_id]).await?;
                        let runs = match event.run_id {
                            Some(run) => dock::sync_runs_by_ids(conn, &[run]).await?,
                            None => Vec::new(),
                        };
                        Ok((docks, runs))
                    })
                    .await?;
                let dock = docks
                    .into_iter()
                    .find(|d| d.deleted_at.is_none())
                    .map(Arc::new);
                Ok((dock, runs.into_iter().next().map(Arc::new)))
            })
            .await
            .cloned()
    }

    /// An action event's run (`None` when gone), loaded in the event's organization by the
    /// first subscriber that asks, like [`Envelope::sync_objects`].
    pub async fn action_run(&self, pool: &Pool) -> Result<Option<Arc<ActionRun>>, DbError> {
        let Event::Action(event) = &self.event else {
            return Ok(None);
        };
        self.action_run
            .get_or_try_init(|| async {
                let scope = Scope {
                    org_id: Some(event.org_id),
                    ..Scope::default()
                };
                let rows = scope
                    .transaction(pool, async |conn| {
                        action::by_ids(conn, &[event.run_id]).await
                    })
                    .await?;
                Ok(rows.into_iter().next().map(Arc::new))
            })
            .await
            .cloned()
    }

    /// A health event's resource (`None` when gone), loaded in the event's organization by the
    /// first subscriber that asks, like [`Envelope::sync_objects`].
    pub async fn health_resource(&self, pool: &Pool) -> Result<Option<Arc<Resource>>, DbError> {
        let Event::Health(event) = &self.event else {
            return Ok(None);
        };
        let Some(kind) = Kind::parse(&event.kind) else {
            return Ok(None);
        };
        self.resource
            .get_or_try_init(|| async {
                let scope = Scope {
                    org_id: Some(event.org_id),
                    ..Scope::default()
                };
                let rows = scope
                    .transaction(pool, async |conn| {
                        resource::by_ids(conn, kind, &[event.resource_id]).await
                    })
                    .await?;
                Ok(rows.into_iter().next().map(Arc::new))
            })
            .await
            .cloned()
    }
}

/// This replica's event bus; cheap to clone. The listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Delivery>,
    /// Access changes (and gaps) only: the viewer cache and sockets' renewals listen here, apart
    /// from subscriptions, so they neither wake on every event nor count as subscribers.
    access: broadcast::Sender<Delivery>,
    connected: watch::Receiver<bool>,
    listener: JoinHandle<()>,
    /// The newest position stamped on a received batch.
    position: Watermark,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl EventBus {
    /// Starts listening on `url` (as `stackgate_app`).
    pub fn start(url: SecretString) -> Self {
        Self::start_with(url, false)
    }

    /// [`EventBus::start`]; with `stamp`, every batch is stamped with the primary's WAL
    /// position (for read replicas; one statement per batch).
    pub fn start_with(url: SecretString, stamp: bool) -> Self {
        Self::start_from(stamp, |inlet| tokio::spawn(listen(url, inlet)))
    }

    /// A bus fed by `source`, a task that brings payloads to its [`Inlet`] (the LISTEN
    /// connection here, or the NATS consumer of `super::consume`); with `stamp`, the positions
    /// it reports advance [`EventBus::position`].
    pub fn start_from(stamp: bool, source: impl FnOnce(Inlet) -> JoinHandle<()>) -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        let (access, _) = broadcast::channel(ACCESS_CAPACITY);
        let (connected_tx, connected) = watch::channel(false);
        let position = Watermark::default();
        let outlets = Outlets {
            events: sender.clone(),
            access: access.clone(),
            position: stamp.then(|| position.clone()),
        };
        let listener = source(Inlet {
            outlets,
            up: connected_tx,
            sequence: Sequence::default(),
            connected_before: false,
        });
        Self {
            inner: Arc::new(Inner {
                sender,
                access,
                connected,
                listener,
                position,
            }),
        }
    }

    /// The newest WAL position stamped on a received event (none without read replicas): what
    /// a read that follows events must see.
    pub fn position(&self) -> Watermark {
        self.inner.position.clone()
    }

    /// A new subscriber: receives every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.inner.sender.subscribe()
    }

    /// A new listener of access changes: every event for which [`Event::changes_access`] says
    /// so, and every gap.
    pub fn subscribe_access(&self) -> broadcast::Receiver<Delivery> {
        self.inner.access.subscribe()
    }

    /// True while the LISTEN connection (or the NATS consumer) is up.
    pub fn is_connected(&self) -> bool {
        *self.inner.connected.borrow()
    }

    /// Waits until the LISTEN connection is up; false after `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut connected = self.inner.connected.clone();
        tokio::time::timeout(timeout, connected.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Subscribers on this replica now.
    pub fn subscribers(&self) -> usize {
        self.inner.sender.receiver_count()
    }
}

/// Where received events go: subscriptions' channel, and the access channel.
struct Outlets {
    events: broadcast::Sender<Delivery>,
    access: broadcast::Sender<Delivery>,
    /// Where batches are stamped, when they are.
    position: Option<Watermark>,
}

impl Outlets {
    fn gap(&self) {
        let _ = self.events.send(Delivery::Gap);
        let _ = self.access.send(Delivery::Gap);
    }

    /// Parses and sends a payload, to nobody's cost when nobody listens.
    fn send(&self, payload: &str, position: Option<Lsn>) {
        if self.events.receiver_count() == 0 && self.access.receiver_count() == 0 {
            return;
        }
        let Some(event) = Event::parse(payload) else {
            tracing::debug!("event of an unknown type ignored");
            return;
        };
        let changes_access = event.changes_access().is_some();
        let is_access = matches!(event, Event::Access(_));
        let envelope = Arc::new(Envelope {
            position,
            ..Envelope::new(event)
        });
        if changes_access {
            let _ = self.access.send(Delivery::Event(envelope.clone()));
        }
        if !is_access && self.events.receiver_count() > 0 {
            let _ = self.events.send(Delivery::Event(envelope));
        }
    }
}

/// Access events a listener may fall behind by before it is told (as a gap).
const ACCESS_CAPACITY: usize = 256;

/// Where a bus's source delivers, whatever the transport: it reports its connection, and each
/// payload goes through the same numbering check, stamping and broadcast.
pub struct Inlet {
    outlets: Outlets,
    up: watch::Sender<bool>,
    /// The numbering as seen since the source last connected.
    sequence: Sequence,
    connected_before: bool,
}

impl Inlet {
    /// True when received events are stamped with the primary's WAL position.
    pub fn stamps(&self) -> bool {
        self.outlets.position.is_some()
    }

    /// The source is (again) connected: after a loss, subscribers are told to refetch.
    pub fn connected(&mut self) {
        self.up.send_replace(true);
        self.sequence = Sequence::default();
        if self.connected_before {
            metrics::counter!("stackgate_event_listener_reconnects_total").increment(1);
            tracing::info!("event listener reconnected; subscribers told to refetch");
            self.outlets.gap();
        }
        self.connected_before = true;
    }

    /// The source lost its connection (`reason` names no secret).
    pub fn lost(&mut self, reason: &str) {
        self.up.send_replace(false);
        tracing::warn!(reason, "event listener lost its connection");
    }

    /// Advances the bus's position to `position` (when it stamps), before the events it covers
    /// are broadcast.
    pub fn advance(&self, position: Option<Lsn>) {
        if let (Some(mark), Some(position)) = (&self.outlets.position, position) {
            mark.advance(position);
        }
    }

    /// One received payload: numbering checked (a skipped number is a gap), then broadcast,
    /// stamped with `position` when the bus stamps.
    pub fn receive(&mut self, payload: &str, position: Option<Lsn>) {
        metrics::counter!("stackgate_events_received_total").increment(1);
        if self.sequence.skipped(payload) {
            metrics::counter!("stackgate_event_gaps_total").increment(1);
            tracing::warn!("event sequence skipped; subscribers told to refetch");
            self.outlets.gap();
        }
        let position = self.outlets.position.as_ref().and(position);
        self.outlets.send(payload, position);
    }
}

/// The listener: connect, LISTEN, forward; on loss, reconnect and broadcast a gap.
async fn listen(url: SecretString, mut inlet: Inlet) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match connect(&url).await {
            Ok(mut conn) => {
                backoff = Duration::from_millis(100);
                inlet.connected();
                let lost = forward(&mut conn, &mut inlet).await;
                inlet.lost(&lost);
            }
            Err(e) => tracing::warn!(error = %e, "event listener cannot connect"),
        }
        let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn connect(url: &SecretString) -> Result<AsyncPgConnection, String> {
    let connecting = crate::db::connect_as_app(url.expose_secret().to_owned(), "stackgate-events");
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Forwards notifications until the connection is lost; returns why.
async fn forward(conn: &mut AsyncPgConnection, inlet: &mut Inlet) -> String {
    loop {
        let next = {
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            tokio::time::timeout(PING_AFTER, notifications.next()).await
        };
        match next {
            Ok(Some(Ok(notification))) => {
                let batch = with_ready(conn, notification.payload);
                let position = match inlet.stamps() {
                    true => match replicas::write_position(conn).await {
                        Ok(position) => position,
                        Err(e) => return e.to_string(),
                    },
                    false => None,
                };
                inlet.advance(position);
                for payload in batch {
                    inlet.receive(&payload, position);
                }
            }
            Ok(Some(Err(e))) => return e.to_string(),
            Ok(None) => return "connection closed".to_owned(),
            Err(_idle) => {
                let ping = tokio::time::timeout(CONNECT_TIMEOUT, conn.batch_execute("select 1"));
                match ping.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "ping timed out".to_owned(),
                }
            }
        }
    }
}

/// The most notifications stamped as one batch.
const BATCH: usize = 256;

/// `first` and the notifications already received behind it (at most [`BATCH`] in all).
fn with_ready(conn: &mut AsyncPgConnection, first: String) -> Vec<String> {
    use futures_util::FutureExt;
    let mut batch = vec![first];
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while batch.len() < BATCH {
        match notifications.next().now_or_never() {
            Some(Some(Ok(notification))) => batch.push(notification.payload),
            _ => break,
        }
    }
    batch
}

/// The relay's numbering as this connection has seen it: a number more than one past the last
/// means events were published that this replica did not receive.
#[derive(Default)]
struct Sequence {
    last: Option<u64>,
}

impl Sequence {
    /// Reads the payload's number, if it has one (events sent with a bare `NOTIFY` have none and
    /// pass); true when numbers were skipped before it.
    fn skipped(&mut self, payload: &str) -> bool {
        let Some(seq) = sequence_of(payload) else {
            return false;
        };
        let skipped = self.last.is_some_and(|last| seq > last + 1);
        self.last = Some(seq);
        skipped
    }
}

/// The relay's number of a payload: it writes `{"seq":N,` (or `{"seq":N}`) first.
fn sequence_of(payload: &str) -> Option<u64> {
    let rest = payload.strip_prefix(r#"{"seq":"#)?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_number_is_a_gap_and_unnumbered_events_pass() {
        assert_eq!(
            sequence_of(r#"{"seq":42,"type":"access","org_id":null}"#),
            Some(42)
        );
        assert_eq!(sequence_of(r#"{"seq":7}"#), Some(7));
        assert_eq!(sequence_of(r#"{"type":"access","seq":7}"#), None);
        let mut sequence = Sequence::default();
        assert!(
            !sequence.skipped(r#"{"seq":5,"type":"x"}"#),
            "the first sets the start"
        );
        assert!(!sequence.skipped(r#"{"seq":6,"type":"x"}"#));
        assert!(!sequence.skipped(r#"{"type":"x"}"#), "unnumbered");
        assert!(sequence.skipped(r#"{"seq":8,"type":"x"}"#), "7 was skipped");
        assert!(!sequence.skipped(r#"{"seq":9,"type":"x"}"#));
        assert!(
            !sequence.skipped(r#"{"seq":1,"type":"x"}"#),
            "numbering restarted"
        );
    }

    #[test]
    fn numbered_payloads_parse_as_events() {
        let payload = r#"{"seq":3,"type":"change","org_id":"00000000-0000-0000-0000-000000000001","table":"projects","id":"00000000-0000-0000-0000-000000000002"}"#;
        assert!(matches!(Event::parse(payload), Some(Event::Change(_))));
    }
}
