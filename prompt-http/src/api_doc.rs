//! What the OpenAPI document says about every operation at once, in one place, so that
//! it describes what the service really answers (issue 20, item 9: the document is
//! checked by schemathesis, `scripts/test-api-fuzz.sh`).
//!
//! The handlers' `#[utoipa::path]` annotations declare what is particular to each
//! operation. The layers every request goes through can answer on any operation too,
//! and are declared here rather than copied into ~120 annotations:
//!
//! * `400` — a request that cannot be read: a body that is not JSON or not
//!   `Content-Type: application/json`, a malformed query string, path or header;
//! * `401` / `403` — the authentication and role checks of every authenticated route;
//! * `404` — an operation with path parameters names something that does not exist (or
//!   is in another project);
//! * `413` — a body over the limit (`--max-body-bytes`), on operations that take one;
//! * `422` — a well-formed request whose values are refused (which field, why);
//! * `429` — the per-key rate limit;
//! * `503` — the database is unreachable, the server is overloaded or the request took
//!   longer than `--request-timeout-secs`.
//!
//! The error body is the operation's own error shape (Langfuse's on `/api/public/…`,
//! described in words on `/v1/…`, ours elsewhere). Path parameters that are prompt names or labels
//! get the pattern and length their validation enforces, and request-body properties
//! the bounds the derives cannot say (`body_bounds`: tags, names, not-blank texts,
//! version numbers).

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Schema};

/// Complete `doc` with the statuses every operation can answer and the shared
/// constraints of path parameters.
pub(crate) fn complete(mut doc: OpenApi) -> OpenApi {
    let global = doc.security.clone();
    for (path, item) in doc.paths.paths.iter_mut() {
        let shared_path_params = item.parameters.as_ref().is_some_and(|ps| {
            ps.iter()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path))
        });
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ];
        for op in ops.into_iter().flatten() {
            complete_operation(path, op, global.as_deref(), shared_path_params);
        }
    }
    body_bounds(&mut doc);
    doc
}

/// No control character (`char::is_control`: C0, DEL, C1), what tags and short texts
/// refuse.
const NO_CONTROL: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// Not blank (validation trims before it checks for emptiness).
const NOT_BLANK: &str = r"\S";

