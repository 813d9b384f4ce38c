//! Adversarial tests: tokens (row I, item 8). A JWT an hour from valid was accepted, and tokens
//! carrying `aud`, as every identity provider's do, were refused as "malformed". Here: the time
//! claims, issuer and audience over both transports, and RS/ES keys from a JWKS file or URL,
//! including a provider rotating its key and a flood of made-up `kid`s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use stackgate::auth::jwks::JwksSource;
use stackgate::config::Config;

use crate::auth::keypair;
use crate::fixtures;
use crate::harness::wait::{PATIENCE, wait_for};
use crate::harness::ws::{Ws, bearer};
use crate::harness::{JWT_SECRET, TestApp};

const VIEWER: &str = "{ viewer { organization { slug } } }";
const RSA: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
const EC: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

async fn app_with_alice(adjust: impl FnOnce(&mut Config)) -> TestApp {
    fixtures::with_alice(TestApp::spawn_with(adjust).await)
        .await
        .0
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Alice's claims (`sub`, `exp` in ten minutes, `iat` now) with `extra` merged over them.
fn claims(extra: Value) -> Value {
    let mut claims = json!({ "sub": "alice", "exp": now() + 600, "iat": now() });
    let fields = claims.as_object_mut().expect("object");
    for (name, value) in extra.as_object().expect("object") {
        if value.is_null() {
            fields.remove(name);
        } else {
            fields.insert(name.clone(), value.clone());
        }
    }
    claims
}

fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// An HS256 token signed with the test server's secret.
fn hs256(extra: Value) -> String {
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    sign(Algorithm::HS256, &key, None, &claims(extra))
}

/// The active organization's slug over HTTP, or the error's code and message.
async fn over_http(app: &TestApp, token: &str) -> Result<String, (String, String)> {
    let (_, body) = app.graphql(Some(token), VIEWER, json!({})).await;
    match body["data"]["viewer"]["organization"]["slug"].as_str() {
        Some(slug) => Ok(slug.to_owned()),
        None => Err((
            body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("<no code>")
                .to_owned(),
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )),
    }
}

/// Asserts an HTTP refusal with `UNAUTHENTICATED` whose message mentions `why`.
async fn refused(app: &TestApp, token: &str, why: &str) {
    match over_http(app, token).await {
        Err((code, message)) => {
            assert_eq!(code, "UNAUTHENTICATED", "{message}");
            assert!(message.contains(why), "`{message}` should mention {why}");
        }
        Ok(slug) => panic!("accepted (acting in {slug}); expected a refusal for {why}"),
    }
}

/// The viewer query over `graphql-transport-ws` with `token` in `connection_init`: the slug, or
/// why not (a refused `connection_init` included).
async fn over_ws(app: &TestApp, token: &str) -> Result<String, String> {
    let mut ws = Ws::connect(app).await;
    let answer = ws
        .init(bearer(token))
        .await
        .ok_or("closed at connection_init")?;
    if answer["type"] != "connection_ack" {
        return Err(answer.to_string());
    }
    ws.subscribe(VIEWER, json!({})).await;
    let message = ws.message().await.ok_or("closed at connection_init")?;
    match message["type"].as_str() {
        Some("next") => {
            let payload = &message["payload"];
            payload["data"]["viewer"]["organization"]["slug"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| payload["errors"][0]["extensions"]["code"].to_string())
        }
        Some("error") => Err(message["payload"][0]["extensions"]["code"].to_string()),
        _ => Err(message.to_string()),
    }
}

/// Row I: a token whose `nbf` is an hour ahead was accepted. Now it is refused over HTTP and
/// WebSocket, and so is one issued (`iat`) in the future and one without `exp`; skew within the
/// leeway still passes.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_not_yet_valid_or_issued_in_the_future_are_refused() {
    let app = app_with_alice(|_| {}).await;
    let not_yet = hs256(json!({ "nbf": now() + 3600 }));
    refused(&app, &not_yet, "not valid yet").await;
    assert!(over_ws(&app, &not_yet).await.is_err());

    let from_the_future = hs256(json!({ "iat": now() + 3600 }));
    refused(&app, &from_the_future, "issued in the future").await;
    assert!(over_ws(&app, &from_the_future).await.is_err());

    refused(&app, &hs256(json!({ "exp": null })), "required claim").await;

    let skewed = hs256(json!({ "nbf": now() + 10, "iat": now() + 10 }));
    assert_eq!(over_http(&app, &skewed).await, Ok("acme".to_owned()));
    assert_eq!(over_ws(&app, &skewed).await, Ok("acme".to_owned()));
}

