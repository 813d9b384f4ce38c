//! `POST /graphql` and `GET /graphql`: GraphQL over HTTP.
//!
//! Transport errors (media type, JSON, size, GET mutations) are answered here with the status
//! the GraphQL-over-HTTP spec asks for; everything else — limits, authentication, execution,
//! error codes — is the operation pipeline's ([`crate::graphql::pipeline`]), shared with the
//! WebSocket. This module turns its response into HTTP: status, body size limit, headers.

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::OperationType;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use tracing::Instrument;

use super::response::{Format, request_error};
use crate::app::AppState;
use crate::db::replicas::{LSN_COOKIE, LSN_HEADER, Lsn, Watermark};
use crate::error::code;
use crate::graphql::mutations::ClientInfo;
use crate::graphql::pipeline::{Answer, Caller, RequestId, errors};

/// The fields of a GraphQL-over-HTTP request, from a JSON body or URL parameters.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HttpRequest {
    query: Option<serde_json::Value>,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    /// `persistedQuery` (automatic persisted queries) is the one extension read.
    extensions: Option<serde_json::Value>,
}

/// `POST /graphql` with an `application/json` body.
pub async fn post(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let stream = wants_event_stream(&headers);
    let Some(format) = Format::negotiate(&headers).or(stream.then_some(Format::Json)) else {
        return not_acceptable();
    };
    if !is_json(&headers) {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            "POST bodies must be `Content-Type: application/json`",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::BAD_USER_INPUT,
                "request body too large",
            );
        }
        Err(rejection) => {
            return request_error(
                rejection.status(),
                code::BAD_USER_INPUT,
                rejection.body_text(),
            );
        }
    };
    let request: HttpRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                format!("body is not a JSON GraphQL request: {e}"),
            );
        }
    };
    execute(
        app,
        &headers,
        client_info(&extensions, &headers),
        request,
        Transport {
            format,
            via_get: false,
            stream,
        },
    )
    .await
}

/// `GET /graphql`: the GraphiQL page for browsers, else a query in URL parameters.
pub async fn get(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let params: Vec<(String, String)> = match url_pairs(&raw) {
        Some(p) => p,
        None => {
            return request_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                "malformed URL parameters",
            );
        }
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if param("query").is_none() && param("extensions").is_none() && wants_html(&headers) {
        return super::graphiql::page(&app).into_response();
    }
    let stream = wants_event_stream(&headers);
    let Some(format) = Format::negotiate(&headers).or(stream.then_some(Format::Json)) else {
        return not_acceptable();
    };
    let json_param = |name: &str| {
        param(name)
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|_| format!("`{name}` is not JSON"))
    };
    let (variables, url_extensions) = match (json_param("variables"), json_param("extensions")) {
        (Ok(variables), Ok(extensions)) => (variables, extensions),
        (Err(message), _) | (_, Err(message)) => {
            return request_error(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, message);
        }
    };
    let request = HttpRequest {
        query: param("query").map(serde_json::Value::String),
        operation_name: param("operationName"),
        variables,
        extensions: url_extensions,
    };
    execute(
        app,
        &headers,
        client_info(&extensions, &headers),
        request,
        Transport {
            format,
            via_get: true,
            stream,
        },
    )
    .await
}

/// How an operation came and how it wants its answer.
struct Transport {
    format: Format,
    /// A GET, which may only read.
    via_get: bool,
    /// `Accept: text/event-stream`: answer as Server-Sent Events ([`super::sse`]).
    stream: bool,
}

async fn execute(
    app: AppState,
    headers: &HeaderMap,
    client: ClientInfo,
    request: HttpRequest,
    transport: Transport,
) -> Response {
    let Transport {
        format,
        via_get,
        stream,
    } = transport;
    let (query, variables, extensions) =
        match validate(request.query, request.variables, request.extensions) {
            Ok(ok) => ok,
            Err(message) => {
                return request_error(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, message);
            }
        };
    if via_get && selects_mutation(&query, request.operation_name.as_deref()) {
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            code::BAD_USER_INPUT,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let Ok(written) = written_position(headers) else {
        return request_error(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "`X-Stackgate-Lsn` must be a WAL position such as `0/16B3748`",
        );
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = crate::graphql::pipeline::operation_span(&request_id);
    crate::telemetry::propagation::continue_trace(&span, headers);
    let caller = Caller {
        authorization: header_str(headers, header::AUTHORIZATION.as_str())
            .map(|a| SecretString::from(a.to_owned())),
        x_org: header_str(headers, "x-org").map(str::to_owned),
        client,
        trace: header_str(headers, "x-stackgate-trace").is_some_and(|v| v.contains("statements")),
        read_only: via_get,
        written: Watermark::at(written),
    };
    let mut gql = async_graphql::Request::new(query)
        .variables(variables)
        .data(caller.clone())
        .data(RequestId(request_id.clone()));
    gql.operation_name = request.operation_name;
    gql.extensions = async_graphql::Extensions(extensions);
    if stream {
        return super::sse::respond(app, caller, gql, request_id)
            .instrument(span)
            .await;
    }
    let answer = app.pipeline.execute_http(gql).instrument(span).await;
    respond(
        answer,
        format,
        &request_id,
        app.config.security.response_limit,
        headers,
    )
}

/// The HTTP answer to an operation's response: its status, its body (refused when over the
/// response limit), the request id and any header the pipeline set (`retry-after`).
///
/// A query's answer carries an `ETag`; a request whose `If-None-Match` names it gets `304 Not
/// Modified` with no body.
fn respond(
    answer: Answer,
    format: Format,
    request_id: &str,
    limit: usize,
    request_headers: &HeaderMap,
) -> Response {
    let (status, body, etag, headers) = match answer {
        Answer::Cached(hit) => (
            StatusCode::OK,
            hit.body.clone(),
            Some(hit.etag.clone()),
            HeaderMap::new(),
        ),
        Answer::Fresh { response, fill } => {
            let status = status_of(&response, format);
            let (body, whole) = super::response::capped(&response, request_id, limit);
            let body = Bytes::from(body);
            let etag = fill
                .filter(|_| whole && status == StatusCode::OK)
                .map(|fill| fill.store(body.clone()));
            (status, body, etag, response.http_headers.clone())
        }
    };
    let not_modified = etag.as_deref().is_some_and(|etag| {
        header_str(request_headers, header::IF_NONE_MATCH.as_str())
            .is_some_and(|wanted| wanted.split(',').any(|w| w.trim() == etag))
    });
    let mut http = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (status, body).into_response()
    };
    for (name, value) in &headers {
        http.headers_mut().insert(name.clone(), value.clone());
    }
    http.headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    if let Some(value) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        http.headers_mut().insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        http.headers_mut().insert("x-request-id", value);
    }
    http
}

