//! What the `manifests` backend writes in place of a Secret, so that no credential
//! reaches a folder meant for git: nothing (a note lists the Secrets to provide), a
//! bitnami `SealedSecret` that only the cluster's sealed-secrets controller can open, or
//! an `ExternalSecret` naming where the External Secrets Operator reads it (`external.rs`).
//!
//! Sealing is the controller's hybrid scheme (`kubeseal`, strict scope): a random
//! AES-256-GCM session key (zero nonce: the key is used once) encrypts the value, the
//! key is encrypted with RSA-OAEP (SHA-256) under the controller's public key with the
//! label `<namespace>/<name>`; the value is `len(rsa) as u16 BE ‖ rsa ‖ aes-gcm`, base64.

use super::RenderedObject;
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ent_kernel::config::ExternalSecretsConfig;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha2::{Digest, Sha256};

/// The note written in a tenant folder when Secrets are left out.
pub const NOTE_FILE: &str = "LISEZMOI-secrets.txt";

/// What becomes of the tenant's Secrets in its folder.
pub enum SecretsPolicy {
    /// Left out, listed in [`NOTE_FILE`].
    Omit,
    /// Sealed for the controller whose public key this is.
    Sealed(Sealer),
    /// Read by the External Secrets Operator from this store.
    External(ExternalSecretsConfig),
}

impl SecretsPolicy {
    /// Identifies the policy (and the certificate): a folder written under another is rewritten.
    pub fn fingerprint(&self) -> String {
        match self {
            SecretsPolicy::Omit => "omit".into(),
            SecretsPolicy::Sealed(sealer) => format!("sealed:{}", sealer.fingerprint),
            SecretsPolicy::External(store) => format!(
                "external/{}:{}/{}/{}",
                super::external::FORMAT,
                store.store_kind.as_str(),
                store.store_name.as_deref().unwrap_or_default(),
                store.remote_key
            ),
        }
    }
}

pub struct Sealer {
    key: RsaPublicKey,
    fingerprint: String,
}

impl Sealer {
    /// From a PEM certificate (`kubeseal --fetch-cert`) or PEM RSA public key.
    pub fn from_pem(text: &str) -> Result<Sealer, String> {
        let (label, der) = pem_block(text).ok_or("aucun bloc PEM")?;
        let spki = match label.as_str() {
            "CERTIFICATE" => certificate_public_key(&der).ok_or("certificat X.509 illisible")?,
            "PUBLIC KEY" => der.as_slice(),
            other => return Err(format!("bloc PEM « {other} » : un certificat ou une clé publique attendu")),
        };
        let key = RsaPublicKey::from_public_key_der(spki).map_err(|e| format!("clé publique RSA illisible : {e}"))?;
        Ok(Sealer { key, fingerprint: hex::encode(&Sha256::digest(spki)[..8]) })
    }

    /// One value sealed for the Secret `namespace/name` (strict scope).
    pub fn encrypt(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let session = Aes256Gcm::generate_key(&mut OsRng);
        let wrapped = self
            .key
            .encrypt(&mut OsRng, Oaep::new_with_label::<Sha256, _>(label), &session)
            .map_err(|e| format!("chiffrement RSA : {e}"))?;
        let sealed = Aes256Gcm::new(&session)
            .encrypt(Nonce::from_slice(&[0; 12]), plaintext)
            .map_err(|e| format!("chiffrement AES : {e}"))?;
        let length = u16::try_from(wrapped.len()).map_err(|_| "clé RSA trop longue".to_string())?;
        Ok([length.to_be_bytes().as_slice(), &wrapped, &sealed].concat())
    }

    /// The `SealedSecret` standing for a rendered Secret: same name, namespace and labels.
    pub fn seal(&self, secret: &RenderedObject) -> Result<RenderedObject, String> {
        let metadata = &secret.manifest["metadata"];
        let namespace = metadata["namespace"].as_str().unwrap_or_default();
        let label = format!("{namespace}/{}", secret.name);
        let mut encrypted = serde_json::Map::new();
        for (key, value) in secret.manifest["data"].as_object().into_iter().flatten() {
            let plaintext = STANDARD.decode(value.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
            encrypted.insert(key.clone(), STANDARD.encode(self.encrypt(&label, &plaintext)?).into());
        }
        let template = serde_json::json!({
            "metadata": { "name": secret.name, "namespace": namespace, "labels": metadata["labels"] },
            "type": secret.manifest["type"],
        });
        Ok(RenderedObject {
            kind: "SealedSecret".into(),
            name: secret.name.clone(),
            manifest: serde_json::json!({
                "apiVersion": "bitnami.com/v1alpha1",
                "kind": "SealedSecret",
                "metadata": { "name": secret.name, "namespace": namespace, "labels": metadata["labels"] },
                "spec": { "encryptedData": encrypted, "template": template },
            }),
        })
    }
}

/// The note listing the Secrets left out of the folder (their names and keys, never their values).
pub fn omitted_note(secrets: &[&RenderedObject]) -> String {
    let mut note = String::from(
        "Secrets non écrits dans ce dossier (destiné à git) : à fournir au cluster par un autre moyen\n\
         (provisioning.manifests_credentials.mode: sealed avec le certificat du contrôleur sealed-secrets,\n\
         external avec un SecretStore d'External Secrets, ou votre gestionnaire de secrets ;\n\
         valeurs : `entctl tenants render <slug>` sur le serveur).\n\n",
    );
    for secret in secrets {
        let namespace = secret.manifest["metadata"]["namespace"].as_str().unwrap_or_default();
        let keys: Vec<&str> =
            secret.manifest["data"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        note.push_str(&format!("{namespace}/{} : {}\n", secret.name, keys.join(", ")));
    }
    note
}

/// The label and the decoded body of the first PEM block of `text`.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find("-----END ")?;
    let body: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label.to_string(), STANDARD.decode(body).ok()?))
}

