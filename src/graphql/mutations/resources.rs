//! `setResourceTags`: the tags people give a resource. Needs resources FULL organization-wide
//! (team roles reach resources through granted docks, but tags are shared by every viewer of the
//! resource, so a team may not relabel what the organization sees).

use std::sync::Arc;

use async_graphql::{Context, ID, Object};

use super::{Act, audited, org_full};
use crate::auth::permissions::Area;
use crate::db::models::resource;
use crate::error::ApiError;
use crate::events::{self, ChangeEvent, Event};
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::resource::ResourceInterface;
use crate::graphql::types::resource_filter::{MAX_TAGS, normalize_tags};

#[derive(Default)]
pub struct ResourceMutations;

#[Object]
impl ResourceMutations {
    /// Replaces a resource's tags with `tags` (sorted, duplicates dropped; an empty list clears
    /// them) and returns the resource. Each tag is 1 to 64 characters of letters, digits and
    /// `-_.:/=+@`, at most 32 per resource; sync never changes them. Needs resources FULL;
    /// `NOT_FOUND` for a resource the viewer cannot see; `BAD_USER_INPUT` for a bad tag.
    async fn set_resource_tags(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The resource's id (a server, web service, domain or database).")]
        resource_id: ID,
        #[graphql(desc = "Every tag the resource should carry (at most 32).")] tags: Vec<String>,
    ) -> async_graphql::Result<ResourceInterface> {
        // Bounded before anything else is looked at: a caller cannot make us sort a huge list.
        if tags.len() > MAX_TAGS * 4 {
            return Err(ApiError::BadUserInput(format!(
                "a resource carries at most {MAX_TAGS} tags"
            ))
            .into());
        }
        let tags = normalize_tags(&tags)?;
        let (kind, id) = ids::decode_resource(&resource_id)?;
        let viewer = viewer(ctx)?;
        let (org, visibility) = (viewer.organization.id, viewer.visibility());
        let act = Act {
            area: Area::Resources,
            action: "resource.set_tags",
            target_type: "Resource",
            target_id: Some(id),
        };
        let row = audited(ctx, act, org_full(ctx, Area::Resources)?, async |conn| {
            let visible = resource::by_ids(conn, kind, &[id])
                .await?
                .into_iter()
                .any(|r| visibility.sees_resource(r.common.id, r.common.dock_id));
            if !visible || !resource::set_tags(conn, kind, id, &tags).await? {
                return Err(ApiError::NotFound("no such resource".into()));
            }
            let event = Event::Change(ChangeEvent {
                org_id: org,
                table: "resources".into(),
                id,
            });
            events::publish(conn, &event).await?;
            let row = resource::by_ids(conn, kind, &[id]).await?.pop();
            Ok((
                row.ok_or_else(|| ApiError::NotFound("no such resource".into()))?,
                None,
            ))
        })
        .await?;
        Ok(ResourceInterface::from_row(Arc::new(row)))
    }
}
