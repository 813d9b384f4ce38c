//! GraphQL-over-HTTP response formats and request-error bodies.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The media type a client asked for (GraphQL over HTTP, "Accept").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: request errors still answer 200.
    Json,
    /// `application/graphql-response+json`: request errors answer 4xx.
    GraphqlResponse,
}

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

impl Format {
    /// Picks the response format from `Accept`; `None` when nothing acceptable is offered.
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(Self::Json);
        };
        let types: Vec<&str> = accept
            .split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .collect();
        if types.contains(&GRAPHQL_RESPONSE_JSON) {
            Some(Self::GraphqlResponse)
        } else if types
            .iter()
            .any(|t| matches!(*t, "application/json" | "application/*" | "*/*" | ""))
        {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json; charset=utf-8",
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// A request rejected before execution: an HTTP status and one GraphQL error with a code.
pub fn request_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code } }] });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, Format::Json.content_type());
    response
}

/// The JSON of a response, or of a `QUERY_TOO_COMPLEX` error in its place when it is over
/// `limit` bytes; and whether the body is the response itself (not the error in its place).
pub fn capped(
    response: &async_graphql::Response,
    request_id: &str,
    limit: usize,
) -> (Vec<u8>, bool) {
    capped_json(crate::graphql::json::response(response), request_id, limit)
}

/// [`capped`] for a response already serialized (an event stream's, its live data expanded).
pub fn capped_json(body: Vec<u8>, request_id: &str, limit: usize) -> (Vec<u8>, bool) {
    if body.len() <= limit {
        return (body, true);
    }
    let body = serde_json::to_vec(&too_large(body.len(), limit, request_id));
    (body.unwrap_or_default(), false)
}

/// The result sent in place of one of `size` bytes, over `limit`: a `QUERY_TOO_COMPLEX` error.
pub fn too_large(size: usize, limit: usize, request_id: &str) -> serde_json::Value {
    let mut errors = vec![crate::graphql::pipeline::errors::server_error(
        crate::error::ApiError::QueryTooComplex(format!(
            "the response would be {size} bytes; the limit is {limit}: ask for less (smaller `first`, fewer ids or fields)"
        )),
    )];
    crate::graphql::pipeline::errors::classify(&mut errors, request_id);
    serde_json::json!({ "data": null, "errors": errors })
}
