//! The NATS JetStream source of an [`EventBus`] (`docs/events.md`, "The NATS JetStream bus"):
//! instead of LISTENing, the replica reads the stream through an ordered push consumer that
//! delivers what is published from the moment it starts, and hands each payload to the same
//! [`Inlet`] as the LISTEN connection (numbering check, stamping, broadcast).
//!
//! The client reconnects by itself and the ordered consumer resumes after the last stream
//! message it delivered; still, events may have been published while the connection was down
//! and the consumer cannot prove none was lost to a restart of a server without its store, so
//! once reconnected the bus broadcasts a gap (subscribers are told to refetch) and goes on. If
//! the consumer fails for good, the session is dropped and a new one started, with a gap too.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::mpsc;

use super::bus::{EventBus, Inlet};
use super::nats;
use super::settings::NatsUrl;

/// The longest wait between attempts to start a session.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A bus fed by the stream on `url`; with `stamp`, events carry the WAL position the relay read.
pub fn start(url: NatsUrl, stamp: bool) -> EventBus {
    EventBus::start_from(stamp, |inlet| tokio::spawn(run(url, inlet)))
}

/// Sessions, one after another: connect, consume, and on failure start again.
async fn run(url: NatsUrl, mut inlet: Inlet) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let (events, mut changes) = mpsc::unbounded_channel();
        match session(&url, events).await {
            Ok((client, mut messages)) => {
                backoff = Duration::from_millis(100);
                inlet.connected();
                let lost = consume(&mut messages, &mut changes, &mut inlet).await;
                inlet.lost(&lost);
                drop(messages);
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "event consumer cannot start"),
        }
        let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn session(
    url: &NatsUrl,
    events: mpsc::UnboundedSender<async_nats::Event>,
) -> Result<(async_nats::Client, consumer::push::Ordered), String> {
    let client = nats::connect(url, "stackgate-events", events).await?;
    let js = jetstream::new(client.clone());
    let stream = nats::ensure_stream(&js).await?;
    let config = consumer::push::OrderedConfig {
        deliver_subject: client.new_inbox(),
        filter_subject: nats::SUBJECTS.to_owned(),
        deliver_policy: consumer::DeliverPolicy::New,
        ..Default::default()
    };
    let creating = async {
        stream
            .create_consumer(config)
            .await
            .map_err(|e| format!("cannot create the stream's consumer: {e}"))?
            .messages()
            .await
            .map_err(|e| format!("cannot consume the stream: {e}"))
    };
    let messages = tokio::time::timeout(nats::TIMEOUT, creating)
        .await
        .map_err(|_| "creating the stream's consumer timed out".to_owned())??;
    Ok((client, messages))
}

/// Hands messages to `inlet` until the consumer fails; returns why. A lost connection marks the
/// bus down; its return, a gap.
async fn consume(
    messages: &mut consumer::push::Ordered,
    changes: &mut mpsc::UnboundedReceiver<async_nats::Event>,
    inlet: &mut Inlet,
) -> String {
    let mut down = false;
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(message)) => {
                    let headers = message.headers.as_ref();
                    if let Some(age) = nats::age_of(headers) {
                        metrics::histogram!("stackgate_event_bus_lag_seconds")
                            .record(age.as_secs_f64());
                    }
                    let position = nats::position_of(headers);
                    inlet.advance(position);
                    match std::str::from_utf8(&message.payload) {
                        Ok(payload) => inlet.receive(payload, position),
                        Err(_) => tracing::debug!("an event that is not UTF-8 ignored"),
                    }
                }
                Some(Err(e)) => return format!("the stream's consumer failed: {e}"),
                None => return "the stream's consumer ended".to_owned(),
            },
            change = changes.recv() => match change {
                Some(async_nats::Event::Disconnected) if !down => {
                    down = true;
                    inlet.lost("disconnected from NATS");
                }
                Some(async_nats::Event::Connected) if down => {
                    down = false;
                    inlet.connected();
                }
                Some(_) => {}
                None => return "the connection's events ended".to_owned(),
            },
        }
    }
}
