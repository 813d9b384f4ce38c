//! Shared live queries: identical live queries run once, and every subscriber gets the result.
//!
//! Live queries are identical when they have the same document, operation and variables and
//! their viewers the same permissions (see `Viewer::permission_fingerprint`): one group runs for
//! every viewer of a role, whoever they are. A query whose run reads something of the viewer's
//! own (their user, their memberships) cannot be shared that way: the hub remembers it, and such
//! queries group by credentials instead. The pipeline's subscribers (`live::member`) follow the
//! group of their own permissions when theirs or the group's change.
//!
//! The first subscriber starts the group's runner; later ones join it and get its latest result
//! at once. The runner re-runs the query when an event touches what the last run read
//! ([`crate::events::Reads`]), at most once per interval, and publishes a result only when it
//! differs from the last one. It stops when its last subscriber leaves, or when a run says its
//! caller may no longer run the query at all (that result is the last it publishes).
//!
//! Each subscriber's own connection still ends its stream when its credentials are revoked or
//! expire (the pipeline's `until_revoked`), whatever the group does.
//!
//! A result's `data` is serialized once per group, not once per subscriber: each subscriber's
//! response carries a *placeholder* in its place — a string no data can contain (it starts with
//! a NUL, which PostgreSQL text cannot hold, and carries this process's random nonce) — and the
//! transports [`expand`] it into the serialized data as they write the message.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use async_graphql::{Response, Value};
use bytes::Bytes;
use tokio::sync::watch;

/// A group's key: a hash of the permissions (or the credentials), document, operation,
/// variables and flags.
pub type Key = [u8; 32];

/// The most queries the hub remembers as personal; past it, it forgets them all (a forgotten one
/// costs one shared run that finds out again).
const PERSONAL_QUERIES: usize = 4096;

/// What a group's runner published last.
pub struct Published {
    pub response: Response,
    /// This result ends the stream (the runner's caller lost access).
    pub ends: bool,
    /// The credentials the runner runs the query with (see [`Hub::join`]).
    pub owner: Key,
    /// A hash of the whole result: a subscriber moving to another group skips a result equal to
    /// the last one it sent.
    pub fingerprint: u64,
    /// The placeholder's number and the serialized `data`, when there is data.
    data: Option<(u64, Arc<str>)>,
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Some((id, _)) = &self.data {
            payloads().remove(id);
        }
    }
}

/// Serialized data of the results being sent, by placeholder number (weak: a result's data lives
/// as long as the result).
static PAYLOADS: LazyLock<Mutex<HashMap<u64, Weak<str>>>> = LazyLock::new(Mutex::default);
static NEXT_PAYLOAD: AtomicU64 = AtomicU64::new(0);

/// This process's nonce: placeholders cannot be guessed, so no text a caller sends can pose as one.
static NONCE: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

/// The placeholder's beginning as serialized JSON shows it (after its opening quote): an escaped
/// NUL, a name and the nonce.
static PLACEHOLDER: LazyLock<String> =
    LazyLock::new(|| format!("\\u0000stackgate-live-{}:", *NONCE));

fn payloads() -> std::sync::MutexGuard<'static, HashMap<u64, Weak<str>>> {
    PAYLOADS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The placeholder of payload `id`, as a value.
fn placeholder(id: u64) -> Value {
    Value::String(format!("\u{0}stackgate-live-{}:{id}", *NONCE))
}

/// Where a serialized message's placeholder is (`start..end`, its quotes included), and the data
/// it stands for (`None` should that data be gone).
fn locate(text: &str) -> Option<(usize, usize, Option<Arc<str>>)> {
    let at = text.find(PLACEHOLDER.as_str())?;
    let digits = &text[at + PLACEHOLDER.len()..];
    let start = at.checked_sub(1)?;
    let len = digits.find('"')?;
    let end = at + PLACEHOLDER.len() + len + 1;
    let data = digits[..len]
        .parse::<u64>()
        .ok()
        .and_then(|id| payloads().get(&id).and_then(Weak::upgrade));
    Some((start, end, data))
}

/// Replaces the placeholder in a serialized message with the data it stands for (with `null`
/// should that data be gone, so the nonce never leaves the process). A message without one comes
/// back as it was.
pub fn expand(text: String) -> String {
    let Some((start, end, data)) = locate(&text) else {
        return text;
    };
    let data: &str = data.as_deref().unwrap_or("null");
    let mut expanded = String::with_capacity(text.len() + data.len());
    expanded.push_str(&text[..start]);
    expanded.push_str(data);
    expanded.push_str(&text[end..]);
    expanded
}

