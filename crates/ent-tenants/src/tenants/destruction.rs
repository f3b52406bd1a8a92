//! The attestation of destruction of a purged tenant's data (migrations 0073, 0080). The
//! conventions' article « Réversibilité »: at the end of the restitution the éditeur and the
//! hébergeur destroy the data and give the collectivité an attestation, which it passes to the
//! controller. The purge records what it asks to destroy ([`request`]: the namespace, the
//! volumes, the hébergeur and éditeur as named then, the days of the retention); the reconciler
//! issues the attestation once, when the provisioning backend reports the tenant removed
//! ([`attest`], in the transaction that records it): dated at the cluster's confirmation that
//! the namespace and its volumes are gone (kube), or, for a backend that cannot confirm it
//! (manifests for a GitOps tool), saying « destruction demandée le …, confirmation non reçue ».
//! Its HTML document « Attestation de destruction des données » is stored with its SHA-256 as
//! rendered then and never rendered again. The tenant's representation carries it
//! ([`Destruction`]); its readers download the document ([`document`]).

use super::notices::Audience;
use super::Tenant;
use crate::provisioning::reconcile::{rendered_services, Subscribed};
use crate::provisioning::render::{namespace_of, volume_name};
use crate::tenants::ReconcileInput;
use axum::http::HeaderValue;
use axum::response::Response;
use chrono::{DateTime, Utc};
use ent_documents::documents::{response, sha256_hex, to_html, Document, Section};
use ent_kernel::clock::french_moment;
use ent_kernel::error::Problem;
use ent_kernel::naming;
use ent_kernel::store::{parse_timestamp, timestamp, Condition, JsonText, Store, Tx};
use ent_platform::catalog::Catalog;
use ent_platform::registry::OrgRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// The document's title.
pub const TITLE: &str = "Attestation de destruction des données";

/// Who establishes the document, as it names it: the platform's operator, recording its own
/// operations; it does not sign for the hébergeur or the éditeur (domain review 43, F1).
const ATTESTED_BY: &str =
    "l'opérateur de la plateforme de pilotage des ENT (tâche automatique « tenants-purge »), en relevé des \
     opérations de la plateforme";

/// What the document is, and what it is not: the « Portée » section.
const SCOPE: &str = "Le présent document est le relevé, établi par l'opérateur de la plateforme de pilotage des \
     ENT, des opérations de suppression que la plateforme a ordonnées et de ce qu'elle en a constaté. Il n'est pas \
     l'attestation de l'hébergeur ni celle de l'éditeur, au nom desquels l'opérateur ne signe pas : les \
     attestations que ceux-ci délivrent à la collectivité sont conservées avec lui.";

/// What the platform knows of backups, as the attestation states it: it makes none, and no
/// hébergeur declares to it how long it keeps its own.
pub const BACKUPS: &str = "La plateforme ne réalise aucune sauvegarde des données des ENT et n'en détient aucune. \
     Durée de conservation des sauvegardes de l'hébergeur : non déclarée à la plateforme ; la date à laquelle \
     les sauvegardes que l'hébergeur aurait réalisées seront effacées ne peut donc être indiquée. Il appartient à \
     l'hébergeur d'en attester.";

/// What the attestation says of the restitution when none was recorded before the purge.
pub const NO_RESTITUTION: &str = "Aucune restitution n'a été consignée sur la plateforme avant la purge : ni \
     restitution des données au responsable de traitement (date, format), ni renonciation de sa part à la \
     restitution.";

/// What the attestation of a backend that cannot confirm the destruction says of it.
pub const UNCONFIRMED: &str = "confirmation non reçue";

/// A data volume destroyed with the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Volume {
    /// The volume claim's name in the namespace (`<service>-data`).
    pub name: String,
    /// The service whose data it held, as the catalog names it.
    pub service: String,
    /// Its requested size, in GiB.
    pub size_gib: u64,
}

/// What a purge destroys: read from the provisioning before it ([`destroyed`]).
#[derive(Debug, Clone)]
pub struct Destroyed {
    pub namespace: String,
    pub volumes: Vec<Volume>,
}

/// The attestation of destruction of a purged tenant, as its readers read it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Destruction {
    /// `ADD-<YYYYMMDD>-<slug>`: unique, the document's reference, dated as `attested_at`.
    pub reference: String,
    /// When the attestation was issued: when the backend reported the tenant removed.
    pub attested_at: String,
    /// The actor that attested: the purge job, `system:tenants-purge`.
    pub attested_by: String,
    /// When the purge asked for the destruction.
    pub requested_at: String,
    /// When the cluster confirmed that the namespace and its volumes are gone; absent when the
    /// backend cannot confirm it (manifests for a GitOps tool: « confirmation non reçue »), and
    /// for an attestation issued at the purge, before migration 0080.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroyed_at: Option<String>,
    /// The hébergeur and the éditeur of the tenant, named as they were at the purge.
    pub host: Option<String>,
    pub vendor: Option<String>,
    /// The Kubernetes namespace deleted, with every object in it.
    pub namespace: String,
    pub volumes: Vec<Volume>,
    /// What the platform knows of backups (it makes none).
    pub backups: String,
    /// SHA-256 of the stored HTML document.
    pub sha256: String,
    /// Where the document is downloaded (HTML).
    pub document: String,
}

