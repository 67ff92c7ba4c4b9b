//! The aids themselves: analyze, remix, create from a goal, optimize.

use serde_json::json;

use crate::domain::{
    MAX_COMMIT_MESSAGE_LEN, NewPrompt, NewVersion, Selector, Template, TemplateKind,
};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::template::TemplateFormat;
use crate::validate;

use super::*;

impl Registry {
    /// Analyze a template or a stored prompt: the static report, and the tools model's
    /// critique when it gives a valid one (else `critique.available` is false, with the
    /// reason). Fails only on bad input (or a store failure), never because of the
    /// model.
    pub async fn analyze(&self, req: AnalyzeRequest) -> Result<Analysis> {
        if let Some(server) = &self.server {
            return server.analyze(&req).await;
        }
        if let Some(vs) = &req.variables
            && vs.len() > MAX_ITEMS * 4
        {
            return Err(Error::invalid(
                "variables",
                format!("has {} items; the maximum is {}", vs.len(), MAX_ITEMS * 4),
            ));
        }
        let (template, format, config, source) = match (req.template, req.prompt) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "prompt",
                    "give either template or prompt, not both",
                ));
            }
            (None, None) => {
                return Err(Error::invalid(
                    "template",
                    "give a template, or the name of a stored prompt in `prompt`",
                ));
            }
            (Some(t), None) => {
                if req.label.is_some() || req.version.is_some() {
                    return Err(Error::invalid(
                        if req.label.is_some() {
                            "label"
                        } else {
                            "version"
                        },
                        "only with `prompt`",
                    ));
                }
                let config = req.config.unwrap_or_else(|| json!({}));
                validate::json_object("config", &config)?;
                (t, req.template_format.unwrap_or_default(), config, None)
            }
            (None, Some(name)) => {
                if req.template_format.is_some() {
                    return Err(Error::invalid(
                        "template_format",
                        "comes from the stored version; not with `prompt`",
                    ));
                }
                if req.config.is_some() {
                    return Err(Error::invalid(
                        "config",
                        "comes from the stored version; not with `prompt`",
                    ));
                }
                let sel = Selector::from_parts(req.label, req.version)?;
                let v = self.resolve(&name, &sel).await?;
                let source = AnalyzedVersion {
                    prompt: v.prompt.clone(),
                    version: v.version,
                };
                (v.template, v.template_format, v.config, Some(source))
            }
        };
        let report = lint::analyze(&template, format, req.variables.as_deref(), &config)?;
        let kind = template.kind();
        let messages = match &template {
            Template::Text(_) => 1,
            Template::Chat(m) => m.len(),
        };
        let critique = if req.critique == Some(false) {
            Critique::unavailable("not requested (critique: false)", None, Vec::new())
        } else {
            self.critique(&template, format, &report).await?
        };
        Ok(Analysis {
            source,
            kind,
            template_format: format,
            variables: report.variables,
            messages,
            length: report.length,
            lints: report.lints,
            critique,
        })
    }

    async fn critique(
        &self,
        template: &Template,
        format: TemplateFormat,
        report: &lint::StaticReport,
    ) -> Result<Critique> {
        let model = self.tools.spec();
        let findings = if report.lints.is_empty() {
            "(none)".to_owned()
        } else {
            report
                .lints
                .iter()
                .map(|l| format!("- {} ({:?}): {}", l.code, l.severity, l.message))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let variables = vars(&[
            ("kind", template.kind().as_str().to_owned()),
            ("template_format", format.as_str().to_owned()),
            ("template", readable(template)),
            (
                "variables",
                if report.variables.is_empty() {
                    "(none)".to_owned()
                } else {
                    report.variables.join(", ")
                },
            ),
            ("findings", findings),
        ]);
        let read = |text: &str| -> std::result::Result<Critique, String> {
            let obj = answer::last_json_object(text)
                .ok_or_else(|| "the answer contains no JSON object".to_owned())?;
            let (cs, cr) = answer::score(&obj, "clarity")?;
            let (ss, sr) = answer::score(&obj, "specificity")?;
            let (ts, tr) = answer::score(&obj, "structure")?;
            Ok(Critique {
                available: true,
                reason: None,
                clarity: Some(Score {
                    score: cs,
                    reason: cr,
                }),
                specificity: Some(Score {
                    score: ss,
                    reason: sr,
                }),
                structure: Some(Score {
                    score: ts,
                    reason: tr,
                }),
                suggestions: answer::suggestions(&obj)?,
                model: None,
                runs: Vec::new(),
            })
        };
        // Store failures propagate; whatever the model does, the static report stands.
        let answered = self.ask(Tool::Analyze, variables, read).await?;
        Ok(match answered.value {
            Outcome::Answer(mut c) => {
                c.model = Some(model);
                c.runs = answered.runs;
                c
            }
            Outcome::Unusable(reason) => Critique::unavailable(
                format!(
                    "the tools model {model} gave no valid critique in {ATTEMPTS} attempts: {reason}"
                ),
                Some(model),
                answered.runs,
            ),
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, "critique unavailable");
                let reason = match e {
                    Error::Internal { message } => message,
                    other => other.to_string(),
                };
                Critique::unavailable(reason, Some(model), answered.runs)
            }
        })
    }

    /// Rewrite a template in a style, keeping exactly its variables and kind.
    pub async fn remix(&self, req: RemixRequest) -> Result<Remix> {
        if let Some(server) = &self.server {
            return server.remix(&req).await;
        }
        if let RemixStyle::Custom(s) = &req.style {
            check_text("style.custom", s)?;
        }
        let original = req.template.check(req.template_format)?;
        let expect = answer::Expect {
            kind: Some(req.template.kind()),
            format: req.template_format,
            variables: Some(original.iter().cloned().collect()),
        };
        let variables = vars(&[
            ("style", req.style.name().to_owned()),
            ("instruction", req.style.instruction().to_owned()),
            ("kind", req.template.kind().as_str().to_owned()),
            ("template_format", req.template_format.as_str().to_owned()),
            (
                "draft",
                draft(
                    &req.template,
                    &format!(
                        "Unchanged: the original template, not rewritten for the style '{}'.",
                        req.style.name()
                    ),
                ),
            ),
        ]);
        let answered = self
            .ask(Tool::Remix, variables, |a| answer::rewrite(a, &expect))
            .await?;
        let (rw, runs, _) = self.rewritten(Tool::Remix, answered)?;
        Ok(Remix {
            kind: rw.template.kind(),
            template: rw.template,
            template_format: req.template_format,
            variables: rw.variables,
            style: req.style.name().to_owned(),
            rationale: rw.rationale,
            model: self.tools.spec(),
            runs,
        })
    }

    /// Write a new template for a goal; with `save_as`, save it as version 1 of a new
    /// prompt (`AlreadyExists` if the name is taken, checked before the model is called).
    pub async fn create_from_goal(&self, req: CreateRequest) -> Result<Created> {
        if let Some(server) = &self.server {
            return server.create_from_goal(&req).await;
        }
        check_text("goal", &req.goal)?;
        if let Some(a) = &req.audience {
            validate::max_len("audience", a, MAX_TEXT_CHARS)?;
        }
        if req.constraints.len() > MAX_ITEMS {
            return Err(Error::invalid(
                "constraints",
                format!(
                    "has {} items; the maximum is {MAX_ITEMS}",
                    req.constraints.len()
                ),
            ));
        }
        for (i, c) in req.constraints.iter().enumerate() {
            check_text(&format!("constraints[{i}]"), c)?;
        }
        if let Some(vs) = &req.variables {
            check_variable_names("variables", vs)?;
        }
        if let Some(name) = &req.save_as {
            validate::prompt_name(name).map_err(|e| renamed(e, "save_as"))?;
            match self.store.get_prompt(self.project.id, name).await {
                Ok(_) => return Err(Error::already_exists(format!("prompt '{name}'"))),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let kind = req.kind.unwrap_or(TemplateKind::Text);
        let expect = answer::Expect {
            kind: Some(kind),
            format: TemplateFormat::Mustache,
            variables: req.variables.as_ref().map(|v| v.iter().cloned().collect()),
        };
        let skeleton = skeleton(&req, kind);
        let variables = vars(&[
            ("goal", req.goal.trim().to_owned()),
            (
                "audience",
                req.audience
                    .clone()
                    .filter(|a| !a.trim().is_empty())
                    .unwrap_or_else(|| "(not specified)".into()),
            ),
            (
                "constraints",
                if req.constraints.is_empty() {
                    "(none)".to_owned()
                } else {
                    req.constraints
                        .iter()
                        .map(|c| format!("- {}", c.trim()))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            ),
            (
                "variables",
                match &req.variables {
                    Some(v) if !v.is_empty() => v.join(", "),
                    Some(_) => "none".to_owned(),
                    None => "(your choice)".to_owned(),
                },
            ),
            ("kind", kind.as_str().to_owned()),
            (
                "draft",
                draft(
                    &skeleton,
                    "Skeleton assembled from the goal, audience, constraints and variables; not refined by a model.",
                ),
            ),
        ]);
        let answered = self
            .ask(Tool::Create, variables, |a| answer::rewrite(a, &expect))
            .await?;
        let (rw, runs, meta_version) = self.rewritten(Tool::Create, answered)?;
        let saved = match &req.save_as {
            None => None,
            Some(name) => {
                self.create_prompt(NewPrompt {
                    name: name.clone(),
                    description: Some(clip(req.goal.trim(), 1_000)),
                    tags: Vec::new(),
                })
                .await?;
                let message = clip(
                    &format!(
                        "Created by {} v{} ({}) from the goal: {} — {}",
                        Tool::Create.prompt_name(),
                        meta_version,
                        self.tools.spec(),
                        req.goal.trim(),
                        rw.rationale
                    ),
                    MAX_COMMIT_MESSAGE_LEN - 1,
                );
                let new = NewVersion {
                    created_by: req.created_by.clone(),
                    ..NewVersion::new(rw.template.clone()).with_commit_message(message)
                };
                Some(self.create_version(name, new).await?)
            }
        };
        Ok(Created {
            kind: rw.template.kind(),
            template: rw.template,
            template_format: TemplateFormat::Mustache,
            variables: rw.variables,
            rationale: rw.rationale,
            model: self.tools.spec(),
            runs,
            saved,
        })
    }

    /// Optimize a stored prompt into a new version (same variables, kind, format and
    /// config; no label moved but `latest`). The commit message records the source
    /// version and the rationale.
    pub async fn optimize(&self, name: &str, req: OptimizeRequest) -> Result<Optimized> {
        if let Some(server) = &self.server {
            return server.optimize(name, &req).await;
        }
        if let Some(g) = &req.goal {
            check_text("goal", g)?;
        }
        let sel = Selector::from_parts(req.label.clone(), req.version)?;
        let source = self.resolve(name, &sel).await?;
        if source.template.is_blank() {
            // Asking a model to improve nothing gets an answer that is no prompt.
            return Err(Error::invalid(
                "version",
                format!(
                    "version {} of '{}' has an empty template: there is nothing to optimize; \
                     write a first draft as a new version",
                    source.version, source.prompt
                ),
            ));
        }
        let expect = answer::Expect {
            kind: Some(source.kind),
            format: source.template_format,
            variables: Some(source.variables.iter().cloned().collect()),
        };
        let goal = req
            .goal
            .as_deref()
            .map(str::trim)
            .unwrap_or("clearer, more specific and better structured instructions that models follow reliably")
            .to_owned();
        let variables = vars(&[
            ("prompt", source.prompt.clone()),
            ("source_version", source.version.to_string()),
            ("goal", goal),
            ("kind", source.kind.as_str().to_owned()),
            (
                "template_format",
                source.template_format.as_str().to_owned(),
            ),
            (
                "draft",
                draft(
                    &source.template,
                    &format!(
                        "Unchanged: version {} as it is, not optimized.",
                        source.version
                    ),
                ),
            ),
        ]);
        let answered = self
            .ask(Tool::Optimize, variables, |a| answer::rewrite(a, &expect))
            .await?;
        let (rw, runs, meta_version) = self.rewritten(Tool::Optimize, answered)?;
        let message = clip(
            &format!(
                "{OPTIMIZED_PREFIX}{} by {} v{} ({}){}: {}",
                source.version,
                Tool::Optimize.prompt_name(),
                meta_version,
                self.tools.spec(),
                req.goal
                    .as_deref()
                    .map(|g| format!(" for: {}", g.trim()))
                    .unwrap_or_default(),
                rw.rationale
            ),
            MAX_COMMIT_MESSAGE_LEN - 1,
        );
        let new = NewVersion {
            template: rw.template,
            template_format: source.template_format,
            config: source.config.clone(),
            commit_message: Some(message),
            labels: Vec::new(),
            created_by: req.created_by.clone(),
            parent_version: None,
            if_match: None,
        };
        let version = self.create_version(name, new).await?;
        Ok(Optimized {
            version,
            source_version: source.version,
            rationale: rw.rationale,
            model: self.tools.spec(),
            runs,
        })
    }
}
