//! `setHealthCheckInterval`: an organization's probe interval per resource kind. Needs
//! monitoring FULL.

use async_graphql::{Context, Object};

use super::{Act, audited, org_full};
use crate::auth::permissions::Area;
use crate::db::models::health_interval;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::enums::ResourceKind;
use crate::graphql::types::organization::{HealthCheckInterval, intervals_of};

/// The longest interval an organization may choose: a week.
const MAX_SECONDS: i32 = 604_800;

#[derive(Default)]
pub struct HealthMutations;

#[Object]
impl HealthMutations {
    /// Sets how often this organization's resources of `kind` are probed (1 to 604800 seconds),
    /// or with `intervalSeconds: null` returns them to the server's default. Applies from each
    /// resource's next check. Returns every override of the organization. Needs monitoring FULL;
    /// `BAD_USER_INPUT` for an interval out of range.
    async fn set_health_check_interval(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of resource whose probes are paced.")] kind: ResourceKind,
        #[graphql(desc = "Seconds between checks, 1 to 604800; null: the server's default.")]
        interval_seconds: Option<i32>,
    ) -> async_graphql::Result<Vec<HealthCheckInterval>> {
        if let Some(seconds) = interval_seconds
            && !(1..=MAX_SECONDS).contains(&seconds)
        {
            return Err(ApiError::BadUserInput(format!(
                "`intervalSeconds` must be 1 to {MAX_SECONDS}, or null for the default"
            ))
            .into());
        }
        let org = viewer(ctx)?.organization.id;
        let act = Act {
            area: Area::Monitoring,
            action: "health_interval.set",
            target_type: "Organization",
            target_id: Some(org),
        };
        let rows = audited(ctx, act, org_full(ctx, Area::Monitoring)?, async |conn| {
            health_interval::set(conn, org, kind.into(), interval_seconds).await?;
            Ok((health_interval::all(conn).await?, None))
        })
        .await?;
        Ok(intervals_of(rows))
    }
}
