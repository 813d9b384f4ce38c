//! Probes: what a resource row says to check, and checking it, always within a timeout.
//!
//! - web services: HTTP GET of `production_url` (no redirects followed, no proxy): below 400 and
//!   under the latency threshold is healthy; slower, or a 4xx, degraded; 5xx, an error or a
//!   timeout unhealthy. DigitalOcean apps add what the provider reports (`full_api_data`), and the
//!   worse of the two wins.
//! - domains: DNS resolution of `domain_name` and `expires_at`: expired or unresolvable is
//!   unhealthy, expiring within 14 days degraded.
//! - servers and databases: a TCP connect to the address and port (servers: the configured port;
//!   databases: their `port`, else their engine's usual one); a slow connect is degraded.
//!
//! A probe only ever contacts the address the row names. Messages never carry URL credentials.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::address;
use super::hysteresis::State;
use crate::net::guard::{self, Blocked};

/// Probe settings.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// The longest any probe may take.
    pub timeout: Duration,
    /// Slower than this is degraded.
    pub slow: Duration,
    /// The TCP port probed on servers.
    pub server_port: u16,
    /// A domain expiring within this is degraded.
    pub expiry_warning: Duration,
    /// Whether probes may reach loopback, private and link-local addresses (see
    /// [`super::address`]); off unless the deployment says so.
    pub allow_private: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            slow: Duration::from_secs(2),
            server_port: 22,
            expiry_warning: Duration::from_secs(14 * 24 * 3600),
            allow_private: false,
        }
    }
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub state: State,
    pub latency_ms: Option<i32>,
    pub message: String,
}

impl Observation {
    fn new(state: State, latency: Option<Duration>, message: impl Into<String>) -> Self {
        let latency_ms = latency.map(|l| i32::try_from(l.as_millis()).unwrap_or(i32::MAX));
        Self {
            state,
            latency_ms,
            message: message.into(),
        }
    }
}

/// What to check for one resource, taken from its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Http {
        url: String,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Dns {
        name: String,
        expires_at: Option<DateTime<Utc>>,
    },
    /// The row names nothing to probe.
    Nothing {
        reason: String,
    },
}

/// A target and, when the provider reports one, its own verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub target: Target,
    pub provider: Option<(State, String)>,
}

/// Runs probes; cheap to clone (one shared HTTP client).
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
    config: ProbeConfig,
}

