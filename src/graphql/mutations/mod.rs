//! The mutation roots, one module per area, merged into `Mutation`.
//!
//! Every mutation checks FULL on its area, runs in its own transaction in the viewer's scope, and
//! maps database refusals to stable codes (unique → `CONFLICT`, missing reference → `NOT_FOUND`).

pub mod project;

use async_graphql::MergedObject;

use crate::db::DbError;
use crate::error::ApiError;

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(project::ProjectMutations);

/// Maps a database refusal to its client-facing code; anything else is internal.
pub fn refusal(err: DbError, conflict: &str, missing: &str) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match &err {
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            ApiError::Conflict(conflict.into())
        }
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
            ApiError::NotFound(missing.into())
        }
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::CheckViolation, _)) => {
            ApiError::BadUserInput("the value is not allowed".into())
        }
        _ => ApiError::from(err),
    }
}
