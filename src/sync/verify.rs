//! Checking an API key with its provider before it is stored (`createDock`,
//! `updateDockCredentials`).
//!
//! The caller waits, and may have chosen the address (a dock's `endpoint`), so the check is one
//! request, no retries, within a short deadline, with no database connection held, through the
//! outbound guard; and its failure is one of a few stable messages that carry a status class at
//! most. The remote body and headers are never quoted, and a closed port, an open one that does
//! not speak HTTP and one that never answers all read "could not be reached", so the check is
//! no port scanner. See `docs/security.md`.

use crate::net::guard::Blocked;

use super::FetchErrorKind;

/// Why a key could not be confirmed, as the caller is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The outbound guard refused the endpoint before anything was sent.
    #[error("endpoint is not a public address")]
    NotPublic,
    /// The endpoint is not an `http(s)` URL without user information.
    #[error("`endpoint` must be an http(s) URL without a user name or password")]
    BadEndpoint,
    /// 401 or 403.
    #[error("the provider refused the API key (HTTP {0})")]
    KeyRefused(u16),
    #[error("the provider is rate limiting requests (HTTP 429); try again later")]
    RateLimited,
    /// Any other status, by its class: `3` for redirects (never followed), `4`, `5`.
    #[error("the provider answered HTTP {0}xx")]
    Answered(u16),
    /// A success whose body was not what the provider sends.
    #[error("the provider's answer was not understood")]
    NotUnderstood,
    /// Refused connections, resets, timeouts and unresolvable names alike.
    #[error("the provider could not be reached")]
    Unreachable,
}

impl From<&FetchErrorKind> for VerifyError {
    fn from(kind: &FetchErrorKind) -> Self {
        match kind {
            FetchErrorKind::Refused(Blocked::NotPublic(_)) => Self::NotPublic,
            FetchErrorKind::Refused(Blocked::Scheme | Blocked::Userinfo) => Self::BadEndpoint,
            FetchErrorKind::Unauthorized { status, .. } => Self::KeyRefused(*status),
            FetchErrorKind::RateLimited { .. } => Self::RateLimited,
            FetchErrorKind::Server { status, .. } | FetchErrorKind::Status { status, .. } => {
                Self::Answered(status / 100)
            }
            FetchErrorKind::Malformed(_)
            | FetchErrorKind::Declined(_)
            | FetchErrorKind::TooManyPages(_) => Self::NotUnderstood,
            FetchErrorKind::Refused(Blocked::Unresolvable { .. })
            | FetchErrorKind::Timeout { .. }
            | FetchErrorKind::Network { .. }
            | FetchErrorKind::BudgetExhausted => Self::Unreachable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_a_status_class_at_most() {
        let server = FetchErrorKind::Server {
            status: 503,
            attempts: 1,
        };
        assert_eq!(
            VerifyError::from(&server).to_string(),
            "the provider answered HTTP 5xx"
        );
        let refused = FetchErrorKind::Unauthorized {
            status: 401,
            reason: Some("marker".into()),
        };
        assert_eq!(
            VerifyError::from(&refused).to_string(),
            "the provider refused the API key (HTTP 401)"
        );
        let network = FetchErrorKind::Network {
            attempts: 1,
            detail: Some("Connection refused (os error 111)".into()),
        };
        let timeout = FetchErrorKind::Timeout { attempts: 1 };
        assert_eq!(VerifyError::from(&network), VerifyError::from(&timeout));
        assert_eq!(
            VerifyError::from(&FetchErrorKind::Status {
                status: 302,
                reason: None
            })
            .to_string(),
            "the provider answered HTTP 3xx"
        );
    }
}
