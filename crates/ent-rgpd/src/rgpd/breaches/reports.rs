//! A breach recorded by a processor (art. 33.2 RGPD): the controllers it notifies, chosen among
//! those its register says it processes the ENT's data for (its Art. 30(2) entries), each given
//! an entry of its own in its own log (its reference, the notification as its moment of
//! awareness, from which the CNIL's 72 hours run, its CNIL decision its own) and told by e-mail:
//! the DPOs who keep its registers, its head where a school is its own controller, and the DANs
//! of the académie party of the convention in force that covers its ENT. The
//! processor's entry names the controllers it notified and when; the controller's names the
//! processor, its entry's reference and when; neither log reads the other's entries.

use super::{Breach, BreachInput, CnilDecision, PeopleException, CNIL_DELAY_HOURS};
use crate::rgpd::{self as rgpd, derive, new_log_entry, Log, RgpdState, BREACH_KIND};
use chrono::{DateTime, Duration, Utc};
use ent_conventions::conventions::workflow::academie_dans;
use ent_conventions::conventions::{active_covering, Convention};
use ent_documents::documents::grouped;
use ent_kernel::clock::{french_moment, today_in_france};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::{parse_timestamp, timestamp, Store, Tx};
use ent_kernel::text::capitalised;
use ent_kernel::validate::printable;
use ent_ops::notify::Notice;
use ent_platform::audit::{self, Target};
use ent_platform::identity::authz::users_with_role;
use ent_platform::identity::Actor;
use ent_platform::registry::queries::get_org_in;
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// A processor notifies the controller « dans les meilleurs délais » (art. 33.2); the
/// conventions say at the latest 48 hours after becoming aware of it, so that the controller may
/// notify the CNIL within its 72 hours.
pub const CONTROLLER_DELAY_HOURS: i64 = 48;

/// The controllers whose ENT `org` processes data for, as its register derived now says
/// ([`rgpd::current`]: the controllers of its Art. 30(2) entries in force, in its order — not
/// those of a convention signed but not in force yet; an organisation the registers do not know
/// is left out): those a breach of its log may be notified to.
pub async fn processor_for(state: &RgpdState, org: &Org) -> Result<Vec<derive::Actor>, Problem> {
    let register = rgpd::current(state, org).await?;
    let mut controllers: Vec<derive::Actor> = Vec::new();
    for entry in register.processor_entries.into_iter().filter(|e| e.ahead.is_none()) {
        let c = entry.controller;
        if c.id != org.id && !c.code.is_empty() && !controllers.iter().any(|known| known.id == c.id) {
            controllers.push(c);
        }
    }
    Ok(controllers)
}

/// The controllers as a message offers them: « Collège des Essais (0940999A) ».
fn offered(controllers: &[derive::Actor]) -> String {
    let named: Vec<String> =
        controllers.iter().map(|c| format!("{} ({})", derive::named(c).official, c.code)).collect();
    named.join(", ")
}

/// The controllers `named` (ids, codes or `kind:code`) designates among `served`, those `org`
/// processes data for ([`processor_for`]), each once, in their order. A name that designates
/// none of them (unknown, or an organisation `org` is not processor for: one answer for both,
/// drawn from its own register only) is refused on `controllers`, the first one only.
pub(super) fn chosen(checks: &mut Checks, org: &Org, served: &[derive::Actor], named: &[String]) -> Vec<derive::Actor> {
    let mut ids: Vec<&str> = Vec::new();
    for key in named.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
        match served.iter().find(|c| designates(key, c)) {
            Some(c) => ids.push(&c.id),
            None => {
                checks.fail("controllers", refusal(org, served, key));
                break;
            }
        }
    }
    served.iter().filter(|c| ids.contains(&c.id.as_str())).cloned().collect()
}

fn designates(key: &str, c: &derive::Actor) -> bool {
    key == c.id || key.eq_ignore_ascii_case(&c.code) || key.eq_ignore_ascii_case(&format!("{}:{}", c.kind, c.code))
}

