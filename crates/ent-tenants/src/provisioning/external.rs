//! What the `manifests` backend writes in place of a Secret in the `external` mode: an
//! External Secrets Operator `ExternalSecret` (`external-secrets.io/v1`, served since
//! ESO 0.16; `v1beta1` is no longer served from 0.17). The operator reads each value
//! from the configured `SecretStore` or `ClusterSecretStore` and writes the target
//! Secret (type `Opaque`, owned by the `ExternalSecret`) under the rendered Secret's name,
//! with the same keys, so the pods that mount it are unchanged. Only the store's name and
//! the remote keys reach the folder.

use super::RenderedObject;
use ent_kernel::config::ExternalSecretsConfig;

/// The API version of the rendered `ExternalSecret`s.
pub const API_VERSION: &str = "external-secrets.io/v1";

/// The remote key of a service's secret: the configured template with its placeholders replaced.
pub fn remote_key(config: &ExternalSecretsConfig, tenant: &str, namespace: &str, service: &str) -> String {
    config.remote_key.replace("{tenant}", tenant).replace("{namespace}", namespace).replace("{service}", service)
}

/// The `ExternalSecret` standing for a rendered Secret: same name, namespace and labels; one
/// entry per key of the Secret, read from the property of that name of the service's remote
/// secret. The values of `secret` are never read.
pub fn external_secret(config: &ExternalSecretsConfig, secret: &RenderedObject) -> RenderedObject {
    let metadata = &secret.manifest["metadata"];
    let labels = &metadata["labels"];
    let namespace = metadata["namespace"].as_str().unwrap_or_default();
    let tenant = labels["app.kubernetes.io/instance"].as_str().unwrap_or(namespace);
    let service =
        labels["app.kubernetes.io/component"].as_str().unwrap_or_else(|| secret.name.trim_end_matches("-credentials"));
    let key = remote_key(config, tenant, namespace, service);
    let data: Vec<serde_json::Value> = secret.manifest["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| serde_json::json!({ "secretKey": name, "remoteRef": { "key": key, "property": name } }))
        .collect();
    RenderedObject {
        kind: "ExternalSecret".into(),
        name: secret.name.clone(),
        manifest: serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "ExternalSecret",
            "metadata": { "name": secret.name, "namespace": namespace, "labels": labels },
            "spec": {
                "secretStoreRef": {
                    "name": config.store_name.as_deref().unwrap_or_default(),
                    "kind": config.store_kind.as_str(),
                },
                "target": { "name": secret.name, "creationPolicy": "Owner" },
                "data": data,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::config::SecretStoreKind;

    fn secret() -> RenderedObject {
        RenderedObject {
            kind: "Secret".into(),
            name: "portail-credentials".into(),
            manifest: serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {
                    "name": "portail-credentials", "namespace": "ent-doisneau",
                    "labels": { "app.kubernetes.io/instance": "doisneau", "app.kubernetes.io/component": "portail" },
                },
                "data": { "password": "bW90LWRlLXBhc3Nl" },
            }),
        }
    }

    #[test]
    fn an_external_secret_names_the_store_the_remote_key_and_the_secret_the_pods_mount() {
        let config = ExternalSecretsConfig {
            store_name: Some("vault-ent".into()),
            store_kind: SecretStoreKind::SecretStore,
            remote_key: "kv/{namespace}/{tenant}/{service}".into(),
        };
        let external = external_secret(&config, &secret());
        let labels =
            serde_json::json!({ "app.kubernetes.io/instance": "doisneau", "app.kubernetes.io/component": "portail" });
        assert_eq!(
            external.manifest,
            serde_json::json!({
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": { "name": "portail-credentials", "namespace": "ent-doisneau", "labels": labels },
                "spec": {
                    "secretStoreRef": { "name": "vault-ent", "kind": "SecretStore" },
                    "target": { "name": "portail-credentials", "creationPolicy": "Owner" },
                    "data": [{
                        "secretKey": "password",
                        "remoteRef": { "key": "kv/ent-doisneau/doisneau/portail", "property": "password" },
                    }],
                },
            })
        );
        assert_eq!((external.kind.as_str(), external.name.as_str()), ("ExternalSecret", "portail-credentials"));
        assert!(!external.manifest.to_string().contains("bW90LWRlLXBhc3Nl"), "no value is copied");
    }
}