/// The constraints of request-body properties that validation enforces and the
/// derives do not say: tags, texts that must not be blank, version numbers.
fn body_bounds(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, s) in components.schemas.iter_mut() {
        match s {
            RefOr::T(Schema::Object(o)) => {
                for (property, p) in o.properties.iter_mut() {
                    if let RefOr::T(p) = p {
                        bound_property(schema, property, p);
                    }
                }
            }
            // A text template is not blank and holds no NUL (`Template::validate`).
            RefOr::T(Schema::OneOf(one_of)) if schema == "Template" => {
                for item in &mut one_of.items {
                    if let RefOr::T(Schema::Object(text)) = item
                        && matches!(&text.schema_type, SchemaType::Type(Type::String))
                    {
                        text.pattern = Some(r"^[^\x00]*[^\s\x00][^\x00]*$".to_owned());
                    }
                }
            }
            // `RemixStyle`: one of the preset names or `{custom: "…"}`.
            RefOr::T(Schema::OneOf(one_of)) if schema == "RemixStyle" => {
                for item in &mut one_of.items {
                    if let RefOr::T(Schema::Object(o)) = item
                        && let Some(RefOr::T(Schema::Object(custom))) =
                            o.properties.get_mut("custom")
                    {
                        custom.pattern = Some(NOT_BLANK.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
}

/// See [`body_bounds`].
fn bound_property(schema: &str, property: &str, p: &mut Schema) {
    match (schema, property, p) {
        (
            "NewPrompt"
            | "PromptUpdate"
            | "CreateBody"
            | "OptimizerPromptCreate"
            | "OptimizerPromptUpdate"
            | "PromptDocument",
            "tags",
            Schema::Array(a),
        ) => {
            // `normalize_tags`: at most 50, each 1–64 characters, no control character.
            a.max_items = Some(prompt_core::domain::MAX_TAGS);
            if let ArrayItems::RefOrSchema(item) = &mut a.items
                && let RefOr::T(Schema::Object(tag)) = item.as_mut()
            {
                tag.min_length = Some(1);
                tag.max_length = Some(64);
                tag.pattern = Some(NO_CONTROL.to_owned());
            }
        }
        ("RenderBody" | "OptimizeRequest" | "NewRun", "version", Schema::Object(o))
        | ("ExecuteBody", "timeout_ms", Schema::Object(o)) => {
            o.minimum = Some(utoipa::Number::Int(1));
        }
        ("RenderBody" | "ExecuteBody", "split_key", Schema::Object(o))
        | ("ChatCompletionBody", "model", Schema::Object(o)) => o.min_length = Some(1),
        ("NewPrompt", "name", Schema::Object(o)) => {
            o.min_length = Some(1);
            o.max_length = Some(prompt_core::validate::MAX_PROMPT_NAME_LEN);
            o.pattern = Some(PROMPT_NAME_PATTERN.to_owned());
        }
        ("BatchBody", "ops", Schema::Array(a)) => {
            a.min_items = Some(1);
            a.max_items = Some(prompt_core::domain::MAX_BATCH_OPS);
        }
        ("CreateRequest", "variables", Schema::Array(a)) => {
            if let ArrayItems::RefOrSchema(item) = &mut a.items
                && let RefOr::T(Schema::Object(name)) = item.as_mut()
            {
                name.pattern = Some(r"^[A-Za-z_][A-Za-z0-9_]*$".to_owned());
            }
        }
        ("CreateRequest", "goal", Schema::Object(o))
        | ("CreateKeyBody", "name", Schema::Object(o))
        | ("OptimizerPromptCreate", "title", Schema::Object(o))
        | ("PromptCreate", "prompt_text", Schema::Object(o)) => {
            o.pattern = Some(NOT_BLANK.to_owned());
        }
        ("PromptCreate", "prompt_type", Schema::Object(o)) => {
            // Trimmed, 1–50 characters, none a control character.
            o.max_length = Some(crate::routes::compat::ai_prompts::MAX_PROMPT_TYPE);
            o.pattern = Some(
                r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$".to_owned(),
            );
        }
        _ => {}
    }
}

/// The pattern of a prompt name (`prompt_core::validate::prompt_name`): segments of
/// `[A-Za-z0-9_.-]` separated by single `/`, no segment `.` or `..`.
const PROMPT_NAME_PATTERN: &str = r"^(?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-]|\.\.[A-Za-z0-9_.-])[A-Za-z0-9_.-]*(?:/(?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-]|\.\.[A-Za-z0-9_.-])[A-Za-z0-9_.-]*)*$";

/// The pattern of a label (`prompt_core::validate::label`): `[a-z0-9_.-]`, not `.` or `..`.
const LABEL_PATTERN: &str = r"^(?:[a-z0-9_-]|\.[a-z0-9_-]|\.\.[a-z0-9_.-])[a-z0-9_.-]*$";

/// Whether a security requirement list lets anonymous callers in (`[]` or a `{}` entry),
/// and whether it names any scheme.
fn security_kind(security: Option<&[SecurityRequirement]>) -> (bool, bool) {
    let Some(reqs) = security else {
        return (true, false);
    };
    let empty = |r: &SecurityRequirement| {
        serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
    };
    let anonymous = reqs.is_empty() || reqs.iter().any(empty);
    let named = reqs.iter().any(|r| !empty(r));
    (anonymous, named)
}

fn complete_operation(
    path: &str,
    op: &mut Operation,
    global: Option<&[SecurityRequirement]>,
    shared_path_params: bool,
) {
    let (anonymous, named) = security_kind(op.security.as_deref().or(global));
    let mut has_path_params = shared_path_params;
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        if p.parameter_in == ParameterIn::Path {
            has_path_params = true;
            if let Some(schema) = path_param_schema(path, &p.name) {
                p.schema = Some(RefOr::T(schema));
            }
        }
        if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query)
            && let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut()
        {
            shared_bounds(path, &p.name, o);
        }
    }
    let has_body = op.request_body.is_some();
    let error_body = error_schema(path);
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses.entry(status.to_owned()).or_insert_with(|| {
            let mut response = ResponseBuilder::new().description(description);
            if let Some(schema) = &error_body {
                response = response.content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema.clone())).build(),
                );
            }
            RefOr::T(response.build())
        });
    };
    add(
        "400",
        "The request cannot be read: malformed JSON, a wrong Content-Type, or a malformed query, path or header",
    );
    if named {
        add("401", "Missing or invalid credentials");
        add("403", "The caller's role does not allow this");
    } else if !anonymous {
        add("401", "Missing or invalid credentials");
    }
    if has_path_params {
        add("404", "Not found (or in another project)");
    }
    if has_body {
        add("413", "The request body is over the server's limit");
    }
    add(
        "422",
        "A value is refused: the error names the field and says why",
    );
    add(
        "429",
        "Rate limited: retry after the number of seconds in Retry-After",
    );
    add(
        "503",
        "The database is unavailable, the server is overloaded or the request timed out; retry after Retry-After",
    );
}