/// Why `key` names no controller `org` may notify: the same words whether it names an unknown
/// organisation or one out of `org`'s processing.
fn refusal(org: &Org, served: &[derive::Actor], key: &str) -> String {
    let key = printable(key.chars().take(100).collect::<String>().as_str());
    let who = org.designation().article;
    match served.is_empty() {
        false => format!(
            "« {key} » n'est pas un responsable de traitement pour lequel {who} agit en sous-traitant : choisissez \
             parmi {}",
            offered(served)
        ),
        true => format!(
            "« {key} » : {who} n'agit en sous-traitant pour aucun responsable de traitement de l'ENT ; laissez ce \
             champ vide"
        ),
    }
}

/// A controller a processor's breach was notified to (art. 33.2), as the processor's log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotifiedController {
    pub id: String,
    /// Its official designation (« Collège des Essais »).
    pub name: String,
    /// RFC 3339: when the breach was notified to it.
    pub notified_at: String,
}

/// The processor that notified a controller's entry (art. 33.2), as the controller's log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportedBy {
    pub processor_id: String,
    /// Its official designation (« Département du Val-de-Marne »).
    pub processor: String,
    /// The reference of the breach in the processor's own log.
    pub reference: String,
    /// RFC 3339: when the processor became aware of it, as it reported.
    pub processor_aware_at: String,
    /// RFC 3339: when it was notified: the controller's awareness, the start of its 72 hours.
    pub notified_at: String,
}

/// The links between the entries of one log and other logs: by entry id, the controllers a
/// processor's entry was notified to, and the processor a controller's entry came from.
#[derive(Debug, Default)]
pub(super) struct Links {
    pub notified: HashMap<String, Vec<NotifiedController>>,
    pub reported: HashMap<String, ReportedBy>,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    entry: String,
    org_id: String,
    #[sqlx(try_from = "String")]
    kind: OrgKind,
    name: String,
    reference: String,
    aware_at: String,
    notified_at: Option<String>,
}

fn official(kind: OrgKind, name: &str) -> String {
    naming::of_org(kind, &naming::display_name(name)).official
}

/// The [`Links`] of the entries of `org_id`'s log: of the controllers' entries pointing at them,
/// only their organisation and moment (never their own decisions); of the processor's entry a
/// controller's points at, its organisation, reference and moment of awareness.
pub(super) async fn links(store: &Store, org_id: &str) -> Result<Links, Problem> {
    let notified: Vec<LinkRow> = sqlx::query_as(
        "SELECT c.reported_by AS entry, o.id AS org_id, o.kind, o.name, '' AS reference, '' AS aware_at, \
         c.reported_at AS notified_at FROM rgpd_breaches c JOIN orgs o ON o.id = c.org_id \
         WHERE c.reported_by IN (SELECT id FROM rgpd_breaches WHERE org_id = $1) ORDER BY c.reported_at, o.id",
    )
    .bind(org_id)
    .fetch_all(store.pool())
    .await?;
    let reported: Vec<LinkRow> = sqlx::query_as(
        "SELECT c.id AS entry, o.id AS org_id, o.kind, o.name, p.reference, p.aware_at, c.reported_at AS notified_at \
         FROM rgpd_breaches c JOIN rgpd_breaches p ON p.id = c.reported_by JOIN orgs o ON o.id = p.org_id \
         WHERE c.org_id = $1",
    )
    .bind(org_id)
    .fetch_all(store.pool())
    .await?;
    let mut links = Links::default();
    for r in notified {
        let controller = NotifiedController {
            name: official(r.kind, &r.name),
            id: r.org_id,
            notified_at: r.notified_at.unwrap_or_default(),
        };
        links.notified.entry(r.entry).or_default().push(controller);
    }
    for r in reported {
        let by = ReportedBy {
            processor: official(r.kind, &r.name),
            processor_id: r.org_id,
            reference: r.reference,
            processor_aware_at: r.aware_at,
            notified_at: r.notified_at.unwrap_or_default(),
        };
        links.reported.insert(r.entry, by);
    }
    Ok(links)
}

