//! The one operation pipeline: every GraphQL operation, over HTTP or WebSocket, runs through
//! [`Pipeline`] (an async-graphql [`Executor`]), in this order:
//!
//! 1. **limits** — tokens on the text, then aliases, fragment cycles and expanded selections on
//!    the parsed document ([`limits`]); all before any authentication or SQL;
//! 2. **caller** — the credentials the transport carried ([`Caller`]) are authenticated again for
//!    this operation (through the viewer cache, which every replica clears when access changes
//!    commit); failures count against the caller's address;
//! 3. **rate limits** — per principal, and per organization for mutations ([`RateLimits`]);
//! 4. **execution** — the viewer's request transaction and loaders are attached, async-graphql
//!    validates (depth, complexity) and executes; a subscription's every event is resolved like a
//!    request of its own and its transaction ended after it;
//! 5. **finish** — the transaction ends, statements are counted, platform admins audited;
//! 6. **errors** — every error gets its stable code, internals are masked ([`errors`]);
//! 7. **metrics** — one count and latency per operation, under a bounded label
//!    ([`crate::metrics::OperationLabels`]).
//!
//! Nothing is done per field: an async-graphql extension would put every field of every response
//! through its chain, which costs more than all our loaders.

pub mod cache;
pub mod documents;
pub mod errors;
pub mod limits;
pub mod live;

use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Data, Executor, Request, Response, Value};
use axum::http::HeaderValue;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use secrecy::{ExposeSecret, SecretString};

use super::AppSchema;
use super::loaders::LoaderSlot;
use crate::auth::cache::ViewerCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::{Authenticator, Renewal, Viewer};
use crate::db::models::audit::{self, Actor, Entry};
use crate::db::replicas::{Replicas, Watermark};
use crate::db::{Pool, RequestDb, Route};
use crate::error::ApiError;
use crate::events::{EventBus, Reads};
use crate::graphql::QueryLimits;
use crate::graphql::mutations::ClientInfo;
use crate::metrics::OperationLabels;
use crate::security::rate::RateLimits;
use cache::ResponseCache;
use documents::TrustedDocuments;

/// The span of one operation, named by its request id: its transport runs the operation inside
/// it, and the pipeline records the document id (the SHA-256 of its text), the operation's name
/// and type once it is admitted, and its statement count at the end. Loader batches and SQL
/// statements are its children.
pub fn operation_span(request_id: &str) -> tracing::Span {
    tracing::info_span!(
        "graphql",
        otel.kind = "server",
        request_id = %request_id,
        statements = tracing::field::Empty,
        graphql.document.id = tracing::field::Empty,
        graphql.operation.name = tracing::field::Empty,
        graphql.operation.type = tracing::field::Empty,
    )
}

/// What a transport knows of the caller of an operation: the credentials it presented (the HTTP
/// headers, or the WebSocket's `connection_init`), where it came from, and whether it asked for
/// statement counts.
#[derive(Clone, Default)]
pub struct Caller {
    pub authorization: Option<SecretString>,
    pub x_org: Option<String>,
    pub client: ClientInfo,
    /// `X-Stackgate-Trace: statements`: add `extensions.sqlStatements` to the response.
    pub trace: bool,
    /// The transport may only read (HTTP GET): a mutation is refused. HTTP refuses the ones it
    /// can see itself with 405; this catches those named by a persisted-query hash.
    pub read_only: bool,
    /// The newest write position the caller was told of (`X-Stackgate-Lsn` or its cookie over
    /// HTTP; a socket's own mutations over WebSocket): its reads see at least that far.
    pub written: Watermark,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("x_org", &self.x_org)
            .field("client", &self.client)
            .field("written", &self.written.get())
            .finish()
    }
}

/// A request's id, set by the transport (HTTP sends it back as `x-request-id`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The operation pipeline; cheap to clone.
#[derive(Clone)]
pub struct Pipeline(Arc<Inner>);

struct Inner {
    schema: AppSchema,
    pool: Pool,
    jwt: Arc<JwtKeys>,
    viewers: Arc<ViewerCache>,
    limits: QueryLimits,
    rates: Arc<RateLimits>,
    documents: Arc<TrustedDocuments>,
    events: EventBus,
    live_interval: Duration,
    cache: Arc<ResponseCache>,
    /// The live queries running on this replica, shared by identical subscribers.
    live: Arc<live::hub::Hub>,
    labels: OperationLabels,
    /// Unknown token subjects become users (`STACKGATE_AUTO_PROVISION_USERS`).
    provision_users: bool,
    /// Where reads may go besides the primary.
    replicas: Replicas,
}

