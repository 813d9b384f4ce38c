//! The periodic replica check: how far behind each replica is, measured in time.
//!
//! Each round samples the primary's WAL insert position, keeping the samples of the last
//! `max_lag` and a little more, and reads every replica's replay position. A replica's lag is the
//! age of the oldest sample it has not replayed: zero when it has replayed the newest one. This
//! measures time behind the primary even when the primary is idle (unlike
//! `pg_last_xact_replay_timestamp()`), to the resolution of a round.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use std::sync::Weak;

use super::{Inner, Lsn, ReadSettings, Replica, Standing, replay_position, write_position};
use crate::db::Pool;

/// The longest one replica's check may take; longer is down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks the replicas of `inner` against `primary` every [`ReadSettings::check_every`] until
/// they are dropped. The first round runs at once: no replica serves before it.
pub(super) fn start(inner: Weak<Inner>, settings: ReadSettings, primary: Pool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = settings.check_every();
        let keep = settings.max_lag + every * 2;
        let mut samples = Samples::default();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            match sample_primary(&primary).await {
                Some(lsn) => samples.push(Instant::now(), lsn, keep),
                None => tracing::debug!("could not read the primary's WAL position"),
            }
            for replica in &inner.replicas {
                check(replica, &samples, settings.max_lag).await;
            }
        }
    })
}

async fn sample_primary(primary: &Pool) -> Option<Lsn> {
    let mut conn = primary.get().await.ok()?;
    tokio::time::timeout(CHECK_TIMEOUT, write_position(&mut conn))
        .await
        .ok()?
        .ok()?
}

/// One replica's check: down when it does not answer or is not a standby, lagging when its lag
/// exceeds `max_lag`, else in use.
async fn check(replica: &Replica, samples: &Samples, max_lag: Duration) {
    let label = replica.index.to_string();
    let replayed = async {
        let mut conn = replica.pool.get().await.ok()?;
        match replay_position(&mut conn).await {
            Ok(position) => position,
            Err(_) => {
                let _ = diesel_async::pooled_connection::deadpool::Object::take(conn);
                None
            }
        }
    };
    let Ok(Some(replayed)) = tokio::time::timeout(CHECK_TIMEOUT, replayed).await else {
        replica.set_standing(Standing::Down);
        return;
    };
    replica.saw_replayed(replayed);
    let lag = samples.lag(replayed, Instant::now());
    replica
        .lag_ms
        .store(lag.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    metrics::gauge!("stackgate_read_replica_lag_seconds", "replica" => label)
        .set(lag.as_secs_f64());
    replica.set_standing(if lag > max_lag {
        Standing::Lagging
    } else {
        Standing::InUse
    });
}

/// The primary's recent write positions, oldest first.
#[derive(Default)]
struct Samples(VecDeque<(Instant, Lsn)>);

impl Samples {
    /// Records a sample and forgets those older than `keep` (always keeping the newest).
    fn push(&mut self, at: Instant, lsn: Lsn, keep: Duration) {
        self.0.push_back((at, lsn));
        while self.0.len() > 1 && self.0.front().is_some_and(|(t, _)| at - *t > keep) {
            self.0.pop_front();
        }
    }

    /// How long ago the primary had written past `replayed`: the age of the oldest sample beyond
    /// it; zero when none is.
    fn lag(&self, replayed: Lsn, now: Instant) -> Duration {
        self.0
            .iter()
            .find(|(_, lsn)| *lsn > replayed)
            .map_or(Duration::ZERO, |(t, _)| now - *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_write_not_replayed() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(60);
        let mut samples = Samples::default();
        samples.push(t0, Lsn(100), keep);
        samples.push(t0 + Duration::from_secs(1), Lsn(200), keep);
        samples.push(t0 + Duration::from_secs(2), Lsn(200), keep);
        let now = t0 + Duration::from_secs(3);
        assert_eq!(samples.lag(Lsn(200), now), Duration::ZERO);
        assert_eq!(samples.lag(Lsn(150), now), Duration::from_secs(2));
        assert_eq!(samples.lag(Lsn(50), now), Duration::from_secs(3));
    }

    #[test]
    fn old_samples_are_forgotten_but_the_newest_kept() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(5);
        let mut samples = Samples::default();
        samples.push(t0, Lsn(1), keep);
        samples.push(t0 + Duration::from_secs(10), Lsn(2), keep);
        assert_eq!(samples.0.len(), 1);
        assert_eq!(
            samples.lag(Lsn(1), t0 + Duration::from_secs(11)),
            Duration::from_secs(1)
        );
    }
}
