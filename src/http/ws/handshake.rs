//! The WebSocket handshake, done here rather than by axum's `WebSocketUpgrade`, so that the
//! upgraded connection is ours: its read half goes to tungstenite, its write half to our
//! [`super::writer`] (axum's socket takes each message as one buffer, and tungstenite copies it
//! once more into its own).
//!
//! HTTP/1.1: `GET` with `Connection: upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`
//! and a `Sec-WebSocket-Key`, answered `101` with its `Sec-WebSocket-Accept` (RFC 6455 §4.2).
//! HTTP/2: an extended `CONNECT` whose `:protocol` is `websocket`, answered `200` (RFC 8441).
//! The subprotocol is the first of async-graphql's (`graphql-transport-ws`, then `graphql-ws`)
//! that the client offered, answered with the client's own spelling.

use std::str::FromStr;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::error::code;

/// An accepted upgrade request, not yet answered.
pub struct Upgrade {
    on_upgrade: OnUpgrade,
    /// The client's key (HTTP/1.1 only).
    key: Option<HeaderValue>,
    /// The subprotocol: the first of async-graphql's that the client offered.
    pub protocol: WebSocketProtocols,
    /// The client's token for it, answered as it was sent.
    echoed: HeaderValue,
}

/// The connection once the answer went out.
pub type Connection = TokioIo<Upgraded>;

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let key = if parts.version <= Version::HTTP_11 {
            if parts.method != Method::GET {
                return Err(refused(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "a WebSocket upgrade is a GET",
                ));
            }
            if !has_token(&parts.headers, header::CONNECTION, "upgrade")
                || !has_token(&parts.headers, header::UPGRADE, "websocket")
            {
                return Err(refused(
                    StatusCode::UPGRADE_REQUIRED,
                    "this endpoint speaks WebSocket only (Connection: upgrade, Upgrade: websocket)",
                ));
            }
            let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "Sec-WebSocket-Key is missing",
                ));
            };
            Some(key.clone())
        } else {
            let websocket = parts
                .extensions
                .get::<hyper::ext::Protocol>()
                .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
            if parts.method != Method::CONNECT || !websocket {
                return Err(refused(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "over HTTP/2 a WebSocket opens with an extended CONNECT",
                ));
            }
            None
        };
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Version must be 13",
            ));
        }
        let chosen = choose(&parts.headers);
        let Some((protocol, echoed)) = chosen else {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws",
            ));
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(refused(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded",
            ));
        };
        Ok(Self {
            on_upgrade,
            key,
            protocol,
            echoed,
        })
    }
}

impl Upgrade {
    /// The answer that completes the handshake; `serve` runs on the connection once it is
    /// upgraded (not at all if the upgrade fails).
    pub fn answer<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(TokioIo::new(upgraded)).await,
                Err(e) => tracing::debug!(error = %e, "a WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        if let Some(key) = &self.key {
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            if let Ok(accept) = HeaderValue::from_str(&accept_key(key.as_bytes())) {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
        }
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, self.echoed);
        response
    }
}

/// The subprotocol and the client's token for it. The server's order decides
/// (graphql-transport-ws first), and the answer echoes the client's own token, as browsers
/// require.
fn choose(headers: &HeaderMap) -> Option<(WebSocketProtocols, HeaderValue)> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    ALL_WEBSOCKET_PROTOCOLS.iter().find_map(|ours| {
        let token = offered.iter().find(|t| t.eq_ignore_ascii_case(ours))?;
        let protocol = WebSocketProtocols::from_str(ours).ok()?;
        Some((protocol, HeaderValue::from_str(token).ok()?))
    })
}

/// `Sec-WebSocket-Accept` for a client's key: base64 of SHA-1 over the key and RFC 6455's GUID.
fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// True when the comma-separated header `name` holds `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn refused(status: StatusCode, message: &str) -> Response {
    super::super::response::request_error(status, code::BAD_USER_INPUT, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn the_servers_order_picks_the_subprotocol_and_the_clients_spelling_is_echoed() {
        let offer = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(value),
            );
            choose(&headers).map(|(p, echoed)| (p, echoed.to_str().unwrap_or_default().to_owned()))
        };
        assert_eq!(
            offer("graphql-ws, graphql-transport-ws"),
            Some((
                WebSocketProtocols::GraphQLWS,
                "graphql-transport-ws".to_owned()
            ))
        );
        assert_eq!(
            offer("GraphQL-WS"),
            Some((
                WebSocketProtocols::SubscriptionsTransportWS,
                "GraphQL-WS".to_owned()
            ))
        );
        assert_eq!(offer("mqtt, wamp"), None);
    }

    #[test]
    fn connection_tokens_are_found_in_lists_of_any_case() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(has_token(&headers, header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, header::CONNECTION, "close"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrades"));
        assert!(!has_token(&headers, header::CONNECTION, "upgrade"));
    }
}