impl Destruction {
    /// How the destruction stands, in French: « données détruites le … » once confirmed, else
    /// « destruction demandée le …, confirmation non reçue ».
    pub fn said(&self) -> String {
        match &self.destroyed_at {
            Some(at) => format!("données détruites le {}", french_moment(at)),
            None => requested_unconfirmed(&self.requested_at),
        }
    }
}

/// « destruction demandée le …, confirmation non reçue ».
fn requested_unconfirmed(requested_at: &str) -> String {
    format!("destruction demandée le {}, {UNCONFIRMED}", french_moment(requested_at))
}

/// The route of a tenant's attestation document.
pub fn document_path(slug: &str) -> String {
    format!("/api/v1/tenants/{slug}/destruction")
}

/// What the purge of `input`'s tenant destroys: its namespace, and the volume of each service
/// with storage it runs or retains (`retained_services`), sized as rendered.
pub fn destroyed(input: &ReconcileInput, catalog: &Catalog) -> Destroyed {
    let tenant = &input.tenant;
    let subscribed = Subscribed { status: tenant.status, bouquet: &tenant.bouquet, options: &tenant.options };
    let running = rendered_services(catalog, &subscribed, &input.applied_services).unwrap_or_default();
    let retained = input.retained_services.iter().filter_map(|code| catalog.service(code));
    let mut volumes: Vec<Volume> = Vec::new();
    for service in running.into_iter().chain(retained).filter(|s| s.deployment.needs_storage()) {
        let name = volume_name(&service.code);
        if volumes.iter().all(|v| v.name != name) {
            let size_gib = service.deployment.storage_gib(tenant.accounts);
            volumes.push(Volume { name, service: service.name.clone(), size_gib });
        }
    }
    Destroyed { namespace: namespace_of(&tenant.slug), volumes }
}

/// The days a purge's attestation states: the archiving and the end of the retention.
pub struct Retention<'a> {
    pub archived_on: &'a str,
    pub ended_on: &'a str,
}

/// What a purge asked to destroy, kept until the attestation is issued
/// (`tenant_destruction_requests`, migration 0080).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Requested {
    pub requested_at: String,
    pub requested_by: String,
    pub host_name: Option<String>,
    pub vendor_name: Option<String>,
    pub namespace: String,
    pub volumes: JsonText<Vec<Volume>>,
    pub archived_on: String,
    pub ended_on: String,
    /// The context of the purge's notice (`archived_on`, `purge_on`, `held_over`…), sent with
    /// the attestation.
    pub notice: JsonText<Value>,
}