impl Prober {
    pub fn new(config: ProbeConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(address::GuardedResolver::shared(config.allow_private))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("stackgate-health/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, config })
    }

    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Probes a plan; never takes much longer than the timeout, whatever the target does.
    pub async fn probe(&self, plan: &Plan) -> Observation {
        let limit = self.config.timeout + Duration::from_millis(500);
        let observed = match tokio::time::timeout(limit, self.probe_target(&plan.target)).await {
            Ok(observed) => observed,
            Err(_) => Observation::new(State::Unhealthy, None, self.timed_out()),
        };
        combine(observed, plan.provider.as_ref())
    }

    async fn probe_target(&self, target: &Target) -> Observation {
        match target {
            Target::Http { url } => self.http(url).await,
            Target::Tcp { host, port } => self.tcp(host, *port).await,
            Target::Dns { name, expires_at } => self.dns(name, *expires_at).await,
            Target::Nothing { reason } => Observation::new(State::Unknown, None, reason.clone()),
        }
    }

    fn timed_out(&self) -> String {
        format!("timed out after {}", show(self.config.timeout))
    }

    async fn http(&self, url: &str) -> Observation {
        // Names are checked by the client's resolver; addresses written as such, here.
        let literal = reqwest::Url::parse(url).ok().and_then(|u| {
            let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
            host.parse::<IpAddr>().ok()
        });
        if let Some(ip) = literal
            && !self.config.allow_private
            && !address::is_public(ip)
        {
            return Observation::new(State::Unknown, None, address::refused(ip));
        }
        let started = Instant::now();
        let response = match self.client.get(url).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Observation::new(State::Unhealthy, None, self.timed_out());
            }
            Err(e) => {
                if let Some(blocked @ Blocked::NotPublic(_)) = guard::blocked_by(&e) {
                    return Observation::new(State::Unknown, None, address::describe(blocked));
                }
                return Observation::new(State::Unhealthy, None, describe_http_error(e));
            }
        };
        let latency = started.elapsed();
        let status = response.status();
        drain(response).await;
        let code = status.as_u16();
        let (state, verdict) = match code {
            500.. => (State::Unhealthy, String::new()),
            400..=499 => (State::Degraded, String::new()),
            _ if latency > self.config.slow => (
                State::Degraded,
                format!(", slower than {}", show(self.config.slow)),
            ),
            _ => (State::Healthy, String::new()),
        };
        let message = format!("HTTP {code} in {} ms{verdict}", latency.as_millis());
        Observation::new(state, Some(latency), message)
    }

    async fn tcp(&self, host: &str, port: u16) -> Observation {
        let started = Instant::now();
        let allow_private = self.config.allow_private;
        let connect = async {
            match address::resolve(host, port, allow_private).await {
                Ok(addrs) => tokio::net::TcpStream::connect(&addrs[..]).await,
                Err(why) => Err(std::io::Error::other(why)),
            }
        };
        match tokio::time::timeout(self.config.timeout, connect).await {
            Ok(Err(e)) if e.to_string().contains(address::NOT_PROBED) => {
                Observation::new(State::Unknown, None, e.to_string())
            }
            Err(_) => Observation::new(State::Unhealthy, None, self.timed_out()),
            Ok(Err(e)) => Observation::new(
                State::Unhealthy,
                None,
                format!("TCP connect to port {port} failed: {e}"),
            ),
            Ok(Ok(_stream)) => {
                let latency = started.elapsed();
                let ms = latency.as_millis();
                if latency > self.config.slow {
                    let slow = show(self.config.slow);
                    let message = format!("TCP port {port} open in {ms} ms, slower than {slow}");
                    Observation::new(State::Degraded, Some(latency), message)
                } else {
                    let message = format!("TCP port {port} open in {ms} ms");
                    Observation::new(State::Healthy, Some(latency), message)
                }
            }
        }
    }

    async fn dns(&self, name: &str, expires_at: Option<DateTime<Utc>>) -> Observation {
        let now = Utc::now();
        if let Some(expired) = expires_at.filter(|at| *at <= now) {
            let message = format!("expired on {}", expired.format("%Y-%m-%d"));
            return Observation::new(State::Unhealthy, None, message);
        }
        let started = Instant::now();
        let lookup = tokio::net::lookup_host((name, 0));
        let addresses = match tokio::time::timeout(self.config.timeout, lookup).await {
            Err(_) => return Observation::new(State::Unhealthy, None, self.timed_out()),
            Ok(Err(e)) => {
                return Observation::new(State::Unhealthy, None, format!("does not resolve: {e}"));
            }
            Ok(Ok(addresses)) => addresses.count(),
        };
        let latency = started.elapsed();
        let warning = chrono::Duration::from_std(self.config.expiry_warning).unwrap_or_default();
        match expires_at.filter(|at| *at <= now + warning) {
            Some(at) => {
                let days = (at - now).num_days();
                let when = at.format("%Y-%m-%d");
                let message = format!("resolves, but expires on {when} (in {days} days)");
                Observation::new(State::Degraded, Some(latency), message)
            }
            None => {
                let message = format!("resolves to {addresses} address(es)");
                Observation::new(State::Healthy, Some(latency), message)
            }
        }
    }
}

/// Reads (at most 64 KiB of) the body so the connection can be reused, within the client's
/// timeout.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > 64 * 1024 {
            break;
        }
    }
}

