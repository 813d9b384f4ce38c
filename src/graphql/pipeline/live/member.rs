//! One subscriber of a live query: it takes the results of the group of its own permissions, and
//! moves to another group when those no longer match.
//!
//! A subscriber joins a group by admitting its query as its own caller (limits, credentials, rate
//! limits). It then *rejoins* — admits again and joins the group its viewer's permissions name
//! now — when:
//! - its connection's periodic re-check (the [`Renewal`]) shows permissions other than the
//!   group's (a changed role, team or grant);
//! - the group stops without an ending result (its runner found the query personal, or itself
//!   admitted with other permissions);
//! - the group's runner lost access, but runs with other credentials than this subscriber's: it
//!   is not this subscriber's end, unless its own admission says so.
//!
//! A rejoin whose admission fails sends that error and ends the stream. A result equal to the
//! last one sent (the new group's latest may be) is not sent again. Rejoins are bounded: after
//! [`REJOINS`] in a row without a result the stream ends with an internal error rather than
//! spin.

use std::sync::Arc;

use async_graphql::Response;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};

use super::super::{Caller, Pipeline, RequestId, errors, refusal};
use super::hub::{self, Key, Published, Subscription};
use crate::auth::{Renewal, Standing};
use crate::error::ApiError;
use crate::security::sockets::SubscriptionSlot;

/// The most rejoins in a row without a result.
const REJOINS: u32 = 8;

/// Where a subscriber is, and what it needs to move.
pub(in crate::graphql::pipeline) struct Member {
    pipeline: Pipeline,
    source: super::Source,
    caller: Caller,
    request_id: String,
    /// The subscriber's credentials, hashed like a group's owner.
    me: Key,
    /// The permissions of the group it is in.
    permissions: [u8; 32],
    subscription: Subscription,
    renewal: Option<Renewal>,
    /// The hash of the last result sent.
    last: Option<u64>,
    /// The result last handed out, whose data its placeholder stands for.
    current: Option<Arc<Published>>,
    rejoins: u32,
    done: bool,
    _slot: SubscriptionSlot,
}

impl Drop for Member {
    fn drop(&mut self) {
        metrics::gauge!("stackgate_live_queries").decrement(1.0);
    }
}

/// What woke a subscriber.
enum Wake {
    Result(Arc<Published>),
    Stopped,
    Renewed,
}

/// A subscriber that has just joined a group.
pub(in crate::graphql::pipeline) struct Joined {
    /// What its query is rebuilt from.
    pub source: super::Source,
    /// Its viewer's permissions, as it was admitted.
    pub permissions: [u8; 32],
    pub caller: Caller,
    pub request_id: String,
    /// The group's results.
    pub subscription: Subscription,
}

impl Member {
    /// Follows `joined` from the group it joined; `renewal` is its connection's re-check, and
    /// `slot` its place among the connection's subscriptions, held for as long as it lives.
    pub(in crate::graphql::pipeline) fn new(
        pipeline: Pipeline,
        joined: Joined,
        renewal: Option<Renewal>,
        slot: SubscriptionSlot,
    ) -> Self {
        metrics::gauge!("stackgate_live_queries").increment(1.0);
        let mut renewal = renewal;
        if let Some(Renewal(standing)) = &mut renewal {
            // The connection's viewer as of now is what the query was just admitted as.
            standing.borrow_and_update();
        }
        Self {
            pipeline,
            source: joined.source,
            me: owner_key(&joined.caller),
            permissions: joined.permissions,
            caller: joined.caller,
            request_id: joined.request_id,
            subscription: joined.subscription,
            renewal,
            last: None,
            current: None,
            rejoins: 0,
            done: false,
            _slot: slot,
        }
    }

    /// The subscriber's results, until one ends the stream.
    pub(in crate::graphql::pipeline) fn results(self) -> BoxStream<'static, Response> {
        stream::unfold(self, |mut member| async move {
            let response = member.next().await?;
            Some((response, member))
        })
        .boxed()
    }

    async fn next(&mut self) -> Option<Response> {
        loop {
            if self.done {
                return None;
            }
            let wake = tokio::select! {
                published = self.subscription.next() => match published {
                    Some(published) => Wake::Result(published),
                    None => Wake::Stopped,
                },
                () = renewed(&mut self.renewal) => Wake::Renewed,
            };
            let rejoin = match wake {
                Wake::Result(published) if published.ends && published.owner != self.me => true,
                Wake::Result(published) => {
                    self.rejoins = 0;
                    self.done = published.ends;
                    if self.last == Some(published.fingerprint) && !published.ends {
                        continue;
                    }
                    self.last = Some(published.fingerprint);
                    let response = hub::copy(&published);
                    // Kept until the next result is asked for: by then the transport has
                    // written this one.
                    self.current = Some(published);
                    return Some(response);
                }
                Wake::Stopped => true,
                Wake::Renewed => self.renewal.as_ref().is_some_and(|Renewal(standing)| {
                    matches!(&*standing.borrow(), Standing::Current(viewer)
                        if viewer.permission_fingerprint() != self.permissions)
                }),
            };
            if rejoin && let Some(refused) = self.rejoin().await {
                self.done = true;
                return Some(refused);
            }
        }
    }

    /// Admits the query again as this subscriber and joins the group that names; the error
    /// response when it is not admitted.
    async fn rejoin(&mut self) -> Option<Response> {
        self.rejoins += 1;
        if self.rejoins > REJOINS {
            tracing::error!(
                request_id = %self.request_id,
                "a live query's subscriber found no group of its permissions"
            );
            return Some(self.refused(ApiError::Internal(anyhow::anyhow!(
                "a live query's subscriber found no group of its permissions"
            ))));
        }
        let mut label = String::from(crate::metrics::UNAUTHENTICATED_LABEL);
        let request = (self.source.request()).data(RequestId(self.request_id.clone()));
        let admitted = match self.pipeline.admit(request, &self.caller, &mut label).await {
            Ok(admitted) => admitted,
            Err(mut response) => {
                errors::classify(&mut response.errors, &self.request_id);
                return Some(response);
            }
        };
        self.permissions = admitted.viewer.permission_fingerprint();
        let receiver = self.pipeline.start_live(
            admitted,
            self.caller.clone(),
            &self.request_id,
            label,
            std::time::Instant::now(),
        );
        self.subscription = Subscription::new(receiver);
        None
    }

    fn refused(&self, err: ApiError) -> Response {
        let mut response = refusal(err);
        errors::classify(&mut response.errors, &self.request_id);
        response
    }
}

/// Resolves when the connection's standing changes; never without a renewal, nor after it ends.
async fn renewed(renewal: &mut Option<Renewal>) {
    let Some(Renewal(standing)) = renewal else {
        return std::future::pending().await;
    };
    if standing.changed().await.is_err() {
        *renewal = None;
        return std::future::pending().await;
    }
    standing.borrow_and_update();
}

/// A caller's credentials, hashed: the key of a personal group's owner.
pub(in crate::graphql::pipeline) fn owner_key(caller: &Caller) -> Key {
    use secrecy::ExposeSecret;
    let authorization = caller
        .authorization
        .as_ref()
        .map(|a| a.expose_secret().as_bytes())
        .unwrap_or_default();
    super::super::cache::key_of([
        authorization,
        caller.x_org.as_deref().unwrap_or_default().as_bytes(),
    ])
}