/// Records, in the purge's transaction, what the purge of `tenant` by `actor` at `now` asks to
/// destroy, and what its notice, sent with the attestation, will say (`notice`).
pub async fn request(
    tx: &mut Tx,
    tenant: &Tenant,
    destroyed: Destroyed,
    retention: &Retention<'_>,
    notice: Value,
    (actor, now): (&str, DateTime<Utc>),
) -> Result<(), Problem> {
    let name = |org: &Option<OrgRef>| org.as_ref().map(|o| naming::display_name(&o.name));
    sqlx::query(
        "INSERT INTO tenant_destruction_requests (tenant_id, requested_at, requested_by, host_name, vendor_name, \
         namespace, volumes, archived_on, ended_on, notice) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&tenant.id)
    .bind(timestamp(now))
    .bind(actor)
    .bind(name(&tenant.host))
    .bind(name(&tenant.vendor))
    .bind(&destroyed.namespace)
    .bind(serde_json::to_string(&destroyed.volumes).expect("volumes serialise"))
    .bind(retention.archived_on)
    .bind(retention.ended_on)
    .bind(notice.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What the purge of `tenant_id` asked to destroy, while its attestation is not issued.
pub async fn requested(store: &Store, tenant_id: &str) -> Result<Option<Requested>, Problem> {
    Ok(sqlx::query_as(
        "SELECT requested_at, requested_by, host_name, vendor_name, namespace, volumes, archived_on, ended_on, notice \
         FROM tenant_destruction_requests WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(store.pool())
    .await?)
}

/// Issues the attestation of destruction of `tenant`, whose removal the backend reported at
/// `now` (`confirmed`: the cluster confirmed that its namespace is gone), in the transaction
/// that records it: the request taken (none left: another writer issued it, `None`), the
/// document rendered and stored with its SHA-256. Dated at `now`, never before the request.
pub async fn attest(
    tx: &mut Tx,
    tenant: &Tenant,
    audience: &Audience,
    requested: &Requested,
    confirmed: bool,
    now: DateTime<Utc>,
) -> Result<Option<Destruction>, Problem> {
    let taken = sqlx::query("DELETE FROM tenant_destruction_requests WHERE tenant_id = $1")
        .bind(&tenant.id)
        .execute(&mut **tx)
        .await?;
    if taken.rows_affected() == 0 {
        return Ok(None);
    }
    let at = parse_timestamp(&requested.requested_at).map_or(now, |asked| asked.max(now));
    let attested_at = timestamp(at);
    let mut destruction = Destruction {
        reference: format!("ADD-{}-{}", at.format("%Y%m%d"), tenant.slug),
        destroyed_at: confirmed.then(|| attested_at.clone()),
        attested_at,
        attested_by: requested.requested_by.clone(),
        requested_at: requested.requested_at.clone(),
        host: requested.host_name.clone(),
        vendor: requested.vendor_name.clone(),
        namespace: requested.namespace.clone(),
        volumes: requested.volumes.0.clone(),
        backups: BACKUPS.to_string(),
        sha256: String::new(),
        document: document_path(&tenant.slug),
    };
    let retention = Retention { archived_on: &requested.archived_on, ended_on: &requested.ended_on };
    let html = to_html(&attestation(tenant, audience, &destruction, &retention));
    destruction.sha256 = sha256_hex(html.as_bytes());
    let d = &destruction;
    sqlx::query(
        "INSERT INTO tenant_destructions (tenant_id, reference, attested_at, attested_by, host_name, vendor_name, \
         namespace, volumes, backups, document, sha256, requested_at, destroyed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&tenant.id)
    .bind(&d.reference)
    .bind(&d.attested_at)
    .bind(&d.attested_by)
    .bind(&d.host)
    .bind(&d.vendor)
    .bind(&d.namespace)
    .bind(serde_json::to_string(&d.volumes).expect("volumes serialise"))
    .bind(&d.backups)
    .bind(&html)
    .bind(&d.sha256)
    .bind(&d.requested_at)
    .bind(&d.destroyed_at)
    .execute(&mut **tx)
    .await?;
    Ok(Some(destruction))
}

/// The document « Attestation de destruction des données » of `tenant`.
fn attestation(tenant: &Tenant, audience: &Audience, d: &Destruction, retention: &Retention<'_>) -> Document {
    let org = &audience.org;
    let served = naming::of_org(org.kind, &naming::display_name(&org.name));
    let restitution = audience.restitution.as_ref();
    let mut object = Section::new("Objet");
    if let Some(said) = restitution.and_then(|r| r.said.as_ref()) {
        object = object.paragraph(format!("{said}."));
    }
    let what = if d.destroyed_at.is_some() { "la destruction" } else { "la suppression ordonnée" };
    object = object.paragraph(format!(
        "La présente attestation constate {what} des données de l'ENT {} ({}), au service {}, à la fin \
         de leur durée de conservation (article 5, paragraphe 1, point e, du règlement (UE) 2016/679).",
        tenant.slug, tenant.hostname, served.of
    ));
    let unnamed = || "non désigné".to_string();
    let requested_on = french_moment(&d.requested_at);
    let mut fields = vec![
        ("Référence", d.reference.clone()),
        ("ENT", format!("{} ({})", tenant.slug, tenant.hostname)),
        ("Organisation servie", served.official.clone()),
        ("Archivé le", retention.archived_on.to_string()),
        ("Fin de la durée de conservation", retention.ended_on.to_string()),
    ];
    fields.push(("Suppression ordonnée le", requested_on.clone()));
    fields.push(match &d.destroyed_at {
        Some(at) => ("Destruction constatée le", format!("{} (confirmation du cluster)", french_moment(at))),
        None => ("Destruction constatée", format!("non, {UNCONFIRMED}")),
    });
    fields.extend([
        ("Attestation établie le", french_moment(&d.attested_at)),
        ("Attestation établie par", ATTESTED_BY.to_string()),
        ("Hébergeur", d.host.clone().unwrap_or_else(unnamed)),
        ("Éditeur", d.vendor.clone().unwrap_or_else(unnamed)),
    ]);
    if let Some(by) = restitution.and_then(|r| r.by.as_ref()) {
        fields.push(("Collectivité destinataire", naming::of_org(by.kind, &naming::display_name(&by.name)).official));
    }
    if let Some(convention) = restitution.and_then(|r| r.convention.as_ref()) {
        fields.push(("Convention", convention.clone()));
    }
    let mut destroyed = vec![format!(
        "Espace de noms Kubernetes « {} », avec l'ensemble des objets qu'il contenait (configuration, \
         identifiants techniques des services)",
        d.namespace
    )];
    destroyed.extend(
        d.volumes
            .iter()
            .map(|v| format!("Volume de données « {} » du service {} ({} Gio)", v.name, v.service, v.size_gib)),
    );
    destroyed.push("Germe des identifiants techniques de l'ENT, effacé de la base de la plateforme".into());
    let heading =
        if d.destroyed_at.is_some() { "Données détruites" } else { "Données dont la destruction est demandée" };
    Document::new(TITLE)
        .with_subtitle(format!("ENT {} ({}), au service {}", tenant.slug, tenant.hostname, served.of))
        .with_reference(d.reference.clone())
        .section(object)
        .section(Section::new("Attestation").fields(fields))
        .section(Section::new(heading).bullets(destroyed))
        .section(Section::new("Restitution").paragraph(NO_RESTITUTION))
        .section(Section::new("Sauvegardes").paragraph(d.backups.clone()))
        .section(Section::new("Exécution").paragraph(execution(d, &requested_on)))
        .section(Section::new("Portée").paragraph(SCOPE))
}

/// The « Exécution » paragraph: how the destruction was asked and what the cluster said of it.
fn execution(d: &Destruction, requested_on: &str) -> String {
    let how = match &d.destroyed_at {
        Some(at) => format!(
            "La suppression de l'espace de noms, et avec lui des volumes de données, a été ordonnée au cluster \
             Kubernetes le {requested_on} ; le cluster en a confirmé l'effacement le {}, date de la présente \
             attestation.",
            french_moment(at)
        ),
        None => format!(
            "La suppression a été ordonnée le {requested_on} : les manifestes de l'ENT ont été retirés du répertoire \
             que l'outil de déploiement continu (GitOps) applique au cluster, qui supprime l'espace de noms et les \
             volumes de données. La plateforme ne reçoit pas la confirmation de cette suppression : elle n'a pas \
             été reçue à la date de la présente attestation."
        ),
    };
    format!(
        "{how} Son exécution est consignée au journal de l'ENT. Le présent document est conservé par la plateforme, \
         à l'identique, avec son empreinte SHA-256."
    )
}

/// A `tenant_destructions` row but the document.
#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    reference: String,
    attested_at: String,
    attested_by: String,
    host_name: Option<String>,
    vendor_name: Option<String>,
    namespace: String,
    volumes: JsonText<Vec<Volume>>,
    backups: String,
    sha256: String,
    requested_at: Option<String>,
    destroyed_at: Option<String>,
}

/// The attestations of the tenants `slugs` (their slugs by id) that have one, by tenant id.
pub async fn of_tenants(
    store: &Store,
    slugs: &HashMap<String, String>,
) -> Result<HashMap<String, Destruction>, Problem> {
    let mut found = HashMap::new();
    for cond in Condition::in_chunks("tenant_id", slugs.keys().cloned().collect()) {
        let sql = format!(
            "SELECT tenant_id, reference, attested_at, attested_by, host_name, vendor_name, namespace, volumes, \
             backups, sha256, requested_at, destroyed_at FROM tenant_destructions WHERE {}",
            cond.sql()
        );
        let rows: Vec<Row> =
            cond.bind(sqlx::query(&sql)).try_map(|row| sqlx::FromRow::from_row(&row)).fetch_all(store.pool()).await?;
        for r in rows {
            let document = document_path(slugs.get(&r.tenant_id).map_or("", String::as_str));
            let destruction = Destruction {
                reference: r.reference,
                requested_at: r.requested_at.unwrap_or_else(|| r.attested_at.clone()),
                destroyed_at: r.destroyed_at,
                attested_at: r.attested_at,
                attested_by: r.attested_by,
                host: r.host_name,
                vendor: r.vendor_name,
                namespace: r.namespace,
                volumes: r.volumes.0,
                backups: r.backups,
                sha256: r.sha256,
                document,
            };
            found.insert(r.tenant_id, destruction);
        }
    }
    Ok(found)
}

/// The stored document of the attestation of `tenant_id` as a download (`<reference>.html`), its
/// SHA-256 in `X-Document-SHA256`; `None` when the tenant has none (not purged).
pub async fn document(store: &Store, tenant_id: &str) -> Result<Option<Response>, Problem> {
    let stored: Option<(String, String, String)> =
        sqlx::query_as("SELECT reference, document, sha256 FROM tenant_destructions WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(store.pool())
            .await?;
    Ok(stored.map(|(reference, html, sha256)| {
        let mut response = response::document(html, "text/html; charset=utf-8", &format!("{reference}.html"));
        response.headers_mut().insert("x-document-sha256", HeaderValue::from_str(&sha256).expect("hex"));
        response
    }))
}