/// Everything the pipeline is built from.
pub struct Parts {
    pub schema: AppSchema,
    pub pool: Pool,
    pub jwt: Arc<JwtKeys>,
    pub viewers: Arc<ViewerCache>,
    pub limits: QueryLimits,
    pub rates: Arc<RateLimits>,
    pub documents: Arc<TrustedDocuments>,
    /// This replica's events: what live queries re-run on.
    pub events: EventBus,
    /// The shortest time between two runs of one live query.
    pub live_interval: Duration,
    /// The shared response cache of HTTP queries (it follows `events` by itself).
    pub cache: Arc<ResponseCache>,
    /// Unknown token subjects become users (`STACKGATE_AUTO_PROVISION_USERS`).
    pub provision_users: bool,
    /// Read replicas (empty: the primary serves every read).
    pub replicas: Replicas,
}

/// An operation that passed the first steps: its viewer, document kind and metric label.
struct Admitted {
    request: Request,
    viewer: Viewer,
    kind: OperationType,
    name: Option<String>,
    /// The query is `@live` (the directive is already removed from the document).
    live: bool,
    /// The SHA-256 of the document's text.
    document_id: String,
}

impl Pipeline {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(Inner {
            schema: parts.schema,
            pool: parts.pool,
            jwt: parts.jwt,
            viewers: parts.viewers,
            limits: parts.limits,
            rates: parts.rates,
            documents: parts.documents,
            events: parts.events,
            live_interval: parts.live_interval,
            cache: parts.cache,
            live: Arc::default(),
            labels: OperationLabels::default(),
            provision_users: parts.provision_users,
            replicas: parts.replicas,
        }))
    }

    /// This replica's response cache.
    pub fn response_cache(&self) -> &ResponseCache {
        &self.0.cache
    }

    /// The live queries running on this replica.
    pub fn live_queries(&self) -> &live::hub::Hub {
        &self.0.live
    }

    /// The rate limits this pipeline applies (mutations check their own per-dock limits).
    pub fn rates(&self) -> &Arc<RateLimits> {
        &self.0.rates
    }

    /// Authenticates credentials with this server's keys and cache.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        x_org: Option<&str>,
    ) -> Result<Viewer, ApiError> {
        self.authenticate_with(authorization, x_org, false).await
    }

    /// [`Pipeline::authenticate`] from the database, past the viewer cache: for a connection's
    /// re-checks, which may run before this replica's cache has seen the access change.
    pub async fn authenticate_fresh(
        &self,
        authorization: Option<&str>,
        x_org: Option<&str>,
    ) -> Result<Viewer, ApiError> {
        self.authenticate_with(authorization, x_org, true).await
    }

    async fn authenticate_with(
        &self,
        authorization: Option<&str>,
        x_org: Option<&str>,
        fresh: bool,
    ) -> Result<Viewer, ApiError> {
        let auth = Authenticator {
            pool: &self.0.pool,
            keys: &self.0.jwt,
            cache: &self.0.viewers,
            provision_users: self.0.provision_users,
            fresh,
        };
        crate::auth::authenticate(&auth, authorization, x_org).await
    }

    /// Steps 1–3: limits, caller, rate limits. An error response is final.
    async fn admit(
        &self,
        mut request: Request,
        caller: &Caller,
        label: &mut String,
    ) -> Result<Admitted, Response> {
        let authorization = caller.authorization.as_ref().map(|a| a.expose_secret());
        let ip = caller.client.ip();
        // A caller without credentials is counted before its document costs any parsing.
        if authorization.is_none() {
            self.0.rates.unauthenticated(ip).map_err(refusal)?;
        }
        let known = self.0.documents.resolve(&mut request).map_err(refusal)?;
        let span = tracing::Span::current();
        span.record("graphql.document.id", known.id.as_str());
        let limits = &self.0.limits.parse;
        limits::check_text(&request.query, limits).map_err(refusal)?;
        let wanted = request.operation_name.clone();
        let document = request
            .parsed_query()
            .map_err(|e| Response::from_errors(vec![e]))?;
        limits::check_document(document, limits).map_err(refusal)?;
        let (kind, name) = selected(document, wanted.as_deref());
        let kind = kind.ok_or_else(|| {
            refusal(ApiError::BadUserInput(
                "the document has no operation of that name; pass `operationName`".into(),
            ))
        })?;
        span.record("graphql.operation.type", kind.to_string());
        if let Some(name) = &name {
            span.record("graphql.operation.name", name.as_str());
        }
        let live =
            live::mentions(&request.query) && live::strip(&mut request, name.as_deref()).is_some();
        if live && kind != OperationType::Query {
            return Err(refusal(ApiError::BadUserInput(
                "`@live` applies to query operations only".into(),
            )));
        }
        if caller.read_only && kind == OperationType::Mutation {
            return Err(refusal(ApiError::BadUserInput(
                "mutations must be sent with POST".into(),
            )));
        }
        let viewer = match self
            .authenticate(authorization, caller.x_org.as_deref())
            .await
        {
            Ok(viewer) => viewer,
            Err(err) => {
                // Failed credentials count against the address they came from.
                if authorization.is_some() {
                    self.0.rates.unauthenticated(ip).map_err(refusal)?;
                }
                return Err(refusal(err));
            }
        };
        *label = match &known.trusted_name {
            Some(trusted) => self.0.labels.trusted(trusted),
            None => self.0.labels.label(name.as_deref()),
        };
        if viewer.trusted_documents_only {
            self.0.documents.check_limited(&known).map_err(refusal)?;
        }
        self.0.rates.principal(&viewer).map_err(refusal)?;
        if kind == OperationType::Mutation {
            self.0.rates.mutation(&viewer).map_err(refusal)?;
        }
        Ok(Admitted {
            request,
            viewer,
            kind,
            name,
            live,
            document_id: known.id,
        })
    }

    /// Runs one query or mutation to its response.
    async fn run(&self, request: Request, caller: &Caller, session: Option<Arc<Data>>) -> Response {
        let started = Instant::now();
        let request_id = request_id(&request);
        let mut label = String::from(crate::metrics::UNAUTHENTICATED_LABEL);
        let mut response = match self.admit(request, caller, &mut label).await {
            Err(response) => response,
            Ok(admitted) => self.dispatch(admitted, caller, session).await.0,
        };
        self.end(&mut response, &request_id, &label, started);
        response
    }

    /// Runs one HTTP operation: a query's answer may come from the shared response cache, and a
    /// fresh one carries where to keep it (see [`cache`]).
    pub async fn execute_http(&self, request: Request) -> Answer {
        let caller = request_data::<Caller>(&request).unwrap_or_default();
        let started = Instant::now();
        let request_id = request_id(&request);
        let mut label = String::from(crate::metrics::UNAUTHENTICATED_LABEL);
        let admitted = match self.admit(request, &caller, &mut label).await {
            Ok(admitted) => admitted,
            Err(mut response) => {
                self.end(&mut response, &request_id, &label, started);
                return Answer::Fresh {
                    response: Box::new(response),
                    fill: None,
                };
            }
        };
        // A platform admin's every request is audited: never answered from the cache. Nor is
        // a read carrying a write this replica has not yet received the event of: a cached
        // answer is only dropped when that event arrives, so it may predate the write.
        let cacheable = admitted.kind == OperationType::Query
            && !admitted.live
            && !caller.trace
            && !admitted.viewer.as_platform_admin
            && !self.ahead_of_events(&caller);
        let fill = cacheable.then(|| self.fill(&admitted));
        if let Some(hit) = fill.as_ref().and_then(cache::Fill::lookup) {
            self.0.labels.count(&label, "ok", started.elapsed());
            return Answer::Cached(hit);
        }
        let mut admitted = admitted;
        // The answer goes out as one body written by `json::response`.
        admitted
            .request
            .data
            .insert(crate::graphql::serial::JsonText::default());
        let (mut response, reads) = self.dispatch(admitted, &caller, None).await;
        self.end(&mut response, &request_id, &label, started);
        let fill = fill
            .filter(|_| response.errors.is_empty())
            .map(|fill| fill.reading(reads));
        Answer::Fresh {
            response: Box::new(response),
            fill,
        }
    }

    /// Whether the caller carries a write position past the newest event this replica has
    /// received (read-your-writes: `docs/scale-out.md`, "Reads").
    fn ahead_of_events(&self, caller: &Caller) -> bool {
        caller.written.get().is_some_and(|written| {
            self.0
                .events
                .position()
                .get()
                .is_none_or(|seen| seen < written)
        })
    }

    /// Where an admitted query's answer is kept: under its viewer, document and variables.
    /// An answer that read nothing of the viewer's own is shared with every viewer of the same
    /// permissions (see [`Viewer::permission_fingerprint`]).
    fn fill(&self, admitted: &Admitted) -> cache::Fill {
        let viewer = &admitted.viewer;
        let variables = serde_json::to_vec(&admitted.request.variables).unwrap_or_default();
        let key = admitted.viewer.api_key_id.unwrap_or_default();
        let permissions = viewer.permission_fingerprint();
        self.0.cache.fill(
            viewer.organization.id,
            (
                &permissions,
                &[
                    viewer.organization.id.as_bytes(),
                    viewer.user.id.as_bytes(),
                    key.as_bytes(),
                ],
            ),
            &[
                admitted.document_id.as_bytes(),
                admitted.name.as_deref().unwrap_or_default().as_bytes(),
                &variables,
            ],
        )
    }

    /// Steps 4–5 for an admitted operation that answers once.
    async fn dispatch(
        &self,
        admitted: Admitted,
        caller: &Caller,
        session: Option<Arc<Data>>,
    ) -> (Response, Reads) {
        let needs_stream = if admitted.live {
            Some("live queries")
        } else if admitted.kind == OperationType::Subscription {
            Some("subscriptions")
        } else {
            None
        };
        if let Some(what) = needs_stream {
            let message = format!(
                "{what} need a WebSocket (`/graphql/ws`) or an event stream (`Accept: text/event-stream`)"
            );
            return (
                refusal(ApiError::BadUserInput(message)),
                Reads::everything(),
            );
        }
        self.execute_reading(admitted, caller, session).await
    }

    /// Steps 4–5 for a query or mutation, and the topics it read.
    async fn execute_reading(
        &self,
        admitted: Admitted,
        caller: &Caller,
        session: Option<Arc<Data>>,
    ) -> (Response, Reads) {
        let Admitted {
            request,
            viewer,
            name,
            kind,
            ..
        } = admitted;
        let (request, db, loaders) = self.attach(request, &viewer, caller);
        if kind == OperationType::Mutation {
            db.will_write();
        }
        let response = match session {
            Some(session) => {
                let mut stream = self
                    .0
                    .schema
                    .execute_stream_with_session_data(request, session);
                stream.next().await.unwrap_or_default()
            }
            None => self.0.schema.execute(request).await,
        };
        let response = self
            .finish(&db, &viewer, caller, name.as_deref(), response)
            .await;
        (response, loaders.reads())
    }

    /// A subscription (or, over a socket, any operation) as a stream of responses.
    async fn stream(
        self,
        request: Request,
        caller: Caller,
        session: Arc<Data>,
    ) -> BoxStream<'static, Response> {
        let started = Instant::now();
        let request_id = request_id(&request);
        let mut label = String::from(crate::metrics::UNAUTHENTICATED_LABEL);
        let admitted = match self.admit(request, &caller, &mut label).await {
            Ok(admitted) => admitted,
            Err(response) => return self.single(response, &request_id, &label, started),
        };
        if admitted.live {
            return self
                .live(admitted, caller, session, request_id, label, started)
                .await;
        }
        if admitted.kind != OperationType::Subscription {
            let response = self
                .execute_reading(admitted, &caller, Some(session))
                .await
                .0;
            return self.single(response, &request_id, &label, started);
        }
        let slot = match session_slot(&session) {
            Ok(slot) => slot,
            Err(err) => return self.single(refusal(err), &request_id, &label, started),
        };
        self.0.labels.count(&label, "ok", started.elapsed());
        let Admitted {
            request, viewer, ..
        } = admitted;
        let (request, db, loaders) = self.attach(request, &viewer, &caller);
        let session_copy = session.clone();
        let events = self
            .0
            .schema
            .execute_stream_with_session_data(request, session);
        let this = self.clone();
        let revoked_id = request_id.clone();
        let delivered = events.then(move |response| {
            let (this, db, loaders, viewer, caller) = (
                this.clone(),
                db.clone(),
                loaders.clone(),
                viewer.clone(),
                caller.clone(),
            );
            let request_id = request_id.clone();
            let _held = &slot;
            async move {
                let mut response = this.finish(&db, &viewer, &caller, None, response).await;
                loaders.renew();
                errors::classify(&mut response.errors, &request_id);
                response
            }
        });
        until_revoked(delivered, &session_copy, revoked_id)
    }

    /// A live query: the results of the group of its viewer's permissions (see [`live::hub`]),
    /// for as long as the subscriber follows it ([`live::member`]).
    async fn live(
        self,
        admitted: Admitted,
        caller: Caller,
        session: Arc<Data>,
        request_id: String,
        label: String,
        started: Instant,
    ) -> BoxStream<'static, Response> {
        let slot = match session_slot(&session) {
            Ok(slot) => slot,
            Err(err) => return self.single(refusal(err), &request_id, &label, started),
        };
        let source = live::Source::of(&admitted.request);
        let permissions = admitted.viewer.permission_fingerprint();
        let receiver = self.start_live(admitted, caller.clone(), &request_id, label, started);
        let member = live::member::Member::new(
            self.clone(),
            live::member::Joined {
                source,
                permissions,
                caller,
                request_id: request_id.clone(),
                subscription: live::hub::Subscription::new(receiver),
            },
            session_data::<Renewal>(&session),
            slot,
        );
        until_revoked(member.results(), &session, request_id)
    }

    /// Joins the group of an admitted live query, starting its runner when no such query runs
    /// yet; its results.
    fn start_live(
        &self,
        admitted: Admitted,
        caller: Caller,
        request_id: &str,
        label: String,
        started: Instant,
    ) -> tokio::sync::watch::Receiver<live::hub::Latest> {
        let permissions = admitted.viewer.permission_fingerprint();
        let (shared, personal) = live_keys(&admitted, &caller, &permissions);
        let key = self.0.live.key(shared, personal);
        let (receiver, runner) = (self.0.live).join(key, live::member::owner_key(&caller));
        match runner {
            Some(runner) => {
                let run = LiveRun {
                    org: admitted.viewer.organization.id,
                    source: live::Source::of(&admitted.request),
                    caller,
                    request_id: request_id.to_owned(),
                    permissions,
                    shared: (key == shared).then_some(shared),
                };
                let this = self.clone();
                tokio::spawn(async move {
                    this.run_live(runner, run, admitted, label, started).await;
                });
            }
            None => self.0.labels.count(&label, "ok", started.elapsed()),
        }
        receiver
    }

    /// A live query group's runner: the first result, then a new one each time an event touches
    /// what the last run read and the result changed; until no subscriber is left or the caller
    /// lost access.
    async fn run_live(
        self,
        runner: live::hub::Runner,
        run: LiveRun,
        admitted: Admitted,
        label: String,
        started: Instant,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let mut deliveries = self.0.events.subscribe();
        let mut last_run = Instant::now();
        let (mut response, mut reads) = self.execute_reading(admitted, &run.caller, None).await;
        runner.ran(true);
        self.end(&mut response, &run.request_id, &label, started);
        let mut ends = ends_stream(&response);
        if self.found_personal(&run, &reads, ends) {
            return;
        }
        let mut last = live::fingerprint(&response);
        runner.publish(response, ends, last);
        // A run refused for want of capacity is tried again after the interval, keeping the
        // last result rather than sending the refusal.
        let mut retry = false;
        while !ends {
            // An event received before the last run began is in that run's snapshot.
            let covered_until = last_run;
            let touched = retry || {
                let touching = async {
                    loop {
                        match deliveries.recv().await {
                            Ok(crate::events::Delivery::Event(envelope))
                                if envelope.received < covered_until => {}
                            Ok(delivery) if live::concerns(&delivery, run.org, &reads) => {
                                return true;
                            }
                            Ok(_) => {}
                            Err(RecvError::Lagged(_)) => return true,
                            Err(RecvError::Closed) => return false,
                        }
                    }
                };
                tokio::select! {
                    touched = touching => touched,
                    () = runner.abandoned() => false,
                }
            };
            if !touched {
                break;
            }
            let interval = self.0.live_interval;
            tokio::time::sleep(interval.saturating_sub(last_run.elapsed())).await;
            if runner.unwatched() {
                return;
            }
            last_run = Instant::now();
            // Admitted with other permissions than the group's: its subscribers move on.
            let Some((response, read)) = self.rerun(&run).await else {
                return;
            };
            runner.ran(false);
            retry = errors::outcome(&response.errors) == crate::error::code::RATE_LIMITED;
            if retry {
                continue;
            }
            ends = ends_stream(&response);
            if self.found_personal(&run, &read, ends) {
                return;
            }
            reads = read;
            let fingerprint = live::fingerprint(&response);
            if fingerprint != last || ends {
                last = fingerprint;
                runner.publish(response, ends, fingerprint);
            }
        }
        runner.close();
    }

    /// One more run of a live query, through every step as if it were new; `None` when its
    /// caller was admitted with other permissions than the group's.
    async fn rerun(&self, run: &LiveRun) -> Option<(Response, Reads)> {
        let started = Instant::now();
        let mut label = String::from(crate::metrics::UNAUTHENTICATED_LABEL);
        let request = run.source.request().data(RequestId(run.request_id.clone()));
        let (mut response, reads) = match self.admit(request, &run.caller, &mut label).await {
            Err(response) => (response, Reads::everything()),
            Ok(admitted) if admitted.viewer.permission_fingerprint() != run.permissions => {
                return None;
            }
            Ok(admitted) => self.execute_reading(admitted, &run.caller, None).await,
        };
        self.end(&mut response, &run.request_id, &label, started);
        Some((response, reads))
    }

    /// True when a group shared by permissions ran a query that read something of its viewer's
    /// own: the hub remembers the query as personal, and the group must stop unpublished (its
    /// subscribers join groups of their own credentials).
    fn found_personal(&self, run: &LiveRun, reads: &Reads, ends: bool) -> bool {
        match run.shared {
            Some(shared) if !ends && reads.is_personal() => {
                self.0.live.personal(shared);
                true
            }
            _ => false,
        }
    }
}