/// The innermost cause of an HTTP failure, without the URL (it may carry credentials).
fn describe_http_error(e: reqwest::Error) -> String {
    use std::error::Error;
    let what = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut root = None;
    let mut cause = e.source();
    while let Some(c) = cause {
        root = Some(c.to_string());
        cause = c.source();
    }
    match root {
        Some(root) => format!("{what}: {root}"),
        None => format!("{what}: {}", e.without_url()),
    }
}

/// The worse of the probe and the provider's verdict.
fn combine(observed: Observation, provider: Option<&(State, String)>) -> Observation {
    let Some((reported, said)) = provider else {
        return observed;
    };
    if observed.state == State::Unknown {
        return Observation {
            state: *reported,
            latency_ms: None,
            message: said.clone(),
        };
    }
    let state = observed.state.worst(*reported);
    if state == observed.state {
        return observed;
    }
    Observation {
        state,
        message: format!("{said}; {}", observed.message),
        latency_ms: observed.latency_ms,
    }
}

/// `1.5 s`, `250 ms`.
fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// The columns of a resource row that say what to probe.
#[derive(Clone, Debug, Default)]
pub struct RowTarget<'a> {
    pub kind: &'a str,
    pub provider: &'a str,
    /// `production_url`, the server's IP, `domain_name`, or the database's host.
    pub address: Option<&'a str>,
    pub port: Option<i32>,
    pub engine: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The provider's data the verdict is read from (DigitalOcean apps).
    pub provider_data: Option<&'a Value>,
}

/// What to probe for a row, from what it says and nothing else.
pub fn plan(row: &RowTarget<'_>, config: &ProbeConfig) -> Plan {
    let address = row.address.map(str::trim).filter(|a| !a.is_empty());
    let target = match (row.kind, address) {
        (_, None) => nothing(match row.kind {
            "web_service" => "no production URL to probe",
            "server" => "no IP address to probe",
            "database" => "no host to probe",
            _ => "no domain name to probe",
        }),
        ("web_service", Some(url)) => http_target(url),
        ("domain", Some(name)) => dns_target(name, row.expires_at),
        ("server", Some(host)) => Target::Tcp {
            host: host.to_owned(),
            port: config.server_port,
        },
        (_, Some(host)) => match database_port(row.port, row.engine) {
            Some(port) => Target::Tcp {
                host: host.to_owned(),
                port,
            },
            None => nothing("no port to probe (none recorded, unknown engine)"),
        },
    };
    let provider = match (row.kind, row.provider, row.provider_data) {
        ("web_service", "digitalocean", Some(data)) => digitalocean_app(data),
        _ => None,
    };
    Plan { target, provider }
}

fn nothing(reason: &str) -> Target {
    Target::Nothing {
        reason: reason.to_owned(),
    }
}

fn http_target(url: &str) -> Target {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    };
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Target::Http { url }
        }
        _ => nothing("the production URL is not an http(s) URL"),
    }
}

fn dns_target(name: &str, expires_at: Option<DateTime<Utc>>) -> Target {
    let name = name.trim_end_matches('.');
    let valid = (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return nothing("the domain name is not a valid host name");
    }
    Target::Dns {
        name: name.to_owned(),
        expires_at,
    }
}

/// The recorded port, else the engine's usual one.
fn database_port(port: Option<i32>, engine: Option<&str>) -> Option<u16> {
    if let Some(port) = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
        return Some(port);
    }
    match engine?.to_ascii_lowercase().as_str() {
        "pg" | "postgres" | "postgresql" => Some(5432),
        "mysql" | "mariadb" => Some(3306),
        "redis" | "valkey" => Some(6379),
        "mongodb" | "mongo" => Some(27017),
        "kafka" => Some(9092),
        _ => None,
    }
}

