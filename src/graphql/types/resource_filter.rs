//! `ResourceFilter` and the arguments every resource list takes, and the rules of tags: apart
//! from the lists themselves so that any list (a project's links too) can read them.

use async_graphql::{ID, InputObject};

use crate::db::models::resource::{Filter, Kind, Match};
use crate::error::ApiError;
use crate::graphql::enums::{HealthState, ResourceKind, ResourceStatus, words};
use crate::graphql::ids;

/// The most values one list of a [`ResourceFilter`] may hold.
pub const MAX_FILTER_VALUES: usize = 50;
/// The longest `search` text.
pub const MAX_SEARCH_CHARS: usize = 100;
/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 32;
/// The longest tag.
pub const MAX_TAG_CHARS: usize = 64;

/// Which resources a list keeps. Every field given must hold; a list field matches any of its
/// values, except `tags`, all of which must be present. Each list holds at most 50 values.
#[derive(InputObject, Clone, Debug, Default, PartialEq)]
pub struct ResourceFilter {
    /// Only resources of these kinds.
    pub kinds: Option<Vec<ResourceKind>>,
    /// Only resources in one of these statuses.
    pub status: Option<Vec<ResourceStatus>>,
    /// Only resources in one of these health states.
    pub health: Option<Vec<HealthState>>,
    /// Only resources of these providers (`digitalocean`, `linode`, `vercel`, ...).
    pub providers: Option<Vec<String>>,
    /// Only resources synced through these docks (ids of docks the viewer cannot see match
    /// nothing).
    pub docks: Option<Vec<ID>>,
    /// Only resources carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// Only resources whose name contains this text, ignoring case (at most 100 characters).
    pub search: Option<String>,
}

/// The arguments a resource list takes, read the same way by its resolver and by the primer
/// of a list above it, so both ask the loader for the same key.
#[derive(Clone, Debug, Default)]
pub struct ListArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub kinds: Option<Vec<ResourceKind>>,
    pub status: Option<Vec<ResourceStatus>>,
    pub health: Option<Vec<HealthState>>,
    pub filter: Option<ResourceFilter>,
}

impl ListArgs {
    /// The arguments of a `resources` selection (`None` when one does not parse; its resolver
    /// then reports the error).
    pub fn of_selection(selection: &async_graphql::SelectionField<'_>) -> Option<ListArgs> {
        use async_graphql::{InputType, Value};
        let mut args = ListArgs::default();
        for (name, value) in selection.arguments().ok()? {
            if value == Value::Null {
                continue;
            }
            let value = Some(value);
            match name.as_str() {
                "first" => args.first = Some(i32::parse(value).ok()?),
                "after" => args.after = Some(String::parse(value).ok()?),
                "kinds" => args.kinds = Some(Vec::parse(value).ok()?),
                "status" => args.status = Some(Vec::parse(value).ok()?),
                "health" => args.health = Some(Vec::parse(value).ok()?),
                "filter" => args.filter = Some(ResourceFilter::parse(value).ok()?),
                _ => {}
            }
        }
        Some(args)
    }

    /// The kinds to keep (stored words) and what else must match: the arguments and `filter`
    /// together. `BAD_USER_INPUT` for a list over 50 values, a malformed tag or a long search.
    pub fn matching(&self) -> Result<(Option<Vec<String>>, Match), ApiError> {
        let empty = ResourceFilter::default();
        let filter = self.filter.as_ref().unwrap_or(&empty);
        let kinds = both(&self.kinds, &filter.kinds, "kinds")?
            .map(|k| words(&k, |kind| Kind::from(kind).as_str()));
        let status = both(&self.status, &filter.status, "status")?
            .map(|s| words(&s, ResourceStatus::as_str));
        let health =
            both(&self.health, &filter.health, "health")?.map(|h| words(&h, HealthState::as_str));
        let providers = bounded(&filter.providers, "providers")?
            .map(|p| p.iter().map(|p| p.to_ascii_lowercase()).collect());
        let docks = match bounded(&filter.docks, "docks")? {
            Some(docks) => Some(
                docks
                    .iter()
                    .map(|id| ids::decode_as(id, "Dock"))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let tags = match bounded(&filter.tags, "tags")? {
            Some(tags) => Some(normalize_tags(tags)?),
            None => None,
        };
        let search = match filter.search.as_deref().map(str::trim) {
            Some(text) if text.chars().count() > MAX_SEARCH_CHARS => {
                return Err(ApiError::BadUserInput(format!(
                    "`filter.search` is at most {MAX_SEARCH_CHARS} characters"
                )));
            }
            Some("") | None => None,
            Some(text) => Some(text.to_owned()),
        };
        let matching = Match {
            status,
            health,
            providers,
            docks,
            tags,
            search,
        };
        Ok((kinds, matching))
    }

    /// The database filter of a resource page (its window is set by the list).
    pub fn page_filter(&self) -> Result<Filter, ApiError> {
        let (kinds, matching) = self.matching()?;
        Ok(Filter {
            kinds,
            matching,
            ..Filter::default()
        })
    }
}

/// A list given both as an argument and in `filter`: the values in both.
fn both<T: Copy + PartialEq>(
    argument: &Option<Vec<T>>,
    filter: &Option<Vec<T>>,
    name: &str,
) -> Result<Option<Vec<T>>, ApiError> {
    let argument = bounded(argument, name)?;
    let filter = bounded(filter, name)?;
    Ok(match (argument, filter) {
        (Some(a), Some(f)) => Some(a.iter().copied().filter(|v| f.contains(v)).collect()),
        (a, f) => a.or(f).cloned(),
    })
}

/// `BAD_USER_INPUT` for a filter list over [`MAX_FILTER_VALUES`].
fn bounded<'a, T>(list: &'a Option<Vec<T>>, name: &str) -> Result<Option<&'a Vec<T>>, ApiError> {
    match list {
        Some(values) if values.len() > MAX_FILTER_VALUES => Err(ApiError::BadUserInput(format!(
            "`{name}` holds at most {MAX_FILTER_VALUES} values"
        ))),
        other => Ok(other.as_ref()),
    }
}

/// Checks and orders tags: each 1 to 64 characters of ASCII letters, digits and `-_.:/=+@`
/// (case kept); duplicates dropped; at most 32. `BAD_USER_INPUT` names the first bad tag
/// (shortened).
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let ok = (1..=MAX_TAG_CHARS).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/=+@".contains(&b));
        if !ok {
            let shown: String = tag.chars().take(MAX_TAG_CHARS).collect();
            return Err(ApiError::BadUserInput(format!(
                "tag `{}` must be 1 to {MAX_TAG_CHARS} characters of letters, digits and -_.:/=+@",
                shown.escape_debug()
            )));
        }
        out.push(tag.clone());
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        return Err(ApiError::BadUserInput(format!(
            "a resource carries at most {MAX_TAGS} tags"
        )));
    }
    Ok(out)
}