/// What a live query group re-runs, and for whom.
struct LiveRun {
    org: uuid::Uuid,
    source: live::Source,
    caller: Caller,
    request_id: String,
    /// The permissions of the group's viewers.
    permissions: [u8; 32],
    /// The group's key when it is shared by permissions (not by credentials).
    shared: Option<live::hub::Key>,
}

/// The two keys an admitted live query may group under (see [`live::hub::Hub::key`]): `shared`
/// by its viewer's permissions, `personal` by its credentials too; both with the document,
/// operation, variables and statement tracing.
fn live_keys(
    admitted: &Admitted,
    caller: &Caller,
    permissions: &[u8; 32],
) -> (live::hub::Key, live::hub::Key) {
    let variables = serde_json::to_vec(&admitted.request.variables).unwrap_or_default();
    let query = [
        admitted.document_id.as_bytes(),
        admitted.name.as_deref().unwrap_or_default().as_bytes(),
        &variables,
        if caller.trace { b"trace" } else { b"" },
        permissions,
    ];
    let owner = live::member::owner_key(caller);
    let shared = cache::key_of([b"shared".as_slice()].into_iter().chain(query));
    let personal = cache::key_of([b"personal".as_slice(), &owner].into_iter().chain(query));
    (shared, personal)
}

/// What HTTP gets for an operation.
pub enum Answer {
    /// Just computed; `fill` says where to keep it, for a query that may be cached.
    Fresh {
        response: Box<Response>,
        fill: Option<cache::Fill>,
    },
    /// Served from the shared response cache.
    Cached(Arc<cache::Cached>),
}