/// What a controller's own entry holds when notified at `at`: what the processor reported, its
/// moment of awareness that notification, the decisions (CNIL, people) still the controller's.
fn as_notified(i: &BreachInput, at: &str) -> BreachInput {
    BreachInput {
        aware_at: at.to_string(),
        controllers: Some(Vec::new()),
        cnil_decision: CnilDecision::Pending,
        cnil_notified_at: None,
        cnil_reference: Some(String::new()),
        cnil_reason: String::new(),
        people_notified_at: None,
        people_exception: Some(PeopleException::None),
        people_reason: Some(String::new()),
        ..i.clone()
    }
}

/// The fields of what a processor reports (art. 33.3) `after` changes from `before`, as the
/// controller's notice names them; none when its report is unchanged.
pub(super) fn completed(before: &BreachInput, after: &BreachInput) -> Vec<&'static str> {
    let (b, a) = (before, after);
    let fields = [
        ("intitulé", b.title != a.title),
        ("faits", b.facts != a.facts),
        ("survenue", b.occurred_at != a.occurred_at),
        ("prise de connaissance par le sous-traitant", b.aware_at != a.aware_at),
        ("catégories de données", b.data_categories != a.data_categories),
        ("catégories de personnes", b.people_categories() != a.people_categories()),
        ("nombre de personnes", b.people_approx != a.people_approx),
        ("nombre d'enregistrements", b.records_approx != a.records_approx),
        ("conséquences", b.consequences != a.consequences),
        ("mesures", b.measures != a.measures),
        ("risque estimé", b.risk() != a.risk()),
    ];
    fields.into_iter().filter(|(_, changed)| *changed).map(|(label, _)| label).collect()
}

/// By controller id, the convention in force that covers its ENT: whose académie's DANs govern it.
pub(super) type Governing = HashMap<String, Convention>;

/// The [`Governing`] conventions of `controllers` today ([`active_covering`]); a controller no
/// convention covers has none. Read before the write transaction opens.
pub(super) async fn governing(state: &RgpdState, controllers: Vec<String>) -> Result<Governing, Problem> {
    let today = today_in_france(state.clock.now()).format("%Y-%m-%d").to_string();
    let mut out = Governing::new();
    for id in controllers {
        if let Some(conv) = active_covering(&state.store, &state.models, &id, &today).await? {
            out.insert(id, conv);
        }
    }
    Ok(out)
}

/// One entry of a controller's log a processor's breach is notified in.
struct Notified<'a> {
    id: &'a str,
    reference: &'a str,
    /// Its moment of awareness (the notification, unless the controller corrected it).
    aware_at: &'a str,
}

/// Notifies `b`, the breach `org` records as processor, to each of `controllers` (art. 33.2),
/// in `org`'s transaction `tx`: an entry in the controller's own log, numbered in its series
/// (its row locked, after `org`'s, in the order of their ids), audited for it, and a notice
/// to the controller's side ([`recipients`], the DANs of its convention in `governing`).
pub(super) async fn notify(
    tx: &mut Tx,
    state: &RgpdState,
    (actor, org): (&Actor, &Org),
    b: &Breach,
    (controllers, governing): (&[derive::Actor], &Governing),
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let mut ids: Vec<&str> = controllers.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let at = timestamp(now);
    let input = as_notified(&b.input, &at);
    for id in ids {
        let controller = get_org_in(tx, id).await?.ok_or_else(|| anyhow::anyhow!("controller {id} not found"))?;
        let (entry, reference) = new_log_entry(tx, Log::Breaches, &controller.id, now).await?;
        let own = (&input, super::ReportedAs::Controller);
        super::insert(tx, (&entry, &reference, &controller.id), own, (&actor.name, &at), Some(&b.id)).await?;
        let target = Target::new(BREACH_KIND, &entry, Some(&controller.id));
        let summary = json!({
            "reference": reference, "processor": org.id, "processor_reference": b.reference,
            "risk": input.risk().as_str(), "cnil_decision": input.cnil_decision.as_str(),
        });
        audit::record(tx, state.store.backend(), actor, "rgpd.breach.reported", &target, summary, now).await?;
        let notified = Notified { id: &entry, reference: &reference, aware_at: &at };
        let told = (org, &controller, governing.get(&controller.id));
        tell(tx, told, &notified, b, ("reported", &[]), now).await?;
    }
    Ok(())
}