/// Row I: identity providers' tokens carry `aud`. With no audience configured it is not checked
/// (it was refused as "malformed"), whether a string or an array.
#[tokio::test(flavor = "multi_thread")]
async fn aud_is_accepted_when_no_audience_is_configured() {
    let app = app_with_alice(|_| {}).await;
    for aud in [json!("https://api.idp.localhost"), json!(["a", "b"])] {
        let token = hs256(json!({ "aud": aud, "iss": "https://idp.localhost" }));
        assert_eq!(
            over_http(&app, &token).await,
            Ok("acme".to_owned()),
            "{aud}"
        );
        assert_eq!(over_ws(&app, &token).await, Ok("acme".to_owned()), "{aud}");
    }
}

/// Row I, item 8: with `STACKGATE_JWT_AUDIENCE` set, `aud` (a string or an array) must name one
/// of the configured audiences, and a token without it is refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_configured_audience_is_enforced() {
    let app = app_with_alice(|c| {
        c.security.jwt.audience = vec!["stackgate".into(), "dashboard".into()];
    })
    .await;
    for aud in [json!("stackgate"), json!(["other", "dashboard"])] {
        let token = hs256(json!({ "aud": aud }));
        assert_eq!(
            over_http(&app, &token).await,
            Ok("acme".to_owned()),
            "{aud}"
        );
    }
    assert_eq!(
        over_ws(&app, &hs256(json!({ "aud": "dashboard" }))).await,
        Ok("acme".to_owned())
    );
    for aud in [json!("other"), json!(["a", "b"]), json!([])] {
        refused(&app, &hs256(json!({ "aud": aud })), "audience").await;
    }
    refused(&app, &hs256(json!({})), "(aud)").await;
    assert!(
        over_ws(&app, &hs256(json!({ "aud": "other" })))
            .await
            .is_err()
    );
}

/// Item 8: with `STACKGATE_JWT_ISSUER` set, `iss` must be it; a token without `iss` (such as one
/// minted without the setting) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_configured_issuer_is_enforced() {
    let issuer = "https://idp.localhost/";
    let app = app_with_alice(|c| c.security.jwt.issuer = Some(issuer.into())).await;
    let token = hs256(json!({ "iss": issuer }));
    assert_eq!(over_http(&app, &token).await, Ok("acme".to_owned()));
    assert_eq!(over_ws(&app, &token).await, Ok("acme".to_owned()));
    refused(
        &app,
        &hs256(json!({ "iss": "https://evil.localhost/" })),
        "issuer",
    )
    .await;
    refused(&app, &app.token("alice", None), "(iss)").await;
    assert!(over_ws(&app, &app.token("alice", None)).await.is_err());
}

