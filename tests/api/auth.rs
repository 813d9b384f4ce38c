//! Authentication: every failure gets its code, never a 500; the happy path picks the right org.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use stackgate::auth::jwt::JwtKeys;

use crate::fixtures;
use crate::harness::wait::wait_for;
use crate::harness::{TestApp, error_code};

const VIEWER: &str = "{ viewer { user { name } organization { slug } } }";

async fn app_with_members() -> TestApp {
    let app = TestApp::spawn().await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    let globex = fixtures::org(&mut conn, "globex").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    fixtures::member(&mut conn, &acme, "bob", "viewer").await;
    fixtures::member(&mut conn, &globex, "bob", "member").await;
    fixtures::user(&mut conn, "loner").await;
    app
}

/// Sends the viewer query with a raw Authorization value; returns status and body.
async fn with_header(
    app: &TestApp,
    authorization: &str,
    accept: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", authorization)
        .json(&json!({ "query": VIEWER }));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("sent");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_are_unauthenticated() {
    let app = app_with_members().await;
    let other_key = JwtKeys::hs256(&secrecy::SecretString::from(
        "another-secret-another-secret-another".to_owned(),
    ));
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"alice","exp":9999999999}"#)
    );
    let cases = [
        ("Basic YWxpY2U6cHc=".to_owned(), "malformed"),
        ("Bearer".to_owned(), "malformed"),
        ("Bearer not-a-jwt".to_owned(), "malformed"),
        (
            format!(
                "Bearer {}",
                other_key.mint("alice", None, 60).expect("mint")
            ),
            "signature",
        ),
        (
            format!(
                "Bearer {}",
                app.jwt.mint("alice", None, -120).expect("mint")
            ),
            "expired",
        ),
        (format!("Bearer {none_alg}"), "token"),
        (
            format!("Bearer {}", app.token("nobody", None)),
            "unknown user",
        ),
    ];
    for (header, why) in cases {
        let (status, body) = with_header(&app, &header, None).await;
        assert_eq!(status, 200, "{header}: {body}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{header}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(why),
            "{header}: `{message}` should mention {why}"
        );
        assert!(body.get("data").is_none_or(|d| d.is_null()), "{body}");
    }
    let (status, body) = app.graphql(None, VIEWER, json!({})).await;
    assert_eq!((status, error_code(&body)), (200, "UNAUTHENTICATED"));
    let (status, _) =
        with_header(&app, "Bearer x", Some("application/graphql-response+json")).await;
    assert_eq!(status, 401, "the newer media type gets a 401");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_members_are_forbidden() {
    let app = app_with_members().await;
    let (_, body) = app
        .graphql(Some(&app.token("loner", None)), VIEWER, json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, foreign) = app
        .graphql(Some(&app.token("alice", Some("globex"))), VIEWER, json!({}))
        .await;
    let (_, missing) = app
        .graphql(
            Some(&app.token("alice", Some("no-such-org"))),
            VIEWER,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&foreign), "FORBIDDEN");
    assert_eq!(
        error_code(&missing),
        "FORBIDDEN",
        "unknown and foreign orgs look alike"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_active_org_comes_from_claim_header_or_only_membership() {
    let app = app_with_members().await;
    let (_, body) = app
        .graphql(Some(&app.token("alice", None)), VIEWER, json!({}))
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "acme",
        "{body}"
    );

    let (_, body) = app
        .graphql(Some(&app.token("bob", None)), VIEWER, json!({}))
        .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "two memberships and no choice: {body}"
    );

    let (_, body) = app
        .graphql(Some(&app.token("bob", Some("globex"))), VIEWER, json!({}))
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "globex",
        "{body}"
    );

    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(app.token("bob", None))
        .header("x-org", "acme")
        .json(&json!({ "query": VIEWER }))
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "acme",
        "{body}"
    );
}

