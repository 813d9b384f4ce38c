//! Bounded waits on a state: a test polls the condition it needs until it holds or a deadline
//! passes, and fails saying what never happened. Tests synchronise with these (or with an event
//! they read), never with a fixed sleep.

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen at once (10 s).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Between two looks at the condition.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Ok`, for at most `limit`; panics naming `what` and the last
/// `Err` (what was seen instead) otherwise.
pub async fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `condition` until it holds, for at most `limit`; panics naming `what` otherwise.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    wait_for(what, limit, async || {
        condition().await.then_some(()).ok_or_else(String::new)
    })
    .await;
}

/// Waits (blocking the thread) until `child` exits, for at most `limit`; its exit status.
pub fn exit_of(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {limit:?}"
        );
        std::thread::sleep(POLL);
    }
}