/// True for a response that says the caller may no longer run the query at all.
fn ends_stream(response: &Response) -> bool {
    response.data == Value::Null
        && matches!(
            errors::outcome(&response.errors),
            crate::error::code::UNAUTHENTICATED | crate::error::code::FORBIDDEN
        )
}

/// Responses until the caller loses access (their connection's [`Renewal`] revokes them): then
/// that error, and the end at once (not at the next response, which may never come).
fn until_revoked(
    responses: impl futures_util::Stream<Item = Response> + Send + 'static,
    session: &Arc<Data>,
    request_id: String,
) -> BoxStream<'static, Response> {
    let revoked =
        stream::once(revocation(session_data::<Renewal>(session))).map(move |mut response| {
            errors::classify(&mut response.errors, &request_id);
            Item::Revoked(response)
        });
    {
        let delivered = responses.map(Item::Event);
        stream::select(delivered, revoked)
            .flat_map(|item| {
                stream::iter(match item {
                    Item::Event(response) => vec![Some(response)],
                    Item::Revoked(response) => vec![Some(response), None],
                })
            })
            .take_while(|item| std::future::ready(item.is_some()))
            .filter_map(std::future::ready)
            .boxed()
    }
}

impl Pipeline {
    /// Adds the viewer's per-request database handle and loaders to the request.
    fn attach(
        &self,
        request: Request,
        viewer: &Viewer,
        caller: &Caller,
    ) -> (Request, Arc<RequestDb>, Arc<LoaderSlot>) {
        let route = Route {
            replicas: self.0.replicas.clone(),
            caller: caller.written.clone(),
            events: self.0.events.position(),
        };
        let db = Arc::new(
            RequestDb::new(
                self.0.pool.clone(),
                viewer.scope(),
                viewer.visibility().clone(),
            )
            .routed(route),
        );
        let loaders = LoaderSlot::new(db.clone());
        let request = request
            .data(loaders.clone())
            .data(db.clone())
            .data(viewer.clone())
            .data(caller.client.clone());
        (request, db, loaders)
    }

