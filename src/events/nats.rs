//! The NATS JetStream bus's shared parts (`docs/events.md`, "The NATS JetStream bus"): the
//! connection, the stream every event goes to, its subjects and headers, and the relay's
//! JetStream round (claim numbered rows, publish, delete once acknowledged).
//!
//! One stream, [`STREAM`], file-backed and bounded ([`MAX_AGE`], [`MAX_BYTES`]), holds subjects
//! `stackgate.events.<org_id>` (`stackgate.events.global` for user-level access events). Each
//! message carries the relay's number as `Nats-Msg-Id`, so a number published twice (a relay that
//! died between publishing and deleting, then its successor) is stored once within
//! [`DUPLICATE_WINDOW`]; the payload is the same `{"seq":N,…}` text NOTIFY carries.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions, HeaderMap};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Int4, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use super::settings::NatsUrl;
use crate::db::replicas::{self, Lsn};

/// The stream every event goes to.
pub const STREAM: &str = "STACKGATE_EVENTS";
/// What the stream holds.
pub const SUBJECTS: &str = "stackgate.events.>";
/// How long the stream keeps an event (replicas only read new ones; this bounds the store).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The most the stream stores; the oldest events go first.
pub const MAX_BYTES: i64 = 1 << 30;
/// How long JetStream remembers a number, to drop it when published again.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The header with the primary's WAL position once the event was committed.
pub const POSITION: &str = "Stackgate-Position";
/// The header with the outbox row's creation time (microseconds since the epoch).
pub const CREATED: &str = "Stackgate-Created";
/// How long connecting, creating the stream or an acknowledgement may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The subject of an event of `org` (`None`: a user-level event).
pub fn subject(org: Option<uuid::Uuid>) -> String {
    match org {
        Some(org) => format!("stackgate.events.{org}"),
        None => "stackgate.events.global".to_owned(),
    }
}

/// Connects as `name`; connection events go to `events`. Errors name the host, never the
/// credentials.
pub async fn connect(
    url: &NatsUrl,
    name: &str,
    events: mpsc::UnboundedSender<async_nats::Event>,
) -> Result<Client, String> {
    let options = ConnectOptions::new()
        .name(name)
        .connection_timeout(TIMEOUT)
        .request_timeout(Some(TIMEOUT))
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                let _ = events.send(event);
            }
        });
    let connecting = options.connect(url.secret().expose_secret());
    match tokio::time::timeout(TIMEOUT * 2, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(format!(
            "cannot connect to NATS at {}: {}",
            url.host(),
            e.kind()
        )),
        Err(_) => Err(format!("connecting to NATS at {} timed out", url.host())),
    }
}

/// The stream, created when missing (its settings are left alone when it exists).
pub async fn ensure_stream(js: &jetstream::Context) -> Result<stream::Stream, String> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    match tokio::time::timeout(TIMEOUT, js.get_or_create_stream(config)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("cannot create the JetStream stream {STREAM}: {e}")),
        Err(_) => Err(format!("creating the JetStream stream {STREAM} timed out")),
    }
}

/// The relay's JetStream side: a connection with the stream in place.
pub struct Publisher {
    _client: Client,
    js: jetstream::Context,
}

/// What one claiming round did.
pub struct Published {
    pub held: bool,
    pub published: i32,
    pub last_seq: Option<i64>,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Bool)]
    held: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_seq: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    org_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    payload: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    created_us: Option<i64>,
}

impl Publisher {
    /// Connects and creates the stream when missing.
    pub async fn connect(url: &NatsUrl) -> Result<Self, String> {
        let (events, mut log) = mpsc::unbounded_channel();
        let client = connect(url, "stackgate-relay", events).await?;
        tokio::spawn(async move {
            while let Some(event) = log.recv().await {
                tracing::debug!(%event, "event relay's NATS connection");
            }
        });
        let js = jetstream::new(client.clone());
        ensure_stream(&js).await?;
        Ok(Self {
            _client: client,
            js,
        })
    }

