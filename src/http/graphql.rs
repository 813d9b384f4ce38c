//! `POST /graphql` and `GET /graphql`: GraphQL over HTTP.
//!
//! Transport errors (media type, JSON, size, GET mutations) are answered here with the status
//! the GraphQL-over-HTTP spec asks for; then the caller is authenticated, the operation executed,
//! and every error leaving the server is given a stable code (see [`crate::error`]).

use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument;

use super::response::{Format, request_error};
use crate::app::AppState;
use crate::error::{ApiError, code};
use crate::graphql::mutations::ClientInfo;
use crate::graphql::operation;

/// The fields of a GraphQL-over-HTTP request, from a JSON body or URL parameters.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HttpRequest {
    query: Option<serde_json::Value>,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
}

/// `POST /graphql` with an `application/json` body.
pub async fn post(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(format) = Format::negotiate(&headers) else {
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
        format,
        false,
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
    if param("query").is_none() && wants_html(&headers) {
        return super::graphiql::page(&app).into_response();
    }
    let Some(format) = Format::negotiate(&headers) else {
        return not_acceptable();
    };
    let variables = match param("variables")
        .map(|v| serde_json::from_str(&v))
        .transpose()
    {
        Ok(v) => v,
        Err(_) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                "`variables` is not JSON",
            );
        }
    };
    let request = HttpRequest {
        query: param("query").map(serde_json::Value::String),
        operation_name: param("operationName"),
        variables,
    };
    execute(
        app,
        &headers,
        client_info(&extensions, &headers),
        request,
        format,
        true,
    )
    .await
}

async fn execute(
    app: AppState,
    headers: &HeaderMap,
    client: ClientInfo,
    request: HttpRequest,
    format: Format,
    via_get: bool,
) -> Response {
    let (query, variables) = match validate(request.query, request.variables) {
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
    let request_id = uuid::Uuid::new_v4().to_string();
    let operation = crate::metrics::operation_label(request.operation_name.as_deref());
    let span = tracing::info_span!(
        "graphql",
        request_id = %request_id,
        operation = %operation,
        statements = tracing::field::Empty
    );
    let trace = header_str(headers, "x-stackgate-trace").is_some_and(|v| v.contains("statements"));
    async move {
        let started = Instant::now();
        let authorization = header_str(headers, header::AUTHORIZATION.as_str());
        let x_org = header_str(headers, "x-org");
        let outcome = match app.authenticate(authorization, x_org).await {
            Err(err) => auth_failure(err, format, &request_id),
            Ok(viewer) => {
                let operation_name = request.operation_name;
                let mut response = run(
                    &app,
                    viewer,
                    client,
                    query,
                    variables,
                    operation_name,
                    trace,
                )
                .await;
                classify_errors(&mut response.errors, &request_id);
                let status = if format == Format::GraphqlResponse && is_request_error(&response) {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::OK
                };
                (status, serde_json::to_vec(&response).unwrap_or_default())
            }
        };
        crate::metrics::record_request(&operation, outcome.0, started.elapsed());
        let mut http = (outcome.0, outcome.1).into_response();
        http.headers_mut()
            .insert(header::CONTENT_TYPE, format.content_type());
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            http.headers_mut().insert("x-request-id", value);
        }
        http
    }
    .instrument(span)
    .await
}

/// Runs one operation for `viewer`: limits, per-request loaders, execution, the operation's end.
async fn run(
    app: &AppState,
    viewer: crate::auth::Viewer,
    client: ClientInfo,
    query: String,
    variables: Variables,
    operation_name: Option<String>,
    trace: bool,
) -> async_graphql::Response {
    let mut gql = async_graphql::Request::new(query).variables(variables);
    if let Some(name) = &operation_name {
        gql = gql.operation_name(name.clone());
    }
    if let Err(err) = operation::check_limits(&mut gql, &app.config.limits.parse) {
        return async_graphql::Response::from_errors(vec![err]);
    }
    let name = operation::operation_name(&mut gql);
    let (gql, db, _) = operation::attach(gql.data(client.clone()), &app.pool, &viewer);
    let response = app.schema.execute(gql.data(viewer.clone())).await;
    operation::finish(
        &db,
        &app.pool,
        &viewer,
        Some(&client),
        name.as_deref(),
        trace,
        response,
    )
    .await
}

/// Checks `query` and `variables` have the shapes the spec requires; the error says which not.
fn validate(
    query: Option<serde_json::Value>,
    variables: Option<serde_json::Value>,
) -> Result<(String, Variables), &'static str> {
    let query = match query {
        Some(serde_json::Value::String(q)) => q,
        Some(_) => return Err("`query` must be a string"),
        None => return Err("missing `query`"),
    };
    let variables = match variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => return Err("`variables` must be a JSON object"),
    };
    Ok((query, variables))
}

/// An authentication failure as a GraphQL error; 401/403 only for the spec's newer media type.
fn auth_failure(err: ApiError, format: Format, request_id: &str) -> (StatusCode, Vec<u8>) {
    let status = match (&err, format) {
        (_, Format::Json) => StatusCode::OK,
        (ApiError::Unauthenticated(_), _) => StatusCode::UNAUTHORIZED,
        (ApiError::Forbidden(_), _) => StatusCode::FORBIDDEN,
        (ApiError::BadUserInput(_), _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut error = async_graphql::Error::from(err).into_server_error(Default::default());
    error.locations.clear();
    let mut errors = vec![error];
    classify_errors(&mut errors, request_id);
    let body = serde_json::json!({ "errors": errors });
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

/// Gives every error a stable code. Errors without one are either request errors from parsing
/// and validation (no path: `BAD_USER_INPUT`/`QUERY_TOO_COMPLEX`) or unexpected resolver errors,
/// whose text might carry internals: those are logged and masked.
pub fn classify_errors(errors: &mut [ServerError], request_id: &str) {
    for err in errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        let code = match ext.get("code") {
            Some(async_graphql::Value::String(c)) => c.clone(),
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

    #[test]
    fn unclassified_resolver_errors_are_masked() {
        let mut errors = vec![ServerError {
            message: "duplicate key value violates unique constraint \"users_email_key\"".into(),
            source: None,
            locations: vec![],
            path: vec![async_graphql::PathSegment::Field("viewer".into())],
            extensions: None,
        }];
        classify_errors(&mut errors, "req-1");
        let json = serde_json::to_string(&errors).expect("serializes");
        assert!(!json.contains("users_email_key"), "{json}");
        assert!(
            json.contains("INTERNAL_SERVER_ERROR") && json.contains("req-1"),
            "{json}"
        );
    }
}
