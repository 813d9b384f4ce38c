//! Headless Chromium opens GraphiQL served with local assets (no CDN), runs the viewer query with
//! the prefilled token, and sees the answer. `tests/setup.sh` installs what this needs.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use stackgate::auth::jwt::JwtKeys;

use crate::fixtures;
use crate::harness::{JWT_SECRET, TestApp};

fn assets_dir() -> PathBuf {
    std::env::var_os("STACKGATE_GRAPHIQL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/graphiql-assets"
            ))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_runs_the_viewer_query_in_chromium() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let assets = assets_dir();
    let ready = assets.join("graphiql.min.js").is_file()
        && root
            .join("tests/browser/node_modules/playwright-core")
            .is_dir()
        && std::path::Path::new("/usr/bin/chromium").is_file();
    assert!(
        ready,
        "the browser test needs chromium, playwright-core and GraphiQL's assets: run `bash tests/setup.sh`"
    );

    let token = JwtKeys::hs256(&SecretString::from(JWT_SECRET.to_owned()))
        .mint("alice", Some("acme"), 3600)
        .expect("mint");
    let app = TestApp::spawn_with(|c| {
        c.graphiql_assets = Some(assets);
        c.graphiql_headers = Some(token);
    })
    .await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;

    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/graphiql.mjs"))
        .arg(app.url("/graphql"))
        .arg("acme")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("browser finished in time")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("\"slug\": \"acme\"") || stdout.contains("\"slug\":\"acme\""),
        "{stdout}"
    );
}
