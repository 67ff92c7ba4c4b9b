//! Who is affected when an included prompt changes: the `prompt.dependency_changed`
//! events a write's own events imply ([`dependency_events`]).
//!
//! A label moved or removed on prompt `a` changes the expansion of every live version
//! that includes `{{> a@that-label }}` (`{{> a }}` meaning `a@production`), and a new
//! version of `a` changes those that include `a@latest`. Such a version's prompt `b` is
//! a **dependent**; and since `b`'s labels pointing at that version (and `{{> b#n }}`
//! for its number) now expand differently too, the dependents of those are found the
//! same way, up to [`MAX_INCLUDE_DEPTH`](super::MAX_INCLUDE_DEPTH) prompts in a chain.
//! One event per dependent and change, saying through which prompts it was reached.
//!
//! The backends call this in the write's transaction, just before its events are
//! appended, with the project's live versions that hold include tags as the write
//! leaves them, so the events commit with the change (the change log's contract).
//! A label of an intermediate prompt is followed to the version it points at (a release
//! split's primary arm).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::domain::{EventType, NewEvent, PromptVersion, Selector};
use crate::validate;

use super::{Include, MAX_INCLUDE_DEPTH, includes_of};

/// One change of an included prompt: `label` of `prompt` went from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    prompt: String,
    label: String,
    from: Option<u32>,
    to: Option<u32>,
    actor: Option<String>,
}

/// The changes of included targets that `events` record: label moves and removals,
/// and the `latest` label a new version moves.
fn changes_of(events: &[NewEvent]) -> Vec<Change> {
    let mut out = Vec::new();
    for e in events {
        let Some(prompt) = &e.prompt else { continue };
        let (label, from, to) = match e.kind {
            EventType::LabelMoved | EventType::LabelRemoved => {
                let Some(label) = &e.label else { continue };
                let from = e
                    .data
                    .get("from")
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok());
                (label.clone(), from, e.version)
            }
            EventType::VersionCreated => (validate::LATEST_LABEL.to_owned(), None, e.version),
            _ => continue,
        };
        out.push(Change {
            prompt: prompt.clone(),
            label,
            from,
            to,
            actor: e.actor.clone(),
        });
    }
    out
}