/// The newest write position the request carries: `X-Stackgate-Lsn` (malformed: an error, the
/// client sent it on purpose) or the `stackgate_lsn` cookie (malformed: ignored, a browser
/// cannot be told to drop it), whichever is further.
fn written_position(headers: &HeaderMap) -> Result<Option<Lsn>, ()> {
    let header = headers
        .get(LSN_HEADER)
        .map(|v| v.to_str().ok().and_then(Lsn::parse).ok_or(()))
        .transpose()?;
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == LSN_COOKIE)
        .filter_map(|(_, value)| Lsn::parse(value))
        .max();
    Ok(header.max(cookie))
}

/// Whether the client asks for Server-Sent Events.
fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|t| t.split(';').next().unwrap_or("").trim() == "text/event-stream")
        })
}

/// 429 for a rate limit whatever the media type; for `application/graphql-response+json`, request
/// errors (no data) get the status their code names; everything else is 200.
fn status_of(response: &async_graphql::Response, format: Format) -> StatusCode {
    let outcome = errors::outcome(&response.errors);
    if outcome == code::RATE_LIMITED && response.data == async_graphql::Value::Null {
        return StatusCode::TOO_MANY_REQUESTS;
    }
    if format != Format::GraphqlResponse || !is_request_error(response) {
        return StatusCode::OK;
    }
    match outcome {
        code::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
        code::FORBIDDEN => StatusCode::FORBIDDEN,
        code::INTERNAL_SERVER_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Checks `query`, `variables` and `extensions` have the shapes the spec requires; the error
/// says which not. `query` may be missing when `extensions.persistedQuery` names the document.
fn validate(
    query: Option<serde_json::Value>,
    variables: Option<serde_json::Value>,
    extensions: Option<serde_json::Value>,
) -> Result<(String, Variables, HashMap<String, async_graphql::Value>), &'static str> {
    let extensions = match extensions {
        None | Some(serde_json::Value::Null) => HashMap::new(),
        Some(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(k, _)| k == "persistedQuery")
            .filter_map(|(k, v)| Some((k, async_graphql::Value::from_json(v).ok()?)))
            .collect(),
        Some(_) => return Err("`extensions` must be a JSON object"),
    };
    let query = match query {
        Some(serde_json::Value::String(q)) => q,
        Some(_) => return Err("`query` must be a string"),
        None if extensions.contains_key("persistedQuery") => String::new(),
        None => return Err("missing `query`"),
    };
    let variables = match variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => return Err("`variables` must be a JSON object"),
    };
    Ok((query, variables, extensions))
}

fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// True when the operation a GET would run is a mutation (GET may only read).
fn selects_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let mut ops = doc.operations.iter();
    let op = match operation_name {
        Some(name) => ops
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name))
            .map(|(_, op)| op),
        None => ops.next().map(|(_, op)| op),
    };
    op.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// The peer's address and user agent, for the audit log.
pub fn client_info(extensions: &Extensions, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip_address: extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: header_str(headers, header::USER_AGENT.as_str())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"))
}

fn wants_html(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains("text/html"))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn not_acceptable() -> Response {
    request_error(
        StatusCode::NOT_ACCEPTABLE,
        code::BAD_USER_INPUT,
        "Accept must allow application/json or application/graphql-response+json",
    )
}

/// Decodes `application/x-www-form-urlencoded` pairs; `None` on bad percent-encoding.
fn url_pairs(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_mutations_are_detected() {
        assert!(selects_mutation("mutation { x }", None));
        assert!(!selects_mutation("{ x }", None));
        assert!(selects_mutation(
            "query A { x } mutation B { y }",
            Some("B")
        ));
        assert!(!selects_mutation(
            "query A { x } mutation B { y }",
            Some("A")
        ));
    }

    #[test]
    fn url_parameters_decode() {
        let pairs = url_pairs("query=%7B%20viewer%20%7D&operationName=A+B").expect("decodes");
        assert_eq!(pairs[0], ("query".into(), "{ viewer }".into()));
        assert_eq!(pairs[1], ("operationName".into(), "A B".into()));
        assert!(url_pairs("query=%ZZ").is_none());
    }
}
