//! [`PromptStore`] over the HTTP API.

use std::sync::Arc;

use async_trait::async_trait;
use prompt_core::RegistryServer;
use prompt_core::export::Progress;
use prompt_core::{
    ApiKeyRecord, BatchFailure, BatchOp, BatchOutcome, Error, ExportOptions, ImportOptions,
    ImportPlan, LabelExpect, LabelMove, NewPrompt, NewVersion, Page, PageRequest, Project, Prompt,
    PromptBundle, PromptFilter, PromptStore, PromptUpdate, PromptVersion, ProtectedLabel, Result,
    Selector, SplitWeights,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::client::{RemoteStore, decode, label_path, page_query, prompt_path, rfc3339};
use super::error::parse_remote_error;

/// `/api/v1/protected-labels/{label}`, the label checked.
fn protected_label_path(label: &str) -> Result<String> {
    prompt_core::validate::label(label)?;
    Ok(format!("/api/v1/protected-labels/{label}"))
}

/// The index of the failing operation in a batch error body: the server names it in
/// `error.details.field` (`ops[3]`, `ops[3].name`).
fn batch_index(body: &[u8]) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = v.pointer("/error/details/field")?.as_str()?;
    let rest = field.strip_prefix("ops[")?;
    rest[..rest.find(']')?].parse().ok()
}

#[async_trait]
impl PromptStore for RemoteStore {
    fn server(&self) -> Option<Arc<dyn RegistryServer>> {
        Some(Arc::new(self.clone()))
    }

    async fn create_project(&self, _name: &str) -> Result<Project> {
        Err(Error::unsupported(
            "create_project on a remote registry (projects are made on the server: \
             prompt-registry keys create --project NAME)",
        ))
    }

    /// The key's project if `name` is its name; any other project is `NotFound`.
    async fn project_by_name(&self, name: &str) -> Result<Project> {
        let caller = self.caller().await?;
        if caller.project.name == name {
            Ok(caller.project.clone())
        } else {
            Err(Error::not_found(format!("project '{name}'")))
        }
    }

