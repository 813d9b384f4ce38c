//! Operation services: `createOperationService`, `updateOperationService`,
//! `deleteOperationService` and the team grants `grantOperationAccess`, `revokeOperationAccess`
//! (operations FULL); `linkOperationService`, `unlinkOperationService` (projects FULL on the
//! project, as links of resources).
//!
//! Each checks its permission before anything else (a denial is `FORBIDDEN` and audited). A
//! service the caller cannot see is `NOT_FOUND`. The configuration is a flat JSON object,
//! bounded in size, encrypted by [`crate::crypto`] as docks' keys are, and never returned: only
//! its key names are kept in clear (`configHint`).

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object};
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

use super::dock::scheduler;
use super::project::may_write;
use super::validate::{MAX_NAME, not_found, valid_name};
use super::{Act, audited, org_full, permit, refusal};
use crate::auth::permissions::Area;
use crate::db::models::directory;
use crate::db::models::operation::{self, Config, NewService, ServiceChanges};
use crate::db::models::project;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::enums::{AccessLevel, OperationServiceKind};
use crate::graphql::ids;
use crate::graphql::types::operation::OperationServiceNode;
use crate::graphql::types::project::ProjectNode;

/// Longest provider name.
const MAX_PROVIDER: usize = 100;
/// Most keys of a configuration.
const MAX_CONFIG_KEYS: usize = 50;
/// Longest configuration key.
const MAX_CONFIG_KEY: usize = 64;
/// Largest configuration, as compact JSON.
const MAX_CONFIG_BYTES: usize = 8192;

/// What `createOperationService` takes.
#[derive(InputObject)]
pub struct CreateOperationServiceInput {
    /// 1–200 characters (trimmed), unique among the organization's operation services.
    pub name: String,
    /// What the service does.
    pub kind: OperationServiceKind,
    /// Who provides it: free text, 1–100 characters (trimmed).
    pub provider: Option<String>,
    /// The service's settings and credentials: a JSON object of 1–50 keys (letters, digits,
    /// `_`, `-`, `.`; at most 64 characters each), at most 8192 bytes as compact JSON. Stored
    /// encrypted and never shown: `configHint` lists its key names.
    pub config: Option<Json<Value>>,
}

/// Fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateOperationServiceInput {
    /// A new name, 1–200 characters (trimmed); `null` or left out: unchanged.
    pub name: Option<String>,
    /// A new kind; `null` or left out: unchanged.
    pub kind: Option<OperationServiceKind>,
    /// A new provider (1–100 characters); `null` clears it.
    pub provider: MaybeUndefined<String>,
    /// A new configuration replacing the old one whole (as for `createOperationService`);
    /// `null` removes it.
    pub config: MaybeUndefined<Json<Value>>,
}

#[derive(Default)]
pub struct OperationMutations;