/// DigitalOcean's verdict on an app: its components' health when the data has it
/// (`app_health.components[].state`), else its active deployment's phase.
pub fn digitalocean_app(data: &Value) -> Option<(State, String)> {
    let components = data
        .pointer("/app_health/components")
        .or_else(|| data.pointer("/health/components"))
        .and_then(Value::as_array);
    if let Some(components) = components.filter(|c| !c.is_empty()) {
        let unhealthy: Vec<&str> = components
            .iter()
            .filter(|c| c["state"].as_str() == Some("UNHEALTHY"))
            .map(|c| c["name"].as_str().unwrap_or("?"))
            .collect();
        if !unhealthy.is_empty() {
            let names = unhealthy.join(", ");
            return Some((
                State::Unhealthy,
                format!("DigitalOcean reports unhealthy components: {names}"),
            ));
        }
        if components
            .iter()
            .all(|c| c["state"].as_str() == Some("HEALTHY"))
        {
            return Some((
                State::Healthy,
                "DigitalOcean reports every component healthy".into(),
            ));
        }
        return None;
    }
    match data.pointer("/active_deployment/phase")?.as_str()? {
        "ERROR" => Some((
            State::Unhealthy,
            "DigitalOcean reports the active deployment failed".into(),
        )),
        "ACTIVE" => Some((
            State::Healthy,
            "DigitalOcean reports the active deployment live".into(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row<'a>(kind: &'a str, address: Option<&'a str>) -> RowTarget<'a> {
        RowTarget {
            kind,
            provider: "linode",
            address,
            ..RowTarget::default()
        }
    }

    #[test]
    fn plans_follow_the_row() {
        let config = ProbeConfig::default();
        assert_eq!(
            plan(&row("web_service", Some("app.example.com")), &config).target,
            Target::Http {
                url: "https://app.example.com".into()
            }
        );
        assert_eq!(
            plan(&row("server", Some("10.0.0.1")), &config).target,
            Target::Tcp {
                host: "10.0.0.1".into(),
                port: 22
            }
        );
        let db = RowTarget {
            engine: Some("pg"),
            ..row("database", Some("db.internal"))
        };
        assert_eq!(
            plan(&db, &config).target,
            Target::Tcp {
                host: "db.internal".into(),
                port: 5432
            }
        );
        assert!(matches!(
            plan(&row("web_service", Some("ftp://x")), &config).target,
            Target::Nothing { .. }
        ));
        assert!(matches!(
            plan(&row("domain", Some("bad name;rm")), &config).target,
            Target::Nothing { .. }
        ));
        assert!(matches!(
            plan(&row("server", None), &config).target,
            Target::Nothing { .. }
        ));
    }

    #[test]
    fn digitalocean_reports_count() {
        let failed = json!({"active_deployment": {"phase": "ERROR"}});
        assert_eq!(
            digitalocean_app(&failed).map(|v| v.0),
            Some(State::Unhealthy)
        );
        let live = json!({"active_deployment": {"phase": "ACTIVE"}});
        assert_eq!(digitalocean_app(&live).map(|v| v.0), Some(State::Healthy));
        let sick = json!({"app_health": {"components": [
            {"name": "web", "state": "HEALTHY"}, {"name": "worker", "state": "UNHEALTHY"}]},
            "active_deployment": {"phase": "ACTIVE"}});
        let (state, said) = digitalocean_app(&sick).expect("verdict");
        assert_eq!(state, State::Unhealthy);
        assert!(said.contains("worker"), "{said}");
        assert_eq!(digitalocean_app(&json!({})), None);
    }

    #[test]
    fn the_provider_can_only_make_it_worse() {
        let ok = Observation::new(State::Healthy, None, "HTTP 200");
        let bad = (State::Unhealthy, "provider says no".to_owned());
        let good = (State::Healthy, "provider says yes".to_owned());
        let combined = combine(ok.clone(), Some(&bad));
        assert_eq!(combined.state, State::Unhealthy);
        assert!(combined.message.starts_with("provider says no"));
        assert_eq!(combine(ok.clone(), Some(&good)), ok);
        let unknown = Observation::new(State::Unknown, None, "no URL");
        assert_eq!(combine(unknown, Some(&good)).state, State::Healthy);
    }
}
