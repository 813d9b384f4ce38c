//! The `stackgate` binary: schema, token, a missing PostgreSQL, and the demo end to end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::SecretString;
use stackgate::auth::jwt::JwtKeys;

use crate::harness::wait::exit_of;

const BIN: &str = env!("CARGO_BIN_EXE_stackgate");

fn stackgate(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("STACKGATE_JWT_SECRET")
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn schema_command_prints_the_committed_sdl() {
    let output = stackgate(&["schema"]).output().expect("runs");
    assert!(output.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        committed,
        "run `stackgate schema > schema.graphql`"
    );
    assert_eq!(stackgate::graphql::sdl(), committed);
}

#[tokio::test]
async fn token_command_mints_a_verifiable_jwt() {
    let secret = "cli-secret-cli-secret-cli-secret-cli";
    let output = stackgate(&["token", "--user", "alice", "--org", "acme", "--ttl", "5m"])
        .env("STACKGATE_JWT_SECRET", secret)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let claims = JwtKeys::hs256(&SecretString::from(secret.to_owned()))
        .verify(&token)
        .await
        .expect("valid");
    assert_eq!(
        (claims.sub.as_str(), claims.org.as_deref()),
        ("alice", Some("acme"))
    );
    assert!((claims.exp - chrono::Utc::now().timestamp() - 300).abs() < 10);

    let output = stackgate(&["token", "--user", "alice"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("STACKGATE_JWT_SECRET"));
}

#[test]
fn demo_without_postgresql_says_what_to_do() {
    let dir = std::env::temp_dir().join(format!("stackgate-nopg-{}", std::process::id()));
    let output = stackgate(&["demo", "--data-dir", dir.to_str().expect("path")])
        .env("STACKGATE_POSTGRES_BIN", "/nonexistent")
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("install") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `stackgate demo` on its own private cluster: prints a token that answers the viewer query
/// with `acme`, and stops PostgreSQL on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn demo_serves_acme_and_stops_cleanly() {
    let dir = tempdir("stackgate-demo");
    let mut child = stackgate(&[
        "demo",
        "--data-dir",
        dir.to_str().expect("path"),
        "--listen",
        "127.0.0.1:0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (url, token) = tokio::task::spawn_blocking(move || read_banner(stdout))
        .await
        .expect("banner");
    let body: serde_json::Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&serde_json::json!({ "query": "{ viewer { organization { slug } } }" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "acme",
        "{body}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let status = exit_of(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(
        !dir.join("pg/data/postmaster.pid").exists(),
        "PostgreSQL was left running"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn read_banner(stdout: std::process::ChildStdout) -> (String, String) {
    let (mut url, mut token) = (None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("GraphiQL: ") {
            url = Some(rest.to_owned());
        }
        if let Some(rest) = line.strip_prefix("Authorization: Bearer ") {
            token = Some(rest.to_owned());
            break;
        }
    }
    (
        url.expect("GraphiQL URL printed"),
        token.expect("token printed"),
    )
}

/// A fresh directory under /tmp that the `postgres` user can traverse.
pub fn tempdir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    dir
}

/// As root, PostgreSQL runs as `postgres`, which must reach the data directory.
#[test]
fn an_unreachable_data_dir_is_explained() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let private = tempdir("stackgate-private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let output = stackgate(&[
        "migrate",
        "--data-dir",
        private.join("data").to_str().expect("path"),
    ])
    .output()
    .expect("runs");
    let _ = std::fs::remove_dir_all(&private);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to") && stderr.contains("--data-dir"),
        "{stderr}"
    );
}
