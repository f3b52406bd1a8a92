//! Organisations created by hand (EPCI, syndicats mixtes, vendors, hosts) and
//! the membership of communes in EPCIs and syndicats mixtes.

use super::codes;
use super::etab_siren;
use super::queries::{get_by_code, get_org, get_org_in, groups_of_commune};
use super::{Org, OrgKind};
use crate::audit::{self, Target};
use crate::identity::{authz, Actor};
use chrono::{DateTime, Utc};
use ent_kernel::error::{conflict_unless, precondition_failed, Checks, Problem};
use ent_kernel::naming;
use ent_kernel::store::{new_id, on_constraint, timestamp, update_versioned, Backend, Store, Tx};
use ent_kernel::text::fold;
use ent_kernel::validate::is_blank;
use schemars::JsonSchema;
use serde::Deserialize;

/// A new organisation identified by its SIREN.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// `epci`, `syndicat_mixte`, `editeur` or `hebergeur`.
    pub kind: OrgKind,
    /// Nine digits with a valid Luhn key (spaces allowed).
    pub siren: String,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    pub email: Option<String>,
    /// Département code, for EPCIs and syndicats mixtes.
    pub departement: Option<String>,
}

pub async fn create_org(store: &Store, actor: &Actor, new: NewOrg, now: DateTime<Utc>) -> Result<Org, Problem> {
    let mut checks = Checks::default();
    if !new.kind.is_siren_identified() {
        checks.fail(
            "kind",
            format!(
                "les organisations de type {} viennent de l'import de l'annuaire ; types créables : epci, syndicat_mixte, editeur, hebergeur",
                new.kind.as_str()
            ),
        );
    }
    let siren = checks.check("siren", codes::parse_siren(&new.siren));
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        checks.fail("name", "nom obligatoire, 200 caractères au plus");
    }
    checks.line("name", &name);
    let email = new.email.as_deref().and_then(|email| checks.email("email", email));
    let departement = match &new.departement {
        Some(d) => checks.check("departement", codes::parse_departement(d)),
        None => None,
    };
    if let Some(siren) = siren.as_deref().filter(|s| new.kind.groups_communes() && !s.starts_with('2')) {
        checks.fail(
            "siren",
            format!(
                "le SIREN d'{} commence par 2, comme celui de toute collectivité territoriale et de ses \
                 établissements publics (numérotation de l'INSEE) : {siren} n'en est pas un",
                new.kind.with_article()
            ),
        );
    }
    checks.finish()?;
    let siren = siren.expect("checked");
    if !new.kind.groups_communes() {
        conflict_unless(get_by_code(store, new.kind, &siren).await?.is_none(), || {
            format!("{} de SIREN {siren} existe déjà", new.kind.with_article())
        })?;
    }
    // A group sits in its département's académie and région, so that their scopes reach it.
    let parent = match &departement {
        Some(code) => get_by_code(store, OrgKind::Departement, code).await?,
        None => None,
    };
    let id = new_id();
    let at = timestamp(now);
    let mut tx = store.begin_write().await?;
    // An éditeur or hébergeur is never a public body: a SIREN one holds is refused to it, and an
    // établissement's stale copy of its SIREN is taken back. A public group's SIREN is its own
    // alone: one any organisation holds as its own is refused, in one sentence whoever holds it.
    let holders = etab_siren::holders(&mut tx, &siren).await?;
    // An établissement's copy that is not its own (a collège carrying an EPCI's SIREN from an
    // annuaire row) blocks nothing: it is taken back below (attack review 39, F1).
    let held = holders.iter().any(|h| h.kind != OrgKind::Etablissement || h.is_public_body(&siren));
    if new.kind.groups_communes() && held {
        return Err(Problem::conflict(format!(
            "le SIREN {siren} est déjà au répertoire : celui d'{} n'est celui d'aucune autre organisation ; \
             s'il y est déjà enregistré, demandez à un administrateur de vous y rattacher",
            new.kind.with_article()
        )));
    }
    if holders.iter().any(|h| h.is_public_body(&siren)) {
        return Err(Problem::conflict(format!(
            "le SIREN {siren} est au répertoire celui d'un organisme public (commune, établissement public, \
             groupement de communes…) : il ne peut être celui d'{}",
            new.kind.with_article()
        )));
    }
    sqlx::query(
        "INSERT INTO orgs (id, kind, code, name, sort_name, siren, departement_code, academie_code, region_code, email, is_open, content_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, '', $11, $12)",
    )
    .bind(&id)
    .bind(new.kind.as_str())
    .bind(&siren)
    .bind(&name)
    .bind(fold(&name))
    .bind(&siren)
    .bind(departement.clone())
    .bind(parent.as_ref().and_then(|p| p.academie_code.clone()))
    .bind(parent.as_ref().and_then(|p| p.region_code.clone()))
    .bind(email)
    .bind(&at)
    .bind(&at)
    .execute(&mut *tx)
    .await
    .map_err(on_constraint(ORG_EXISTS))?;
    let target = Target::new("org", &id, Some(&id));
    audit::record(
        &mut tx,
        store.backend(),
        actor,
        "orgs.create",
        &target,
        serde_json::json!({ "kind": new.kind.as_str(), "siren": siren, "name": name, "departement": departement }),
        now,
    )
    .await?;
    let registered = format!("{}:{siren}", new.kind.as_str());
    for squatter in holders.iter().filter(|h| h.kind == OrgKind::Etablissement) {
        drop_siren(&mut tx, store.backend(), actor, squatter, &registered, now).await?;
    }
    tx.commit().await?;
    Ok(get_org(store, &id).await?.expect("just created"))
}

