//! The one error type at the GraphQL boundary.
//!
//! Every variant maps to one stable `extensions.code` of `docs/http-api.md`. Resolvers and services return
//! [`ApiError`]; database and other foreign errors enter through [`ApiError::internal`], are logged
//! once here, and reach clients only as `INTERNAL_SERVER_ERROR` with the request id.

use async_graphql::ErrorExtensions;

/// A failure a client may see, with its stable code.
///
/// It deliberately does not implement `Display`: async-graphql turns any `Display` type into an
/// error with that text and no code, and this type must only convert through its own `From`.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadUserInput(String),
    Conflict(String),
    RateLimited(String),
    QueryTooComplex(String),
    /// A subscription may have missed events (its replica lost the event stream for a while, or
    /// the subscriber fell behind): the client should refetch what it shows. The subscription
    /// goes on.
    EventsMissed(String),
    /// An automatic persisted query named a hash this server does not know: the client should
    /// send the text with the hash (Apollo clients do this on exactly this message and code).
    PersistedQueryNotFound,
    /// A document outside the trusted documents manifest, where only those may run.
    PersistedQueryNotInList(String),
    Internal(anyhow::Error),
}

/// The stable codes, as they appear in `extensions.code`.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    pub const EVENTS_MISSED: &str = "EVENTS_MISSED";
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    pub const PERSISTED_QUERY_NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

    /// Every code, for bounded metric labels.
    pub const ALL: [&str; 11] = [
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        BAD_USER_INPUT,
        CONFLICT,
        RATE_LIMITED,
        QUERY_TOO_COMPLEX,
        EVENTS_MISSED,
        PERSISTED_QUERY_NOT_FOUND,
        PERSISTED_QUERY_NOT_IN_LIST,
        INTERNAL_SERVER_ERROR,
    ];
}

impl ApiError {
    /// Wraps a foreign error that clients must not see.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// The message a client sees: the variant's text, or a generic one for internal errors.
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::BadUserInput(m)
            | Self::Conflict(m)
            | Self::RateLimited(m)
            | Self::QueryTooComplex(m)
            | Self::EventsMissed(m)
            | Self::PersistedQueryNotInList(m) => m,
            Self::PersistedQueryNotFound => "PersistedQueryNotFound",
            Self::Internal(_) => "internal server error",
        }
    }

    /// The stable `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => code::UNAUTHENTICATED,
            Self::Forbidden(_) => code::FORBIDDEN,
            Self::NotFound(_) => code::NOT_FOUND,
            Self::BadUserInput(_) => code::BAD_USER_INPUT,
            Self::Conflict(_) => code::CONFLICT,
            Self::RateLimited(_) => code::RATE_LIMITED,
            Self::QueryTooComplex(_) => code::QUERY_TOO_COMPLEX,
            Self::EventsMissed(_) => code::EVENTS_MISSED,
            Self::PersistedQueryNotFound => code::PERSISTED_QUERY_NOT_FOUND,
            Self::PersistedQueryNotInList(_) => code::PERSISTED_QUERY_NOT_IN_LIST,
            Self::Internal(_) => code::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        if let ApiError::Internal(source) = &err {
            tracing::error!(error = format!("{source:#}"), "internal error");
        }
        let code = err.code();
        async_graphql::Error::new(err.message()).extend_with(|_, ext| ext.set("code", code))
    }
}

impl From<crate::db::DbError> for ApiError {
    /// A database failure is internal, except a pool that stayed exhausted for its whole wait:
    /// the server is at capacity, and the caller should retry shortly.
    fn from(err: crate::db::DbError) -> Self {
        use deadpool::managed::PoolError;
        match err {
            crate::db::DbError::Pool(PoolError::Timeout(_)) => {
                tracing::warn!("a request waited its whole pool timeout for a connection");
                Self::RateLimited("the server is at capacity; retry after 1 s".into())
            }
            err => Self::internal(err),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        Self::internal(crate::db::DbError::from(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gql_code(err: ApiError) -> (String, String) {
        let gql: async_graphql::Error = err.into();
        let ext = gql.extensions.expect("extensions set");
        let code = ext.get("code").expect("code set").to_string();
        (gql.message, code)
    }

    #[test]
    fn each_variant_maps_to_its_code() {
        let cases = [
            (ApiError::Unauthenticated("x".into()), "UNAUTHENTICATED"),
            (ApiError::Forbidden("x".into()), "FORBIDDEN"),
            (ApiError::NotFound("x".into()), "NOT_FOUND"),
            (ApiError::BadUserInput("x".into()), "BAD_USER_INPUT"),
            (ApiError::Conflict("x".into()), "CONFLICT"),
            (ApiError::RateLimited("x".into()), "RATE_LIMITED"),
            (ApiError::QueryTooComplex("x".into()), "QUERY_TOO_COMPLEX"),
            (ApiError::EventsMissed("x".into()), "EVENTS_MISSED"),
        ];
        for (err, expected) in cases {
            assert_eq!(gql_code(err).1, format!("\"{expected}\""));
        }
    }

    #[test]
    fn internal_errors_hide_their_source() {
        let err = ApiError::internal(anyhow::anyhow!("relation \"secret_table\" does not exist"));
        let (message, code) = gql_code(err);
        assert_eq!(message, "internal server error");
        assert_eq!(code, "\"INTERNAL_SERVER_ERROR\"");
    }
}