    /// Ends the operation: closes its transaction, records its statements, audits platform admins.
    async fn finish(
        &self,
        db: &RequestDb,
        viewer: &Viewer,
        caller: &Caller,
        operation: Option<&str>,
        response: Response,
    ) -> Response {
        let statements = db.finish().await;
        metrics::histogram!("stackgate_sql_statements_per_request").record(statements as f64);
        tracing::Span::current().record("statements", statements);
        let mut response = response;
        if db.wrote() {
            self.tell_position(caller, &mut response).await;
        }
        if viewer.as_platform_admin {
            audit_platform_admin(&self.0.pool, viewer, &caller.client, operation, &response).await;
        }
        if caller.trace {
            return response.extension("sqlStatements", Value::from(statements));
        }
        response
    }

    /// After a write, with replicas: the primary's WAL position (at or past the write's commit)
    /// goes into the caller's watermark, and into the response as `X-Stackgate-Lsn` and the
    /// `stackgate_lsn` cookie (`docs/scale-out.md`, "Read-your-writes").
    async fn tell_position(&self, caller: &Caller, response: &mut Response) {
        if self.0.replicas.is_empty() {
            return;
        }
        let position = async {
            let mut conn = self.0.pool.get().await.ok()?;
            crate::db::replicas::write_position(&mut conn).await.ok()?
        };
        let Some(position) = position.await else {
            tracing::warn!("could not read the primary's WAL position after a write");
            return;
        };
        caller.written.advance(position);
        let headers = &mut response.http_headers;
        if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
            headers.insert(crate::db::replicas::LSN_HEADER, value);
        }
        let cookie = format!(
            "{}={position}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
            crate::db::replicas::LSN_COOKIE,
            self.0.replicas.remember_for().as_secs()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert(axum::http::header::SET_COOKIE, value);
        }
    }

    /// A stream of one response, ended (steps 6–7) like any other.
    fn single(
        &self,
        mut response: Response,
        request_id: &str,
        label: &str,
        started: Instant,
    ) -> BoxStream<'static, Response> {
        self.end(&mut response, request_id, label, started);
        stream::once(async move { response }).boxed()
    }

    /// Steps 6–7: codes and masking, `retry-after` for rate limits, metrics.
    fn end(&self, response: &mut Response, request_id: &str, label: &str, started: Instant) {
        errors::classify(&mut response.errors, request_id);
        let outcome = errors::outcome(&response.errors);
        if outcome == crate::error::code::RATE_LIMITED
            && let Some(after) = retry_after(response)
            && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response.http_headers.insert("retry-after", value);
        }
        self.0.labels.count(label, outcome, started.elapsed());
    }
}