/// Takes its SIREN and SIRET from an établissement that holds them without being their holder
/// (an annuaire row gave it a SIREN that was not its own nor its commune's, before `registered`
/// took it; see [`etab_siren`]): audited, named by what was registered. Its next import writes
/// it again, by the rules of its kind.
async fn drop_siren(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    etab: &etab_siren::Holder,
    registered: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query(
        "UPDATE orgs SET siren = NULL, siret = NULL, content_hash = '', version = version + 1, updated_at = $1 \
         WHERE id = $2",
    )
    .bind(timestamp(now))
    .bind(&etab.id)
    .execute(&mut **tx)
    .await?;
    let target = Target::new("org", &etab.id, Some(&etab.id));
    let detail = serde_json::json!({ "siren": etab.siren, "siret": etab.siret, "registered": registered });
    audit::record(tx, backend, actor, "orgs.siren_dropped", &target, detail, now).await
}

/// The 409 of a concurrent duplicate organisation.
const ORG_EXISTS: &str = "cette organisation existe déjà";

/// Adds (or updates) a commune's membership of an EPCI or syndicat mixte.
/// A commune delegates its ENT to one group at most.
pub async fn set_member(
    store: &Store,
    actor: &Actor,
    group: &Org,
    commune: &Org,
    ent_delegated: bool,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let membership = Membership { group, commune, ent_delegated };
    check_member(store, &membership).await?;
    let mut tx = store.begin_write().await?;
    write_member(&mut tx, store.backend(), actor, &membership, now).await?;
    tx.commit().await?;
    Ok(())
}

/// A commune in a group (EPCI, syndicat mixte), which may hold its ENT.
pub struct Membership<'a> {
    pub group: &'a Org,
    pub commune: &'a Org,
    pub ent_delegated: bool,
}

/// What a membership must satisfy before it is written (see [`set_member`]).
pub async fn check_member(store: &Store, membership: &Membership<'_>) -> Result<(), Problem> {
    let Membership { group, commune, ent_delegated } = *membership;
    check_membership_kinds(group, commune)?;
    if ent_delegated {
        let other = groups_of_commune(store, &commune.id)
            .await?
            .into_iter()
            .find(|(g, delegated)| *delegated && g.id != group.id);
        if let Some((other, _)) = other {
            return Err(Problem::conflict(format!(
                "la commune {} a déjà délégué son ENT à {} ({})",
                commune.name, other.name, other.code
            )));
        }
    }
    Ok(())
}

/// Writes a checked membership, audited, in the caller's transaction.
pub async fn write_member(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    membership: &Membership<'_>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let Membership { group, commune, ent_delegated } = *membership;
    sqlx::query(
        "INSERT INTO org_members (group_id, member_id, ent_delegated, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id, member_id) DO UPDATE SET ent_delegated = excluded.ent_delegated",
    )
    .bind(&group.id)
    .bind(&commune.id)
    .bind(i64::from(ent_delegated))
    .bind(timestamp(now))
    .execute(&mut **tx)
    .await?;
    let target = Target::new("org", &group.id, Some(&group.id));
    audit::record(
        tx,
        backend,
        actor,
        "orgs.members.set",
        &target,
        serde_json::json!({ "commune": commune.code, "ent_delegated": ent_delegated }),
        now,
    )
    .await?;
    Ok(())
}