/// The `prompt.dependency_changed` events implied by `events` (a write's own events),
/// given `including`: the project's live versions that hold include tags, as the write
/// leaves them (see the module doc). Empty when nothing includes what changed.
pub fn dependency_events(events: &[NewEvent], including: &[PromptVersion]) -> Vec<NewEvent> {
    let changes = changes_of(events);
    if changes.is_empty() || including.is_empty() {
        return Vec::new();
    }
    // Each including version's targets, parsed once; a tag that no longer parses is
    // skipped (it was checked when the version was created).
    let parsed: Vec<(&PromptVersion, Vec<Include>)> = including
        .iter()
        .map(|v| {
            let tags = includes_of(&v.template)
                .map(|t| t.into_iter().map(|(_, i)| i).collect())
                .unwrap_or_default();
            (v, tags)
        })
        .collect();
    let mut out = Vec::new();
    for change in changes {
        // Dependent prompt → (the prompts it was reached through, its versions).
        let mut reached: BTreeMap<&str, (Vec<String>, BTreeSet<u32>)> = BTreeMap::new();
        // The targets whose expansion changed, with the chain that led to them.
        let mut frontier: Vec<(String, Selector, Vec<String>)> = vec![(
            change.prompt.clone(),
            Selector::Label(change.label.clone()),
            Vec::new(),
        )];
        for _ in 1..MAX_INCLUDE_DEPTH {
            if frontier.is_empty() {
                break;
            }
            let mut next: HashMap<(String, Selector), Vec<String>> = HashMap::new();
            for (v, tags) in &parsed {
                if v.prompt == change.prompt {
                    continue;
                }
                let Some((_, _, through)) = frontier.iter().find(|(name, sel, _)| {
                    tags.iter().any(|t| &t.name == name && &t.selector == sel)
                }) else {
                    continue;
                };
                let entry = reached
                    .entry(v.prompt.as_str())
                    .or_insert_with(|| (through.clone(), BTreeSet::new()));
                if !entry.1.insert(v.version) {
                    continue;
                }
                let mut via = through.clone();
                via.push(v.prompt.clone());
                next.entry((v.prompt.clone(), Selector::Version(v.version)))
                    .or_insert_with(|| via.clone());
                for l in &v.labels {
                    next.entry((v.prompt.clone(), Selector::Label(l.clone())))
                        .or_insert_with(|| via.clone());
                }
            }
            frontier = next.into_iter().map(|((n, s), via)| (n, s, via)).collect();
        }
        for (dependent, (through, versions)) in reached {
            out.push(
                NewEvent::prompt(EventType::DependencyChanged, dependent)
                    .with_actor(change.actor.as_deref())
                    .with_data(json!({
                        "dependency": change.prompt,
                        "label": change.label,
                        "from": change.from,
                        "to": change.to,
                        "through": through,
                        "versions": versions,
                    })),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LabelMove, Template};
    use crate::template::TemplateFormat;
    use chrono::Utc;
    use uuid::Uuid;

    fn version(prompt: &str, n: u32, text: &str, labels: &[&str]) -> PromptVersion {
        PromptVersion {
            id: Uuid::nil(),
            prompt: prompt.to_owned(),
            prompt_id: Uuid::nil(),
            version: n,
            kind: Template::Text(String::new()).kind(),
            template: Template::Text(text.to_owned()),
            template_format: TemplateFormat::Mustache,
            variables: Vec::new(),
            config: Value::Null,
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            commit_message: None,
            created_by: None,
            created_at: Utc::now(),
            split: None,
        }
    }

    fn moved(prompt: &str, label: &str, from: Option<u32>, to: Option<u32>) -> NewEvent {
        NewEvent::label_changed(&LabelMove {
            id: Uuid::nil(),
            prompt: prompt.to_owned(),
            label: label.to_owned(),
            from_version: from,
            to_version: to,
            moved_by: Some("key:ci".to_owned()),
            moved_at: Utc::now(),
            split: None,
        })
    }

    fn summary(events: &[NewEvent]) -> Vec<(String, Value)> {
        events
            .iter()
            .map(|e| {
                assert_eq!(e.kind, EventType::DependencyChanged);
                (e.prompt.clone().unwrap(), e.data.clone())
            })
            .collect()
    }

    #[test]
    fn a_direct_dependent_gets_one_event_with_the_move() {
        let including = [
            version("b", 1, "x {{> a }} y", &["production"]),
            version("b", 2, "x {{> a }} {{> a@production }}", &["latest"]),
            version("c", 1, "{{> a@staging }}", &["latest", "production"]),
        ];
        let got = dependency_events(&[moved("a", "production", Some(1), Some(2))], &including);
        assert_eq!(
            summary(&got),
            vec![(
                "b".to_owned(),
                json!({"dependency": "a", "label": "production", "from": 1, "to": 2,
                       "through": [], "versions": [1, 2]})
            )]
        );
        assert_eq!(got[0].actor.as_deref(), Some("key:ci"));
    }

    #[test]
    fn dependents_are_followed_through_labels_and_numbers() {
        let including = [
            version("b", 3, "{{> a@production }}", &["production"]),
            version("c", 1, "{{> b }}", &["latest"]),
            version("d", 1, "{{> b#3 }}", &[]),
            version("e", 1, "{{> c@latest }}", &[]),
            version("x", 1, "{{> b@staging }}", &[]),
        ];
        let got = dependency_events(&[moved("a", "production", None, Some(1))], &including);
        let names: Vec<(String, Value)> = summary(&got)
            .into_iter()
            .map(|(n, d)| (n, d["through"].clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("b".to_owned(), json!([])),
                ("c".to_owned(), json!(["b"])),
                ("d".to_owned(), json!(["b"])),
                ("e".to_owned(), json!(["b", "c"])),
            ]
        );
    }

    #[test]
    fn removals_and_new_versions_count_and_other_events_do_not() {
        let including = [
            version("b", 1, "{{> a@canary }}", &[]),
            version("c", 1, "{{> a@latest }}", &[]),
        ];
        let removed = dependency_events(&[moved("a", "canary", Some(4), None)], &including);
        assert_eq!(summary(&removed)[0].1["to"], Value::Null);
        assert_eq!(summary(&removed)[0].0, "b");
        let created = NewEvent::prompt(EventType::VersionCreated, "a").with_version(7);
        let got = dependency_events(&[created], &including);
        assert_eq!(summary(&got)[0].0, "c");
        assert_eq!(summary(&got)[0].1["to"], json!(7));
        let archived = NewEvent::prompt_archived("a");
        assert!(dependency_events(&[archived], &including).is_empty());
    }

    #[test]
    fn a_chain_stops_at_the_depth_limit_and_a_cycle_ends() {
        // a <- b <- c <- d <- e <- f: a chain holds at most 5 prompts, so f (6th) is
        // not reached.
        let mut including = Vec::new();
        for (n, dep) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
            including.push(version(n, 1, &format!("{{{{> {dep} }}}}"), &["production"]));
        }
        // A cycle back to a (closed by a later label move) does not loop.
        including.push(version("a", 2, "{{> e }}", &["production"]));
        let got = dependency_events(&[moved("a", "production", Some(1), Some(2))], &including);
        let names: Vec<String> = summary(&got).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "c", "d", "e"]);
    }
}