    /// One round: claim (take or renew the lease, number the next rows), publish them in order,
    /// wait for every acknowledgement, then delete them. An error leaves them numbered for the
    /// next round, of this relay or another.
    pub async fn round(
        &self,
        conn: &mut AsyncPgConnection,
        owner: &str,
        lease_seconds: i32,
        batch: i32,
    ) -> Result<Published, String> {
        let rows: Vec<Claimed> =
            diesel::sql_query("select * from stackgate_relay_claim($1, $2, $3)")
                .bind::<Text, _>(owner)
                .bind::<Int4, _>(lease_seconds)
                .bind::<Int4, _>(batch)
                .load(conn)
                .await
                .map_err(|e| e.to_string())?;
        let head = rows.as_slice().first();
        let held = head.is_some_and(|r| r.held);
        let last_seq = head.and_then(|r| r.last_seq);
        let events: Vec<&Claimed> = rows.iter().filter(|r| r.seq.is_some()).collect();
        let Some(last) = events.last().and_then(|r| r.seq) else {
            return Ok(Published {
                held,
                published: 0,
                last_seq,
            });
        };
        // Read after the claim committed: at or past every commit of the claimed rows.
        let position = replicas::write_position(conn)
            .await
            .map_err(|e| e.to_string())?;
        let mut acks = Vec::with_capacity(events.len());
        for row in &events {
            let headers = headers(row, position);
            let payload = row.payload.clone().unwrap_or_default();
            let ack = self
                .js
                .publish_with_headers(subject(row.org_id), headers, payload.into())
                .await
                .map_err(|e| format!("publishing to JetStream: {e}"))?;
            acks.push(ack);
        }
        for ack in acks {
            match tokio::time::timeout(TIMEOUT, ack.into_future()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("JetStream did not acknowledge: {e}")),
                Err(_) => return Err("JetStream acknowledgement timed out".to_owned()),
            }
        }
        diesel::sql_query("select stackgate_relay_published($1, $2)")
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(last)
            .execute(conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Published {
            held,
            published: i32::try_from(events.len()).unwrap_or(i32::MAX),
            last_seq,
        })
    }
}

fn headers(row: &Claimed, position: Option<Lsn>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(seq) = row.seq {
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            seq.to_string().as_str(),
        );
    }
    if let Some(created) = row.created_us {
        headers.insert(CREATED, created.to_string().as_str());
    }
    if let Some(position) = position {
        headers.insert(POSITION, position.to_string().as_str());
    }
    headers
}

/// The WAL position a message carries.
pub fn position_of(headers: Option<&HeaderMap>) -> Option<Lsn> {
    Lsn::parse(headers?.get(POSITION)?.as_str())
}

/// How long ago the message's outbox row was created (`None` without the header, or when the
/// clocks disagree so that it lies ahead).
pub fn age_of(headers: Option<&HeaderMap>) -> Option<Duration> {
    let created: i64 = headers?.get(CREATED)?.as_str().parse().ok()?;
    let now = chrono::Utc::now().timestamp_micros();
    u64::try_from(now - created).ok().map(Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_organization_or_global() {
        let org = uuid::Uuid::from_u128(1);
        assert_eq!(
            subject(Some(org)),
            "stackgate.events.00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(subject(None), "stackgate.events.global");
    }

    #[test]
    fn headers_carry_the_number_position_and_creation_time() {
        let created = chrono::Utc::now().timestamp_micros() - 2_000_000;
        let row = Claimed {
            held: true,
            last_seq: Some(7),
            seq: Some(7),
            org_id: None,
            payload: Some(r#"{"seq":7}"#.to_owned()),
            created_us: Some(created),
        };
        let headers = headers(&row, Lsn::parse("0/16B3748"));
        let id = headers.get(async_nats::header::NATS_MESSAGE_ID);
        assert_eq!(id.map(|v| v.as_str()), Some("7"));
        assert_eq!(position_of(Some(&headers)), Lsn::parse("0/16B3748"));
        let age = age_of(Some(&headers)).expect("an age");
        assert!(
            age >= Duration::from_secs(2) && age < Duration::from_secs(60),
            "{age:?}"
        );
        assert_eq!(position_of(None), None);
        assert_eq!(age_of(Some(&HeaderMap::new())), None);
    }
}
