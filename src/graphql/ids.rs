//! Global ids: opaque to clients, resolvable by `node(id:)`.
//!
//! An id is the URL-safe base64 of `<TypeName>:<uuid>`. Clients must not parse it; we may change
//! its form, so it is built and read only here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::db::models::resource::Kind;
use crate::error::ApiError;

/// Encodes the id of row `id` of GraphQL type `type_name`.
pub fn encode(type_name: &str, id: Uuid) -> async_graphql::ID {
    async_graphql::ID(URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}")))
}

/// Decodes any global id into its type name and uuid.
pub fn decode(id: &str) -> Result<(String, Uuid), ApiError> {
    let malformed = || ApiError::BadUserInput(format!("malformed id `{}`", truncate(id)));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let (type_name, uuid) = text.split_once(':').ok_or_else(malformed)?;
    let uuid = Uuid::parse_str(uuid).map_err(|_| malformed())?;
    Ok((type_name.to_owned(), uuid))
}

/// Decodes an id that must be of GraphQL type `type_name`; an id of another type is not found.
pub fn decode_as(id: &str, type_name: &str) -> Result<Uuid, ApiError> {
    match decode(id)? {
        (t, uuid) if t == type_name => Ok(uuid),
        _ => Err(ApiError::NotFound(format!(
            "no {type_name} with id `{}`",
            truncate(id)
        ))),
    }
}

/// Decodes a resource's id (a `Server`, `WebService`, `Domain` or `Database`) into its kind and
/// uuid; ids of other types name no resource.
pub fn decode_resource(id: &str) -> Result<(Kind, Uuid), ApiError> {
    let (type_name, uuid) = decode(id)?;
    let kind = kind_of_type(&type_name)
        .ok_or_else(|| ApiError::NotFound(format!("no resource with id `{}`", truncate(id))))?;
    Ok((kind, uuid))
}

/// The GraphQL type name of a resource kind (and of its global ids).
pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "Server",
        Kind::WebService => "WebService",
        Kind::Domain => "Domain",
        Kind::Database => "Database",
    }
}

/// The kind whose GraphQL type is `name`.
pub fn kind_of_type(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| type_name(*k) == name)
}

fn truncate(id: &str) -> &str {
    id.get(..64).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_opaque() {
        let uuid = Uuid::new_v4();
        let id = encode("Organization", uuid);
        assert!(!id.contains(&uuid.to_string()));
        assert_eq!(
            decode(&id).expect("decodes"),
            ("Organization".to_owned(), uuid)
        );
        assert_eq!(decode_as(&id, "Organization").expect("typed"), uuid);
        assert!(matches!(decode_as(&id, "User"), Err(ApiError::NotFound(_))));
    }

    #[test]
    fn garbage_is_bad_input() {
        for bad in [
            "",
            "!!!",
            "bm9jb2xvbg",
            &URL_SAFE_NO_PAD.encode("User:not-a-uuid"),
        ] {
            assert!(
                matches!(decode(bad), Err(ApiError::BadUserInput(_))),
                "{bad}"
            );
        }
    }
}
