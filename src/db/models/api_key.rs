//! `api_keys`: tokens `sg_<prefix>_<secret>` that act as their user in one organization.
//!
//! `prefix` finds the row; only the SHA-256 of the secret is stored, so the token is shown once,
//! when it is created, and never again.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::Rng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::api_keys;

/// Characters of a prefix (lowercase, so a prefix reads the same everywhere).
const PREFIX_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Characters of a secret.
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const PREFIX_LEN: usize = 10;
pub const SECRET_LEN: usize = 40;
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: &str = "5 minutes";

/// An API key as its owner and the organization's admins see it (never its hash).
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The key runs only documents of the trusted documents manifest.
    pub trusted_documents_only: bool,
}

/// What authentication needs to verify a presented key and act as its user.
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKeyAuth {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub trusted_documents_only: bool,
}

/// A freshly generated key: the token to hand out once, and what is stored of it.
pub struct GeneratedKey {
    pub prefix: String,
    /// `sg_<prefix>_<secret>`.
    pub token: SecretString,
    pub secret_hash: Vec<u8>,
}

/// A new key's row.
#[derive(Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub expires_at: Option<DateTime<Utc>>,
    pub trusted_documents_only: bool,
}

/// A random prefix and secret from the thread's CSPRNG (ChaCha, seeded by the OS).
pub fn generate() -> GeneratedKey {
    let prefix = random_string(PREFIX_CHARS, PREFIX_LEN);
    let secret = random_string(SECRET_CHARS, SECRET_LEN);
    GeneratedKey {
        secret_hash: hash_secret(&secret),
        token: SecretString::from(format!("sg_{prefix}_{secret}")),
        prefix,
    }
}

fn random_string(chars: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(chars[rng.random_range(0..chars.len())]))
        .collect()
}

/// The stored form of a secret: its SHA-256 (the secret has ~238 random bits, so no salt or
/// slow hash is needed).
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// True when `secret` hashes to `stored`, compared in constant time.
pub fn verify_secret(secret: &str, stored: &[u8]) -> bool {
    let hash = hash_secret(secret);
    hash.len() == stored.len() && hash.iter().zip(stored).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

/// Splits `sg_<prefix>_<secret>` into prefix and secret; `None` unless both have the generated
/// form (so a JWT or garbage is never looked up).
pub fn parse_key(token: &str) -> Option<(&str, &str)> {
    let (prefix, secret) = token.strip_prefix("sg_")?.split_once('_')?;
    let well_formed =
        |s: &str, len: usize, chars: &[u8]| s.len() == len && s.bytes().all(|b| chars.contains(&b));
    (well_formed(prefix, PREFIX_LEN, PREFIX_CHARS) && well_formed(secret, SECRET_LEN, SECRET_CHARS))
        .then_some((prefix, secret))
}

/// Stores a new key.
pub async fn create(conn: &mut AsyncPgConnection, new: NewApiKey<'_>) -> Result<ApiKey, DbError> {
    Ok(diesel::insert_into(api_keys::table)
        .values(new)
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await?)
}

/// A key of `org_id` by id.
pub async fn find(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::org_id.eq(org_id))
        .filter(api_keys::id.eq(id))
        .select(ApiKey::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Revokes a key; false when it was already revoked.
pub async fn revoke(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    let revoked = diesel::update(api_keys::table)
        .filter(api_keys::id.eq(id))
        .filter(api_keys::revoked_at.is_null())
        .set(api_keys::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(revoked == 1)
}

/// Revokes every live key `user_id` holds in `org_id` (when they leave it).
pub async fn revoke_all_of_user(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<usize, DbError> {
    Ok(diesel::update(api_keys::table)
        .filter(api_keys::org_id.eq(org_id))
        .filter(api_keys::user_id.eq(user_id))
        .filter(api_keys::revoked_at.is_null())
        .set(api_keys::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?)
}

/// The key with `prefix`, before any organization is known: sets `stackgate.api_key_prefix`
/// (row-level security's `api_keys_by_prefix`) for the current transaction, in a transaction or
/// savepoint of its own so the setting never outlives the caller's transaction.
pub async fn find_for_auth(
    conn: &mut AsyncPgConnection,
    prefix: &str,
) -> Result<Option<ApiKeyAuth>, DbError> {
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::sql_query("select set_config('stackgate.api_key_prefix', $1, true)")
            .bind::<Text, _>(prefix)
            .execute(conn)
            .await?;
        Ok(api_keys::table
            .filter(api_keys::prefix.eq(prefix))
            .select(ApiKeyAuth::as_select())
            .first(conn)
            .await
            .optional()?)
    })
    .await
}

/// Records a use of key `id` when its `last_used_at` is unset or older than five minutes, so
/// requests do not write on every call. Runs in a transaction scoped to the key's organization
/// (row-level security lets the app update only that organization's keys). True when written.
pub async fn touch(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    let written = diesel::sql_query(format!(
        "update api_keys set last_used_at = now() \
          where id = $1 and (last_used_at is null or last_used_at < now() - interval '{TOUCH_EVERY}')"
    ))
    .bind::<diesel::sql_types::Uuid, _>(id)
    .execute(conn)
    .await?;
    Ok(written == 1)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_keys_parse_and_verify() {
        let key = generate();
        let token = key.token.expose_secret();
        let (prefix, secret) = parse_key(token).expect("parses");
        assert_eq!(prefix, key.prefix);
        assert_eq!((prefix.len(), secret.len()), (PREFIX_LEN, SECRET_LEN));
        assert!(prefix.bytes().all(|b| PREFIX_CHARS.contains(&b)));
        assert!(verify_secret(secret, &key.secret_hash));
        assert!(!verify_secret("wrong", &key.secret_hash));
        assert_ne!(generate().prefix, key.prefix);
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let secret = "a".repeat(SECRET_LEN);
        for bad in [
            String::new(),
            "eyJhbGciOiJIUzI1NiJ9.e30.x".to_owned(),
            format!("sg_abcdefghij{secret}"),
            format!("sk_abcdefghij_{secret}"),
            format!("sg_ABCDEFGHIJ_{secret}"),
            format!("sg_abcdefghi_{secret}"),
            format!("sg_abcdefghij_{secret}x"),
            format!("sg_abcdefghij_{}_", "a".repeat(SECRET_LEN - 1)),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
        assert!(parse_key(&format!("sg_abcdefghij_{secret}")).is_some());
    }
}
