//! A private nats-server with JetStream for the NATS bus's tests: on 127.0.0.1, a free port and
//! a temporary store, killed (and the store removed) on drop; it can be killed and started again
//! on the same port and store, as a restart of the server would.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use stackgate::events::settings::{Bus, EventArgs};

use super::wait::{PATIENCE, wait_until};

/// Where Debian's `nats-server` package puts the server (tests/setup.sh installs it).
const BINARY: &str = "/usr/sbin/nats-server";

pub struct NatsServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub async fn start() -> Self {
        assert!(
            std::path::Path::new(BINARY).exists(),
            "{BINARY} is missing: the NATS bus's tests need Debian's `nats-server` package \
             (run tests/setup.sh as root, or `apt-get install nats-server`)"
        );
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stackgate-nats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("store directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.start_again().await;
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The event bus setting naming this server.
    pub fn bus(&self) -> Bus {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            events: EventArgs,
        }
        Args::parse_from(["test", "--event-bus", &self.url()])
            .events
            .bus
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and store; waits until it accepts connections.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.join("server.log")).expect("log file");
        let child = Command::new(BINARY)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.join("store"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_until("nats-server to accept connections", PATIENCE, async || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
