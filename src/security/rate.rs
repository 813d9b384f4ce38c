//! Rate limits (GCRA, by the `governor` crate), each keyed and each configurable:
//!
//! | limit | key | applies to |
//! |---|---|---|
//! | `per_principal` | user, or API key | every authenticated operation |
//! | `per_ip` | peer address | operations without credentials, and failed authentications |
//! | `mutations_per_org` | organization | mutations |
//! | `dock_ops_per_org` | organization | `createDock`, `syncDock`, `updateDockCredentials` |
//! | `syncs_per_dock` | dock | `syncDock` |
//!
//! Over a limit the operation is refused with `RATE_LIMITED` and a `retry-after` (the HTTP header,
//! and `extensions.retryAfterSeconds`). Keys are forgotten once their bucket is full again (a
//! sweep every minute), so the key stores cannot grow with traffic beyond one minute's distinct
//! callers, and are emptied outright past [`MAX_KEYS`].

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::auth::Viewer;
use crate::error::ApiError;

/// The most keys a limiter keeps between sweeps before it forgets them all.
pub const MAX_KEYS: usize = 100_000;

/// A rate: `count` per `period`, bursting to `count`. Written `100/s`, `600/m`, `20/h`, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    pub const fn per_second(count: u32) -> Self {
        Self {
            count,
            period: Duration::from_secs(1),
        }
    }

    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            period: Duration::from_secs(60),
        }
    }

    fn quota(&self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.count)?;
        Quota::with_period(self.period / self.count).map(|q| q.allow_burst(burst))
    }
}

/// Parses `<count>/<s|m|h>` or `off` (no limit).
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") || text == "0" {
        return Ok(None);
    }
    let bad = || format!("`{text}` is not a rate: write `<count>/s`, `/m` or `/h`, or `off`");
    let (count, unit) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let period = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    if count == 0 {
        return Ok(None);
    }
    Ok(Some(Rate { count, period }))
}

/// The configured rates; `None` is no limit.
#[derive(Clone, Copy, Debug)]
pub struct RateSettings {
    pub per_principal: Option<Rate>,
    pub per_ip: Option<Rate>,
    pub mutations_per_org: Option<Rate>,
    pub dock_ops_per_org: Option<Rate>,
    pub syncs_per_dock: Option<Rate>,
}

impl RateSettings {
    /// No limits at all (tests and benchmarks that measure something else).
    pub const fn off() -> Self {
        Self {
            per_principal: None,
            per_ip: None,
            mutations_per_org: None,
            dock_ops_per_org: None,
            syncs_per_dock: None,
        }
    }
}

impl Default for RateSettings {
    /// The defaults: generous for a dashboard (hundreds of requests a second per user), tight
    /// where a request costs the provider or the database real work.
    fn default() -> Self {
        Self {
            per_principal: Some(Rate::per_second(200)),
            per_ip: Some(Rate::per_second(20)),
            mutations_per_org: Some(Rate::per_second(50)),
            dock_ops_per_org: Some(Rate::per_minute(30)),
            syncs_per_dock: Some(Rate::per_minute(6)),
        }
    }
}

/// One keyed limiter, absent when its rate is off.
struct Limiter<K: Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(rate: Option<Rate>) -> Self {
        Self(
            rate.and_then(|r| r.quota())
                .map(DefaultKeyedRateLimiter::keyed),
        )
    }

    fn check(&self, key: &K, what: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            limited(what, wait)
        })
    }

    fn sweep(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            if limiter.len() > MAX_KEYS {
                limiter.retain_recent();
            }
            limiter.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |l| l.len())
    }
}

/// Every rate limiter of this replica.
pub struct RateLimits {
    per_principal: Limiter<Uuid>,
    per_ip: Limiter<IpAddr>,
    mutations_per_org: Limiter<Uuid>,
    dock_ops_per_org: Limiter<Uuid>,
    syncs_per_dock: Limiter<Uuid>,
}

impl RateLimits {
    pub fn new(settings: &RateSettings) -> Self {
        Self {
            per_principal: Limiter::new(settings.per_principal),
            per_ip: Limiter::new(settings.per_ip),
            mutations_per_org: Limiter::new(settings.mutations_per_org),
            dock_ops_per_org: Limiter::new(settings.dock_ops_per_org),
            syncs_per_dock: Limiter::new(settings.syncs_per_dock),
        }
    }