impl Executor for Pipeline {
    async fn execute(&self, request: Request) -> Response {
        let caller = request_data::<Caller>(&request).unwrap_or_default();
        self.run(request, &caller, None).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let session = session.unwrap_or_default();
        let caller = session_data::<Caller>(&session)
            .or_else(|| request_data::<Caller>(&request))
            .unwrap_or_default();
        let this = self.clone();
        stream::once(async move { this.stream(request, caller, session).await })
            .flatten()
            .boxed()
    }
}

/// A subscription's next response: an event's, or the error that ends it.
enum Item {
    Event(Response),
    Revoked(Response),
}

/// The kind and name of the operation a request selects (the named one, else the only one).
fn selected(
    document: &ExecutableDocument,
    wanted: Option<&str>,
) -> (Option<OperationType>, Option<String>) {
    match (&document.operations, wanted) {
        (DocumentOperations::Single(op), _) => (Some(op.node.ty), wanted.map(str::to_owned)),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            (ops.get(name).map(|op| op.node.ty), Some(name.to_owned()))
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            let (name, op) = ops
                .iter()
                .next()
                .map(|(n, o)| (n.to_string(), o.node.ty))
                .unzip();
            (op, name)
        }
        (DocumentOperations::Multiple(_), None) => (None, None),
    }
}