/// The public JWK of `private` (PKCS#8 PEM) for `algorithm`, named `kid`.
fn jwk(private: &[u8], algorithm: Algorithm, kid: &str) -> Value {
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(private),
        _ => EncodingKey::from_rsa_pem(private),
    }
    .expect("private key");
    let mut jwk = Jwk::from_encoding_key(&key, algorithm).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("json")
}

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Item 8: RS256 and ES256 keys from a JWKS file, chosen by `kid`. A key verifies only its own
/// algorithm; unknown `kid`s, tokens naming none, `none` and an HS256 token keyed with the
/// public key are refused; a JWKS file that cannot be read stops start-up.
#[tokio::test(flavor = "multi_thread")]
async fn jwks_file_keys_verify_by_kid() {
    let (rsa_private, rsa_public) = keypair(RSA);
    let (ec_private, _) = keypair(EC);
    let path = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4().simple()));
    let document = jwks(&[
        jwk(&rsa_private, Algorithm::RS256, "rsa-1"),
        jwk(&ec_private, Algorithm::ES256, "ec-1"),
    ]);
    std::fs::write(&path, document).expect("write JWKS");
    let source = JwksSource::File(path.clone());
    let app = app_with_alice(|c| c.security.jwt.jwks = Some(source)).await;
    let rsa = EncodingKey::from_rsa_pem(&rsa_private).expect("rsa");
    let ec = EncodingKey::from_ec_pem(&ec_private).expect("ec");
    let alice = claims(json!({}));

    let rs256 = sign(Algorithm::RS256, &rsa, Some("rsa-1"), &alice);
    let es256 = sign(Algorithm::ES256, &ec, Some("ec-1"), &alice);
    assert_eq!(over_http(&app, &rs256).await, Ok("acme".to_owned()));
    assert_eq!(over_http(&app, &es256).await, Ok("acme".to_owned()));
    assert_eq!(over_ws(&app, &es256).await, Ok("acme".to_owned()));

    let wrong_family = sign(Algorithm::ES256, &ec, Some("rsa-1"), &alice);
    refused(&app, &wrong_family, "does not match").await;
    let unknown = sign(Algorithm::RS256, &rsa, Some("rsa-2"), &alice);
    refused(&app, &unknown, "unknown key").await;
    refused(&app, &sign(Algorithm::RS256, &rsa, None, &alice), "no key").await;
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&rsa_public),
        Some("rsa-1"),
        &alice,
    );
    refused(&app, &confused, "signature").await;
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "kid": "rsa-1" })),
        b64(&alice)
    );
    refused(&app, &none, "malformed").await;

    std::fs::remove_file(&path).expect("remove JWKS");
    let mut config = app.config.clone();
    config.security.jwt.jwks = Some(JwksSource::File(path));
    let started = stackgate::server::start(config).await;
    let error = started.err().expect("a missing JWKS file stops start-up");
    assert!(
        format!("{error:#}").contains("STACKGATE_JWT_JWKS"),
        "{error:#}"
    );
}

/// A fake identity provider on 127.0.0.1 publishing a JWKS document and counting its fetches.
struct FakeIdp {
    fetches: AtomicUsize,
    /// What the first fetch gets, if it differs from `document`.
    first: Mutex<Option<String>>,
    document: Mutex<String>,
}

