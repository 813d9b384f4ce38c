//! The HTTP client every adapter shares: bearer authentication, timeouts, bounded retries and
//! rate-limit bookkeeping.
//!
//! A 429 is waited out for its `retry-after`, and a 5xx, timeout or broken connection after an
//! exponential back-off, each plus random jitter, as long as the request has attempts left and
//! the session's total wait stays within [`HttpPolicy::retry_budget`]. Past either bound the
//! request fails, carrying the provider's `retry-after` so the dock backs off at least that long.
//! Errors never contain the credential: it only ever travels in a header marked sensitive.
//!
//! Every request passes the outbound guard ([`crate::net::guard`]): the URL is checked before
//! it is sent and names after resolution, no redirect is followed and no proxy is used, so a
//! dock's `endpoint` cannot reach private networks unless the operator allows them
//! (`STACKGATE_ALLOW_PRIVATE_ENDPOINTS`). Against such a caller-chosen endpoint the errors keep
//! only what the gateway itself observed (status codes, timeouts), never the remote end's words.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::Instrument;

use crate::net::guard::{self, Blocked, GuardedResolver};

/// Timeouts and retry bounds (per dock run).
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub request_timeout: Duration,
    /// Tries per request, the first included.
    pub max_attempts: u32,
    /// The most a session may spend waiting between tries, in total.
    pub retry_budget: Duration,
    /// The first back-off after a 5xx or timeout; doubled per attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Up to this much random extra wait on every retry (spreads replicas apart).
    pub jitter: Duration,
    /// A listing longer than this many pages is refused (a provider looping its cursor).
    pub max_pages: u32,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            retry_budget: Duration::from_secs(120),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            jitter: Duration::from_millis(500),
            max_pages: 10_000,
        }
    }
}

impl HttpPolicy {
    /// Builds the client these timeouts describe (one per process is enough): no redirects, no
    /// proxy, names resolved through the outbound guard. Like `reqwest::Client::new`, it panics
    /// only when the TLS backend cannot start, at start-up; falling back to a client without
    /// the guard is not an option.
    pub fn client(&self, allow_private: bool) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::shared(allow_private))
            .user_agent(concat!("stackgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| panic!("cannot build the provider HTTP client: {e}"))
    }

    /// This policy reduced to one try within `deadline` (a key check while a caller waits).
    pub fn single_try(&self, deadline: Duration) -> Self {
        Self {
            connect_timeout: self.connect_timeout.min(deadline),
            request_timeout: self.request_timeout.min(deadline),
            max_attempts: 1,
            retry_budget: Duration::ZERO,
            ..self.clone()
        }
    }
}

/// The provider's rate-limit state after the latest response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<i32>,
    pub remaining: Option<i32>,
    pub reset_at: Option<DateTime<Utc>>,
}

/// Why a request failed, and where (`path` holds the query, never the credential).
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: {kind}")]
pub struct FetchError {
    /// `GET` (listings, checks) or `POST` (actions).
    pub method: &'static str,
    pub path: String,
    pub kind: FetchErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchErrorKind {
    #[error("credentials refused (HTTP {status}){}", suffix(reason))]
    Unauthorized {
        status: u16,
        /// The provider's own words; only from the provider's default URL.
        reason: Option<String>,
    },
    #[error("rate limited (HTTP 429){}", retry_after.map(|d| format!(", retry after {} s", d.as_secs_f64().ceil())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("HTTP {status} after {attempts} attempt(s)")]
    Server { status: u16, attempts: u32 },
    #[error("timed out after {attempts} attempt(s)")]
    Timeout { attempts: u32 },
    #[error("connection failed after {attempts} attempt(s){}", suffix(detail))]
    Network {
        attempts: u32,
        /// What the connection ran into; only for the provider's default URL.
        detail: Option<String>,
    },
    /// The outbound guard refused the address; nothing was sent.
    #[error("not sent: {0}")]
    Refused(Blocked),
    #[error("unexpected HTTP {status}{}", suffix(reason))]
    Status {
        status: u16,
        /// The provider's own words; only from the provider's default URL.
        reason: Option<String>,
    },
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A well-formed answer saying the provider did not do what was asked (its envelope's
    /// success flag), with its reason when it may be quoted.
    #[error("the provider declined{}", suffix(.0))]
    Declined(Option<String>),
    #[error("more than {0} pages")]
    TooManyPages(u32),
    #[error("retry budget exhausted")]
    BudgetExhausted,
}

fn suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

impl FetchError {
    pub fn new(path: impl Into<String>, kind: FetchErrorKind) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            kind,
        }
    }