/// A serialized message as the pieces [`expand`] would join — the text before the placeholder,
/// the data (shared, not copied), the text after — for a transport that writes them as one
/// message; `Err` with the message as it was when it has no placeholder.
pub fn pieces(text: String) -> Result<[Bytes; 3], String> {
    let Some((start, end, data)) = locate(&text) else {
        return Err(text);
    };
    let data = match data {
        Some(data) => Bytes::from_owner(SharedText(data)),
        None => Bytes::from_static(b"null"),
    };
    let text = Bytes::from(text);
    Ok([text.slice(..start), data, text.slice(end..)])
}

/// A group's serialized data as bytes.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

pub type Latest = Option<Arc<Published>>;

/// This replica's running groups.
#[derive(Default)]
pub struct Hub {
    groups: Mutex<HashMap<Key, watch::Sender<Latest>>>,
    /// The shared keys of queries found to read something of the viewer's own.
    personal: Mutex<HashSet<Key>>,
    /// Runs of every group so far (first runs and re-runs).
    runs: AtomicU64,
}

/// A new group's runner side: publish results with [`Runner::publish`], ask
/// [`Runner::unwatched`] before each run, and [`Runner::close`] at the end.
pub struct Runner {
    hub: Arc<Hub>,
    key: Key,
    owner: Key,
    sender: watch::Sender<Latest>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, watch::Sender<Latest>>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the group of `key`: its results, and a [`Runner`] when the caller must start it
    /// (with the credentials hashed as `owner`).
    pub fn join(
        self: &Arc<Self>,
        key: Key,
        owner: Key,
    ) -> (watch::Receiver<Latest>, Option<Runner>) {
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
            owner,
            sender,
        };
        (receiver, Some(runner))
    }

    /// The key a live query groups under: `shared` (by permissions), unless a run of it found
    /// that it reads something of the viewer's own; then `personal` (by credentials).
    pub fn key(&self, shared: Key, personal: Key) -> Key {
        let known = self.personal.lock().unwrap_or_else(PoisonError::into_inner);
        if known.contains(&shared) {
            personal
        } else {
            shared
        }
    }

    /// Remembers that the query of `shared` reads something of the viewer's own.
    pub fn personal(&self, shared: Key) {
        let mut known = self.personal.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= PERSONAL_QUERIES {
            known.clear();
        }
        known.insert(shared);
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

    /// Sends `response` (whose hash is `fingerprint`) to every subscriber, its data serialized
    /// once for all of them.
    pub fn publish(&self, response: Response, ends: bool, fingerprint: u64) {
        let subscribers = self.sender.receiver_count();
        metrics::counter!("stackgate_live_pushes_total").increment(subscribers as u64);
        let data = (response.data != Value::Null)
            .then(|| crate::graphql::json::value(&response.data))
            .map(|json| {
                let json: Arc<str> = json.into();
                let id = NEXT_PAYLOAD.fetch_add(1, Ordering::Relaxed);
                payloads().insert(id, Arc::downgrade(&json));
                (id, json)
            });
        let published = Published {
            response,
            ends,
            owner: self.owner,
            fingerprint,
            data,
        };
        self.sender.send_replace(Some(Arc::new(published)));
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

/// One subscriber's place in a group: the group's latest result at once, then each new one.
pub struct Subscription {
    receiver: watch::Receiver<Latest>,
    first: bool,
}

impl Subscription {
    pub fn new(receiver: watch::Receiver<Latest>) -> Self {
        Self {
            receiver,
            first: true,
        }
    }

    /// The group's next result; `None` once the group has stopped.
    pub async fn next(&mut self) -> Option<Arc<Published>> {
        if self.first {
            self.receiver.wait_for(Option::is_some).await.ok()?;
            self.first = false;
        } else {
            self.receiver.changed().await.ok()?;
        }
        self.receiver.borrow_and_update().clone()
    }
}

/// A published response for one subscriber: its data as a placeholder.
pub fn copy(published: &Published) -> Response {
    let response = &published.response;
    let data = match &published.data {
        Some((id, _)) => placeholder(*id),
        None => response.data.clone(),
    };
    let mut copy = Response::new(data);
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

    /// The data a transport writes for `published`.
    fn shown(published: Option<Arc<Published>>) -> Option<serde_json::Value> {
        let published = published?;
        let text = serde_json::to_string(&copy(&published)).ok()?;
        let expanded: serde_json::Value = serde_json::from_str(&expand(text)).ok()?;
        Some(expanded["data"].clone())
    }

    #[tokio::test]
    async fn subscribers_of_one_key_share_a_runner_and_get_its_latest_result() {
        let hub = Arc::new(Hub::default());
        let (first, runner) = hub.join([1; 32], [0; 32]);
        let runner = runner.expect("the first subscriber starts the group");
        runner.publish(answer(1), false, 1);
        let (second, none) = hub.join([1; 32], [0; 32]);
        assert!(none.is_none(), "a second subscriber joins");
        let (_, other) = hub.join([2; 32], [0; 32]);
        assert!(other.is_some(), "another key is another group");
        let mut a = Subscription::new(first);
        let mut b = Subscription::new(second);
        assert_eq!(shown(a.next().await), Some(1.into()));
        assert_eq!(shown(b.next().await), Some(1.into()));
        runner.publish(answer(2), true, 2);
        let last = b.next().await.expect("the ending result");
        assert!(last.ends && last.owner == [0; 32] && last.fingerprint == 2);
        assert_eq!(shown(Some(last)), Some(2.into()));
        drop(b);
        assert!(!runner.unwatched(), "one subscriber left");
        drop(a);
        assert!(runner.unwatched());
        assert_eq!(hub.groups(), 1, "only the other key's group is left");
        let (_, again) = hub.join([1; 32], [0; 32]);
        assert!(again.is_some(), "a new subscriber starts a new group");
    }

    #[test]
    fn a_query_found_personal_groups_by_credentials_from_then_on() {
        let hub = Hub::default();
        let (shared, personal) = ([5; 32], [6; 32]);
        assert_eq!(hub.key(shared, personal), shared);
        hub.personal(shared);
        assert_eq!(hub.key(shared, personal), personal);
        assert_eq!(hub.key([7; 32], personal), [7; 32], "only that query");
        for n in 0..PERSONAL_QUERIES {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(n as u64).to_le_bytes());
            key[31] = 1;
            hub.personal(key);
        }
        assert!(
            hub.personal.lock().expect("lock").len() <= PERSONAL_QUERIES,
            "bounded"
        );
    }

    #[tokio::test]
    async fn data_is_serialized_once_and_expanded_into_each_message() {
        let hub = Arc::new(Hub::default());
        let (receiver, runner) = hub.join([4; 32], [0; 32]);
        let runner = runner.expect("starts");
        let data = Value::from_json(serde_json::json!({
            "name": "a \"quoted\" \u{1} name", "list": [1, 2, {"x": null}] }))
        .expect("value");
        runner.publish(Response::new(data.clone()), false, 0);
        let mut subscription = Subscription::new(receiver);
        let response = copy(&subscription.next().await.expect("a result"));
        assert_ne!(response.data, data, "a placeholder stands in");
        let message = serde_json::json!({ "type": "next", "id": "1", "payload": response });
        let expanded = expand(message.to_string());
        let want = serde_json::json!({ "type": "next", "id": "1",
            "payload": Response::new(data) });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&expanded).expect("JSON"),
            want
        );
        let forged = serde_json::json!({ "data": "\u{0}stackgate-live-0000:0" }).to_string();
        assert_eq!(
            expand(forged.clone()),
            forged,
            "another nonce is not a placeholder"
        );
        let unknown =
            serde_json::json!({ "data": format!("\u{0}stackgate-live-{}:999999999", *NONCE) });
        assert_eq!(
            expand(unknown.to_string()),
            r#"{"data":null}"#,
            "no such payload, and the nonce does not leave"
        );
    }

    #[tokio::test]
    async fn a_closed_group_ends_its_streams() {
        let hub = Arc::new(Hub::default());
        let (receiver, runner) = hub.join([3; 32], [0; 32]);
        let runner = runner.expect("starts");
        runner.publish(answer(1), false, 1);
        let mut subscription = Subscription::new(receiver);
        assert!(subscription.next().await.is_some());
        runner.close();
        assert!(subscription.next().await.is_none());
        assert_eq!(hub.groups(), 0);
    }
}
