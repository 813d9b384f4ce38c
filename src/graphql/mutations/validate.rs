//! Input checks the mutations share, with the exact messages callers see: names, e-mail
//! addresses, optional ids, and the `NOT_FOUND` of something absent or invisible to the caller.
//!
//! Every failure here is `BAD_USER_INPUT` (or `NOT_FOUND` for [`not_found`]) and happens before
//! a mutation touches the database.

use async_graphql::ID;
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::ids;

/// Longest team, client, project and API key name.
pub const MAX_NAME: usize = 200;
/// Longest email (RFC 5321 path limit).
const MAX_EMAIL: usize = 320;

/// `NOT_FOUND`: no such `what`, or none the caller may see (the two are never told apart).
pub fn not_found(what: &str) -> ApiError {
    ApiError::NotFound(format!("no such {what}"))
}

/// A trimmed name of 1 to `max` characters.
pub fn valid_name(name: &str, max: usize) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(ApiError::BadUserInput(format!(
            "`name` must be 1 to {max} characters"
        )));
    }
    Ok(name)
}

/// A trimmed address with one `@` between non-empty parts; matched case-insensitively.
pub fn valid_email(email: &str) -> Result<&str, ApiError> {
    let email = email.trim();
    let ok = email.len() <= MAX_EMAIL
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !email.chars().any(char::is_whitespace);
    if !ok {
        return Err(ApiError::BadUserInput(
            "`email` is not an email address".into(),
        ));
    }
    Ok(email)
}

/// The slug rule of the database's check constraint, checked first for a clear message.
pub fn valid_slug(slug: &str) -> Result<&str, ApiError> {
    let bytes = slug.as_bytes();
    let ok = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !bytes[0].is_ascii_uppercase();
    if !ok {
        return Err(ApiError::BadUserInput(
            "`slug` must be 1 to 63 lowercase letters, digits or dashes, starting with a letter or digit".into(),
        ));
    }
    Ok(slug)
}

/// An optional global id of `type_name`, decoded.
pub fn optional_id(id: Option<&ID>, type_name: &str) -> Result<Option<Uuid>, ApiError> {
    id.map(|id| ids::decode_as(id, type_name)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_names_are_checked() {
        assert_eq!(valid_email(" a@b.test ").ok(), Some("a@b.test"));
        for bad in [
            "",
            "ab",
            "@b",
            "a@",
            "a@b@c",
            "a b@c",
            &format!("{}@b", "a".repeat(320)),
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
        assert_eq!(valid_name(" Ops ", 64).ok(), Some("Ops"));
        assert!(valid_name(" ", 64).is_err());
        assert!(valid_name(&"r".repeat(65), 64).is_err());
        assert!(valid_name(&"é".repeat(64), 64).is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_name("  Site ", MAX_NAME).ok(), Some("Site"));
        assert!(valid_name("   ", MAX_NAME).is_err());
        assert!(valid_name(&"x".repeat(201), MAX_NAME).is_err());
    }

    #[test]
    fn slugs_follow_the_database_rule() {
        for good in ["a", "web-1", "0abc", &"a".repeat(63)] {
            assert!(valid_slug(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "Web", "a_b", "a b", "é", &"a".repeat(64)] {
            assert!(valid_slug(bad).is_err(), "{bad}");
        }
    }
}
