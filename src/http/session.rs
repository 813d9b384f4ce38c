//! A long-lived caller's session: what a WebSocket connection or an event stream holds while it
//! lasts. Opening one authenticates the caller (the same way as every operation), takes a place
//! in the caller's connection budget (`crate::security::sockets`), and starts the [`Renewal`]
//! that ends its subscriptions when the caller loses access. The pipeline reads all three from
//! the session data.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppState;
use crate::auth::{Reauthenticate, Renewal, Viewer};
use crate::error::ApiError;
use crate::graphql::mutations::ClientInfo;
use crate::graphql::pipeline::Caller;

/// How often a connection's caller is authenticated again: six viewer-cache periods (30 s by
/// default), at least a second. A check per period per connection is cheap, but not free: at
/// 1,000 connections each cache period it raised the server's CPU per event delivery by about
/// half (bench/events).
fn renewal_period(auth_cache_seconds: u64) -> Duration {
    Duration::from_secs((auth_cache_seconds * 6).max(1))
}

/// Opens a session for `credentials`: `UNAUTHENTICATED`/`FORBIDDEN` when they do not
/// authenticate, `RATE_LIMITED` when the caller holds all the connections it may; otherwise the
/// session data every operation of the connection runs with.
pub async fn open(
    app: &AppState,
    credentials: Credentials,
    client: ClientInfo,
) -> Result<Data, ApiError> {
    let viewer = credentials.viewer(false).await?;
    let budget = app
        .sockets
        .connect(viewer.api_key_id.unwrap_or(viewer.user.id))?;
    let caller = Caller {
        authorization: credentials.authorization.clone(),
        x_org: credentials.x_org.clone(),
        client,
        trace: false,
        read_only: false,
        written: Default::default(),
    };
    let expires = credentials.expiry();
    let every = renewal_period(app.config.auth_cache_seconds);
    let access = Some(app.events.subscribe_access());
    let renewal = Renewal::start(viewer, every, Arc::new(credentials), access, expires);
    let mut session = Data::default();
    session.insert(caller);
    session.insert(renewal);
    session.insert(budget);
    Ok(session)
}

/// What a long-lived caller authenticates with (a WebSocket's `connection_init`, or the headers
/// of an event stream), kept to authenticate again while the connection lasts (see [`Renewal`]).
pub struct Credentials {
    app: AppState,
    authorization: Option<SecretString>,
    x_org: Option<String>,
}

impl Credentials {
    /// The credentials of a WebSocket's `connection_init` payload (at its top level, or under
    /// `headers`).
    pub fn of(app: &AppState, payload: &serde_json::Value) -> Self {
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| {
                    payload
                        .get(*n)
                        .or_else(|| payload.get("headers").and_then(|h| h.get(*n)))
                })
                .and_then(|v| v.as_str())
        };
        Self {
            app: app.clone(),
            authorization: find(&["authorization", "Authorization"])
                .map(|a| SecretString::from(a.to_owned())),
            x_org: find(&["x-org", "X-Org"]).map(str::to_owned),
        }
    }
}

impl Credentials {
    /// The credentials an HTTP caller presented.
    pub fn from_caller(app: &AppState, caller: &Caller) -> Self {
        Self {
            app: app.clone(),
            authorization: caller.authorization.clone(),
            x_org: caller.x_org.clone(),
        }
    }

    /// When a JWT's `exp` says it expires (read from its payload, which was verified when the
    /// connection authenticated); `None` for API keys and tokens without one.
    fn expiry(&self) -> Option<std::time::SystemTime> {
        use base64::Engine;
        let authorization = self.authorization.as_ref()?.expose_secret();
        let token = authorization.trim().split_once(' ')?.1.trim();
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let exp = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["exp"].as_u64()?;
        Some(std::time::UNIX_EPOCH + Duration::from_secs(exp))
    }
}

#[async_trait::async_trait]
impl Reauthenticate for Credentials {
    async fn viewer(&self, fresh: bool) -> Result<Viewer, ApiError> {
        let authorization = self.authorization.as_ref().map(|a| a.expose_secret());
        let pipeline = &self.app.pipeline;
        let x_org = self.x_org.as_deref();
        if fresh {
            pipeline.authenticate_fresh(authorization, x_org).await
        } else {
            pipeline.authenticate(authorization, x_org).await
        }
    }
}