    /// Starts the sweep that forgets idle keys (every minute, while the limits are in use).
    pub fn start_sweeping(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            every.tick().await;
            loop {
                every.tick().await;
                let Some(limits) = weak.upgrade() else {
                    return;
                };
                limits.sweep();
            }
        });
    }

    fn sweep(&self) {
        self.per_principal.sweep();
        self.per_ip.sweep();
        self.mutations_per_org.sweep();
        self.dock_ops_per_org.sweep();
        self.syncs_per_dock.sweep();
    }

    /// Keys held across every limiter (for tests of the memory bound).
    pub fn keys(&self) -> usize {
        self.per_principal.len()
            + self.per_ip.len()
            + self.mutations_per_org.len()
            + self.dock_ops_per_org.len()
            + self.syncs_per_dock.len()
    }

    /// An operation without credentials, or with credentials that failed, from `ip`.
    pub fn unauthenticated(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let ip = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.per_ip
            .check(&ip, "unauthenticated requests from this address")
    }

    /// An authenticated operation: keyed by the API key when there is one, else by the user.
    pub fn principal(&self, viewer: &Viewer) -> Result<(), ApiError> {
        let key = viewer.api_key_id.unwrap_or(viewer.user.id);
        self.per_principal.check(&key, "requests by this caller")
    }

    /// A mutation in the viewer's organization.
    pub fn mutation(&self, viewer: &Viewer) -> Result<(), ApiError> {
        self.mutations_per_org
            .check(&viewer.organization.id, "mutations in this organization")
    }

    /// A dock operation that calls the provider (`createDock`, `updateDockCredentials`,
    /// `syncDock`); `dock` is set for operations on an existing dock.
    pub fn dock_operation(&self, org: Uuid, dock: Option<Uuid>) -> Result<(), ApiError> {
        if let Some(dock) = dock {
            self.syncs_per_dock.check(&dock, "syncs of this dock")?;
        }
        self.dock_ops_per_org
            .check(&org, "provider calls in this organization")
    }
}

/// The `RATE_LIMITED` error for `what`, retrying after `wait`.
fn limited(what: &str, wait: Duration) -> ApiError {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::RateLimited(format!("too many {what}; retry after {seconds} s"))
}

/// The wait a `RATE_LIMITED` error names, for the `retry-after` header.
pub fn retry_after_of(err: &ApiError) -> Option<Duration> {
    let ApiError::RateLimited(message) = err else {
        return None;
    };
    let seconds = message.rsplit("retry after ").next()?.split(' ').next()?;
    seconds.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100/s"), Ok(Some(Rate::per_second(100))));
        assert_eq!(parse_rate(" 6/m "), Ok(Some(Rate::per_minute(6))));
        assert_eq!(parse_rate("off"), Ok(None));
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("x/s").is_err());
        assert!(parse_rate("1/d").is_err());
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let limits = RateLimits::new(&RateSettings {
            per_ip: Some(Rate::per_minute(3)),
            ..RateSettings::off()
        });
        let ip = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        for _ in 0..3 {
            assert!(limits.unauthenticated(ip).is_ok());
        }
        let refused = limits.unauthenticated(ip).expect_err("over the limit");
        assert_eq!(refused.code(), "RATE_LIMITED");
        let wait = retry_after_of(&refused).expect("a wait");
        assert!((1..=20).contains(&wait.as_secs()), "{wait:?}");
        // Another address has its own bucket.
        assert!(
            limits
                .unauthenticated(Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2))))
                .is_ok()
        );
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limits = RateLimits::new(&RateSettings {
            per_ip: Some(Rate::per_second(1000)),
            ..RateSettings::off()
        });
        for i in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + i));
            assert!(limits.unauthenticated(Some(ip)).is_ok());
        }
        assert_eq!(limits.keys(), 1000);
        std::thread::sleep(Duration::from_millis(20));
        limits.sweep();
        assert_eq!(limits.keys(), 0);
    }
}
