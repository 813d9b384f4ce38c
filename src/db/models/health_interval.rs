//! `health_check_intervals`: an organization's probe interval per resource kind, overriding the
//! server-wide default (read by `stackgate_claim_due_health_checks`).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::resource::Kind;
use crate::db::DbError;
use crate::db::schema::health_check_intervals as intervals;

/// The overrides of the request's organization: `(kind word, seconds)`, by kind.
pub async fn all(conn: &mut AsyncPgConnection) -> Result<Vec<(String, i32)>, DbError> {
    Ok(intervals::table
        .select((intervals::resource_kind, intervals::interval_seconds))
        .order(intervals::resource_kind)
        .load(conn)
        .await?)
}

/// Sets (`Some`) or removes (`None`) `org`'s override for `kind`.
pub async fn set(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    kind: Kind,
    seconds: Option<i32>,
) -> Result<(), DbError> {
    match seconds {
        Some(seconds) => {
            diesel::insert_into(intervals::table)
                .values((
                    intervals::org_id.eq(org),
                    intervals::resource_kind.eq(kind.as_str()),
                    intervals::interval_seconds.eq(seconds),
                ))
                .on_conflict((intervals::org_id, intervals::resource_kind))
                .do_update()
                .set(intervals::interval_seconds.eq(seconds))
                .execute(conn)
                .await?;
        }
        None => {
            diesel::delete(intervals::table)
                .filter(intervals::org_id.eq(org))
                .filter(intervals::resource_kind.eq(kind.as_str()))
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}