/// Removes a commune from a group; removing a non-member is a 404.
pub async fn remove_member(
    store: &Store,
    actor: &Actor,
    group: &Org,
    commune: &Org,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    check_membership_kinds(group, commune)?;
    let mut tx = store.begin_write().await?;
    let done = sqlx::query("DELETE FROM org_members WHERE group_id = $1 AND member_id = $2")
        .bind(&group.id)
        .bind(&commune.id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Problem::not_found(format!("{} n'est pas membre {}", commune.name, naming::de(&group.name))));
    }
    let target = Target::new("org", &group.id, Some(&group.id));
    audit::record(
        &mut tx,
        store.backend(),
        actor,
        "orgs.members.remove",
        &target,
        serde_json::json!({ "commune": commune.code }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Fields of `PATCH /orgs/{key}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    /// Only for organisations created by hand: the annuaire owns the others' names.
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
    /// Contact address; `""` clears it.
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2 country of the seat (`FR`, `DE`, `US`...), for organisations created by hand.
    pub country: Option<String>,
}

/// Updates an organisation if `expected_version` is current (optimistic concurrency). A
/// private school's record only by its own roles or an administrator, whoever calls (API,
/// console): [`authz::check_record_keeper`], before anything else; the caller's scope over
/// `org` is checked apart.
pub async fn update_org(
    store: &Store,
    actor: &Actor,
    org: &Org,
    expected_version: i64,
    patch: OrgPatch,
    now: DateTime<Utc>,
) -> Result<Org, Problem> {
    authz::check_record_keeper(actor, &authz::ORGS_UPDATE, org)?;
    let mut checks = Checks::default();
    if let Some(name) = &patch.name {
        if !org.kind.is_siren_identified() {
            checks.fail(
                "name",
                "le nom de cette organisation vient de l'annuaire de l'éducation : corrigez-le à la source",
            );
        } else if is_blank(name) || name.chars().count() > 200 {
            checks.fail("name", "nom obligatoire, 200 caractères au plus");
        }
        checks.line("name", name);
    }
    let checked_email = patch.email.as_deref().filter(|e| !e.is_empty()).and_then(|e| checks.email("email", e));
    if let Some(country) = &patch.country {
        if !org.kind.is_siren_identified() {
            checks.fail("country", "les organisations de l'annuaire de l'éducation sont en France");
        } else if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            checks.fail("country", format!("code pays « {country} » invalide : deux lettres majuscules (ISO 3166-1)"));
        }
    }
    checks.finish()?;
    if patch.email.as_deref().is_some_and(|e| Some(e) != org.email.as_deref()) {
        check_contact_change(store, actor, org).await?;
    }
    let name = patch.name.as_deref().map(str::trim).unwrap_or(&org.name).to_string();
    let country = patch.country.clone().unwrap_or_else(|| org.country.clone());
    let email = match &patch.email {
        Some(e) if e.is_empty() => None,
        Some(_) => checked_email,
        None => org.email.clone(),
    };
    if (&name, &email, &country) == (&org.name, &org.email, &org.country) {
        // Nothing changes: no new version (which would fail other editors' If-Match), no audit.
        let now_stored = get_org(store, &org.id).await?.unwrap_or_else(|| org.clone());
        if now_stored.version != expected_version {
            return Err(precondition_failed(now_stored.version));
        }
        return Ok(now_stored);
    }
    let mut tx = store.begin_write().await?;
    let current = get_org_in(&mut tx, &org.id).await?.map_or(org.version, |o| o.version);
    let query = sqlx::query(
        "UPDATE orgs SET name = $1, sort_name = $2, email = $3, country = $4, version = version + 1, updated_at = $5 \
         WHERE id = $6 AND version = $7",
    )
    .bind(&name)
    .bind(fold(&name))
    .bind(email.clone())
    .bind(&country);
    update_versioned(&mut tx, query, now, &org.id, expected_version, current).await?;
    let target = Target::new("org", &org.id, Some(&org.id));
    audit::record(
        &mut tx,
        store.backend(),
        actor,
        "orgs.update",
        &target,
        serde_json::json!({ "name": name, "email": email, "country": country }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(get_org(store, &org.id).await?.expect("exists"))
}

/// The contact address receives the organisation's notices (support, RGPD): only a
/// role bound at the organisation itself, a DAN over it or an admin may change it,
/// never a collectivité that merely covers it.
async fn check_contact_change(store: &Store, actor: &Actor, org: &Org) -> Result<(), Problem> {
    use ent_kernel::kernel::roles::Role;
    if actor.is_admin() {
        return Ok(());
    }
    for binding in &actor.bindings {
        let Some(at) = &binding.org else { continue };
        let own = at.id == org.id && authz::ORGS_UPDATE.roles.contains(&binding.role);
        if own || (binding.role == Role::Dan && authz::in_org_scope(store, at, org).await?) {
            return Ok(());
        }
    }
    Err(authz::forbidden(format!(
        "l'adresse de contact {} ne peut être changée que par l'organisation elle-même, sa DAN ou un administrateur",
        naming::de(&org.name)
    )))
}

pub fn check_membership_kinds(group: &Org, commune: &Org) -> Result<(), Problem> {
    let mut checks = Checks::default();
    if !group.kind.groups_communes() {
        checks.fail("group", format!("{} n'est ni un EPCI ni un syndicat mixte", group.name));
    }
    if commune.kind != OrgKind::Commune {
        checks.fail("member", format!("{} n'est pas une commune", commune.name));
    }
    checks.finish()
}
