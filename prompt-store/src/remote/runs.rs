//! [`RunLog`] over the HTTP API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::{Error, Page, Result, Run, RunLog, RunQuery, RunStats, RunUpdate, StatsQuery};
use serde::Deserialize;
use uuid::Uuid;

use super::client::{RemoteStore, page_query, prompt_path, rfc3339};

#[async_trait]
impl RunLog for RemoteStore {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        let _ = runs;
        Err(Error::unsupported(
            "insert_runs on a remote registry (the server assigns run ids: use \
             RemoteStore::log_runs)",
        ))
    }

    async fn update_run(&self, _project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        let _ = (id, update);
        Err(Error::unsupported(
            "update_run on a remote registry (runs are executed and updated by the server)",
        ))
    }

    async fn get_run(&self, _project: Uuid, id: Uuid) -> Result<Run> {
        self.get_json(&format!("/api/v1/runs/{id}"), &[]).await
    }

    async fn query_runs(&self, _project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        let mut q = page_query(&query.page);
        for (k, v) in [
            ("prompt", query.prompt.clone()),
            ("version", query.version.map(|v| v.to_string())),
            ("label", query.label.clone()),
            ("status", query.status.map(|s| s.as_str().to_owned())),
            ("provider", query.provider.clone()),
            ("model", query.model.clone()),
            ("user", query.user.clone()),
            ("since", query.since.map(rfc3339)),
            ("until", query.until.map(rfc3339)),
        ] {
            if let Some(v) = v {
                q.push((k, v));
            }
        }
        let order = serde_json::to_value(query.order)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if let Some(o) = order {
            q.push(("order", o));
        }
        self.get_json("/api/v1/runs", &q).await
    }

    async fn stats(&self, _project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        #[derive(Deserialize)]
        struct StatsAnswer {
            groups: Vec<RunStats>,
        }
        let mut q = Vec::new();
        if let Some(t) = query.since {
            q.push(("since", rfc3339(t)));
        }
        if let Some(t) = query.until {
            q.push(("until", rfc3339(t)));
        }
        if let Some(g) = query.group_by
            && let Some(s) = serde_json::to_value(g)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        {
            q.push(("group_by", s));
        }
        if let Some(b) = query.bucket {
            q.push(("bucket", b.as_str().to_owned()));
        }
        // A prompt's stats keep their route (servers before project-wide stats answer
        // it too); the project's are `GET /api/v1/stats`.
        let path = match &query.prompt {
            Some(p) => prompt_path(p, "/stats")?,
            None => "/api/v1/stats".to_owned(),
        };
        let a: StatsAnswer = self.get_json(&path, &q).await?;
        Ok(a.groups)
    }
    /// `DELETE /api/v1/runs?before=…&limit=…` (admin), in the key's project.
    async fn delete_runs_before(
        &self,
        _project: Uuid,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        #[derive(Deserialize)]
        struct Deleted {
            deleted: u64,
        }
        let q = [("before", rfc3339(before)), ("limit", limit.to_string())];
        let a: Deleted = self
            .send_json(reqwest::Method::DELETE, "/api/v1/runs", &q, None, None)
            .await?;
        Ok(a.deleted)
    }
}
