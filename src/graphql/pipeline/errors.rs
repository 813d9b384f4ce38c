//! The last step of every operation: each error leaving the server gets a stable code, and
//! anything that could carry internals is masked (logged here once, with the request id).

use async_graphql::{ServerError, Value};

use crate::error::{ApiError, code};

/// Gives every error a stable code. Errors without one are either request errors from parsing
/// and validation (no path: `BAD_USER_INPUT`/`QUERY_TOO_COMPLEX`) or unexpected resolver errors,
/// whose text might carry internals: those are logged and masked.
pub fn classify(errors: &mut [ServerError], request_id: &str) {
    for err in errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        let code = match ext.get("code") {
            Some(Value::String(c)) => c.clone(),
            _ if err.path.is_empty() => request_error_code(&err.message).to_owned(),
            _ => {
                tracing::error!(error = %err.message, path = ?err.path, "unclassified resolver error");
                err.message = "internal server error".into();
                code::INTERNAL_SERVER_ERROR.to_owned()
            }
        };
        if code == code::INTERNAL_SERVER_ERROR {
            ext.set("requestId", request_id);
        }
        ext.set("code", code);
    }
}

/// An [`ApiError`] as a request-level error (no path, no location).
pub fn server_error(err: ApiError) -> ServerError {
    let mut error = async_graphql::Error::from(err).into_server_error(Default::default());
    error.locations.clear();
    error
}

/// The code of a request error async-graphql raised without one: its limit checks say "too
/// complex", "nested too deep" and the like; everything else is a malformed request.
fn request_error_code(message: &str) -> &'static str {
    let limits = [
        "too complex",
        "nested too deep",
        "too many aliases",
        "too many",
        "limit",
    ];
    if limits.iter().any(|needle| message.contains(needle)) {
        code::QUERY_TOO_COMPLEX
    } else {
        code::BAD_USER_INPUT
    }
}

/// The code of a response's first error, or `ok`: the bounded `status` label of the metrics.
pub fn outcome(errors: &[ServerError]) -> &'static str {
    let Some(first) = errors.first() else {
        return "ok";
    };
    let code = match first.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(Value::String(c)) => c.as_str(),
        _ => return code::INTERNAL_SERVER_ERROR,
    };
    code::ALL
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or(code::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclassified_resolver_errors_are_masked() {
        let mut errors = vec![ServerError {
            message: "duplicate key value violates unique constraint \"users_email_key\"".into(),
            source: None,
            locations: vec![],
            path: vec![async_graphql::PathSegment::Field("viewer".into())],
            extensions: None,
        }];
        classify(&mut errors, "req-1");
        let json = serde_json::to_string(&errors).expect("serializes");
        assert!(!json.contains("users_email_key"), "{json}");
        assert!(
            json.contains("INTERNAL_SERVER_ERROR") && json.contains("req-1"),
            "{json}"
        );
        assert_eq!(outcome(&errors), code::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn validation_limits_are_query_too_complex() {
        let mut errors = vec![ServerError::new("Query is nested too deep.", None)];
        classify(&mut errors, "r");
        assert_eq!(outcome(&errors), code::QUERY_TOO_COMPLEX);
        let mut errors = vec![ServerError::new("Unknown field \"x\"", None)];
        classify(&mut errors, "r");
        assert_eq!(outcome(&errors), code::BAD_USER_INPUT);
    }
}
