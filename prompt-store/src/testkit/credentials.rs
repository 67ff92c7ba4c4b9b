//! Behaviour tests of stored provider credentials.

use prompt_core::domain::now;
use prompt_core::{Error, ProviderCredential, ProviderKind};
use serde_json::json;
use uuid::Uuid;

use super::TestBackend;

fn credential(project: Uuid, name: &str, sealed: &str) -> ProviderCredential {
    let at = now();
    ProviderCredential {
        project_id: project,
        name: name.into(),
        kind: ProviderKind::OpenaiCompatible,
        base_url: Some("http://127.0.0.1:9/v1".into()),
        sealed_api_key: sealed.into(),
        key_hint: "sk-…abcd".into(),
        default_params: json!({"temperature": 0.5}),
        created_at: at,
        updated_at: at,
    }
}

/// Credentials: stored per project, replaced by name (keeping `created_at`), listed by
/// name, deleted, validated, and resealed all at once or not at all.
pub async fn provider_credentials_lifecycle(b: &TestBackend) {
    if !b.can(b.caps.provider_credentials, "sealed provider credentials") {
        return;
    }
    let a = b.registry(&format!("cred-{}", Uuid::new_v4())).await;
    let other = b.registry(&format!("cred-{}", Uuid::new_v4())).await;
    let pa = a.project().id;
    let first = b
        .store
        .put_provider_credential(credential(pa, "zeta", "sealed-1"))
        .await
        .unwrap();
    assert_eq!(first.sealed_api_key, "sealed-1");
    b.store
        .put_provider_credential(credential(pa, "alpha", "sealed-2"))
        .await
        .unwrap();
    let mut replacement = credential(pa, "zeta", "sealed-3");
    replacement.kind = ProviderKind::Anthropic;
    replacement.base_url = None;
    replacement.created_at = now() + chrono::Duration::seconds(60);
    let replaced = b.store.put_provider_credential(replacement).await.unwrap();
    assert_eq!(replaced.created_at, first.created_at);
    assert_eq!(replaced.kind, ProviderKind::Anthropic);
    let got = b.store.get_provider_credential(pa, "zeta").await.unwrap();
    assert_eq!(got.sealed_api_key, "sealed-3");
    assert_eq!(got.base_url, None);
    assert_eq!(got.default_params, json!({"temperature": 0.5}));
    assert_eq!(got.key_hint, "sk-…abcd");
    let names: Vec<String> = b
        .store
        .list_provider_credentials(pa)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["alpha", "zeta"]);
    // Another project sees nothing of them.
    assert!(
        b.store
            .list_provider_credentials(other.project().id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        b.store
            .get_provider_credential(other.project().id, "zeta")
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.store
            .delete_provider_credential(other.project().id, "zeta")
            .await,
        Err(Error::NotFound { .. })
    ));
    // Validation.
    let e = b
        .store
        .put_provider_credential(credential(pa, "a/b", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { ref field, .. } if field == "name"),
        "{e}"
    );
    let mut no_url = credential(pa, "c", "x");
    no_url.base_url = None;
    let e = b.store.put_provider_credential(no_url).await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { ref field, .. } if field == "base_url"),
        "{e}"
    );
    let e = b
        .store
        .put_provider_credential(credential(Uuid::now_v7(), "c", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    // Reseal: a failure changes nothing; success changes every credential.
    b.store
        .put_provider_credential(credential(other.project().id, "o", "sealed-o"))
        .await
        .unwrap();
    let failing = |c: &ProviderCredential| {
        if c.name == "zeta" {
            Err(Error::invalid("master key", "cannot open"))
        } else {
            Ok(format!("new-{}", c.sealed_api_key))
        }
    };
    assert!(b.store.reseal_provider_credentials(&failing).await.is_err());
    assert_eq!(
        b.store
            .get_provider_credential(pa, "alpha")
            .await
            .unwrap()
            .sealed_api_key,
        "sealed-2"
    );
    let n = b
        .store
        .reseal_provider_credentials(&|c: &ProviderCredential| {
            Ok(format!("new-{}", c.sealed_api_key))
        })
        .await
        .unwrap();
    // Other tests may share the backend (Postgres): at least ours were resealed.
    assert!(n >= 3, "{n}");
    for (p, name, sealed) in [
        (pa, "alpha", "new-sealed-2"),
        (pa, "zeta", "new-sealed-3"),
        (other.project().id, "o", "new-sealed-o"),
    ] {
        assert_eq!(
            b.store
                .get_provider_credential(p, name)
                .await
                .unwrap()
                .sealed_api_key,
            sealed
        );
    }
    b.store
        .delete_provider_credential(pa, "zeta")
        .await
        .unwrap();
    assert!(matches!(
        b.store.get_provider_credential(pa, "zeta").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        b.store.list_provider_credentials(pa).await.unwrap().len(),
        1
    );
}
