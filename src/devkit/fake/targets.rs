//! Things for health probes to reach: an HTTP server and a TCP listener on 127.0.0.1, each up or
//! down, set by hand or flipping on a timer. `stackgate demo` points its fake web services at
//! HTTP targets and its fake databases at TCP targets (see [`super::Script::web_urls`]).
//!
//! - HTTP: always listening; `GET` anything answers 200 `ok` when up, 503 when down.
//! - TCP: when up, accepts connections (and closes them at once); when down, does not listen at
//!   all, so a connect is refused. It listens again on the same port when it comes back up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Http,
    Tcp,
}

/// A running target; dropping it stops it.
pub struct ProbeTarget {
    kind: TargetKind,
    addr: SocketAddr,
    up: Arc<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("up", &self.is_up())
            .finish()
    }
}

impl ProbeTarget {
    /// An HTTP server on a free port of 127.0.0.1, up.
    pub async fn http() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(true);
        let router = axum::Router::new().fallback(move || {
            let up = *rx.borrow();
            async move {
                if up {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "probe target stopped");
            }
        });
        Ok(Self {
            kind: TargetKind::Http,
            addr,
            up: Arc::new(tx),
            tasks: vec![task],
        })
    }

    /// A TCP listener on a free port of 127.0.0.1, up.
    pub async fn tcp() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(true);
        let task = tokio::spawn(serve_tcp(addr, listener, rx));
        Ok(Self {
            kind: TargetKind::Tcp,
            addr,
            up: Arc::new(tx),
            tasks: vec![task],
        })
    }

    /// Flips between up and down every `period`, starting up.
    pub fn flipping(mut self, period: Duration) -> Self {
        let up = self.up.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                up.send_modify(|u| *u = !*u);
            }
        }));
        self
    }

    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/` for an HTTP target, `127.0.0.1:<port>` for a TCP one.
    pub fn url(&self) -> String {
        match self.kind {
            TargetKind::Http => format!("http://{}/", self.addr),
            TargetKind::Tcp => self.addr.to_string(),
        }
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for ProbeTarget {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Listens on `addr` while up (accepting and closing connections), not at all while down.
async fn serve_tcp(addr: SocketAddr, first: TcpListener, mut up: watch::Receiver<bool>) {
    let mut listener = Some(first);
    loop {
        let want = *up.borrow_and_update();
        if !want {
            listener = None;
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "probe target cannot listen yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        match &listener {
            Some(l) => {
                tokio::select! {
                    accepted = l.accept() => drop(accepted),
                    changed = up.changed() => if changed.is_err() { return },
                }
            }
            None => {
                if up.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn http_status(url: &str) -> Option<u16> {
        reqwest::get(url).await.ok().map(|r| r.status().as_u16())
    }

    async fn connects(addr: SocketAddr) -> bool {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    }

    #[tokio::test]
    async fn an_http_target_answers_200_when_up_and_503_when_down() {
        let target = ProbeTarget::http().await.expect("starts");
        assert_eq!(http_status(&target.url()).await, Some(200));
        target.set_up(false);
        assert_eq!(http_status(&target.url()).await, Some(503));
        target.set_up(true);
        assert_eq!(http_status(&target.url()).await, Some(200));
    }

    #[tokio::test]
    async fn a_tcp_target_refuses_connections_while_down() {
        let target = ProbeTarget::tcp().await.expect("starts");
        let addr = target.addr();
        assert!(connects(addr).await);
        target.set_up(false);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!connects(addr).await, "still listening while down");
        target.set_up(true);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(connects(addr).await, "not listening again on the same port");
        drop(target);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!connects(addr).await, "still listening after drop");
    }

    #[tokio::test]
    async fn a_flipping_target_goes_down_and_up_again() {
        let target = ProbeTarget::http()
            .await
            .expect("starts")
            .flipping(Duration::from_millis(100));
        let mut seen = Vec::new();
        for _ in 0..30 {
            seen.push(http_status(&target.url()).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let first_down = seen.iter().position(|s| *s == Some(503));
        let up_after = first_down.and_then(|i| seen[i..].iter().position(|s| *s == Some(200)));
        assert!(up_after.is_some(), "{seen:?}");
    }
}
