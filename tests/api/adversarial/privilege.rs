//! Adversarial tests: privilege (item 9). The server logged in as the schema owner and dropped to
//! `stackgate_app` with `SET ROLE`, which any statement that reaches the database could undo with
//! `RESET ROLE`. Now its pools log in as a role that owns nothing, is no superuser and lacks
//! BYPASSRLS; the owner's URL is for migrations and admin commands only.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use stackgate::db::{LOGIN_ROLE, build_pool};

use crate::fixtures;
use crate::harness::wait::{exit_of, wait_for};
use crate::harness::{JWT_SECRET, TestApp, TestDb};

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Login {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    superuser: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    bypass_rls: bool,
}

/// The distinct roles of `conn`'s database's backends named `stackgate*` (the server's pools and
/// its event listener), and whether the listener is among them.
async fn server_logins(conn: &mut AsyncPgConnection) -> (Vec<String>, bool) {
    let names: Vec<Name> = diesel::sql_query(
        "select distinct usename::text || '/' || application_name as name from pg_stat_activity
         where datname = current_database() and application_name like 'stackgate%'",
    )
    .load(conn)
    .await
    .expect("pg_stat_activity");
    let listening = names.iter().any(|n| n.name.ends_with("/stackgate-events"));
    let mut roles: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.name.split_once('/').map(|(role, _)| role.to_owned()))
        .collect();
    roles.sort();
    roles.dedup();
    (roles, listening)
}

/// Item 9: on a connection made with the serving pool's settings, `RESET ROLE` lands on the
/// login role (no superuser, no BYPASSRLS), which cannot become the owner, write the append-only
/// audit log, change the schema or switch row-level security off.
#[tokio::test(flavor = "multi_thread")]
async fn the_serving_login_cannot_reset_its_way_to_the_owner() {
    let app = TestApp::spawn().await;
    let owner: Name = diesel::sql_query(
        "select tableowner::text as name from pg_tables where tablename = 'audit_logs'",
    )
    .get_result(&mut app.db.owner().await)
    .await
    .expect("owner");
    let pool = build_pool(&app.config.database_url, 1).expect("pool");
    let mut conn = pool.get().await.expect("connection");
    conn.batch_execute("RESET ROLE").await.expect("reset");
    let login: Login = diesel::sql_query(
        "select current_user::text as name, rolsuper as superuser, rolbypassrls as bypass_rls
         from pg_roles where rolname = current_user",
    )
    .get_result(&mut *conn)
    .await
    .expect("who");
    assert_eq!(login.name, LOGIN_ROLE, "the login role, not {}", owner.name);
    assert!(!login.superuser && !login.bypass_rls);

    for sql in [
        format!("SET ROLE \"{}\"", owner.name),
        format!("SET SESSION AUTHORIZATION \"{}\"", owner.name),
        "UPDATE audit_logs SET message = 'rewritten'".to_owned(),
        "DELETE FROM audit_logs".to_owned(),
        "ALTER TABLE organizations ADD COLUMN pwned int".to_owned(),
        "ALTER TABLE projects DISABLE ROW LEVEL SECURITY".to_owned(),
        "CREATE TABLE pwned (id int)".to_owned(),
        format!("ALTER ROLE {LOGIN_ROLE} BYPASSRLS"),
        "SET row_security = off; SELECT 1 FROM projects".to_owned(),
    ] {
        let outcome = conn.batch_execute(&sql).await;
        assert!(outcome.is_err(), "`{sql}` must fail for {LOGIN_ROLE}");
    }
}

/// Item 9: the server still serves queries and mutations, and every connection of its pools
/// and of its event listener (with the scheduler and health monitor running) logs in as the
/// login role, never as the owner.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_as_the_login_role_only() {
    let app = TestApp::spawn_with(|c| {
        c.run_scheduler = true;
        c.run_health = true;
    })
    .await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    let token = app.token("alice", None);
    let create = "mutation { createProject(input: { name: \"Site\", slug: \"site\" }) { slug } }";
    let (_, body) = app.graphql(Some(&token), create, json!({})).await;
    assert_eq!(body["data"]["createProject"]["slug"], "site", "{body}");
    let list = "{ viewer { organization { projects { nodes { slug } } } } }";
    let (_, body) = app.graphql(Some(&token), list, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["projects"]["nodes"][0]["slug"], "site",
        "{body}"
    );
    let (roles, listening) = server_logins(&mut conn).await;
    assert!(listening, "the event listener is connected");
    assert_eq!(roles, [LOGIN_ROLE]);
}

