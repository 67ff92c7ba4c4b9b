//! The behaviour suite on Postgres: each test in a fresh schema of its own, dropped
//! afterwards. Skipped (and says so) without PROMPT_REGISTRY_TEST_POSTGRES_URL; fails
//! if the URL is set and the server cannot be reached.

use prompt_store::testkit::postgres_backend;

prompt_store::behaviour_suite!(postgres_backend);

/// The same suite through a cache that listens for invalidations.
mod cached {
    use prompt_store::testkit::cached_postgres_backend;

    prompt_store::behaviour_suite!(cached_postgres_backend);
}

/// Retention drops a month's partition whole only when every project with runs in it
/// has a retention it is past; otherwise the month stays and batches delete.
mod partitions {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test bodies: a failed unwrap is a failed test"
    )]

    use chrono::{Datelike, Duration, Months, TimeZone, Utc};
    use prompt_core::{NewRun, PromptStore, RunLog, RunStatus};
    use prompt_store::PostgresStore;
    use prompt_store::testkit::{PgTestSchema, postgres_url};

    async fn exists(s: &PostgresStore, table: &str) -> bool {
        sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(s.pool())
            .await
            .unwrap()
            .is_some()
    }

    #[tokio::test]
    async fn a_month_is_dropped_when_every_project_in_it_is_past_its_retention() {
        let Some(url) = postgres_url() else { return };
        let schema = PgTestSchema::create(&url).await;
        let s = PostgresStore::open(schema.config()).await.unwrap();
        let now = prompt_core::domain::now();
        let this_month = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .unwrap();
        let m1 = this_month.checked_sub_months(Months::new(5)).unwrap();
        let m2 = this_month.checked_sub_months(Months::new(4)).unwrap();
        let m3 = this_month.checked_sub_months(Months::new(3)).unwrap();
        let created: i32 = sqlx::query_scalar("SELECT runs_ensure_partitions($1, $2)")
            .bind(m1)
            .bind(m3)
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(created, 2);
        let (n1, n2) = (
            format!("runs_p{}", m1.format("%Y%m")),
            format!("runs_p{}", m2.format("%Y%m")),
        );
        assert!(exists(&s, &n1).await && exists(&s, &n2).await);

        let a = s.ensure_project("keeps-30-days").await.unwrap();
        let b = s.ensure_project("keeps-forever").await.unwrap();
        s.set_run_retention(a.id, Some(30)).await.unwrap();
        let run = |project, t| {
            let mut r = NewRun::with_status(RunStatus::Completed)
                .into_run(project)
                .unwrap();
            r.created_at = t;
            r
        };
        let in_m1: Vec<_> = (0..3)
            .map(|i| run(a.id, m1 + Duration::days(i + 1)))
            .collect();
        let (a_m2, b_m2) = (
            run(a.id, m2 + Duration::days(2)),
            run(b.id, m2 + Duration::days(3)),
        );
        s.insert_runs(&in_m1).await.unwrap();
        s.insert_runs(&[a_m2.clone(), b_m2.clone()]).await.unwrap();

        // Month 1 holds only runs of the 30-day project: dropped whole. Month 2 also
        // holds a run of a project that keeps them forever: kept.
        let with = s.projects_with_retention().await.unwrap();
        assert_eq!(s.maintain_runs(&with, now).await.unwrap(), 3);
        assert!(!exists(&s, &n1).await, "month 1 dropped");
        assert!(exists(&s, &n2).await, "month 2 kept");
        for r in &in_m1 {
            assert!(s.get_run(a.id, r.id).await.is_err());
        }
        // Batches delete the 30-day project's run there.
        let cutoff = now - Duration::days(30);
        assert_eq!(s.delete_runs_before(a.id, cutoff, 10).await.unwrap(), 1);
        s.get_run(b.id, b_m2.id).await.unwrap();

        // Once that project has a retention too, month 2 goes.
        s.set_run_retention(b.id, Some(60)).await.unwrap();
        let with = s.projects_with_retention().await.unwrap();
        assert_eq!(s.maintain_runs(&with, now).await.unwrap(), 1);
        assert!(!exists(&s, &n2).await, "month 2 dropped");
        // The current month and the next ones are never dropped.
        let current = format!("runs_p{}", this_month.format("%Y%m"));
        assert!(exists(&s, &current).await);
        s.close().await;
    }
}