    /// The error of a `POST` to `path`.
    pub fn post(path: impl Into<String>, kind: FetchErrorKind) -> Self {
        Self {
            method: "POST",
            ..Self::new(path, kind)
        }
    }

    /// The provider's `retry-after`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            FetchErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self.kind, FetchErrorKind::Unauthorized { .. })
    }
}

/// One dock's conversation with its provider: base URL, credential, counters, rate-limit state.
pub struct Session {
    client: reqwest::Client,
    base_url: String,
    auth: HeaderValue,
    policy: HttpPolicy,
    allow_private: bool,
    /// Whether errors may quote the remote end (only the provider's own default URL).
    quote_remote: bool,
    waited: Duration,
    /// Requests sent, retries included.
    pub requests: u32,
    /// Pages received (successful JSON responses).
    pub pages: u32,
    pub rate_limit: RateLimit,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base_url", &self.base_url)
            .field("requests", &self.requests)
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

/// One request: a GET of `path` with `query`, or a POST of `body` to it.
struct Outgoing<'a> {
    path: &'a str,
    query: &'a [(&'a str, String)],
    body: Option<&'a Value>,
}

/// What one attempt came to.
enum Attempt {
    Done(Value),
    Retry {
        wait: Duration,
        error: FetchErrorKind,
    },
    Fail(FetchErrorKind),
}

