//! A private PostgreSQL cluster started from the system's binaries (`docs/configuration.md`).
//!
//! Used by `stackgate demo`/`serve`/`migrate` when no `DATABASE_URL` is given, and by the test
//! harness. PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
//! The cluster listens on a free loopback port only, with a random password kept in the data
//! directory, and is stopped with `pg_ctl -m fast stop` when this value is dropped. The server's
//! pools log in as a separate role, [`crate::db::LOGIN_ROLE`], whose random password is kept
//! beside the superuser's ([`EmbeddedPostgres::serving_url`]).

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid, User};
use secrecy::SecretString;

/// Why the cluster could not be started; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL's server binaries (initdb, pg_ctl) were not found on PATH or in \
         /usr/lib/postgresql/*/bin: install them (Debian/Ubuntu: `apt-get install postgresql`) \
         or set DATABASE_URL to an existing PostgreSQL server"
    )]
    NotInstalled,
    #[error(
        "running as root, but there is no `postgres` user to run PostgreSQL as: create one \
         (`useradd --system postgres`) or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the `postgres` user cannot write to {0}: PostgreSQL runs as that user when stackgate runs as \
         root, so pick a --data-dir it can reach (for example under /var/lib or /tmp)"
    )]
    Unreachable(PathBuf),
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How the cluster is tuned.
#[derive(Clone, Copy, Debug, Default)]
pub struct Durability {
    /// Throwaway clusters (tests): no fsync, no full-page writes. Fast, unsafe on a crash.
    pub ephemeral: bool,
}

/// A running private cluster. Dropping it stops the server.
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    pg_dir: PathBuf,
    port: u16,
    password: SecretString,
    run_as: Option<(Uid, Gid)>,
    running: bool,
}

impl std::fmt::Debug for EmbeddedPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPostgres")
            .field("pg_dir", &self.pg_dir)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl EmbeddedPostgres {
    /// Finds a directory with `initdb` and `pg_ctl`: `explicit` if given (and only it), else PATH,
    /// else the newest `/usr/lib/postgresql/<version>/bin`.
    pub fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
        let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
        if let Some(dir) = explicit {
            return if has_tools(dir) {
                Ok(dir.to_owned())
            } else {
                Err(EmbeddedError::NotInstalled)
            };
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .find(|dir| has_tools(dir));
        if let Some(dir) = on_path {
            return Ok(dir);
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .filter(|(_, dir)| has_tools(dir))
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, dir)| dir)
            .ok_or(EmbeddedError::NotInstalled)
    }

    /// Starts (initializing on first use) the cluster kept under `data_dir`, with the binaries
    /// in `bin_dir` (or found by [`EmbeddedPostgres::find_bin_dir`]). Blocking.
    pub fn start(
        data_dir: &Path,
        bin_dir: Option<&Path>,
        durability: Durability,
    ) -> Result<Self, EmbeddedError> {
        let bin_dir = Self::find_bin_dir(bin_dir)?;
        let run_as = postgres_user_if_root()?;
        let pg_dir = prepare_dir(data_dir, run_as)?;
        let mut cluster = Self {
            bin_dir,
            pg_dir,
            port: 0,
            password: SecretString::from(String::new()),
            run_as,
            running: false,
        };
        cluster.password = cluster.init_if_needed(durability)?;
        cluster.stop_stale();
        cluster.start_server(durability)?;
        Ok(cluster)
    }

    /// Starts a streaming standby of this cluster under `data_dir`: `pg_basebackup -R` (which
    /// writes `primary_conninfo` and `standby.signal`) from the system's binaries, then the
    /// standby on another free loopback port, read-only (hot standby) and replaying this
    /// cluster's WAL. It shares the superuser's and the serving role's passwords. Blocking.
    pub fn start_standby(&self, data_dir: &Path) -> Result<Self, EmbeddedError> {
        use secrecy::ExposeSecret;
        let pg_dir = prepare_dir(data_dir, self.run_as)?;
        let mut standby = Self {
            bin_dir: self.bin_dir.clone(),
            pg_dir,
            port: 0,
            password: self.password.clone(),
            run_as: self.run_as,
            running: false,
        };
        for file in ["password", "server-password"] {
            if let Ok(contents) = fs::read_to_string(self.pg_dir.join(file)) {
                write_private(&standby.pg_dir.join(file), contents.trim(), self.run_as).map_err(
                    |e| EmbeddedError::Step {
                        step: "copying the passwords to the standby",
                        detail: e.to_string(),
                    },
                )?;
            }
        }
        let mut cmd = Command::new(self.tool("pg_basebackup"));
        cmd.arg("-D")
            .arg(standby.data())
            .args([
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .env("PGPASSWORD", self.password.expose_secret());
        standby.run(cmd, "pg_basebackup")?;
        standby.start_server(Durability { ephemeral: true })?;
        Ok(standby)
    }

    /// A PostgreSQL tool beside `pg_ctl`: in the binaries' directory, else where `pg_ctl` links
    /// to (a PATH directory may hold links to `initdb` and `pg_ctl` alone).
    fn tool(&self, name: &str) -> PathBuf {
        let beside = self.bin_dir.join(name);
        if beside.is_file() {
            return beside;
        }
        fs::canonicalize(self.bin_dir.join("pg_ctl"))
            .ok()
            .and_then(|ctl| ctl.parent().map(|dir| dir.join(name)))
            .unwrap_or(beside)
    }

    /// The URL of database `dbname` as the cluster's superuser.
    pub fn url(&self, dbname: &str) -> SecretString {
        use secrecy::ExposeSecret;
        SecretString::from(format!(
            "postgres://postgres:{}@127.0.0.1:{}/{dbname}",
            self.password.expose_secret(),
            self.port
        ))
    }

    /// The URL of database `dbname` as [`crate::db::LOGIN_ROLE`], the role the server's pools
    /// log in as: created (or its password reset) through the superuser, its random password
    /// made on first use and kept in `<data-dir>/pg/server-password` (mode 600).
    pub async fn serving_url(&self, dbname: &str) -> Result<SecretString, EmbeddedError> {
        let password = self.serving_password()?;
        crate::db::ensure_login_role(&self.url("postgres"), &password)
            .await
            .map_err(|e| EmbeddedError::Step {
                step: "creating the serving login role",
                detail: e.to_string(),
            })?;
        Ok(self.login_url(&password, dbname))
    }

    /// [`EmbeddedPostgres::serving_url`] of a standby (read-only: the role comes from its
    /// primary, which must have made it first).
    pub fn standby_serving_url(&self, dbname: &str) -> Result<SecretString, EmbeddedError> {
        Ok(self.login_url(&self.serving_password()?, dbname))
    }

    fn login_url(&self, password: &SecretString, dbname: &str) -> SecretString {
        use secrecy::ExposeSecret;
        SecretString::from(format!(
            "postgres://{}:{}@127.0.0.1:{}/{dbname}",
            crate::db::LOGIN_ROLE,
            password.expose_secret(),
            self.port
        ))
    }

    fn serving_password(&self) -> Result<SecretString, EmbeddedError> {
        let path = self.pg_dir.join("server-password");
        if let Ok(password) = fs::read_to_string(&path) {
            return Ok(SecretString::from(password.trim().to_owned()));
        }
        let password = random_password();
        write_private(&path, &password, self.run_as)?;
        Ok(SecretString::from(password))
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open sessions are ended). Idempotent.
    pub fn stop(&mut self) -> Result<(), EmbeddedError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.pg_ctl(&["-m", "fast", "-w", "stop"], "stopping PostgreSQL")
    }

    /// Makes the cluster stop, and its directory vanish, once process `pid` has exited — for test
    /// runs, whose statics are never dropped.
    pub fn stop_and_remove_when_process_exits(
        &mut self,
        pid: u32,
        remove: &Path,
    ) -> Result<(), EmbeddedError> {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; '{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
            self.bin_dir.join("pg_ctl").display(),
            self.data().display(),
            remove.display()
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.command_setup(&mut cmd);
        cmd.spawn()?;
        self.running = false;
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.pg_dir.join("data")
    }

    fn init_if_needed(&self, durability: Durability) -> Result<SecretString, EmbeddedError> {
        let pwfile = self.pg_dir.join("password");
        if self.data().join("PG_VERSION").is_file() {
            let password = fs::read_to_string(&pwfile)?;
            return Ok(SecretString::from(password.trim().to_owned()));
        }
        let password = random_password();
        write_private(&pwfile, &password, self.run_as)?;
        let mut cmd = Command::new(self.bin_dir.join("initdb"));
        cmd.arg("-D").arg(self.data());
        cmd.args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth=scram-sha-256",
        ]);
        cmd.arg(format!("--pwfile={}", pwfile.display()));
        if durability.ephemeral {
            cmd.arg("--no-sync");
        }
        self.run(cmd, "initdb")?;
        Ok(SecretString::from(password))
    }

    /// A crashed earlier run may have left a server behind: stop it so this run owns the port.
    fn stop_stale(&self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self.pg_ctl(&["-m", "fast", "-w", "stop"], "stopping a stale PostgreSQL");
        }
    }

    fn start_server(&mut self, durability: Durability) -> Result<(), EmbeddedError> {
        let mut last_error = None;
        for _ in 0..3 {
            self.port = free_port()?;
            let mut options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='' -c max_connections=200",
                self.port
            );
            if durability.ephemeral {
                options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
            }
            let log = self.pg_dir.join("server.log");
            let log = log.to_string_lossy();
            match self.pg_ctl(
                &["-w", "-t", "60", "-l", &log, "-o", &options, "start"],
                "starting PostgreSQL",
            ) {
                Ok(()) => {
                    self.running = true;
                    return Ok(());
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(EmbeddedError::NotInstalled))
    }

    fn pg_ctl(&self, args: &[&str], step: &'static str) -> Result<(), EmbeddedError> {
        let mut cmd = Command::new(self.bin_dir.join("pg_ctl"));
        cmd.arg("-D").arg(self.data()).args(args);
        self.run(cmd, step)
    }

    /// Runs a PostgreSQL tool as the cluster's user, in its own process group (so a terminal's
    /// Ctrl-C reaches us, and we stop the server in order).
    fn run(&self, mut cmd: Command, step: &'static str) -> Result<(), EmbeddedError> {
        self.command_setup(&mut cmd);
        let output = cmd.stdin(Stdio::null()).output()?;
        if output.status.success() {
            return Ok(());
        }
        let log = fs::read_to_string(self.pg_dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let detail = format!(
            "{}{}\n{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        Err(EmbeddedError::Step {
            step,
            detail: detail.trim().to_owned(),
        })
    }

    fn command_setup(&self, cmd: &mut Command) {
        cmd.process_group(0).current_dir(&self.pg_dir);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "could not stop the private PostgreSQL cluster");
        }
    }
}

fn postgres_user_if_root() -> Result<Option<(Uid, Gid)>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(EmbeddedError::NoPostgresUser),
    }
}

/// Creates `<data_dir>/pg` owned by the cluster's user; returns its absolute path.
fn prepare_dir(data_dir: &Path, run_as: Option<(Uid, Gid)>) -> Result<PathBuf, EmbeddedError> {
    let pg_dir = data_dir.join("pg");
    fs::create_dir_all(&pg_dir)?;
    let pg_dir = pg_dir.canonicalize()?;
    fs::set_permissions(&pg_dir, fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = run_as {
        nix::unistd::chown(&pg_dir, Some(uid), Some(gid)).map_err(|e| EmbeddedError::Step {
            step: "chown of the data directory",
            detail: e.to_string(),
        })?;
        let reachable = Command::new("test")
            .arg("-w")
            .arg(&pg_dir)
            .uid(uid.as_raw())
            .gid(gid.as_raw())
            .status()
            .is_ok_and(|s| s.success());
        if !reachable {
            return Err(EmbeddedError::Unreachable(pg_dir));
        }
    }
    Ok(pg_dir)
}

fn write_private(
    path: &Path,
    contents: &str,
    run_as: Option<(Uid, Gid)>,
) -> Result<(), EmbeddedError> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    if let Some((uid, gid)) = run_as {
        nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|e| EmbeddedError::Step {
            step: "chown of the password file",
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_password() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

/// Creates database `name` in the private cluster unless it exists.
pub async fn ensure_database(cluster: &EmbeddedPostgres, name: &str) -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = crate::db::connect_owner(&cluster.url("postgres")).await?;
    match conn
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
    {
        Err(e) if !e.to_string().contains("already exists") => Err(e.into()),
        _ => Ok(()),
    }
}
