//! What a subscriber of the event bus received: the relay's tests (over NOTIFY and over NATS)
//! read their own test events off `Bus::subscribe` and check order, gaps and duplicates.

use std::collections::HashMap;

use stackgate::events::{Delivery, Event};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::wait::PATIENCE;

/// The ids of the `change` events of `table` in the order `events` delivers them, until `last`
/// arrives, and the gaps announced meanwhile; panics when `last` does not arrive in time.
pub async fn received_until(
    events: &mut broadcast::Receiver<Delivery>,
    table: &str,
    last: Uuid,
) -> (Vec<Uuid>, usize) {
    let (mut ids, mut gaps) = (Vec::new(), 0);
    let collect = async {
        loop {
            match events.recv().await {
                Ok(Delivery::Event(envelope)) => {
                    if let Event::Change(c) = &envelope.event
                        && c.table == table
                    {
                        ids.push(c.id);
                        if c.id == last {
                            return;
                        }
                    }
                }
                Ok(Delivery::Gap) => gaps += 1,
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, collect)
        .await
        .expect("the last event in time");
    (ids, gaps)
}

/// How many times each id occurs in `ids`.
pub fn times_each(ids: &[Uuid]) -> HashMap<Uuid, usize> {
    let mut times = HashMap::new();
    for id in ids {
        *times.entry(*id).or_default() += 1;
    }
    times
}