    /// The key's project if `id` is its id, with its settings as the server has them
    /// now (the cached caller keeps only who the key is); any other project is
    /// `NotFound`.
    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        let caller = self.caller().await?;
        if caller.project.id != id {
            return Err(Error::not_found(format!("project {id}")));
        }
        let now: super::client::RemoteCaller = self.get_json("/api/v1/project", &[]).await?;
        Ok(now.project)
    }

    async fn create_prompt(&self, _project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let body = serde_json::to_value(&new).map_err(|e| Error::internal(e.to_string()))?;
        self.send_json(Method::POST, "/api/v1/prompts", &[], Some(body), None)
            .await
    }

    async fn get_prompt(&self, _project: Uuid, name: &str) -> Result<Prompt> {
        self.get_json(&prompt_path(name, "")?, &[]).await
    }

    async fn prompt_by_id(&self, _project: Uuid, id: Uuid) -> Result<Prompt> {
        self.get_json(&format!("/api/v1/prompts-by-id/{id}"), &[])
            .await
    }

    async fn list_prompts(
        &self,
        _project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        let mut q = page_query(page);
        if let Some(t) = &filter.tag {
            q.push(("tag", t.clone()));
        }
        if let Some(p) = &filter.name_prefix {
            q.push(("q", p.clone()));
        }
        if let Some(t) = filter.created_after {
            q.push(("created_after", rfc3339(t)));
        }
        if let Some(t) = filter.created_before {
            q.push(("created_before", rfc3339(t)));
        }
        self.get_json("/api/v1/prompts", &q).await
    }

    async fn update_prompt(
        &self,
        _project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        // Absent fields are left alone by the server, `null` clears: send only what is set.
        let mut body = json!({});
        if let Some(d) = update.description {
            body["description"] = json!(d);
        }
        if let Some(t) = update.tags {
            body["tags"] = json!(t);
        }
        self.send_json(
            Method::PATCH,
            &prompt_path(name, "")?,
            &[],
            Some(body),
            if_match,
        )
        .await
    }

    async fn archive_prompt(&self, _project: Uuid, name: &str) -> Result<()> {
        let path = prompt_path(name, "")?;
        let r = self.send_empty(Method::DELETE, &path).await;
        self.invalidate(name);
        r
    }

    async fn create_version(
        &self,
        _project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        // Checked here too, so a bad template fails the same way without a round trip.
        let (new, _) = new.prepare()?;
        let mut body = json!({
            "template": new.template,
            "template_format": new.template_format,
            "config": new.config,
            "commit_message": new.commit_message,
            "labels": new.labels,
        });
        if let Some(parent) = new.parent_version {
            body["parent_version"] = json!(parent);
        }
        let path = prompt_path(name, "/versions")?;
        let r = self
            .send_json(
                Method::POST,
                &path,
                &[],
                Some(body),
                new.if_match.as_deref(),
            )
            .await;
        self.invalidate(name);
        r
    }

    async fn list_versions(
        &self,
        _project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        self.get_json(&prompt_path(name, "/versions")?, &page_query(page))
            .await
    }

    async fn resolve(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion> {
        match &self.inner.cache {
            None => self.fetch_version(name, selector).await,
            Some(_) => self
                .resolve_shared(project, name, selector)
                .await
                .map(Arc::unwrap_or_clone),
        }
    }

    async fn resolve_shared(
        &self,
        _project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<PromptVersion>> {
        match &self.inner.cache {
            None => self.fetch_version(name, selector).await.map(Arc::new),
            Some(cache) => {
                // Cached lookups are kept current by the event stream.
                if self.inner.follow_events {
                    self.follow_feed();
                }
                cache.resolve(self, name, selector).await
            }
        }
    }

    async fn version_by_id(&self, _project: Uuid, id: Uuid) -> Result<PromptVersion> {
        let _ = id;
        Err(Error::unsupported(
            "version_by_id on a remote registry (the HTTP API resolves versions by name)",
        ))
    }

    async fn set_label(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        version: u32,
        expect: LabelExpect,
        _actor: Option<&str>,
    ) -> Result<LabelMove> {
        let path = label_path(name, label, "")?;
        let mut body = json!({ "version": version });
        match expect {
            LabelExpect::Any => {}
            LabelExpect::Unset => body["expected_version"] = serde_json::Value::Null,
            LabelExpect::At(v) => body["expected_version"] = json!(v),
        }
        let r = self
            .send_json(Method::PUT, &path, &[], Some(body), None)
            .await;
        self.invalidate(name);
        r
    }

    async fn set_label_split(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        weights: &SplitWeights,
        expect: LabelExpect,
        _actor: Option<&str>,
    ) -> Result<LabelMove> {
        let path = label_path(name, label, "")?;
        let mut body = json!({ "split": weights });
        match expect {
            LabelExpect::Any => {}
            LabelExpect::Unset => body["expected_version"] = serde_json::Value::Null,
            LabelExpect::At(v) => body["expected_version"] = json!(v),
        }
        let r = self
            .send_json(Method::PUT, &path, &[], Some(body), None)
            .await;
        self.invalidate(name);
        r
    }

    async fn delete_label(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        expect: LabelExpect,
        _actor: Option<&str>,
    ) -> Result<LabelMove> {
        let mut path = label_path(name, label, "")?;
        match expect {
            LabelExpect::Any => {}
            // "Delete it if it is not set" through the batch route, which takes the
            // precondition as the store does (412 if set, 404 if not).
            LabelExpect::Unset => {
                let op = BatchOp::DeleteLabel {
                    name: name.to_owned(),
                    label: label.to_owned(),
                    expected_version: Some(None),
                };
                let mut out = self
                    .apply_batch(Uuid::nil(), vec![op])
                    .await
                    .map_err(|f| f.error)?;
                return match out.pop() {
                    Some(BatchOutcome::LabelMove(m)) => Ok(m),
                    _ => Err(Error::internal("a label deletion answered another outcome")),
                };
            }
            LabelExpect::At(v) => path.push_str(&format!("?expected_version={v}")),
        }
        let r = self.send_empty(Method::DELETE, &path).await;
        self.invalidate(name);
        r?;
        // The API answers 204; the move just recorded is the newest of the history.
        let history = self
            .label_history(Uuid::nil(), name, label, &PageRequest::first(1))
            .await?;
        history
            .items
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("the deleted label has no history"))
    }

    /// `POST /api/v1/batch`; a failure keeps the index the server names.
    async fn apply_batch(
        &self,
        _project: Uuid,
        ops: Vec<BatchOp>,
    ) -> std::result::Result<Vec<BatchOutcome>, BatchFailure> {
        #[derive(serde::Deserialize)]
        struct Applied {
            results: Vec<BatchOutcome>,
        }
        let names: Vec<String> = ops.iter().map(|o| o.prompt_name().to_owned()).collect();
        let body = json!({ "ops": ops });
        let a = self
            .send(Method::POST, "/api/v1/batch", &[], Some(body), None)
            .await?;
        if !a.status.is_success() {
            let (error, _) = parse_remote_error(a.status, a.retry_after, &a.body);
            return Err(BatchFailure {
                index: batch_index(&a.body),
                error,
            });
        }
        for n in &names {
            self.invalidate(n);
        }
        Ok(decode::<Applied>(&a.body)?.results)
    }

    /// `GET /api/v1/export`: one request (with the long deadline of
    /// `execute_timeout`), not one per prompt.
    async fn export_bundle(
        &self,
        _project: Uuid,
        options: &ExportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<PromptBundle>> {
        progress.waiting("the server is exporting");
        let mut query = vec![("heads", options.heads_only.to_string())];
        if let Some(prefix) = &options.name_prefix {
            query.push(("prefix", prefix.clone()));
        }
        let a = self
            .send_with(
                Method::GET,
                "/api/v1/export",
                &query,
                None,
                None,
                Some(self.inner.execute_timeout),
            )
            .await?;
        if !a.status.is_success() {
            return Err(parse_remote_error(a.status, a.retry_after, &a.body).0);
        }
        Ok(Some(decode(&a.body)?))
    }

    /// `POST /api/v1/import`: the server plans and applies (one request, one
    /// transaction there, with the long deadline of `execute_timeout`). A refusal for
    /// conflicts (409) is asked again as a dry run, whose plan lists them.
    async fn import_bundle(
        &self,
        _project: Uuid,
        bundle: &PromptBundle,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<ImportPlan>> {
        progress.waiting(if options.dry_run {
            "the server is planning"
        } else {
            "the server is planning and applying"
        });
        let body = serde_json::to_value(bundle)
            .map_err(|e| Error::internal(format!("cannot encode the import: {e}")))?;
        let query = |dry_run: bool| {
            [
                ("dry_run", dry_run.to_string()),
                ("prune_labels", options.prune_labels.to_string()),
            ]
        };
        let deadline = Some(self.inner.execute_timeout);
        let post = |dry_run: bool, body: Value| async move {
            self.send_with(
                Method::POST,
                "/api/v1/import",
                &query(dry_run),
                Some(body),
                None,
                deadline,
            )
            .await
        };
        let a = post(options.dry_run, body.clone()).await?;
        if a.status == StatusCode::CONFLICT && !options.dry_run {
            let dry = post(true, body).await?;
            if dry.status.is_success() {
                let plan: ImportPlan = decode(&dry.body)?;
                if !plan.conflicts.is_empty() {
                    return Ok(Some(plan));
                }
            }
        }
        if !a.status.is_success() {
            return Err(parse_remote_error(a.status, a.retry_after, &a.body).0);
        }
        if !options.dry_run {
            for doc in &bundle.prompts {
                self.invalidate(&doc.name);
            }
        }
        Ok(Some(decode(&a.body)?))
    }

    async fn label_history(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>> {
        self.get_json(&label_path(name, label, "/history")?, &page_query(page))
            .await
    }

    /// `DELETE /api/v1/prompts/{name}/versions/{version}`.
    async fn delete_version(
        &self,
        _project: Uuid,
        name: &str,
        version: u32,
        _actor: Option<&str>,
    ) -> Result<()> {
        let path = prompt_path(name, &format!("/versions/{version}"))?;
        let r = self.send_empty(Method::DELETE, &path).await;
        self.invalidate(name);
        r
    }

    /// `GET /api/v1/protected-labels`: the server's list (it seeds with its own
    /// defaults; `defaults` are not sent).
    async fn protected_labels(
        &self,
        _project: Uuid,
        _defaults: &[String],
    ) -> Result<Vec<ProtectedLabel>> {
        let page: Page<ProtectedLabel> = self.get_json("/api/v1/protected-labels", &[]).await?;
        Ok(page.items)
    }

    /// `PUT /api/v1/protected-labels/{label}`: 201 when it was not protected, 200
    /// when it was.
    async fn protect_label(
        &self,
        _project: Uuid,
        label: &str,
        _defaults: &[String],
        _actor: Option<&str>,
    ) -> Result<(ProtectedLabel, bool)> {
        let path = protected_label_path(label)?;
        let a = self.send(Method::PUT, &path, &[], None, None).await?;
        if a.status.is_success() {
            Ok((decode(&a.body)?, a.status == reqwest::StatusCode::CREATED))
        } else {
            Err(parse_remote_error(a.status, a.retry_after, &a.body).0)
        }
    }

    /// `DELETE /api/v1/protected-labels/{label}`.
    async fn unprotect_label(
        &self,
        _project: Uuid,
        label: &str,
        _defaults: &[String],
        _actor: Option<&str>,
    ) -> Result<()> {
        self.send_empty(Method::DELETE, &protected_label_path(label)?)
            .await
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let _ = record;
        Err(Error::unsupported(
            "create_api_key on a remote registry (POST /api/v1/keys makes keys on the server)",
        ))
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        let _ = hash;
        Err(Error::unsupported("api_key_by_hash on a remote registry"))
    }

    async fn list_api_keys(&self, _project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        Err(Error::unsupported(
            "list_api_keys on a remote registry (GET /api/v1/keys lists them without secrets)",
        ))
    }

    async fn revoke_api_key(&self, _project: Uuid, id: Uuid) -> Result<()> {
        self.send_empty(Method::DELETE, &format!("/api/v1/keys/{id}"))
            .await
    }

    /// `PUT /api/v1/project` (admin): the key's project only.
    async fn set_run_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        #[derive(serde::Deserialize)]
        struct Answer {
            project: Project,
        }
        let caller = self.caller().await?;
        if caller.project.id != project {
            return Err(Error::not_found(format!("project {project}")));
        }
        let a: Answer = self
            .send_json(
                Method::PUT,
                "/api/v1/project",
                &[],
                Some(serde_json::json!({ "run_retention_days": days })),
                None,
            )
            .await?;
        Ok(a.project)
    }

    async fn ping(&self) -> Result<()> {
        let a = self.send(Method::GET, "/readyz", &[], None, None).await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(Error::Unavailable {
                message: format!("the registry server is not ready ({})", a.status),
                retry_after: a.retry_after,
            })
        }
    }
}