/// A PKCS#8 private key and its SPKI public key, made with openssl.
pub fn keypair(algorithm: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir =
        std::env::temp_dir().join(format!("stackgate-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let private = dir.join("private.pem");
    let made = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(algorithm)
        .arg("-out")
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl");
    assert!(public.status.success());
    let private = std::fs::read(&private).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    (private, public.stdout)
}

fn sign(algorithm: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey, sub: &str) -> String {
    let claims = json!({ "sub": sub, "org": "acme", "exp": chrono::Utc::now().timestamp() + 600 });
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, key).expect("sign")
}

#[tokio::test(flavor = "multi_thread")]
async fn rs256_and_es256_tokens_verify_against_the_public_key() {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let (rsa_private, rsa_public) =
        keypair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let (ec_private, ec_public) =
        keypair(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let rsa_key = EncodingKey::from_rsa_pem(&rsa_private).expect("rsa");
    let ec_key = EncodingKey::from_ec_pem(&ec_private).expect("ec");

    for (public, good, other) in [
        (
            rsa_public.clone(),
            sign(Algorithm::RS256, &rsa_key, "alice"),
            sign(Algorithm::ES256, &ec_key, "alice"),
        ),
        (
            ec_public.clone(),
            sign(Algorithm::ES256, &ec_key, "alice"),
            sign(Algorithm::RS256, &rsa_key, "alice"),
        ),
    ] {
        let app = TestApp::spawn_with(|c| c.jwt_public_key = Some(public.clone())).await;
        let mut conn = app.db.owner().await;
        let acme = fixtures::org(&mut conn, "acme").await;
        fixtures::member(&mut conn, &acme, "alice", "owner").await;

        let (_, body) = app.graphql(Some(&good), VIEWER, json!({})).await;
        assert_eq!(
            body["data"]["viewer"]["organization"]["slug"], "acme",
            "{body}"
        );
        let (_, body) = app.graphql(Some(&other), VIEWER, json!({})).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "a key of the other family: {body}"
        );

        // HS/RS confusion: an HS256 token whose HMAC key is the public key's PEM text.
        let confused = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(&public),
            "alice",
        );
        let (_, body) = app.graphql(Some(&confused), VIEWER, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }

    let hs_only = app_with_members().await;
    let (_, body) = hs_only
        .graphql(
            Some(&sign(Algorithm::RS256, &rsa_key, "alice")),
            VIEWER,
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "UNAUTHENTICATED",
        "no public key configured: {body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("algorithm"),
        "{body}"
    );
}

/// A resolved viewer is reused for the cache period, except that a committed access change
/// (here a removed membership) clears every replica's cache at once through the event bus.
#[tokio::test(flavor = "multi_thread")]
async fn resolved_viewers_are_reused_until_access_changes_or_the_period_ends() {
    use diesel_async::SimpleAsyncConnection;
    for ttl in [0, 4] {
        let app = TestApp::spawn_with(|c| c.auth_cache_seconds = ttl).await;
        let mut conn = app.db.owner().await;
        let acme = fixtures::org(&mut conn, "acme").await;
        fixtures::member(&mut conn, &acme, "alice", "owner").await;
        // The fixtures' access events clear the cache when they arrive, and a resolution under
        // way then is not kept: let them arrive first.
        app.settle_events().await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let token = app.token("alice", None);
        let (_, body) = app.graphql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(body["data"]["viewer"]["organization"]["slug"], "acme");

        // Without its trigger (as a restore or a manual fix might), the change publishes nothing:
        // only the cache period bounds it.
        conn.batch_execute(
            "set session_replication_role = replica; delete from memberships;
             set session_replication_role = origin;",
        )
        .await
        .expect("remove membership quietly");
        let (_, body) = app.graphql(Some(&token), VIEWER, json!({})).await;
        if ttl == 0 {
            assert_eq!(error_code(&body), "FORBIDDEN", "no cache: {body}");
            continue;
        }
        assert_eq!(
            body["data"]["viewer"]["organization"]["slug"], "acme",
            "cached for {ttl}s: {body}"
        );
        // Waiting out the cache period is the behaviour under test: nothing else clears it.
        tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
        let (_, body) = app.graphql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "expired: {body}");
    }
}

/// Row A: a committed membership change reaches the viewer cache on commit, not after its period.
#[tokio::test(flavor = "multi_thread")]
async fn an_access_change_clears_cached_viewers_on_every_replica() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn_with(|c| c.auth_cache_seconds = 3600).await;
    let replica = app.replica().await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    let token = app.token("alice", None);
    let replica_url = format!("http://{}/graphql", replica.addr);
    let ask = |url: String| {
        let client = app.client.clone();
        let token = token.clone();
        async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": VIEWER }))
                .send()
                .await
                .expect("sent");
            response.json::<serde_json::Value>().await.expect("json")
        }
    };
    for url in [app.url("/graphql"), replica_url.clone()] {
        let body = ask(url).await;
        assert_eq!(
            body["data"]["viewer"]["organization"]["slug"], "acme",
            "{body}"
        );
    }
    conn.batch_execute("delete from memberships")
        .await
        .expect("remove membership");
    for url in [app.url("/graphql"), replica_url] {
        wait_for(
            "the membership change to clear the cache",
            Duration::from_secs(5),
            async || {
                let body = ask(url.clone()).await;
                (error_code(&body) == "FORBIDDEN")
                    .then_some(())
                    .ok_or(format!("still served from a cache of an hour: {body}"))
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_authenticate_until_revoked() {
    let app = app_with_members().await;
    let owner = app.token("alice", None);
    let create = "mutation { createApiKey(name: \"ci\") { secret apiKey { id prefix } } }";
    let (_, body) = app.graphql(Some(&owner), create, json!({})).await;
    let secret = body["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let id = body["data"]["createApiKey"]["apiKey"]["id"].clone();

    let (_, body) = app.graphql(Some(&secret), VIEWER, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "acme",
        "{body}"
    );
    assert_eq!(body["data"]["viewer"]["user"]["name"], "alice");

    let mut wrong = secret.clone();
    wrong.pop();
    wrong.push(if secret.ends_with('a') { 'b' } else { 'a' });
    for bad in [wrong.as_str(), "sg_short_x", "sg_"] {
        let (_, body) = app.graphql(Some(bad), VIEWER, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{bad}: {body}");
    }
    let elsewhere = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&secret)
        .header("x-org", "globex")
        .json(&json!({ "query": VIEWER }))
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = elsewhere.json().await.expect("json");
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "a key acts in its own org only: {body}"
    );

    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Used {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        used: bool,
    }
    let used: Used =
        diesel::sql_query("select bool_and(last_used_at is not null) as used from api_keys")
            .get_result(&mut app.db.owner().await)
            .await
            .expect("used");
    assert!(used.used, "use is recorded");

    diesel::sql_query("update api_keys set expires_at = now() - interval '1 minute'")
        .execute(&mut app.db.owner().await)
        .await
        .expect("expire");
    let (_, body) = app.graphql(Some(&secret), VIEWER, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "expired: {body}");
    assert!(body.to_string().contains("expired"), "{body}");
    diesel::sql_query("update api_keys set expires_at = null")
        .execute(&mut app.db.owner().await)
        .await
        .expect("renew");
    let (_, body) = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { revokeApiKey(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["revokeApiKey"], true, "{body}");
    let (_, body) = app.graphql(Some(&secret), VIEWER, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "revoked: {body}");
}
