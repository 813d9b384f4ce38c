//! Authentication: every failure gets its code, never a 500; the happy path picks the right org.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use stackgate::auth::jwt::JwtKeys;

use crate::fixtures;
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