/// `stackgate serve` run in the background, its stderr collected.
struct Served {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Collects stderr until its end (the process's exit).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stackgate"));
        command
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("DATABASE_URL")
            .env_remove("STACKGATE_APP_DATABASE_URL")
            .env("STACKGATE_JWT_SECRET", JWT_SECRET)
            .env("STACKGATE_HEALTH_MONITOR", "false")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("stackgate starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let collected = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                collected.lock().expect("lock").push(line);
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Waits until a line of stderr contains `text` (true), or the process exits (false).
    async fn wait_for(&mut self, text: &str) -> bool {
        let what = format!("`{text}` in the log, or an exit");
        let exited = wait_for(&what, Duration::from_secs(60), async || {
            if self.log().contains(text) {
                return Ok(false);
            }
            match self.child.try_wait().expect("wait") {
                Some(_) => Ok(true),
                None => Err(self.log()),
            }
        })
        .await;
        if exited && let Some(reader) = self.reader.take() {
            // The log is whole once its reader has reached the end of stderr.
            reader.join().expect("log reader");
        }
        self.log().contains(text)
    }

    fn log(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        exit_of(&mut self.child, Duration::from_secs(30));
    }
}

/// Item 9: `serve` with both URLs logs in with STACKGATE_APP_DATABASE_URL only; with only the
/// owner's URL it still serves, and warns once that this is not least privilege; an app URL that
/// could escape row-level security (here: the owner's) stops start-up.
#[tokio::test(flavor = "multi_thread")]
async fn serve_uses_the_app_url_and_warns_or_refuses_without_a_safe_one() {
    let db = TestDb::migrated().await;
    let owner = db.url().expose_secret().to_owned();
    let app = db.app_url().expose_secret().to_owned();
    let warning = "STACKGATE_APP_DATABASE_URL is unset";

    let mut served = Served::start(
        &["serve"],
        &[
            ("DATABASE_URL", &owner),
            ("STACKGATE_APP_DATABASE_URL", &app),
        ],
    );
    assert!(served.wait_for("serving").await, "{}", served.log());
    assert!(!served.log().contains(warning), "{}", served.log());
    let (roles, listening) = server_logins(&mut db.owner().await).await;
    assert!(listening && roles == [LOGIN_ROLE], "{roles:?}");
    served.stop();

    let mut served = Served::start(&["serve"], &[("DATABASE_URL", &owner)]);
    assert!(served.wait_for("serving").await, "{}", served.log());
    assert_eq!(served.log().matches(warning).count(), 1, "{}", served.log());
    served.stop();

    let mut refused = Served::start(
        &["serve"],
        &[
            ("DATABASE_URL", &owner),
            ("STACKGATE_APP_DATABASE_URL", &owner),
        ],
    );
    assert!(!refused.wait_for("serving").await, "{}", refused.log());
    assert!(!refused.child.wait().expect("exit").success());
    let log = refused.log();
    assert!(
        log.contains("STACKGATE_APP_DATABASE_URL logs in as"),
        "{log}"
    );
    assert!(
        !log.contains(&owner),
        "the URL (a secret) is not printed: {log}"
    );
}

/// Item 9: `serve` on the private cluster makes its own login role, with a random password kept
/// beside the superuser's (mode 600), and serves through it alone.
#[tokio::test(flavor = "multi_thread")]
async fn serve_on_the_private_cluster_logs_in_as_its_login_role() {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::cli::tempdir("stackgate-privilege");
    let mut served = Served::start(&["serve", "--data-dir", dir.to_str().expect("path")], &[]);
    assert!(served.wait_for("serving").await, "{}", served.log());
    assert!(!served.log().contains("STACKGATE_APP_DATABASE_URL"));

    let pg = dir.join("pg");
    let mode = std::fs::metadata(pg.join("server-password"))
        .expect("server-password kept")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(pg.join("password")).expect("password");
    let pid_file = std::fs::read_to_string(pg.join("data/postmaster.pid")).expect("pid file");
    let port = pid_file.lines().nth(3).expect("port line").trim();
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{port}/stackgate",
        password.trim()
    );
    let mut conn = stackgate::db::connect_owner(&SecretString::from(url))
        .await
        .expect("superuser connection");
    let (roles, listening) = server_logins(&mut conn).await;
    assert!(listening && roles == [LOGIN_ROLE], "{roles:?}");
    drop(conn);
    served.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
