//! What the fakes do when asked to act (`POST`): DigitalOcean droplet actions, Linode instance
//! reboot / shutdown / boot, Vercel redeploys, GridPane site cache purges and Cloudflare zone
//! purges. Each changes the fake's state observably: the resource's log of actions
//! ([`FakeResource::actions`]) and, for servers and deployments, its status word, at once and
//! again after [`Script::action_time`] (a rebooted droplet is `off`, then `active`). A request
//! the real provider would refuse is refused in its shape (powering on a running droplet is a
//! 422, booting a running Linode a 400).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{FakeKind, FakeResource, FakeState, Plan, plan, shapes};
use crate::sync::Kind;

/// A status a resource takes after a while (applied by the request's handler).
#[derive(Clone, Debug)]
pub struct Later {
    pub kind: Kind,
    pub index: usize,
    pub status: &'static str,
    pub after: Duration,
}

/// What an action request is: the kind and provider id it names, and the provider's word for it.
struct Asked {
    kind: Kind,
    id: String,
    word: String,
}

/// Answers a `POST` to `path` with `body`; `rate` are the rate-limit headers to send.
pub(super) fn perform(
    state: &mut FakeState,
    path: &str,
    body: &[u8],
    rate: Vec<(&'static str, String)>,
) -> (Plan, Option<Later>) {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(asked) = route(state.kind, path, &body) else {
        return (not_found(state.kind, rate), None);
    };
    let fake = state.kind;
    let after = state.script.action_time;
    let Some(resources) = state.resources.get_mut(&asked.kind) else {
        return (not_found(fake, rate), None);
    };
    let Some(r) = resources
        .iter_mut()
        .find(|r| id_of(fake, asked.kind, r) == asked.id)
    else {
        return (not_found(fake, rate), None);
    };
    if fake == FakeKind::Vercel && !vercel_latest_matches(r, &body) {
        return (not_found(fake, rate), None);
    }
    let Some((now, later)) = transition(fake, &asked.word, &r.status) else {
        return (refusal(fake, &asked.word, rate), None);
    };
    if let Some(now) = now {
        r.status = now.to_owned();
    }
    r.actions.push(asked.word.clone());
    let later = later.map(|status| Later {
        kind: asked.kind,
        index: r.index,
        status,
        after,
    });
    let answer = answer(fake, &asked, r);
    let status = match fake {
        FakeKind::DigitalOcean => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    (plan(status, rate, answer.to_string()), later)
}

/// The kind, id and word a path (and body) asks for.
fn route(fake: FakeKind, path: &str, body: &Value) -> Option<Asked> {
    let asked = |kind, id: &str, word: &str| Asked {
        kind,
        id: id.to_owned(),
        word: word.to_owned(),
    };
    match fake {
        FakeKind::DigitalOcean => {
            let id = path
                .strip_prefix("/v2/droplets/")?
                .strip_suffix("/actions")?;
            Some(asked(Kind::Server, id, body.get("type")?.as_str()?))
        }
        FakeKind::Linode => {
            let (id, word) = path
                .strip_prefix("/v4/linode/instances/")?
                .split_once('/')?;
            Some(asked(Kind::Server, id, word))
        }
        FakeKind::Vercel if path == "/v13/deployments" => {
            let project = body.get("project")?.as_str()?;
            Some(asked(Kind::WebService, project, "redeploy"))
        }
        FakeKind::GridPane => {
            let id = path
                .strip_prefix("/oauth/api/v1/site/")?
                .strip_suffix("/purge-cache")?;
            Some(asked(Kind::WebService, id, "purge_cache"))
        }
        FakeKind::Cloudflare => {
            let zone = path
                .strip_prefix("/client/v4/zones/")?
                .strip_suffix("/purge_cache")?;
            let everything = body.get("purge_everything") == Some(&Value::Bool(true));
            everything.then(|| asked(Kind::Domain, zone, "purge_cache"))
        }
        FakeKind::Vercel => None,
    }
}

/// The status a resource takes now and later for `word` from `status`; `None` when the
/// provider refuses (already in the state asked for, or an action it does not know).
fn transition(
    fake: FakeKind,
    word: &str,
    status: &str,
) -> Option<(Option<&'static str>, Option<&'static str>)> {
    match (fake, word) {
        (FakeKind::DigitalOcean, "reboot") if status == "active" => {
            Some((Some("off"), Some("active")))
        }
        (FakeKind::DigitalOcean, "power_off") if status != "off" => Some((Some("off"), None)),
        (FakeKind::DigitalOcean, "power_on") if status == "off" => {
            Some((Some("new"), Some("active")))
        }
        (FakeKind::Linode, "reboot") if status == "running" => {
            Some((Some("rebooting"), Some("running")))
        }
        (FakeKind::Linode, "shutdown") if status == "running" => {
            Some((Some("shutting_down"), Some("offline")))
        }
        (FakeKind::Linode, "boot") if status == "offline" => {
            Some((Some("booting"), Some("running")))
        }
        (FakeKind::Vercel, "redeploy") => Some((Some("BUILDING"), Some("READY"))),
        (FakeKind::GridPane | FakeKind::Cloudflare, "purge_cache") => Some((None, None)),
        _ => None,
    }
}

/// The provider's answer to an accepted action.
fn answer(fake: FakeKind, asked: &Asked, r: &FakeResource) -> Value {
    let n = r.actions.len();
    match fake {
        FakeKind::DigitalOcean => json!({"action": {
            "id": 36_000_000 + r.index * 100 + n, "status": "in-progress", "type": asked.word,
            "started_at": "2026-01-01T00:00:00Z", "completed_at": null,
            "resource_id": asked.id.parse::<u64>().unwrap_or(0), "resource_type": "droplet",
            "region_slug": "nyc3"
        }}),
        FakeKind::Linode => json!({}),
        FakeKind::Vercel => json!({
            "id": format!("dpl_{}_r{n}", r.index), "readyState": "QUEUED", "name": r.name,
            "target": "production", "url": format!("{}-r{n}.vercel.localhost", r.name)
        }),
        FakeKind::GridPane => json!({"success": true, "message": "Cache purged"}),
        FakeKind::Cloudflare => json!({
            "success": true, "errors": [], "messages": [], "result": {"id": asked.id}
        }),
    }
}

/// The provider's refusal of an action the resource's state does not allow.
fn refusal(fake: FakeKind, word: &str, rate: Vec<(&'static str, String)>) -> Plan {
    let (status, body) = match fake {
        FakeKind::DigitalOcean => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"id": "unprocessable_entity",
                   "message": format!("Droplet cannot {word} in its current state.")}),
        ),
        FakeKind::Linode => (
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"reason": format!("Linode cannot {word} in its current state")}]}),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            json!({"success": false, "errors": [{"code": 1000, "message": "refused"}],
                   "message": "refused"}),
        ),
    };
    plan(status, rate, body.to_string())
}

fn not_found(fake: FakeKind, rate: Vec<(&'static str, String)>) -> Plan {
    plan(StatusCode::NOT_FOUND, rate, shapes::not_found(fake))
}

/// The provider's id of a resource, as its listing shows it.
fn id_of(fake: FakeKind, kind: Kind, r: &FakeResource) -> String {
    let item = shapes::item(fake, kind, r);
    match item.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A Vercel redeploy names the project's latest deployment.
fn vercel_latest_matches(r: &FakeResource, body: &Value) -> bool {
    let latest = shapes::item(FakeKind::Vercel, Kind::WebService, r);
    latest.pointer("/latestDeployments/0/id") == body.get("deploymentId")
}
