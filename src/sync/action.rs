//! Provider actions: asking a provider to do something to one resource (reboot a droplet, redeploy
//! a Vercel project, purge a zone's cache). `performResourceAction` records each request as an
//! action run (`db::models::action`) and calls [`Engine::perform`], which sends it.
//!
//! Each adapter names the actions it supports per kind ([`super::Provider::actions`]) and sends
//! them ([`super::Provider::perform`]) through [`Session::post_json`], which never resends a
//! request the provider may have carried out. A call happens while the caller waits: one
//! attempt within the engine's outbound deadline, holding no database connection. What is kept
//! of the provider's answer is a one-line [`Summary`] built from named fields (ids and states),
//! never its body; a refusal keeps the provider's own words only from its default URL.

use serde_json::Value;

use super::engine::Engine;
use super::engine::redact;
use super::{FetchError, FetchErrorKind, Kind, Session};
use crate::crypto::{self, Binding};
use crate::db::models::sync::SyncDock;

/// Something a provider can be asked to do to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Restart a server (DigitalOcean `reboot`, Linode `reboot`).
    Reboot,
    /// Stop a server (DigitalOcean `power_off`, Linode `shutdown`).
    PowerOff,
    /// Start a stopped server (DigitalOcean `power_on`, Linode `boot`).
    PowerOn,
    /// Deploy a web service's latest deployment again (Vercel).
    Redeploy,
    /// Empty a site's or a zone's cache (GridPane sites, Cloudflare zones).
    PurgeCache,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Reboot,
        Action::PowerOff,
        Action::PowerOn,
        Action::Redeploy,
        Action::PurgeCache,
    ];

    /// The word stored in `action_runs.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reboot => "reboot",
            Action::PowerOff => "power_off",
            Action::PowerOn => "power_on",
            Action::Redeploy => "redeploy",
            Action::PurgeCache => "purge_cache",
        }
    }

    pub fn parse(word: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.as_str() == word)
    }
}

/// The resource an action is performed on, as stored by the last sync.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: Kind,
    pub provider_resource_id: String,
    pub name: String,
    /// The provider's record (secrets stripped), for what an action needs beyond the id (the
    /// deployment a Vercel redeploy repeats).
    pub api_data: Value,
}

/// What the provider answered, in one line of ids and states (at most [`MAX_SUMMARY`] chars).
pub type Summary = String;

/// The longest summary kept.
pub const MAX_SUMMARY: usize = 300;

/// Why an action was not carried out, as the requester is told.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The provider refused or failed it, or could not be reached: the request's error, without
    /// the key.
    #[error("{0}")]
    Provider(String),
    /// The dock's key cannot be decrypted, or the record lacks what the action needs.
    #[error("{0}")]
    Unavailable(String),
}

impl Engine {
    /// Sends `action` on `target` to `dock`'s provider: one attempt within the outbound
    /// deadline. The caller has checked the provider supports it for the target's kind.
    pub async fn perform(
        &self,
        dock: &SyncDock,
        action: Action,
        target: &Target,
    ) -> Result<Summary, ActionError> {
        let provider = self.registry().get(&dock.provider).ok_or_else(|| {
            ActionError::Unavailable(format!("unknown provider `{}`", dock.provider))
        })?;
        let key = self
            .keyring()
            .decrypt_str(
                &dock.encrypted_api_key,
                Binding::new(dock.org_id, dock.id, crypto::DOCK_API_KEY),
            )
            .map_err(|e| {
                ActionError::Unavailable(format!(
                    "the dock's credentials cannot be decrypted ({e}); enter the API key again"
                ))
            })?;
        let deadline = self.config().verify_deadline;
        let policy = self.config().http.single_try(deadline);
        let mut session =
            self.session_with(provider.as_ref(), dock.endpoint.as_deref(), &key, policy);
        let sent = tokio::time::timeout(deadline, provider.perform(&mut session, action, target));
        match sent.await {
            Ok(Ok(summary)) => Ok(summary.chars().take(MAX_SUMMARY).collect()),
            Ok(Err(e)) => Err(ActionError::Provider(
                redact(&e.to_string(), &key)
                    .chars()
                    .take(MAX_SUMMARY)
                    .collect(),
            )),
            Err(_) => Err(ActionError::Provider(format!(
                "the provider did not answer within {} s; the action may or may not have happened",
                deadline.as_secs()
            ))),
        }
    }
}

/// The error of an action an adapter cannot send for this target (a record without what the
/// action needs).
pub fn lacking(path: &str, what: &str) -> FetchError {
    FetchError::post(
        path,
        FetchErrorKind::Malformed(format!("the resource has no {what}")),
    )
}

/// The error of an answer that says the provider did not do it, in its own envelope (a success
/// flag); `why`, the provider's reason, is kept (short) only when the session may quote it.
pub fn refused(session: &Session, path: &str, why: &str) -> FetchError {
    let why = session
        .quotes_remote()
        .then(|| why.chars().take(200).collect());
    FetchError::post(path, FetchErrorKind::Declined(why))
}

/// The target's provider id as one segment of a request path; refused when it has characters
/// that would steer the request elsewhere (`/`, `?`, `%`, ...).
pub fn segment(target: &Target) -> Result<&str, FetchError> {
    let id = target.provider_resource_id.as_str();
    match is_path_safe(id) {
        true => Ok(id),
        false => Err(lacking("(unsafe id)", "id usable in a request path")),
    }
}

/// True when `id` may go into a request path as one segment (provider ids: letters, digits,
/// `-` and `_`).
pub fn is_path_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("format_disk"), None);
    }

    #[test]
    fn ids_that_would_steer_a_path_are_refused() {
        assert!(is_path_safe("100042"));
        assert!(is_path_safe("prj_00000001"));
        for bad in ["", "../v2/account", "1?x=2", "a/b", "a%2fb", "a b"] {
            assert!(!is_path_safe(bad), "{bad}");
        }
    }
}