/// The bounds every route's validation puts on parameters of these names: a `limit`
/// (a page size, a number of runs to delete) and a `version` are at least 1 (an event
/// page at most [`MAX_EVENT_PAGE`](prompt_core::domain::MAX_EVENT_PAGE)); a `prompt`
/// or `label` filter and the `from` / `to` of a diff are not empty.
fn shared_bounds(path: &str, name: &str, o: &mut utoipa::openapi::schema::Object) {
    let integer = matches!(
        &o.schema_type,
        utoipa::openapi::schema::SchemaType::Type(Type::Integer)
    ) || matches!(&o.schema_type, utoipa::openapi::schema::SchemaType::Array(ts) if ts.contains(&Type::Integer));
    let string = matches!(
        &o.schema_type,
        utoipa::openapi::schema::SchemaType::Type(Type::String)
    ) || matches!(&o.schema_type, utoipa::openapi::schema::SchemaType::Array(ts) if ts.contains(&Type::String));
    match name {
        "limit" | "version" if integer => {
            o.minimum = Some(utoipa::Number::Int(1));
            if name == "limit" && path == "/api/v1/events" {
                o.maximum = Some(utoipa::Number::UInt(
                    prompt_core::domain::MAX_EVENT_PAGE as usize,
                ));
            }
        }
        // Filters checked as a prompt name / a label where the server checks them.
        "prompt" if string && path == "/api/v1/events" => {
            o.min_length = Some(1);
            o.max_length = Some(prompt_core::validate::MAX_PROMPT_NAME_LEN);
            o.pattern = Some(PROMPT_NAME_PATTERN.to_owned());
        }
        "label" if string && path == "/api/v1/prompts/{name}/resolve" => {
            o.min_length = Some(1);
            o.max_length = Some(prompt_core::validate::MAX_LABEL_LEN);
            o.pattern = Some(LABEL_PATTERN.to_owned());
        }
        "prompt" | "label" | "from" | "to" | "split_key" if string => o.min_length = Some(1),
        "types" if string && path == "/api/v1/events" => {
            o.pattern = Some(event_types_pattern());
        }
        _ => {}
    }
}

/// The `types` filter of `GET /api/v1/events`: event type names, comma-separated,
/// blanks around them and empty items allowed (as `EventType::parse` reads it).
fn event_types_pattern() -> String {
    let names: Vec<String> = prompt_core::domain::EventType::ALL
        .iter()
        .map(|t| t.as_str().replace('.', r"\."))
        .collect();
    let one = format!(r"\s*(?:{})?\s*", names.join("|"));
    format!("^{one}(?:,{one})*$")
}

/// The constraints validation enforces on a `name` / `label` path parameter of the
/// prompt routes.
fn path_param_schema(path: &str, name: &str) -> Option<Schema> {
    let prompt_route = path.starts_with("/api/v1/prompts/");
    let (max, pattern) = match name {
        "name" if prompt_route => (
            prompt_core::validate::MAX_PROMPT_NAME_LEN,
            PROMPT_NAME_PATTERN,
        ),
        "label" if prompt_route || path.starts_with("/api/v1/protected-labels/") => {
            (prompt_core::validate::MAX_LABEL_LEN, LABEL_PATTERN)
        }
        _ => return None,
    };
    Some(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(pattern))
            .into(),
    )
}

