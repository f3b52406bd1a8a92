//! What the `manifests` backend writes in place of a Secret in the `external` mode: an
//! External Secrets Operator `ExternalSecret` (`external-secrets.io/v1`, served since
//! ESO 0.16; `v1beta1` is no longer served from 0.17). The operator reads each value
//! from the configured `SecretStore` or `ClusterSecretStore` and writes the target
//! Secret under the rendered Secret's name, with the same keys, so the pods that mount it
//! are unchanged. The target is spelled out rather than left to ESO's defaults: owned by
//! the `ExternalSecret` (`creationPolicy: Owner`: removed with it when the folder drops a
//! service), kept with its last values if the remote secret disappears (`deletionPolicy:
//! Retain`: running pods keep their credentials), and a `template` giving it the rendered
//! Secret's type and labels. The target Secret is then the same object as the Secret of the
//! `omit` mode or the one the sealed-secrets controller opens in the `sealed` mode. Only the
//! store's name and the remote keys reach the folder.

use super::RenderedObject;
use ent_kernel::config::ExternalSecretsConfig;

/// The API version of the rendered `ExternalSecret`s.
pub const API_VERSION: &str = "external-secrets.io/v1";

/// The shape of the rendered `ExternalSecret`s, part of the secrets policy's fingerprint:
/// bumped when it changes, so that every folder written in the `external` mode is written again.
pub const FORMAT: u32 = 2;

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
                "target": {
                    "name": secret.name,
                    "creationPolicy": "Owner",
                    "deletionPolicy": "Retain",
                    "template": { "type": secret.manifest["type"], "metadata": { "labels": labels } },
                },
                "data": data,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::render::tests::credentials_of;
    use ent_kernel::config::SecretStoreKind;
    use serde_json::json;

    fn config() -> ExternalSecretsConfig {
        ExternalSecretsConfig {
            store_name: Some("vault-ent".into()),
            store_kind: SecretStoreKind::SecretStore,
            remote_key: "kv/{namespace}/{tenant}/{service}".into(),
        }
    }

    /// The Secret ESO writes for an `ExternalSecret` (its values read from the store), as
    /// ESO builds it: name from `target.name`, namespace of the `ExternalSecret`, type and
    /// labels from `target.template`, one key per `data` entry.
    fn target_secret(external: &serde_json::Value, value: &serde_json::Value) -> serde_json::Value {
        let target = &external["spec"]["target"];
        let keys: serde_json::Map<String, serde_json::Value> = external["spec"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| (entry["secretKey"].as_str().unwrap().to_string(), value.clone()))
            .collect();
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": target["template"]["type"],
            "metadata": {
                "name": target["name"], "namespace": external["metadata"]["namespace"],
                "labels": target["template"]["metadata"]["labels"],
            },
            "data": keys,
        })
    }

    #[test]
    fn an_external_secret_names_the_store_the_remote_key_and_the_secret_the_pods_mount() {
        let secret = credentials_of("portail");
        let external = external_secret(&config(), &secret);
        let labels = &secret.manifest["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/component"], "portail", "a rendered Secret: {labels}");
        assert_eq!(
            external.manifest,
            json!({
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": { "name": "portail-credentials", "namespace": "ent-doisneau", "labels": labels },
                "spec": {
                    "secretStoreRef": { "name": "vault-ent", "kind": "SecretStore" },
                    "target": {
                        "name": "portail-credentials",
                        "creationPolicy": "Owner",
                        "deletionPolicy": "Retain",
                        "template": { "type": "Opaque", "metadata": { "labels": labels } },
                    },
                    "data": [{
                        "secretKey": "password",
                        "remoteRef": { "key": "kv/ent-doisneau/doisneau/portail", "property": "password" },
                    }],
                },
            })
        );
        assert_eq!((external.kind.as_str(), external.name.as_str()), ("ExternalSecret", "portail-credentials"));
        let value = &secret.manifest["data"]["password"];
        assert!(!external.manifest.to_string().contains(value.as_str().unwrap()), "no value is copied");
    }

    #[test]
    fn the_target_secret_is_the_rendered_secret_field_by_field() {
        for service in ["portail", "messagerie"] {
            let secret = credentials_of(service);
            let external = external_secret(&config(), &secret).manifest;
            let value = &secret.manifest["data"]["password"];
            let target = target_secret(&external, value);
            let rendered = &secret.manifest;
            for field in ["/apiVersion", "/kind", "/type", "/metadata/name", "/metadata/namespace", "/metadata/labels"]
            {
                assert_eq!(target.pointer(field), rendered.pointer(field), "{service}: {field}");
            }
            let keys = |o: &serde_json::Value| o["data"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&target), keys(rendered), "{service}: the same keys");
            assert_eq!(&target, rendered, "{service}: nothing more, nothing less");
        }
    }
}
