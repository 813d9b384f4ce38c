//! The GraphiQL page on `GET /graphql`, with subscriptions wired to `/graphql/ws`.
//!
//! Its assets come from a CDN by default, or from `STACKGATE_GRAPHIQL_ASSETS` (served under
//! [`ASSETS_PATH`]) for air-gapped installs. In demo mode its headers editor starts with a token.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use crate::app::AppState;

/// Where local assets are served from.
pub const ASSETS_PATH: &str = "/graphql/assets";

/// The asset files a local directory must hold, with their CDN equivalents.
pub const ASSETS: [(&str, &str); 5] = [
    (
        "react.production.min.js",
        "https://unpkg.com/react@18.3.1/umd/react.production.min.js",
    ),
    (
        "react-dom.production.min.js",
        "https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js",
    ),
    (
        "graphiql.min.js",
        "https://unpkg.com/graphiql@4.1.2/graphiql.min.js",
    ),
    (
        "graphiql.min.css",
        "https://unpkg.com/graphiql@4.1.2/graphiql.min.css",
    ),
    (
        "graphql-ws.min.js",
        "https://unpkg.com/graphql-ws@5.16.2/umd/graphql-ws.min.js",
    ),
];

const TEMPLATE: &str = include_str!("graphiql.html");

const DEFAULT_QUERY: &str =
    "{\n  viewer {\n    user { name email }\n    organization { name slug }\n  }\n}\n";

/// Renders the page: local assets when configured, else the CDN.
pub fn render(local_assets: bool, headers_token: Option<&str>) -> String {
    let asset = |i: usize| {
        let (file, cdn) = ASSETS[i];
        if local_assets {
            format!("{ASSETS_PATH}/{file}")
        } else {
            cdn.to_owned()
        }
    };
    let headers = match headers_token {
        Some(token) => serde_json::json!({ "Authorization": format!("Bearer {token}") }),
        None => serde_json::json!({}),
    };
    TEMPLATE
        .replace("__TITLE__", "stackgate · GraphiQL")
        .replace("__REACT_JS__", &asset(0))
        .replace("__REACT_DOM_JS__", &asset(1))
        .replace("__GRAPHIQL_JS__", &asset(2))
        .replace("__GRAPHIQL_CSS__", &asset(3))
        .replace("__GRAPHQL_WS_JS__", &asset(4))
        .replace("__ENDPOINT__", "/graphql")
        .replace("__WS_ENDPOINT__", "/graphql/ws")
        .replace("__HEADERS_JSON__", &script_safe(&headers.to_string()))
        .replace(
            "__DEFAULT_QUERY__",
            &script_safe(&serde_json::Value::from(DEFAULT_QUERY).to_string()),
        )
}

/// Escapes `<` so JSON embedded in a `<script>` cannot close it.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// The page response, rendered from the configuration (a few string replacements, for the rare
/// browser that asks).
pub fn page(app: &AppState) -> Response {
    let config = &app.config;
    let page = render(
        config.graphiql_assets.is_some(),
        config.graphiql_headers.as_deref(),
    );
    let mut response = Html(page).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_all_filled() {
        for page in [render(true, Some("tok")), render(false, None)] {
            assert!(!page.contains("__"), "unfilled placeholder in page");
        }
        assert!(render(true, Some("tok")).contains("/graphql/assets/graphiql.min.js"));
        assert!(render(false, None).contains("https://unpkg.com/graphiql@"));
        assert!(render(true, Some("tok")).contains("Bearer tok"));
    }
}
