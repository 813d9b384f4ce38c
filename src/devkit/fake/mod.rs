//! Fake provider servers: real HTTP on 127.0.0.1 speaking DigitalOcean's, Linode's, Vercel's,
//! GridPane's and Cloudflare's envelopes, pagination, auth and rate-limit headers, scriptable per test.
//!
//! ```ignore
//! let script = Script::new("token").servers(1_050).page_size(200)
//!     .fault(Fault::on_page(Kind::Server, 3, FaultAction::ServerError(503)));
//! let (base_url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script).await?;
//! // a dock whose endpoint is `base_url` and whose key is "token" now syncs from it
//! ```
//!
//! Resources are generated from their index (ids, names, a cycle of the provider's status words,
//! and, where the real API has them, credentials a sync must strip, all containing
//! [`SECRET_MARKER`]). Every address they carry can never leave the machine: IPs in 127.0.0.0/8
//! (IPv6 `::1`), names under `.localhost` or `.invalid`, so whatever probes or follows them
//! stays on loopback. The handle renames, re-statuses, removes and re-counts them, and changes
//! faults, between runs. The server stops when the handle is dropped.

mod actions;
mod shapes;
pub mod targets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::sync::Kind;

/// Every credential the fakes put into payloads contains this; a stored `full_api_data` must not.
pub const SECRET_MARKER: &str = "fake-secret";

/// Which provider a fake imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeKind {
    DigitalOcean,
    Linode,
    Vercel,
    GridPane,
    Cloudflare,
}

impl FakeKind {
    /// The `docks.provider` name of the imitated provider.
    pub fn provider(self) -> &'static str {
        match self {
            FakeKind::DigitalOcean => "digitalocean",
            FakeKind::Linode => "linode",
            FakeKind::Vercel => "vercel",
            FakeKind::GridPane => "gridpane",
            FakeKind::Cloudflare => "cloudflare",
        }
    }

    /// The kinds this provider lists.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            FakeKind::DigitalOcean => &Kind::ALL,
            FakeKind::Linode => &[Kind::Server, Kind::Domain, Kind::Database],
            FakeKind::Vercel => &[Kind::WebService, Kind::Domain],
            FakeKind::GridPane => &[Kind::Server, Kind::WebService, Kind::Domain],
            FakeKind::Cloudflare => &[Kind::Domain],
        }
    }
}

/// What a fault does to a matching request.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// 429 with this `retry-after` (fractional seconds are sent as such).
    TooManyRequests(Duration),
    /// This 5xx status.
    ServerError(u16),
    /// Answers correctly after this delay (client timeouts).
    Slow(Duration),
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 401, as for a wrong token.
    Unauthorized,
    /// 200 with an error envelope (`success: false`, Cloudflare's shape).
    Unsuccessful,
}

/// A fault on some requests: of one kind's listing (or any), on one page (or any), a number of
/// times (or always).
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: Option<Kind>,
    pub page: Option<usize>,
    pub times: Option<usize>,
    pub action: FaultAction,
}

impl Fault {
    /// Always, on page `page` (1-based) of `kind`'s listing.
    pub fn on_page(kind: Kind, page: usize, action: FaultAction) -> Self {
        Self {
            kind: Some(kind),
            page: Some(page),
            times: None,
            action,
        }
    }

    /// Always, on every request.
    pub fn always(action: FaultAction) -> Self {
        Self {
            kind: None,
            page: None,
            times: None,
            action,
        }
    }

    /// Only the first `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Whether a request of `kind`'s listing (`None`: a zone's DNS records, which only faults
    /// of any kind reach) on page `page` meets this fault.
    fn matches(&self, kind: Option<Kind>, page: usize) -> bool {
        self.kind.is_none_or(|k| Some(k) == kind)
            && self.page.is_none_or(|p| p == page)
            && self.times != Some(0)
    }
}

/// How a fake behaves.
#[derive(Clone, Debug)]
pub struct Script {
    /// The only bearer token accepted.
    pub token: String,
    pub counts: HashMap<Kind, usize>,
    /// Serves at most this many items per page, whatever the client asks.
    pub max_page_size: Option<usize>,
    pub faults: Vec<Fault>,
    /// The rate limit advertised in headers (remaining = limit − requests so far).
    pub rate_limit: u32,
    /// Production URLs of the web services, in turn (empty: made-up provider URLs).
    pub web_urls: Vec<String>,
    /// Public IPv4 addresses of the servers, in turn (empty: made-up loopback addresses in
    /// 127.1.0.0/16).
    pub server_ips: Vec<String>,
    /// Host and port of the databases, in turn (empty: made-up provider hosts).
    pub database_endpoints: Vec<(String, u16)>,
    /// DNS records per zone (Cloudflare).
    pub dns_records: usize,
    /// How long an action takes to complete (a reboot's `off` before `active` again).
    pub action_time: Duration,
}