/// A refusal before execution, as a response.
fn refusal(err: ApiError) -> Response {
    let retry = match &err {
        ApiError::RateLimited(_) => crate::security::rate::retry_after_of(&err),
        _ => None,
    };
    let mut response = Response::from_errors(vec![errors::server_error(err)]);
    if let Some(after) = retry {
        response = response.extension("retryAfterSeconds", Value::from(after.as_secs().max(1)));
    }
    response
}

fn retry_after(response: &Response) -> Option<Duration> {
    match response.extensions.get("retryAfterSeconds") {
        Some(Value::Number(n)) => n.as_u64().map(Duration::from_secs),
        _ => None,
    }
}

fn request_id(request: &Request) -> String {
    request_data::<RequestId>(request)
        .map(|r| r.0)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn request_data<T: Clone + 'static>(request: &Request) -> Option<T> {
    request
        .data
        .get(&TypeId::of::<T>())
        .and_then(|d| d.downcast_ref::<T>())
        .cloned()
}

fn session_data<T: Clone + 'static>(session: &Data) -> Option<T> {
    session
        .get(&TypeId::of::<T>())
        .and_then(|d| d.downcast_ref::<T>())
        .cloned()
}

/// A subscription's place on its socket (released when the subscription ends).
fn session_slot(session: &Data) -> Result<crate::security::sockets::SubscriptionSlot, ApiError> {
    match session_data::<crate::security::sockets::SocketBudget>(session) {
        Some(budget) => budget.subscription(),
        None => Err(ApiError::BadUserInput(
            "subscriptions need a WebSocket (`/graphql/ws`) or an event stream (`Accept: text/event-stream`)".into(),
        )),
    }
}