/// The error body of the routes under `path` (the gateway's OpenAI-shaped errors have
/// no schema in the document: OpenAI's SDKs define them).
pub(crate) fn error_schema(path: &str) -> Option<RefOr<Schema>> {
    let name = if path.starts_with("/api/public/") {
        "LangfuseErrorBody"
    } else if path.starts_with("/v1/") {
        return None;
    } else {
        "ErrorBody"
    };
    Some(RefOr::Ref(Ref::from_schema_name(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_declares_the_shared_statuses() {
        let doc = serde_json::to_value(crate::router::openapi()).unwrap();
        let ops = &doc["paths"]["/api/v1/runs/{id}"]["get"]["responses"];
        for status in ["400", "401", "403", "404", "422", "429", "503"] {
            assert!(ops.get(status).is_some(), "{status} missing: {ops}");
        }
    }

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }

    #[test]
    fn the_patterns_accept_exactly_what_validation_accepts() {
        for name in [
            "a",
            "team/tone",
            "a.b",
            ".a",
            "...",
            "a/..b",
            "x-y_z.1/q",
            "..a",
            "a/.b/c",
        ] {
            assert!(matches(PROMPT_NAME_PATTERN, name), "{name}");
            assert!(prompt_core::validate::prompt_name(name).is_ok(), "{name}");
        }
        for name in [
            "", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a b", "é",
        ] {
            assert!(!matches(PROMPT_NAME_PATTERN, name), "{name:?}");
            assert!(
                prompt_core::validate::prompt_name(name).is_err(),
                "{name:?}"
            );
        }
        for label in ["production", "v1.2", "a-b_c", ".x", "..."] {
            assert!(matches(LABEL_PATTERN, label), "{label}");
            assert!(prompt_core::validate::label(label).is_ok(), "{label}");
        }
        for label in ["", ".", "..", "Prod", "a/b", "a b"] {
            assert!(!matches(LABEL_PATTERN, label), "{label:?}");
            assert!(prompt_core::validate::label(label).is_err(), "{label:?}");
        }
    }

    #[test]
    fn the_event_types_pattern_reads_lists_as_the_server_does() {
        let pattern = event_types_pattern();
        for ok in [
            "",
            "label.moved",
            " label.moved , version.created",
            "label.moved,,",
        ] {
            assert!(matches(&pattern, ok), "{ok:?}");
        }
        for bad in ["label", "label.moved,nope", "LABEL.MOVED"] {
            assert!(!matches(&pattern, bad), "{bad:?}");
            let parsed: Result<Vec<_>, _> = bad
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| prompt_core::domain::EventType::parse("types", t))
                .collect();
            assert!(parsed.is_err(), "{bad:?}");
        }
    }

    /// Two request bodies named alike replaced one another in the document (the runs
    /// batch was documented as `{ops}`); each body is its own schema, with its bounds.
    #[test]
    fn request_bodies_are_their_own_schemas_with_their_bounds() {
        let doc = serde_json::to_value(crate::router::openapi()).unwrap();
        let body = |path: &str| {
            let r =
                doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                    ["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned();
            doc["components"]["schemas"][r.as_str()].clone()
        };
        let runs = body("/api/v1/runs/batch");
        assert!(runs["properties"]["runs"].is_object(), "{runs}");
        let batch = body("/api/v1/batch");
        assert_eq!(batch["properties"]["ops"]["minItems"], 1, "{batch}");
        assert_eq!(batch["properties"]["ops"]["maxItems"], 1000, "{batch}");
        let new_prompt = &doc["components"]["schemas"]["NewPrompt"]["properties"];
        assert_eq!(new_prompt["tags"]["maxItems"], 50);
        assert_eq!(new_prompt["tags"]["items"]["maxLength"], 64);
        assert_eq!(new_prompt["name"]["pattern"], PROMPT_NAME_PATTERN);
        let text = &doc["components"]["schemas"]["Template"]["oneOf"][0];
        let pattern = text["pattern"].as_str().unwrap();
        assert!(!matches(pattern, " \n\t") && matches(pattern, " Hi {{x}}"));
    }
}