impl Script {
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            counts: HashMap::new(),
            max_page_size: None,
            faults: Vec::new(),
            rate_limit: 5_000,
            web_urls: Vec::new(),
            server_ips: Vec::new(),
            database_endpoints: Vec::new(),
            dns_records: 3,
            action_time: Duration::from_millis(300),
        }
    }

    /// Makes actions take `time` to complete.
    pub fn action_time(mut self, time: Duration) -> Self {
        self.action_time = time;
        self
    }

    /// Gives every zone this many DNS records (Cloudflare).
    pub fn dns_records(mut self, n: usize) -> Self {
        self.dns_records = n;
        self
    }

    /// Points the web services at these URLs (health probes reach them), in turn.
    pub fn web_urls(mut self, urls: Vec<String>) -> Self {
        self.web_urls = urls;
        self
    }

    /// Gives the servers these public IPv4 addresses, in turn.
    pub fn server_ips(mut self, ips: Vec<String>) -> Self {
        self.server_ips = ips;
        self
    }

    /// Gives the databases these hosts and ports, in turn.
    pub fn database_endpoints(mut self, endpoints: Vec<(String, u16)>) -> Self {
        self.database_endpoints = endpoints;
        self
    }

    pub fn count(mut self, kind: Kind, n: usize) -> Self {
        self.counts.insert(kind, n);
        self
    }

    pub fn servers(self, n: usize) -> Self {
        self.count(Kind::Server, n)
    }

    pub fn web_services(self, n: usize) -> Self {
        self.count(Kind::WebService, n)
    }

    pub fn domains(self, n: usize) -> Self {
        self.count(Kind::Domain, n)
    }

    pub fn databases(self, n: usize) -> Self {
        self.count(Kind::Database, n)
    }

    pub fn page_size(mut self, n: usize) -> Self {
        self.max_page_size = Some(n.max(1));
        self
    }

    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }
}

/// One fake resource: what varies between syncs.
#[derive(Clone, Debug)]
pub struct FakeResource {
    pub index: usize,
    pub name: String,
    /// The provider's status word.
    pub status: String,
    /// Where it is reached, when the script chose: a web service's URL, a server's IP address,
    /// a database's host.
    pub address: Option<String>,
    /// A database's port, when the script chose.
    pub port: Option<u16>,
    /// A zone's DNS records (Cloudflare).
    pub dns_records: usize,
    /// The provider's words of the actions performed on it, oldest first.
    pub actions: Vec<String>,
}