/// Tells the controllers `b` was notified to that `org`, its processor, completed it
/// (art. 33.4: information given in phases), `changed` naming what: their entries stay as
/// their DPOs keep them; each is audited and its controller's side told what is reported now
/// (the DANs of its convention in `governing`).
pub(super) async fn complete(
    tx: &mut Tx,
    state: &RgpdState,
    (actor, org): (&Actor, &Org),
    b: &Breach,
    (changed, governing): (&[&str], &Governing),
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let entries: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, reference, org_id, aware_at FROM rgpd_breaches WHERE reported_by = $1 ORDER BY org_id, id",
    )
    .bind(&b.id)
    .fetch_all(&mut **tx)
    .await?;
    for (entry, reference, controller_id, aware_at) in entries {
        let Some(controller) = get_org_in(tx, &controller_id).await? else { continue };
        let target = Target::new(BREACH_KIND, &entry, Some(&controller.id));
        let summary = json!({
            "reference": reference, "processor": org.id, "processor_reference": b.reference, "completed": changed,
        });
        audit::record(tx, state.store.backend(), actor, "rgpd.breach.completed", &target, summary, now).await?;
        let notified = Notified { id: &entry, reference: &reference, aware_at: &aware_at };
        let told = (org, &controller, governing.get(&controller.id));
        tell(tx, told, &notified, b, ("completed", changed), now).await?;
    }
    Ok(())
}

/// The notice `event` (`reported`, `completed` with the fields `changed`) of `b`, notified by
/// `processor`, to `controller`'s side (with the DANs of `conv`, the convention covering its ENT),
/// linking its entry `entry`: the breach as reported (art. 33.3), the controller's reference, and
/// when its 72 hours to notify the CNIL end.
async fn tell(
    tx: &mut Tx,
    (processor, controller, conv): (&Org, &Org, Option<&Convention>),
    entry: &Notified<'_>,
    b: &Breach,
    (event, changed): (&str, &[&str]),
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let to = recipients(tx, controller, conv).await?;
    let (p, c) = (processor.designation(), controller.designation());
    let i = &b.input;
    let deadline = parse_timestamp(entry.aware_at).map(|t| timestamp(t + Duration::hours(CNIL_DELAY_HOURS)));
    let context = json!({
        "processor": p.article, "processor_capitalised": capitalised(&p.article), "processor_of": p.of,
        "controller": c.article, "controller_of": c.of,
        "reference": entry.reference, "processor_reference": b.reference,
        "notified_at": french_moment(&timestamp(now)),
        "cnil_deadline": deadline.as_deref().map(french_moment).unwrap_or_default(),
        "changed": changed.join(", "),
        "title": i.title, "facts": i.facts,
        "occurred_at": i.occurred_at.as_deref().map(french_moment),
        "processor_aware_at": french_moment(&i.aware_at),
        "data_categories": i.data_categories.join(", "),
        "people_categories": i.people_categories().join(", "),
        "people_approx": grouped(i.people_approx.unsigned_abs()),
        "records_approx": grouped(i.records_approx.unsigned_abs()),
        "consequences": i.consequences, "measures": i.measures, "risk": i.risk().label(),
    });
    let page = format!("/rgpd/{}/violations/{}", controller.id, entry.id);
    Notice::event("breach", to, event).with(context).page(page).enqueue(tx, now).await?;
    Ok(())
}

