//! `stackgate serve` as a child process (the built binary), for tests that kill a replica.
//!
//! The process starts with a clean environment holding only what the test gives it, listens on
//! a free port of 127.0.0.1, and is killed (SIGKILL) and reaped when its handle is dropped, so a
//! failing test leaves no process behind. Its log is kept for the failure message.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_stackgate");

/// A running `stackgate serve`.
pub struct ServeProcess {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts `stackgate serve` named `name` (its `HOSTNAME`, the first part of its lease owner)
    /// with `env` on top of a clean environment, and waits until it listens.
    pub fn start(name: &str, env: &[(&str, String)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOSTNAME", name)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env("STACKGATE_LISTEN", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("stackgate serve starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = serving_addr(&line) {
                    let _ = addr_tx.send(addr);
                }
                lines.lock().expect("log").push(line);
            }
        });
        let mut this = Self {
            name: name.to_owned(),
            addr: "127.0.0.1:0".parse().expect("addr"),
            child,
            log,
        };
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => this.addr = addr,
            Err(_) => panic!("{name} did not start serving:\n{}", this.log_text()),
        }
        this
    }

    /// Kills the process at once (SIGKILL: no shutdown, no lease released) and reaps it.
    pub fn kill_hard(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// Stops the process as an operator would (SIGTERM: a graceful shutdown) and waits for it
    /// to exit, at most 20 s (then it is killed).
    pub async fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{} did not stop on SIGTERM:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// The address of `serve`'s start-up line (`… serving addr=127.0.0.1:PORT`).
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("serving addr=")?;
    rest.split_whitespace().next()?.parse().ok()
}