impl Session {
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        token: &SecretString,
        policy: HttpPolicy,
    ) -> Self {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        auth.set_sensitive(true);
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth,
            policy,
            allow_private: false,
            quote_remote: false,
            waited: Duration::ZERO,
            requests: 0,
            pages: 0,
            rate_limit: RateLimit::default(),
        }
    }

    /// Lets requests reach loopback and private addresses (the operator's choice; the client's
    /// resolver must have been built with the same).
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Lets errors quote the provider's explanation and transport details: only when the base
    /// URL is the provider's own, never a caller-chosen endpoint.
    pub fn quote_remote(mut self, quote: bool) -> Self {
        self.quote_remote = quote;
        self
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Whether errors may quote the provider's own words (see [`Self::quote_remote`]).
    pub fn quotes_remote(&self) -> bool {
        self.quote_remote
    }

    /// Total time spent waiting between tries.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// GETs `path` with `query` and parses the JSON body, retrying within the policy.
    pub async fn get_json(
        &mut self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, FetchError> {
        let shown = show_path(path, query);
        if self.pages >= self.policy.max_pages {
            return Err(FetchError::new(
                shown,
                FetchErrorKind::TooManyPages(self.policy.max_pages),
            ));
        }
        let span = tracing::info_span!(
            "sync.page",
            otel.kind = "client",
            http.request.method = "GET",
            url.path = path,
            sync.page = self.pages + 1,
        );
        let value = self
            .send(&Outgoing {
                path,
                query,
                body: None,
            })
            .instrument(span)
            .await
            .map_err(|kind| FetchError::new(shown, kind))?;
        self.pages += 1;
        Ok(value)
    }

    /// POSTs `body` as JSON to `path` and parses the answer (an empty one is `null`). A POST
    /// asks the provider to do something, so it is sent again only after a 429 (which says it
    /// was not processed), never after a 5xx, a timeout or a broken connection, which may hide
    /// a request the provider carried out.
    pub async fn post_json(&mut self, path: &str, body: &Value) -> Result<Value, FetchError> {
        let outgoing = Outgoing {
            path,
            query: &[],
            body: Some(body),
        };
        let span = tracing::info_span!(
            "provider.call",
            otel.kind = "client",
            http.request.method = "POST",
            url.path = path,
        );
        self.send(&outgoing)
            .instrument(span)
            .await
            .map_err(|kind| FetchError::post(path, kind))
    }

    /// Sends `req`, retrying within the policy (a POST only after a 429).
    async fn send(&mut self, req: &Outgoing<'_>) -> Result<Value, FetchErrorKind> {
        for attempt in 1..=self.policy.max_attempts.max(1) {
            self.wait_for_rate_limit().await?;
            match self.attempt(req, attempt).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(kind) => return Err(kind),
                Attempt::Retry { wait, error } => {
                    let resend =
                        req.body.is_none() || matches!(error, FetchErrorKind::RateLimited { .. });
                    if !resend || attempt == self.policy.max_attempts || !self.sleep(wait).await {
                        return Err(error);
                    }
                }
            }
        }
        Err(FetchErrorKind::BudgetExhausted)
    }

    /// The URL of `path`, once it passed the guard (checked before anything is sent).
    fn target(&self, path: &str) -> Result<reqwest::Url, FetchErrorKind> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.base_url))
            .map_err(|_| FetchErrorKind::Refused(Blocked::Scheme))?;
        guard::check_url(&url, self.allow_private).map_err(FetchErrorKind::Refused)?;
        if url.fragment().is_some() || url.query().is_some() {
            // A base URL with `#` or `?` would swallow the path the request is meant for.
            return Err(FetchErrorKind::Malformed(
                "the endpoint has a query or fragment".into(),
            ));
        }
        Ok(url)
    }

    async fn attempt(&mut self, req: &Outgoing<'_>, attempt: u32) -> Attempt {
        let url = match self.target(req.path) {
            Ok(url) => url,
            Err(refused) => return Attempt::Fail(refused),
        };
        self.requests += 1;
        let request = match req.body {
            Some(body) => self.client.post(url).json(body),
            None => self.client.get(url).query(req.query),
        };
        // The provider sees our trace: `traceparent` of this page's or call's span.
        let mut trace = HeaderMap::new();
        crate::telemetry::propagation::inject(&mut trace);
        let sent = request
            .headers(trace)
            .timeout(self.policy.request_timeout)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return self.transport_failure(&e, attempt),
        };
        self.note_rate_limit(response.headers());
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return self.transport_failure(&e, attempt),
        };
        match status {
            200..=299 if body.is_empty() && req.body.is_some() => Attempt::Done(Value::Null),
            200..=299 => match serde_json::from_slice(&body) {
                Ok(value) => Attempt::Done(value),
                Err(e) => Attempt::Fail(FetchErrorKind::Malformed(format!(
                    "not JSON ({} bytes): {e}",
                    body.len()
                ))),
            },
            429 => self.rate_limited(retry_after),
            401 | 403 => Attempt::Fail(FetchErrorKind::Unauthorized {
                status,
                reason: self.quote_remote.then(|| provider_reason(&body)),
            }),
            500..=599 => Attempt::Retry {
                wait: self.backoff(attempt),
                error: FetchErrorKind::Server {
                    status,
                    attempts: attempt,
                },
            },
            _ => Attempt::Fail(FetchErrorKind::Status {
                status,
                reason: self.quote_remote.then(|| provider_reason(&body)),
            }),
        }
    }

    fn transport_failure(&self, e: &reqwest::Error, attempt: u32) -> Attempt {
        // A name that does not resolve may resolve later (retried); a refused address will not.
        if let Some(blocked) = guard::blocked_by(e)
            && !matches!(blocked, Blocked::Unresolvable { .. })
        {
            return Attempt::Fail(FetchErrorKind::Refused(blocked.clone()));
        }
        let error = if e.is_timeout() {
            FetchErrorKind::Timeout { attempts: attempt }
        } else {
            FetchErrorKind::Network {
                attempts: attempt,
                detail: self.quote_remote.then(|| transport_detail(e)),
            }
        };
        Attempt::Retry {
            wait: self.backoff(attempt),
            error,
        }
    }

    fn rate_limited(&self, retry_after: Option<Duration>) -> Attempt {
        let wait = retry_after
            .or_else(|| self.until_reset())
            .unwrap_or(self.policy.backoff_base);
        let error = FetchErrorKind::RateLimited {
            retry_after: Some(wait),
        };
        if self.waited + wait > self.policy.retry_budget {
            return Attempt::Fail(error);
        }
        Attempt::Retry { wait, error }
    }

    /// Exponential back-off for the `attempt`-th failure.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.policy
            .backoff_base
            .saturating_mul(factor)
            .min(self.policy.backoff_max)
    }

    /// Sleeps `wait` plus jitter if the budget allows; false when it does not.
    async fn sleep(&mut self, wait: Duration) -> bool {
        let jitter_ms = u64::try_from(self.policy.jitter.as_millis()).unwrap_or(0);
        let jitter = Duration::from_millis(rand::rng().random_range(0..=jitter_ms));
        let total = wait + jitter;
        if self.waited + wait > self.policy.retry_budget {
            return false;
        }
        tracing::debug!(wait_ms = total.as_millis() as u64, "provider retry");
        tokio::time::sleep(total).await;
        self.waited += total;
        true
    }

    /// When the provider said no requests remain until a reset, waits for it (within budget).
    async fn wait_for_rate_limit(&mut self) -> Result<(), FetchErrorKind> {
        if self.rate_limit.remaining != Some(0) {
            return Ok(());
        }
        let Some(wait) = self.until_reset() else {
            return Ok(());
        };
        if !self.sleep(wait).await {
            return Err(FetchErrorKind::RateLimited {
                retry_after: Some(wait),
            });
        }
        self.rate_limit.remaining = None;
        Ok(())
    }

    fn until_reset(&self) -> Option<Duration> {
        let reset = self.rate_limit.reset_at?;
        (reset - Utc::now()).to_std().ok()
    }

    /// Reads `ratelimit-*` (DigitalOcean) or `x-ratelimit-*` (Linode, Vercel).
    fn note_rate_limit(&mut self, headers: &HeaderMap) {
        let get = |name: &str| {
            header_str(headers, &format!("ratelimit-{name}"))
                .or_else(|| header_str(headers, &format!("x-ratelimit-{name}")))
        };
        let int = |name: &str| get(name).and_then(|v| v.trim().parse::<i64>().ok());
        if let Some(limit) = int("limit") {
            self.rate_limit.limit = i32::try_from(limit).ok();
        }
        if let Some(remaining) = int("remaining") {
            self.rate_limit.remaining = i32::try_from(remaining).ok();
        }
        if let Some(reset) = int("reset") {
            self.rate_limit.reset_at = DateTime::from_timestamp(reset, 0);
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `retry-after` as seconds or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header_str(headers, "retry-after")?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The provider's own explanation of a refusal, from the shapes providers use, shortened.
fn provider_reason(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let reason = [
        "/message",
        "/error/message",
        "/errors/0/reason",
        "/errors/0/message",
        "/error",
    ]
    .iter()
    .find_map(|p| value.pointer(p).and_then(Value::as_str))
    .unwrap_or("no reason given");
    reason.chars().take(200).collect()
}

fn transport_detail(e: &reqwest::Error) -> String {
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        "request failed".to_owned()
    } else {
        detail.chars().take(200).collect()
    }
}

fn show_path(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn reasons_come_from_known_fields_only() {
        assert_eq!(
            provider_reason(br#"{"id":"unauthorized","message":"Unable to authenticate you"}"#),
            "Unable to authenticate you"
        );
        assert_eq!(
            provider_reason(br#"{"errors":[{"reason":"Invalid Token"}]}"#),
            "Invalid Token"
        );
        assert_eq!(
            provider_reason(
                br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#
            ),
            "Authentication error"
        );
        assert_eq!(provider_reason(b"<html>"), "no reason given");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = HttpPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(300),
            ..HttpPolicy::default()
        };
        let s = Session::new(
            reqwest::Client::new(),
            "http://x",
            &SecretString::from("t"),
            policy,
        );
        let waits: Vec<u128> = (1..=4).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 300, 300]);
    }
}