struct FakeState {
    kind: FakeKind,
    script: Script,
    resources: HashMap<Kind, Vec<FakeResource>>,
    requests: usize,
    /// The `traceparent` of every request that carried one, in arrival order.
    traceparents: Vec<String>,
    base_url: String,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake; dropping it stops the server.
pub struct FakeProvider {
    state: Shared,
    base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeProvider {
    /// Starts a fake on a free port of 127.0.0.1; returns the base URL to use as a dock's
    /// `endpoint` and the handle.
    pub async fn start(kind: FakeKind, script: Script) -> std::io::Result<(String, FakeProvider)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base_url = match kind {
            FakeKind::Linode => format!("http://{addr}/v4"),
            FakeKind::GridPane => format!("http://{addr}/oauth/api/v1"),
            FakeKind::Cloudflare => format!("http://{addr}/client/v4"),
            _ => format!("http://{addr}"),
        };
        let resources = kind
            .kinds()
            .iter()
            .map(|&k| {
                (
                    k,
                    generate(
                        kind,
                        k,
                        0,
                        script.counts.get(&k).copied().unwrap_or(0),
                        &script,
                    ),
                )
            })
            .collect();
        let state = Arc::new(Mutex::new(FakeState {
            kind,
            script,
            resources,
            requests: 0,
            traceparents: Vec::new(),
            base_url: format!("http://{addr}"),
        }));
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "fake provider stopped");
            }
        });
        let fake = FakeProvider {
            state,
            base_url: base_url.clone(),
            stop: Some(stop),
        };
        Ok((base_url, fake))
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests served so far (every attempt counts).
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// The `traceparent` headers received so far (requests without one are not listed).
    pub fn traceparents(&self) -> Vec<String> {
        self.lock().traceparents.clone()
    }

    /// The current resources of a kind.
    pub fn resources(&self, kind: Kind) -> Vec<FakeResource> {
        self.lock()
            .resources
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    }

    pub fn rename(&self, kind: Kind, position: usize, name: &str) {
        if let Some(r) = self
            .lock()
            .resources
            .get_mut(&kind)
            .and_then(|v| v.get_mut(position))
        {
            r.name = name.to_owned();
        }
    }

    pub fn set_status(&self, kind: Kind, position: usize, word: &str) {
        if let Some(r) = self
            .lock()
            .resources
            .get_mut(&kind)
            .and_then(|v| v.get_mut(position))
        {
            r.status = word.to_owned();
        }
    }

    /// Removes the resource at `position` of the listing (later ones move up).
    pub fn remove(&self, kind: Kind, position: usize) {
        if let Some(v) = self.lock().resources.get_mut(&kind)
            && position < v.len()
        {
            v.remove(position);
        }
    }

    /// Gives the resource at `position` this many DNS records (a Cloudflare zone).
    pub fn set_dns_records(&self, kind: Kind, position: usize, n: usize) {
        if let Some(r) = self
            .lock()
            .resources
            .get_mut(&kind)
            .and_then(|v| v.get_mut(position))
        {
            r.dns_records = n;
        }
    }

    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.lock().script.faults = faults;
    }

    pub fn set_token(&self, token: &str) {
        self.lock().script.token = token.to_owned();
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Resources `from..from + n` of a kind, with the provider's status words, and the script's
/// addresses, in turn.
fn generate(
    fake: FakeKind,
    kind: Kind,
    from: usize,
    n: usize,
    script: &Script,
) -> Vec<FakeResource> {
    let words = shapes::status_words(fake, kind);
    let nth = |list: &[String], i: usize| (!list.is_empty()).then(|| list[i % list.len()].clone());
    (from..from + n)
        .map(|index| {
            let (address, port) = match kind {
                Kind::WebService => (nth(&script.web_urls, index), None),
                Kind::Server => (nth(&script.server_ips, index), None),
                Kind::Database if !script.database_endpoints.is_empty() => {
                    let (host, port) =
                        &script.database_endpoints[index % script.database_endpoints.len()];
                    (Some(host.clone()), Some(*port))
                }
                _ => (None, None),
            };
            FakeResource {
                index,
                name: shapes::default_name(kind, index),
                status: words[index % words.len()].to_owned(),
                address,
                port,
                dns_records: script.dns_records,
                actions: Vec::new(),
            }
        })
        .collect()
}

/// What the handler decided under the lock, carried out after releasing it.
struct Plan {
    delay: Option<Duration>,
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: String,
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (plan, later) = {
        let mut locked = state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parent) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
            locked.traceparents.push(parent.to_owned());
        }
        match method {
            Method::POST => act(&mut locked, &uri, &headers, &body),
            _ => (decide(&mut locked, &uri, &headers), None),
        }
    };
    if let Some(later) = later {
        tokio::spawn(async move {
            tokio::time::sleep(later.after).await;
            let mut locked = state.lock().unwrap_or_else(|p| p.into_inner());
            let resources = locked.resources.get_mut(&later.kind);
            if let Some(r) = resources.and_then(|v| v.iter_mut().find(|r| r.index == later.index)) {
                r.status = later.status.to_owned();
            }
        });
    }
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = (plan.status, plan.body).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in plan.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

fn decide(state: &mut FakeState, uri: &Uri, headers: &HeaderMap) -> Plan {
    state.requests += 1;
    let rate = rate_headers(state);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(state.script.token.as_str()) {
        return plan(
            StatusCode::UNAUTHORIZED,
            rate,
            shapes::unauthorized(state.kind),
        );
    }
    let query = parse_query(uri.query().unwrap_or(""));
    if let Some(zone) = shapes::dns_records_zone(state.kind, uri.path()) {
        return dns_records(state, zone, &query, rate);
    }
    let Some((kind, key)) = shapes::route(state.kind, uri.path()) else {
        return match shapes::is_profile(state.kind, uri.path()) {
            true => plan(StatusCode::OK, rate, "{}".into()),
            false => plan(
                StatusCode::NOT_FOUND,
                rate,
                r#"{"message":"not found"}"#.into(),
            ),
        };
    };
    let page = shapes::Page::from_query(state.kind, &query, state.script.max_page_size);
    let mut out = match take_fault(state, Some(kind), page.number()) {
        Some(FaultAction::Slow(d)) => Plan {
            delay: Some(d),
            ..listing(state, kind, key, &page, rate)
        },
        Some(action) => fault_plan(state.kind, &action, rate),
        None => listing(state, kind, key, &page, rate),
    };
    out.headers
        .push(("x-fake-requests", state.requests.to_string()));
    out
}