#[Object]
impl OperationMutations {
    /// Creates an operation service and returns it. `CONFLICT` for a name in use;
    /// `BAD_USER_INPUT` for a bad field. Needs operations FULL.
    async fn create_operation_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new service.")] input: CreateOperationServiceInput,
    ) -> async_graphql::Result<OperationServiceNode> {
        let act = service_act("operation_service.create", None);
        permit(ctx, &act, org_full(ctx, Area::Operations)?).await?;
        let org_id = viewer(ctx)?.organization.id;
        let name = valid_name(&input.name, MAX_NAME)?;
        let provider = input.provider.as_deref().map(valid_provider).transpose()?;
        let config = input.config.map(|c| sealed_config(c.0)).transpose()?;
        let keyring = scheduler(ctx)?.engine().keyring();
        let new = NewService {
            org_id,
            name,
            kind: input.kind.as_str(),
            provider,
            config: config.as_ref().map(|(text, hint)| Config { text, hint }),
        };
        let conflict = format!("an operation service named `{name}` exists");
        let row = audited(ctx, act, true, async |conn| {
            let row = operation::create(conn, keyring, &new)
                .await
                .map_err(|e| refusal(e, &conflict, ""))?;
            let id = row.id;
            Ok((row, Some(id)))
        })
        .await?;
        Ok(OperationServiceNode(Arc::new(row)))
    }

    /// Changes an operation service and returns it. `NOT_FOUND` for a service the caller cannot
    /// see; `CONFLICT` for a name in use; `BAD_USER_INPUT` for a bad field. Needs operations
    /// FULL.
    async fn update_operation_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service's id.")] id: ID,
        #[graphql(desc = "The changes; fields left out stay as they are.")]
        input: UpdateOperationServiceInput,
    ) -> async_graphql::Result<OperationServiceNode> {
        let service = visible_service(ctx, &id)?;
        let act = service_act("operation_service.update", Some(service));
        permit(ctx, &act, org_full(ctx, Area::Operations)?).await?;
        let org_id = viewer(ctx)?.organization.id;
        let name = input
            .name
            .as_deref()
            .map(|n| valid_name(n, MAX_NAME))
            .transpose()?;
        let provider = match &input.provider {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(p) => Some(Some(valid_provider(p)?)),
        };
        let config = match input.config {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(c) => Some(Some(sealed_config(c.0)?)),
        };
        let keyring = scheduler(ctx)?.engine().keyring();
        let changes = ServiceChanges {
            name,
            kind: input.kind.map(OperationServiceKind::as_str),
            provider,
            config: config.as_ref().map(|c| {
                c.as_ref().map(|(text, hint)| Config {
                    text,
                    hint: hint.as_str(),
                })
            }),
        };
        let row = audited(ctx, act, true, async |conn| {
            let row = operation::update(conn, keyring, org_id, service, &changes)
                .await
                .map_err(|e| refusal(e, "another operation service has that name", ""))?
                .ok_or_else(|| not_found("operation service"))?;
            Ok((row, None))
        })
        .await?;
        Ok(OperationServiceNode(Arc::new(row)))
    }

    /// Deletes an operation service with its grants and project links. Returns its id;
    /// `NOT_FOUND` for a service the caller cannot see. Needs operations FULL.
    async fn delete_operation_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let service = visible_service(ctx, &id)?;
        let org_id = viewer(ctx)?.organization.id;
        let act = service_act("operation_service.delete", Some(service));
        audited(ctx, act, org_full(ctx, Area::Operations)?, async |conn| {
            if !operation::delete(conn, org_id, service).await? {
                return Err(not_found("operation service"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Grants a team `READ` or `FULL` on an operation service, replacing any level it had:
    /// its members see the service (and with `FULL` and a team role with operations FULL, its
    /// `configHint`). `NONE` is refused (`BAD_USER_INPUT`: use `revokeOperationAccess`). True
    /// once granted; `NOT_FOUND` for an unknown service or team. Needs operations FULL.
    async fn grant_operation_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The operation service's id.")] operation_service_id: ID,
        #[graphql(desc = "The team to grant to.")] team_id: ID,
        #[graphql(desc = "`READ` or `FULL` on the service.")] level: AccessLevel,
    ) -> async_graphql::Result<bool> {
        let service = visible_service(ctx, &operation_service_id)?;
        let team = ids::decode_as(&team_id, "Team")?;
        let org = viewer(ctx)?.organization.id;
        let level = match level {
            AccessLevel::Read => "read",
            AccessLevel::Full => "full",
            AccessLevel::None => {
                return Err(ApiError::BadUserInput(
                    "`level: NONE` grants nothing: use `revokeOperationAccess`".into(),
                )
                .into());
            }
        };
        let act = service_act("operation_service.grant", Some(service));
        Ok(
            audited(ctx, act, org_full(ctx, Area::Operations)?, async |conn| {
                check_grant(conn, org, service, team).await?;
                operation::grant(conn, org, service, team, level)
                    .await
                    .map_err(|e| refusal(e, "the grant changed meanwhile", "no such team"))?;
                Ok((true, None))
            })
            .await?,
        )
    }

    /// Takes a team's grant on an operation service away; true when it had one, false when it
    /// had none. `NOT_FOUND` for an unknown service or team. Needs operations FULL.
    async fn revoke_operation_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The operation service's id.")] operation_service_id: ID,
        #[graphql(desc = "The team whose grant goes.")] team_id: ID,
    ) -> async_graphql::Result<bool> {
        let service = visible_service(ctx, &operation_service_id)?;
        let team = ids::decode_as(&team_id, "Team")?;
        let org = viewer(ctx)?.organization.id;
        let act = service_act("operation_service.revoke", Some(service));
        Ok(
            audited(ctx, act, org_full(ctx, Area::Operations)?, async |conn| {
                check_grant(conn, org, service, team).await?;
                Ok((operation::revoke(conn, org, service, team).await?, None))
            })
            .await?,
        )
    }

    /// Links an operation service to a project and returns the project. `NOT_FOUND` for a
    /// project or service the caller cannot see; `CONFLICT` when they are linked already.
    /// Needs projects FULL on the project (as `linkResource`).
    async fn link_operation_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] project_id: ID,
        #[graphql(desc = "The operation service's id.")] operation_service_id: ID,
    ) -> async_graphql::Result<ProjectNode> {
        let project = ids::decode_as(&project_id, "Project")?;
        let service = visible_service(ctx, &operation_service_id)?;
        let viewer = viewer(ctx)?;
        let (org, user) = (viewer.organization.id, viewer.user.id);
        let act = link_act("project.link_operation_service", project);
        let row = audited(ctx, act, may_write(ctx, project, None)?, async |conn| {
            let row = project::by_ids(conn, &[project])
                .await?
                .pop()
                .ok_or_else(|| not_found("project"))?;
            if operation::by_ids(conn, &[service]).await?.is_empty() {
                return Err(not_found("operation service"));
            }
            if !operation::link(conn, org, project, service, user).await? {
                return Err(ApiError::Conflict(
                    "the operation service is already linked to the project".into(),
                ));
            }
            Ok((row, None))
        })
        .await?;
        Ok(ProjectNode(Arc::new(row)))
    }

    /// Unlinks an operation service from a project; true when they were linked, false when
    /// they were not. `NOT_FOUND` for a project or service the caller cannot see. Needs
    /// projects FULL on the project.
    async fn unlink_operation_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] project_id: ID,
        #[graphql(desc = "The operation service's id.")] operation_service_id: ID,
    ) -> async_graphql::Result<bool> {
        let project = ids::decode_as(&project_id, "Project")?;
        let service = visible_service(ctx, &operation_service_id)?;
        let act = link_act("project.unlink_operation_service", project);
        Ok(
            audited(ctx, act, may_write(ctx, project, None)?, async |conn| {
                if project::by_ids(conn, &[project]).await?.is_empty() {
                    return Err(not_found("project"));
                }
                if operation::by_ids(conn, &[service]).await?.is_empty() {
                    return Err(not_found("operation service"));
                }
                Ok((operation::unlink(conn, project, service).await?, None))
            })
            .await?,
        )
    }
}