/// One DER element: its tag, its content, the whole element, what follows it.
type DerElement<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// The DER element at the start of `input`.
fn der_element(input: &[u8]) -> Option<DerElement<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        (rest[..count].iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)), &rest[count..])
    };
    let header = input.len() - rest.len();
    (rest.len() >= length).then(|| (tag, &rest[..length], &input[..header + length], &rest[length..]))
}

/// The SubjectPublicKeyInfo of an X.509 certificate: the 7th field of its TBSCertificate
/// (after the optional version, serial, signature algorithm, issuer, validity, subject).
fn certificate_public_key(der: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _, _) = der_element(der)?;
    let (_, tbs, _, _) = der_element(certificate)?;
    let mut rest = tbs;
    let (tag, _, _, after) = der_element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..5 {
        rest = der_element(rest)?.3;
    }
    Some(der_element(rest)?.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::render::tests::credentials_of;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::RsaPrivateKey;

    const CERT: &str = include_str!("../../testdata/sealed-secrets.crt");
    const KEY: &str = include_str!("../../testdata/sealed-secrets.key");

    /// What the sealed-secrets controller does to open a value.
    fn unseal(key: &RsaPrivateKey, label: &str, sealed: &[u8]) -> Vec<u8> {
        let length = usize::from(u16::from_be_bytes([sealed[0], sealed[1]]));
        let session = key.decrypt(Oaep::new_with_label::<Sha256, _>(label), &sealed[2..2 + length]).unwrap();
        let cipher = Aes256Gcm::new_from_slice(&session).unwrap();
        cipher.decrypt(Nonce::from_slice(&[0; 12]), &sealed[2 + length..]).unwrap()
    }

    /// The rendered Secret of the portail and its password, in clear.
    fn secret() -> (RenderedObject, Vec<u8>) {
        let secret = credentials_of("portail");
        let password = STANDARD.decode(secret.manifest["data"]["password"].as_str().unwrap()).unwrap();
        (secret, password)
    }

    #[test]
    fn a_sealed_value_opens_with_the_controllers_key_for_its_own_secret_only() {
        let sealer = Sealer::from_pem(CERT).unwrap();
        let (secret, password) = secret();
        let sealed = sealer.seal(&secret).unwrap();
        let text = sealed.manifest.to_string();
        let clear = String::from_utf8(password.clone()).unwrap();
        assert!(!text.contains(&clear) && !text.contains(secret.manifest["data"]["password"].as_str().unwrap()));
        let template = &sealed.manifest["spec"]["template"];
        assert_eq!(template["metadata"]["namespace"], "ent-doisneau");
        assert_eq!(template["metadata"]["labels"], secret.manifest["metadata"]["labels"]);
        assert_eq!(template["type"], "Opaque");
        let value = STANDARD.decode(sealed.manifest["spec"]["encryptedData"]["password"].as_str().unwrap()).unwrap();
        let key = RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
        assert_eq!(unseal(&key, "ent-doisneau/portail-credentials", &value), password);
        let moved = key.decrypt(Oaep::new_with_label::<Sha256, _>("ent-autre/portail-credentials"), &value[2..258]);
        assert!(moved.is_err(), "strict scope: sealed for one namespace and name only");
    }

    #[test]
    fn the_certificate_and_its_public_key_give_the_same_sealer() {
        let from_cert = Sealer::from_pem(CERT).unwrap();
        let key = RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
        let public = rsa::pkcs8::EncodePublicKey::to_public_key_pem(&key.to_public_key(), Default::default()).unwrap();
        let from_key = Sealer::from_pem(&public).unwrap();
        assert_eq!(from_cert.key, from_key.key);
        assert_eq!(from_cert.fingerprint, from_key.fingerprint);
        assert!(Sealer::from_pem(KEY).is_err(), "a private key is refused");
        assert!(Sealer::from_pem("pas un PEM").is_err());
    }

    #[test]
    fn the_note_names_secrets_and_keys_never_values() {
        let (secret, password) = secret();
        let note = omitted_note(&[&secret]);
        assert!(note.contains("ent-doisneau/portail-credentials : password"), "{note}");
        assert!(!note.contains(secret.manifest["data"]["password"].as_str().unwrap()));
        assert!(!note.contains(&String::from_utf8(password).unwrap()));
    }
}