/// Who is told of a breach notified to `controller`: the DPOs who keep its registers
/// (`authz::dpos_keeping`), the DPO its RGPD contacts name, where a school is its own controller
/// its head (chef d'établissement), and the DANs of the académie party of `conv`, the convention
/// in force covering its ENT ([`academie_dans`], as for a service outside the signed annex).
async fn recipients(tx: &mut Tx, controller: &Org, conv: Option<&Convention>) -> Result<Vec<String>, Problem> {
    let mut to = ent_platform::identity::authz::dpos_keeping(tx, controller).await?;
    if controller.kind == OrgKind::Etablissement {
        to.extend(users_with_role(tx, &controller.id, Role::ChefEtablissement.as_str()).await?);
    }
    if let Some(conv) = conv {
        to.extend(academie_dans(tx, conv).await?);
    }
    let contact: Option<String> = sqlx::query_scalar("SELECT dpo_email FROM rgpd_profiles WHERE org_id = $1")
        .bind(&controller.id)
        .fetch_optional(&mut **tx)
        .await?;
    to.extend(contact.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()));
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::kernel::roles::OrgKind;

    fn college() -> derive::Actor {
        derive::Actor {
            id: "c0ffee".into(),
            kind: "etablissement".into(),
            code: "0940999A".into(),
            name: "Collège des Essais".into(),
            country: "FR".into(),
            address: String::new(),
            email: String::new(),
            phone: String::new(),
            head: String::new(),
        }
    }

    fn departement() -> Org {
        Org::named("d94", OrgKind::Departement, "94", "Val-de-Marne")
    }

    fn named(keys: &[&str], served: &[derive::Actor]) -> (Vec<String>, Vec<String>) {
        let mut checks = Checks::default();
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let chosen = chosen(&mut checks, &departement(), served, &keys);
        let errors = checks.finish().err().map(|p| p.errors).unwrap_or_default();
        (chosen.into_iter().map(|c| c.id).collect(), errors.into_iter().map(|e| e.message).collect())
    }

    #[test]
    fn a_controller_is_named_by_its_id_its_code_or_kind_and_code_each_once() {
        let served = [college()];
        for key in ["c0ffee", "0940999A", "0940999a", "etablissement:0940999A", " c0ffee "] {
            assert_eq!(named(&[key], &served), (vec!["c0ffee".to_string()], vec![]), "{key}");
        }
        assert_eq!(named(&["c0ffee", "0940999A", ""], &served).0, ["c0ffee"]);
        assert_eq!(named(&[], &served), (vec![], vec![]), "a breach of its own processing names none");
    }

    #[test]
    fn a_name_out_of_the_processing_and_an_unknown_one_get_the_same_answer() {
        let served = [college()];
        let (_, other) = named(&["0940176F"], &served);
        let (_, unknown) = named(&["9999999Z"], &served);
        assert_eq!(other[0].replace("0940176F", "…"), unknown[0].replace("9999999Z", "…"));
        assert_eq!(
            unknown,
            ["« 9999999Z » n'est pas un responsable de traitement pour lequel le Département du Val-de-Marne agit en \
              sous-traitant : choisissez parmi Collège des Essais (0940999A)"]
        );
        let (chosen, errors) = named(&["0940999A", "x", "y"], &served);
        assert_eq!((chosen.len(), errors.len()), (1, 1), "the first refused only");
        let (_, nobody) = named(&["0940999A"], &[]);
        assert!(nobody[0].ends_with(
            "n'agit en sous-traitant pour aucun responsable de traitement de l'ENT ; laissez ce champ vide"
        ));
    }

    #[test]
    fn what_a_processor_completes_is_named_field_by_field() {
        let before: BreachInput = serde_json::from_value(json!({
            "title": "Notes", "facts": "Carnet lisible", "aware_at": "2026-09-01T06:30:00Z",
            "data_categories": ["évaluations"], "people_approx": 600, "records_approx": 4200,
            "consequences": "atteinte", "measures": "droits corrigés", "controllers": ["c0ffee"],
        }))
        .unwrap();
        let mut after = before.clone();
        assert!(completed(&before, &after).is_empty());
        after.measures = "mots de passe réinitialisés".into();
        after.people_approx = 650;
        after.cnil_reason = "sans effet".into();
        assert_eq!(completed(&before, &after), ["nombre de personnes", "mesures"]);
    }
}