/// A `POST`: an action, after the token check and any fault of every request.
fn act(
    state: &mut FakeState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Plan, Option<actions::Later>) {
    state.requests += 1;
    let rate = rate_headers(state);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(state.script.token.as_str()) {
        let refused = plan(
            StatusCode::UNAUTHORIZED,
            rate,
            shapes::unauthorized(state.kind),
        );
        return (refused, None);
    }
    match take_fault(state, None, 0) {
        Some(FaultAction::Slow(d)) => {
            let (answer, later) = actions::perform(state, uri.path(), body, rate);
            let slow = Plan {
                delay: Some(d),
                ..answer
            };
            (slow, later)
        }
        Some(action) => (fault_plan(state.kind, &action, rate), None),
        None => actions::perform(state, uri.path(), body, rate),
    }
}

fn listing(
    state: &FakeState,
    kind: Kind,
    key: &str,
    page: &shapes::Page,
    rate: Vec<(&'static str, String)>,
) -> Plan {
    let all = state
        .resources
        .get(&kind)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let body = shapes::envelope(state.kind, kind, key, all, page, &state.base_url);
    plan(StatusCode::OK, rate, body.to_string())
}

/// One page of a zone's DNS records (Cloudflare), or Cloudflare's 404 for an unknown zone.
fn dns_records(
    state: &mut FakeState,
    zone: &str,
    query: &HashMap<String, String>,
    rate: Vec<(&'static str, String)>,
) -> Plan {
    let page = shapes::Page::numbered(query, 100, 5_000, state.script.max_page_size);
    let found = state.resources.get(&Kind::Domain).and_then(|zones| {
        zones
            .iter()
            .find(|r| shapes::cloudflare_zone_id(r.index) == zone)
    });
    let Some(found) = found.cloned() else {
        return plan(StatusCode::NOT_FOUND, rate, shapes::not_found(state.kind));
    };
    match take_fault(state, None, page.number()) {
        Some(FaultAction::Slow(d)) => Plan {
            delay: Some(d),
            ..plan(
                StatusCode::OK,
                rate,
                shapes::dns_records(&found, &page).to_string(),
            )
        },
        Some(action) => fault_plan(state.kind, &action, rate),
        None => plan(
            StatusCode::OK,
            rate,
            shapes::dns_records(&found, &page).to_string(),
        ),
    }
}

fn take_fault(state: &mut FakeState, kind: Option<Kind>, page: usize) -> Option<FaultAction> {
    let fault = state
        .script
        .faults
        .iter_mut()
        .find(|f| f.matches(kind, page))?;
    if let Some(n) = fault.times.as_mut() {
        *n -= 1;
    }
    Some(fault.action.clone())
}

fn fault_plan(fake: FakeKind, action: &FaultAction, mut rate: Vec<(&'static str, String)>) -> Plan {
    match action {
        FaultAction::TooManyRequests(after) => {
            rate.push(("retry-after", format_seconds(*after)));
            plan(
                StatusCode::TOO_MANY_REQUESTS,
                rate,
                shapes::error_bodies(fake).0.into(),
            )
        }
        FaultAction::ServerError(code) => plan(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            rate,
            shapes::error_bodies(fake).1.into(),
        ),
        FaultAction::MalformedJson => plan(
            StatusCode::OK,
            rate,
            r#"{"droplets": [{"id": 1, "name": "#.into(),
        ),
        FaultAction::Unauthorized => {
            plan(StatusCode::UNAUTHORIZED, rate, shapes::unauthorized(fake))
        }
        FaultAction::Unsuccessful => plan(
            StatusCode::OK,
            rate,
            r#"{"success":false,"errors":[{"code":1000,"message":"failed"}],"messages":[],"result":[]}"#
                .into(),
        ),
        FaultAction::Slow(_) => unreachable!("slow responses are served as listings"),
    }
}

fn plan(status: StatusCode, headers: Vec<(&'static str, String)>, body: String) -> Plan {
    Plan {
        delay: None,
        status,
        headers,
        body,
    }
}

fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

fn rate_headers(state: &FakeState) -> Vec<(&'static str, String)> {
    let limit = state.script.rate_limit as usize;
    let remaining = limit.saturating_sub(state.requests).to_string();
    let reset = (chrono::Utc::now().timestamp() + 60).to_string();
    if state.kind == FakeKind::Cloudflare {
        // Cloudflare's structured fields: quota and seconds until it resets.
        return vec![
            ("ratelimit", format!("\"default\";r={remaining};t=60")),
            ("ratelimit-policy", format!("\"default\";q={limit};w=300")),
        ];
    }
    let names: [&'static str; 3] = match state.kind {
        FakeKind::DigitalOcean => ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
        _ => [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ],
    };
    vec![
        (names[0], limit.to_string()),
        (names[1], remaining),
        (names[2], reset),
    ]
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A fake's resources as their JSON items (benchmarks and tests that compare payloads).
pub fn items(fake: FakeKind, kind: Kind, resources: &[FakeResource]) -> Vec<Value> {
    resources
        .iter()
        .map(|r| shapes::item(fake, kind, r))
        .collect()
}
