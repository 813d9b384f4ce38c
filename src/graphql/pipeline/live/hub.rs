//! Shared live queries: identical live queries run once, and every subscriber gets the result.
//!
//! Live queries are identical when they carry the same credentials (so every run of them is
//! admitted as the same viewer with the same permissions), the same document, operation and
//! variables. The first subscriber starts the group's runner; later ones join it and get its
//! latest result at once. The runner re-runs the query when an event touches what the last run
//! read ([`crate::events::Reads`]), at most once per interval, and publishes a result only when it
//! differs from the last one. It stops when its last subscriber leaves, or when a run says the
//! caller may no longer run the query at all (that result is the last every subscriber gets).
//!
//! Each subscriber's own connection still ends its stream when its credentials are revoked or
//! expire (the pipeline's `until_revoked`), whatever the group does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::Response;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tokio::sync::watch;

/// A group's key: a hash of the credentials, document, operation, variables and flags.
pub type Key = [u8; 32];

/// What a group's runner published last.
pub struct Published {
    pub response: Response,
    /// This result ends the stream (the caller lost access).
    pub ends: bool,
}

type Latest = Option<Arc<Published>>;

/// This replica's running groups.
#[derive(Default)]
pub struct Hub {
    groups: Mutex<HashMap<Key, watch::Sender<Latest>>>,
    /// Runs of every group so far (first runs and re-runs).
    runs: AtomicU64,
}

/// A new group's runner side: publish results with [`Runner::publish`], ask
/// [`Runner::unwatched`] before each run, and [`Runner::close`] at the end.
pub struct Runner {
    hub: Arc<Hub>,
    key: Key,
    sender: watch::Sender<Latest>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, watch::Sender<Latest>>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the group of `key`: its results, and a [`Runner`] when the caller must start it.
    pub fn join(self: &Arc<Self>, key: Key) -> (watch::Receiver<Latest>, Option<Runner>) {
        let mut groups = self.lock();
        if let Some(sender) = groups.get(&key) {
            return (sender.subscribe(), None);
        }
        let (sender, receiver) = watch::channel(None);
        groups.insert(key, sender.clone());
        metrics::gauge!("stackgate_live_groups").increment(1.0);
        let runner = Runner {
            hub: self.clone(),
            key,
            sender,
        };
        (receiver, Some(runner))
    }

    /// How many groups run now.
    pub fn groups(&self) -> usize {
        self.lock().len()
    }

    /// How many times groups ran so far on this replica.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

impl Runner {
    /// Counts one run of the group's query.
    pub fn ran(&self, first: bool) {
        self.hub.runs.fetch_add(1, Ordering::Relaxed);
        if !first {
            metrics::counter!("stackgate_live_reruns_total").increment(1);
        }
    }

    /// Sends `response` to every subscriber.
    pub fn publish(&self, response: Response, ends: bool) {
        let subscribers = self.sender.receiver_count();
        metrics::counter!("stackgate_live_pushes_total").increment(subscribers as u64);
        self.sender
            .send_replace(Some(Arc::new(Published { response, ends })));
    }

    /// Resolves when no subscriber is left.
    pub async fn abandoned(&self) {
        self.sender.closed().await
    }

    /// True when no subscriber is left; if so, the group is gone (a later subscriber starts a
    /// new one), so the runner must stop.
    pub fn unwatched(&self) -> bool {
        let mut groups = self.hub.lock();
        if self.sender.receiver_count() > 0 {
            return false;
        }
        self.forget(&mut groups);
        true
    }

    /// Ends the group: later subscribers start a new one; current ones get no more results.
    pub fn close(self) {}

    fn forget(&self, groups: &mut HashMap<Key, watch::Sender<Latest>>) {
        if groups
            .get(&self.key)
            .is_some_and(|s| s.same_channel(&self.sender))
        {
            groups.remove(&self.key);
            metrics::gauge!("stackgate_live_groups").decrement(1.0);
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let mut groups = self.hub.lock();
        self.forget(&mut groups);
    }
}

/// A subscriber's results: the group's latest at once, then each new one, until one ends the
/// stream or the group stops. `held` is kept for as long as the stream lives (its place among
/// its connection's subscriptions).
pub fn results<H: Send + 'static>(
    receiver: watch::Receiver<Latest>,
    held: H,
) -> BoxStream<'static, Response> {
    metrics::gauge!("stackgate_live_queries").increment(1.0);
    let state = Subscriber {
        receiver,
        first: true,
        done: false,
        _held: held,
    };
    stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if s.first {
            s.receiver.wait_for(Option::is_some).await.ok()?;
            s.first = false;
        } else {
            s.receiver.changed().await.ok()?;
        }
        let published = s.receiver.borrow_and_update().clone()?;
        s.done = published.ends;
        Some((copy(&published.response), s))
    })
    .boxed()
}

struct Subscriber<H> {
    receiver: watch::Receiver<Latest>,
    first: bool,
    done: bool,
    _held: H,
}

impl<H> Drop for Subscriber<H> {
    fn drop(&mut self) {
        metrics::gauge!("stackgate_live_queries").decrement(1.0);
    }
}

/// A copy of a published response for one subscriber.
fn copy(response: &Response) -> Response {
    let mut copy = Response::new(response.data.clone());
    copy.errors = response.errors.clone();
    copy.extensions = response.extensions.clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Value;

    fn answer(n: i32) -> Response {
        Response::new(Value::from(n))
    }

    #[tokio::test]
    async fn subscribers_of_one_key_share_a_runner_and_get_its_latest_result() {
        let hub = Arc::new(Hub::default());
        let (first, runner) = hub.join([1; 32]);
        let runner = runner.expect("the first subscriber starts the group");
        runner.publish(answer(1), false);
        let (second, none) = hub.join([1; 32]);
        assert!(none.is_none(), "a second subscriber joins");
        let (_, other) = hub.join([2; 32]);
        assert!(other.is_some(), "another key is another group");
        let mut a = results(first, ());
        let mut b = results(second, ());
        assert_eq!(a.next().await.map(|r| r.data), Some(Value::from(1)));
        assert_eq!(b.next().await.map(|r| r.data), Some(Value::from(1)));
        runner.publish(answer(2), true);
        assert_eq!(b.next().await.map(|r| r.data), Some(Value::from(2)));
        assert!(b.next().await.is_none(), "an ending result is the last");
        drop(b);
        assert!(!runner.unwatched(), "one subscriber left");
        drop(a);
        assert!(runner.unwatched());
        assert_eq!(hub.groups(), 1, "only the other key's group is left");
        let (_, again) = hub.join([1; 32]);
        assert!(again.is_some(), "a new subscriber starts a new group");
    }

    #[tokio::test]
    async fn a_closed_group_ends_its_streams() {
        let hub = Arc::new(Hub::default());
        let (receiver, runner) = hub.join([3; 32]);
        let runner = runner.expect("starts");
        runner.publish(answer(1), false);
        let mut stream = results(receiver, ());
        assert!(stream.next().await.is_some());
        runner.close();
        assert!(stream.next().await.is_none());
        assert_eq!(hub.groups(), 0);
    }
}