impl FakeIdp {
    async fn start(document: String, first: Option<String>) -> (Arc<Self>, JwksSource) {
        use axum::extract::State;
        let idp = Arc::new(Self {
            fetches: AtomicUsize::new(0),
            first: Mutex::new(first),
            document: Mutex::new(document),
        });
        let serve = async |State(idp): State<Arc<FakeIdp>>| {
            idp.fetches.fetch_add(1, Ordering::SeqCst);
            let first = idp.first.lock().expect("lock").take();
            let body = first.unwrap_or_else(|| idp.document.lock().expect("lock").clone());
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        };
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", axum::routing::get(serve))
            .with_state(idp.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (idp, JwksSource::parse(&url).expect("url"))
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Waits for the server's start-up fetch.
    async fn wait_for_fetches(&self, n: usize) {
        wait_for(&format!("{n} fetches"), PATIENCE, async || {
            let fetches = self.fetches();
            (fetches >= n)
                .then_some(())
                .ok_or(format!("{fetches} fetches"))
        })
        .await;
    }

    fn publish(&self, document: String) {
        *self.document.lock().expect("lock") = document;
    }
}

/// Item 8: JWKS from a URL, fetched at start-up. When the provider rotates its key, the first
/// token naming the new `kid` makes one refresh and is accepted; the withdrawn key then no longer
/// verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_jwks_key_is_picked_up_by_one_refresh() {
    let ((old_private, _), (new_private, _)) = (keypair(EC), keypair(EC));
    let (idp, source) =
        FakeIdp::start(jwks(&[jwk(&old_private, Algorithm::ES256, "k1")]), None).await;
    let app = app_with_alice(|c| c.security.jwt.jwks = Some(source)).await;
    idp.wait_for_fetches(1).await;
    let alice = claims(json!({}));
    let old = EncodingKey::from_ec_pem(&old_private).expect("ec");
    let new = EncodingKey::from_ec_pem(&new_private).expect("ec");

    let with_old = sign(Algorithm::ES256, &old, Some("k1"), &alice);
    assert_eq!(over_http(&app, &with_old).await, Ok("acme".to_owned()));
    assert_eq!(idp.fetches(), 1, "a known kid needs no fetch");

    idp.publish(jwks(&[jwk(&new_private, Algorithm::ES256, "k2")]));
    let with_new = sign(Algorithm::ES256, &new, Some("k2"), &alice);
    assert_eq!(over_http(&app, &with_new).await, Ok("acme".to_owned()));
    assert_eq!(idp.fetches(), 2, "one refresh for the new kid");
    assert_eq!(over_ws(&app, &with_new).await, Ok("acme".to_owned()));

    refused(&app, &with_old, "unknown key").await;
    assert_eq!(idp.fetches(), 2, "no second refresh within the period");
}

/// Item 8: a flood of tokens naming made-up `kid`s, 50 at once and more after, costs the
/// provider one fetch per refresh period, not one per token.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_unknown_kids_costs_one_jwks_fetch_per_period() {
    let (private, _) = keypair(EC);
    let (idp, source) = FakeIdp::start(jwks(&[jwk(&private, Algorithm::ES256, "k1")]), None).await;
    let app = app_with_alice(|c| c.security.jwt.jwks = Some(source)).await;
    idp.wait_for_fetches(1).await;
    let key = EncodingKey::from_ec_pem(&private).expect("ec");
    let alice = claims(json!({}));

    let flood = (0..50).map(|_| {
        let kid = uuid::Uuid::new_v4().to_string();
        let token = sign(Algorithm::ES256, &key, Some(&kid), &alice);
        let app = &app;
        async move { over_http(app, &token).await }
    });
    for outcome in futures_util::future::join_all(flood).await {
        let (code, message) = outcome.expect_err("made-up kid refused");
        assert_eq!(code, "UNAUTHENTICATED", "{message}");
    }
    assert_eq!(idp.fetches(), 2, "50 concurrent unknown kids: one fetch");
    for _ in 0..20 {
        let kid = uuid::Uuid::new_v4().to_string();
        refused(
            &app,
            &sign(Algorithm::ES256, &key, Some(&kid), &alice),
            "unknown key",
        )
        .await;
    }
    assert_eq!(idp.fetches(), 2, "none more within the period");

    let known = sign(Algorithm::ES256, &key, Some("k1"), &alice);
    assert_eq!(over_http(&app, &known).await, Ok("acme".to_owned()));
}

/// Item 8: a JWKS URL that fails at start-up (here: a document over the size cap) does not stop
/// the server; it is fetched again when a token first needs a key.
#[tokio::test(flavor = "multi_thread")]
async fn a_jwks_url_failing_at_start_is_fetched_again_on_demand() {
    let (private, _) = keypair(EC);
    let key_jwk = jwk(&private, Algorithm::ES256, "k1");
    let padding = json!({ "kty": "other", "kid": "pad", "x": "a".repeat(300 * 1024) });
    let oversized = jwks(&[key_jwk.clone(), padding]);
    let (idp, source) = FakeIdp::start(jwks(&[key_jwk]), Some(oversized)).await;
    let app = app_with_alice(|c| c.security.jwt.jwks = Some(source)).await;
    idp.wait_for_fetches(1).await;

    let key = EncodingKey::from_ec_pem(&private).expect("ec");
    let token = sign(Algorithm::ES256, &key, Some("k1"), &claims(json!({})));
    assert_eq!(over_http(&app, &token).await, Ok("acme".to_owned()));
    assert_eq!(
        idp.fetches(),
        2,
        "the oversized document was refused, so k1 needed a second fetch"
    );
}
