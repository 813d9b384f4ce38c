//! `/healthz` (the process is up), `/readyz` (database reachable, migrations current, the NATS
//! event bus's and read replicas' standing) and
//! `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::db::models::migration;
use crate::db::replicas::{Replicas, Standing};
use crate::events::settings::Bus;

/// Liveness: answers while the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when the database answers and has every migration this binary carries. Read
/// replicas are listed with their standing (`in use`, `lagging`, `down`) but never make the
/// server unready: the primary serves what they cannot. Nor does a NATS event bus that is down
/// (it is listed too): queries do not need it.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let expected = crate::db::latest_migration_version();
    match migration::latest_applied(&app.pool).await {
        Ok(applied) if applied.is_some() && applied == expected => {
            (StatusCode::OK, ready(&app)).into_response()
        }
        Ok(applied) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "migrations pending: database at {}, binary expects {}; run `stackgate migrate`",
                applied.as_deref().unwrap_or("none"),
                expected.as_deref().unwrap_or("none")
            ),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// Prometheus exposition of every metric the process records.
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// `ready`, then with the NATS bus `event bus nats <host:port>: connected` (or `down`: live
/// events do not arrive; queries are served), then a line per read replica:
/// `replica <index> <host:port/db>: <standing>[, lag …]`.
fn ready(app: &AppState) -> String {
    let mut text = String::from("ready");
    if let Bus::Nats(url) = &app.config.events.bus {
        let state = match app.events.is_connected() {
            true => "connected",
            false => "down",
        };
        text.push_str(&format!("\nevent bus nats {}: {state}", url.host()));
    }
    let replicas: &Replicas = &app.replicas;
    for replica in replicas.all() {
        let standing = replica.standing();
        text.push_str(&format!(
            "\nreplica {} {}: {}",
            replica.index,
            replica.name,
            standing.as_str()
        ));
        if standing == Standing::InUse || standing == Standing::Lagging {
            text.push_str(&format!(", lag {:.1}s", replica.lag().as_secs_f64()));
        }
    }
    text
}