fn service_act(action: &str, service: Option<Uuid>) -> Act<'_> {
    Act {
        area: Area::Operations,
        action,
        target_type: "OperationService",
        target_id: service,
    }
}

fn link_act(action: &str, project: Uuid) -> Act<'_> {
    Act {
        area: Area::Projects,
        action,
        target_type: "Project",
        target_id: Some(project),
    }
}

/// The uuid of a service the viewer may see; anything else does not exist for them.
fn visible_service(ctx: &Context<'_>, id: &ID) -> Result<Uuid, ApiError> {
    let service = ids::decode_as(id, "OperationService")?;
    if !viewer(ctx)?.visibility().sees_operation_service(service) {
        return Err(not_found("operation service"));
    }
    Ok(service)
}

/// Checks that the service and the team exist in the organization.
async fn check_grant(
    conn: &mut diesel_async::AsyncPgConnection,
    org: Uuid,
    service: Uuid,
    team: Uuid,
) -> Result<(), ApiError> {
    if operation::by_ids(conn, &[service]).await?.is_empty() {
        return Err(not_found("operation service"));
    }
    let team_here = directory::teams_by_ids(conn, &[team])
        .await?
        .iter()
        .any(|t| t.org_id == org);
    if !team_here {
        return Err(not_found("team"));
    }
    Ok(())
}

fn valid_provider(provider: &str) -> Result<&str, ApiError> {
    let provider = provider.trim();
    if provider.is_empty() || provider.chars().count() > MAX_PROVIDER {
        return Err(ApiError::BadUserInput(format!(
            "`provider` must be 1 to {MAX_PROVIDER} characters"
        )));
    }
    Ok(provider)
}

/// A configuration checked and ready to encrypt: its compact JSON text and its hint (the key
/// names, sorted and comma-separated). Messages never quote a value.
fn sealed_config(config: Value) -> Result<(SecretString, String), ApiError> {
    let bad = |m: String| ApiError::BadUserInput(format!("`config` {m}"));
    let Value::Object(map) = config else {
        return Err(bad("must be a JSON object".into()));
    };
    if map.is_empty() || map.len() > MAX_CONFIG_KEYS {
        return Err(bad(format!("must have 1 to {MAX_CONFIG_KEYS} keys")));
    }
    let key_ok = |k: &str| {
        (1..=MAX_CONFIG_KEY).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if !map.keys().all(|k| key_ok(k)) {
        return Err(bad(format!(
            "keys must be 1 to {MAX_CONFIG_KEY} letters, digits, `_`, `-` or `.`"
        )));
    }
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let hint = keys.join(", ");
    let text = Value::Object(map).to_string();
    if text.len() > MAX_CONFIG_BYTES {
        return Err(bad(format!(
            "may be at most {MAX_CONFIG_BYTES} bytes as compact JSON"
        )));
    }
    Ok((SecretString::from(text), hint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn configurations_are_bounded_and_hinted_by_their_keys_only() {
        let (text, hint) =
            sealed_config(json!({ "secret_key": "s3cr3t-value", "bucket": "b" })).expect("ok");
        assert_eq!(hint, "bucket, secret_key");
        assert!(!hint.contains("s3cr3t"));
        assert!(text.expose_secret().contains("s3cr3t-value"));
        for bad in [
            json!("text"),
            json!([1]),
            json!({}),
            json!({ "a b": 1 }),
            json!({ "": 1 }),
            json!({ "x".repeat(65): 1 }),
            json!({ "big": "v".repeat(MAX_CONFIG_BYTES) }),
            Value::Object((0..51).map(|i| (format!("k{i}"), json!(1))).collect()),
        ] {
            let err = sealed_config(bad).expect_err("refused");
            assert!(!err.message().contains("vvvv"), "{}", err.message());
        }
        assert!(valid_provider("  backblaze ").is_ok_and(|p| p == "backblaze"));
        assert!(valid_provider(" ").is_err());
        assert!(valid_provider(&"p".repeat(101)).is_err());
    }
}