/// Resolves, with the caller's error, once their connection's [`Renewal`] revokes them; never
/// without one.
async fn revocation(renewal: Option<Renewal>) -> Response {
    let Some(Renewal(mut standing)) = renewal else {
        return std::future::pending().await;
    };
    loop {
        let revoked = standing.borrow_and_update().error();
        if let Some(err) = revoked {
            return refusal(err);
        }
        if standing.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Records an act of a platform admin inside an organization they do not belong to.
async fn audit_platform_admin(
    pool: &Pool,
    viewer: &Viewer,
    client: &ClientInfo,
    operation: Option<&str>,
    response: &Response,
) {
    let actor = Actor {
        org_id: viewer.organization.id,
        user_id: Some(viewer.user.id),
        api_key_id: viewer.api_key_id,
        ip_address: client.ip_address.clone(),
        user_agent: client.user_agent.clone(),
    };
    let entry = Entry {
        action: "platform_admin.request",
        target_type: Some("Organization"),
        target_id: Some(viewer.organization.id),
        result: if response.is_ok() { "success" } else { "error" },
        message: operation,
        metadata: serde_json::json!({}),
    };
    let recorded = viewer
        .scope()
        .transaction(pool, async |conn| audit::record(conn, &actor, &entry).await)
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not audit a platform admin's request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).expect("parses")
    }

    #[test]
    fn the_selected_operation_is_found() {
        let doc = parse("query A { x } mutation B { y }");
        assert_eq!(selected(&doc, Some("B")).0, Some(OperationType::Mutation));
        assert_eq!(selected(&doc, Some("A")).0, Some(OperationType::Query));
        assert_eq!(selected(&doc, Some("C")).0, None);
        assert_eq!(selected(&doc, None).0, None);
        let one = parse("subscription S { x }");
        assert_eq!(
            selected(&one, None),
            (Some(OperationType::Subscription), Some("S".into()))
        );
        assert_eq!(
            selected(&parse("{ x }"), None).0,
            Some(OperationType::Query)
        );
    }
}
