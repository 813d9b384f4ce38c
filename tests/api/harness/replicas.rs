//! A primary and a streaming standby of the test's own (`pg_basebackup -R` from the system's
//! binaries, both on 127.0.0.1), and a server whose reads go to the standby. A test may pause the
//! standby's replay or stop it; both clusters are stopped and removed when the value is dropped.

use std::path::PathBuf;
use std::time::Duration;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use stackgate::db::replicas::ReadSettings;
use stackgate::devkit::embedded::{Durability, EmbeddedPostgres};

use super::{TestApp, TestDb, wait};

/// The database both clusters hold.
const DATABASE: &str = "stackgate";

/// A server over a primary with one streaming standby.
pub struct Replicated {
    pub app: TestApp,
    pub primary: EmbeddedPostgres,
    pub standby: EmbeddedPostgres,
    dir: PathBuf,
}

impl Replicated {
    /// A migrated primary, its standby, and a server reading from it with `max_lag` and `wait`.
    pub async fn spawn(max_lag: Duration, wait: Duration) -> Self {
        Self::spawn_adjusted(max_lag, wait, |_| {}).await
    }

    /// [`Replicated::spawn`], with the server's configuration changed by `adjust`.
    pub async fn spawn_adjusted(
        max_lag: Duration,
        wait: Duration,
        adjust: impl FnOnce(&mut stackgate::config::Config),
    ) -> Self {
        let dir = PathBuf::from(format!(
            "/tmp/stackgate-replicas-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("replica test directory");
        if nix::unistd::geteuid().is_root() {
            let pg = nix::unistd::User::from_name("postgres")
                .expect("users")
                .expect("postgres user");
            nix::unistd::chown(&dir, Some(pg.uid), Some(pg.gid)).expect("chown");
        }
        let ephemeral = Durability { ephemeral: true };
        let primary = tokio::task::block_in_place(|| {
            EmbeddedPostgres::start(&dir.join("primary"), None, ephemeral)
        })
        .expect("primary starts");
        stackgate::devkit::embedded::ensure_database(&primary, DATABASE)
            .await
            .expect("database");
        stackgate::db::run_migrations(&primary.url(DATABASE))
            .await
            .expect("migrations");
        let serving = primary.serving_url(DATABASE).await.expect("serving role");
        let standby = tokio::task::block_in_place(|| primary.start_standby(&dir.join("standby")))
            .expect("standby starts");
        let reads = ReadSettings {
            urls: vec![standby.standby_serving_url(DATABASE).expect("standby URL")],
            max_lag,
            wait,
        };
        let base = |url: SecretString| {
            let url = url.expose_secret();
            url[..url.len() - DATABASE.len()].to_owned()
        };
        let db = TestDb::on_own_cluster(DATABASE, base(primary.url(DATABASE)), base(serving));
        let app = TestApp::spawn_over(db, |c| {
            c.reads = reads;
            adjust(c);
        })
        .await;
        Self {
            app,
            primary,
            standby,
            dir,
        }
    }

    /// A connection to the standby as its superuser.
    pub async fn standby_owner(&self) -> AsyncPgConnection {
        stackgate::db::connect_owner(&self.standby.url(DATABASE))
            .await
            .expect("standby connection")
    }

    /// Runs `sql` on the standby as its superuser (`pg_wal_replay_pause()`…).
    pub async fn on_standby(&self, sql: &str) {
        self.standby_owner()
            .await
            .batch_execute(sql)
            .await
            .expect("standby statement");
    }

    /// The `/readyz` status and body.
    pub async fn readyz(&self) -> (u16, String) {
        let response = self.app.client.get(self.app.url("/readyz")).send().await;
        let response = response.expect("sent");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    }

    /// Waits until `/readyz` reports the standby as `standing` (`in use`, `lagging`, `down`),
    /// and the server ready all along.
    pub async fn wait_standing(&self, standing: &str) {
        let what = format!("the standby reported {standing}");
        let wanted = format!(": {standing}");
        wait::wait_for(&what, wait::PATIENCE, async || {
            let (status, body) = self.readyz().await;
            assert_eq!(
                status, 200,
                "replicas never make the server unready: {body}"
            );
            body.contains(&wanted).then_some(()).ok_or(body)
        })
        .await;
    }

    /// Waits until the standby has replayed everything the primary had written when called:
    /// a standby `in use` may still be up to the allowed lag behind the last write.
    pub async fn wait_replayed(&self) {
        use diesel::sql_types::{Bool, Text};
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Lsn {
            #[diesel(sql_type = Text)]
            lsn: String,
        }
        #[derive(diesel::QueryableByName)]
        struct Replayed {
            #[diesel(sql_type = Bool)]
            done: bool,
        }
        let target = diesel::sql_query("select pg_current_wal_lsn()::text as lsn")
            .get_result::<Lsn>(&mut self.app.db.owner().await)
            .await
            .expect("primary position")
            .lsn;
        wait::wait_for(
            "the standby replayed the primary's writes",
            wait::PATIENCE,
            async || {
                let conn = &mut self.standby_owner().await;
                let replayed = diesel::sql_query(
                    "select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) as done",
                )
                .bind::<Text, _>(&target)
                .get_result::<Replayed>(conn)
                .await
                .expect("standby position");
                replayed
                    .done
                    .then_some(())
                    .ok_or(format!("not yet at {target}"))
            },
        )
        .await;
    }

    /// Scans of `table` the standby has counted (its own statistics: reads served there).
    pub async fn standby_scans(&self, table: &str) -> i64 {
        use diesel::sql_types::{BigInt, Text};
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Scans {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let conn = &mut self.standby_owner().await;
        diesel::sql_query(
            "select coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint as n
             from pg_stat_user_tables where relname = $1",
        )
        .bind::<Text, _>(table)
        .get_result::<Scans>(conn)
        .await
        .expect("standby statistics")
        .n
    }

    /// Waits until the standby has counted more scans of `table` than `before`.
    pub async fn wait_standby_read(&self, table: &str, before: i64) {
        let what = format!("a read of {table} served by the standby");
        wait::wait_for(&what, wait::PATIENCE, async || {
            let now = self.standby_scans(table).await;
            (now > before).then_some(()).ok_or(format!("{now} scans"))
        })
        .await;
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        let _ = self.standby.stop();
        let _ = self.primary.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
