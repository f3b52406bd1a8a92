//! A consultation declared « sans suite » (article R. 2185-1 du code de la commande publique: the
//! buyer may at any moment declare the procedure sans suite; R. 2185-2: it tells the candidates
//! its reasons), for infructuosité (no offer, or only irregular, unacceptable or inappropriate
//! ones) or for a motif d'intérêt général. The coordinator declares it on a groupement in
//! consultation ([`declare`], If-Match): the groupement goes back to `closed`, its launch and
//! offers deadline cleared and kept in the declaration ([`SansSuite`], the latest one, on the
//! groupement), so that its coordinator relaunches a consultation — new documents, a new offers
//! deadline, the procedure changed if need be (an edit while closed) — within the same convention
//! constitutive, which its members signed for the purchase and not for one consultation. Its
//! members are told ([`notify`]); nothing is awarded nor published from the consultation ended
//! ([`refusal`]).

use super::{award, guard, Ctx, Groupement, Status};
use chrono::{DateTime, Utc};
use ent_kernel::clock::{french_date, french_moment, today_in_france};
use ent_kernel::error::{conflict_unless, Checks, Problem};
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_kernel::store::{timestamp, update_versioned, Tx};
use ent_kernel::validate::multiline;
use ent_kernel::{skip_serializing_none, text_enum};
use ent_ops::notify::Notice;
use ent_platform::identity::authz::users_with_role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Why a consultation is declared sans suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Motif {
    /// No offer, or only irregular, unacceptable or inappropriate ones (articles L. 2152-2 to
    /// L. 2152-4): the procedure is « infructueuse ».
    Infructuosite,
    /// Another motif d'intérêt général, that the justification states.
    InteretGeneral,
    /// The need redefined or gone (a motif d'intérêt général).
    BesoinRedefini,
    /// An irregularity of the procedure (a motif d'intérêt général).
    IrregulariteProcedure,
}

text_enum!(pub Motif {
    Infructuosite = "infructuosite",
    InteretGeneral = "interet_general",
    BesoinRedefini = "besoin_redefini",
    IrregulariteProcedure = "irregularite_procedure",
});

impl Motif {
    /// In French, as the page, the notice and the audit say it.
    pub fn label(self) -> &'static str {
        match self {
            Motif::Infructuosite => {
                "procédure infructueuse : aucune offre, ou seulement des offres irrégulières, inacceptables ou \
                 inappropriées (articles L. 2152-2 à L. 2152-4 du code de la commande publique)"
            }
            Motif::InteretGeneral => "motif d'intérêt général",
            Motif::BesoinRedefini => "motif d'intérêt général : besoin redéfini ou disparu",
            Motif::IrregulariteProcedure => "motif d'intérêt général : irrégularité de la procédure",
        }
    }

    /// The values, for a message listing them.
    fn values() -> String {
        Motif::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// `POST /groupements/{id}/sans-suite`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SansSuiteInput {
    /// `infructuosite`, `interet_general`, `besoin_redefini` or `irregularite_procedure`.
    #[schemars(extend("enum" = ["infructuosite", "interet_general", "besoin_redefini", "irregularite_procedure"]))]
    pub motif: String,
    /// The reasons the members and the candidates are told (article R. 2185-2), required,
    /// 2 000 characters at most.
    pub justification: String,
}

/// The latest declaration sans suite of a groupement's consultation.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SansSuite {
    pub motif: Motif,
    /// The motif in French.
    pub motif_label: String,
    pub justification: String,
    /// When it was declared, RFC 3339.
    pub declared_at: String,
    /// `YYYY-MM-DD`: its day in France.
    pub declared_on: String,
    /// The launch of the consultation it ended, RFC 3339.
    pub consultation_launched_at: Option<String>,
    /// The offers deadline of the consultation it ended, RFC 3339 in UTC.
    pub offers_deadline_at: Option<String>,
}

/// A lot of a consultation declared sans suite while its other lots go on to their award (article
/// R. 2185-1 du code de la commande publique: the procedure, or one of its lots): no accord-cadre
/// is concluded for it; the groupement is awarded once every other lot is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotSansSuite {
    pub lot: u32,
    pub motif: Motif,
    /// The motif in French.
    pub motif_label: String,
    pub justification: String,
    /// When it was declared, RFC 3339.
    pub declared_at: String,
    /// `YYYY-MM-DD`: its day in France.
    pub declared_on: String,
}

/// The longest justification.
const JUSTIFICATION_MAX: usize = 2000;

/// The motif and the justification of `input`, or 422 on each field that fails.
fn checked(input: &SansSuiteInput) -> Result<(Motif, String), Problem> {
    let mut checks = Checks::default();
    let motif = Motif::parse(input.motif.trim());
    if motif.is_none() {
        checks.fail("motif", format!("motif inconnu : attendu {}", Motif::values()));
    }
    let justification = checks.text("justification", &input.justification, JUSTIFICATION_MAX);
    checks.check("justification", multiline(&justification));
    checks.finish()?;
    Ok((motif.expect("checked"), justification))
}

/// Declares the consultation of `g` sans suite, for the version `expected_version` (If-Match):
/// only in consultation (409 otherwise), a known motif and a justification (422). Back to
/// `closed`, the launch and the offers deadline kept in the declaration, audited
/// (`groupements.sans_suite`) and told to the members, in one transaction.
pub async fn declare(
    ctx: &Ctx<'_>,
    g: &Groupement,
    expected_version: i64,
    input: &SansSuiteInput,
) -> Result<Groupement, Problem> {
    guard::require_coordinates(ctx.actor, g)?;
    conflict_unless(g.status == Status::Consultation, || {
        format!(
            "un groupement {} n'a pas de consultation en cours : seule une consultation lancée, avant son attribution, \
             se déclare sans suite",
            g.status.label()
        )
    })?;
    let (motif, justification) = checked(input)?;
    let record = SansSuite {
        motif,
        motif_label: motif.label().to_string(),
        justification,
        declared_at: timestamp(ctx.now),
        declared_on: today_in_france(ctx.now).to_string(),
        consultation_launched_at: g.consultation_launched_at.clone(),
        offers_deadline_at: g.offers_deadline_at.clone(),
    };
    let mut tx = ctx.store.begin_write().await?;
    let update = sqlx::query(
        "UPDATE groupements SET status = $1, sans_suite = $2, consultation_launched_at = NULL, \
         offers_deadline_at = NULL, lots_sans_suite = NULL, version = version + 1, updated_at = $3 WHERE id = $4 \
         AND version = $5",
    )
    .bind(Status::Closed.as_str())
    .bind(serde_json::to_string(&record).expect("a declaration serialises"));
    update_versioned(&mut tx, update, ctx.now, &g.id, expected_version, g.version).await?;
    let summary = json!({
        "from": g.status.as_str(), "to": Status::Closed.as_str(), "motif": motif.as_str(),
        "justification": record.justification, "consultation_launched_at": record.consultation_launched_at,
        "offers_deadline_at": record.offers_deadline_at,
    });
    ctx.record(&mut tx, "groupements.sans_suite", &g.id, Some(&g.coordinator.id), summary).await?;
    super::documents::abandon_versions(&mut tx, g, &record.declared_at).await?;
    notify(&mut tx, ctx, g, &record).await?;
    tx.commit().await?;
    super::must_get(ctx.store, &g.id).await
}

/// Declares the lot `number` of `g`'s consultation sans suite, for the version `expected_version`
/// (If-Match): only in consultation, for a groupement of several lots, a lot it has that is not
/// already declared (409 otherwise; 404 for a lot it does not have), neither the lot carrying the
/// ENT — the other lots have no object without it — nor the last lot left to award, which is the
/// whole consultation's to declare ([`declare`]). A known motif and a justification (422). Kept on
/// the groupement (`lots_sans_suite`), audited (`groupements.lot_sans_suite`) and told to the
/// coordinator's and the members' representatives, in one transaction.
pub async fn declare_lot(
    ctx: &Ctx<'_>,
    g: &Groupement,
    expected_version: i64,
    number: u32,
    input: &SansSuiteInput,
) -> Result<Groupement, Problem> {
    guard::require_coordinates(ctx.actor, g)?;
    let Some(lot) = g.terms.lots.iter().find(|l| l.number == number) else {
        return Err(Problem::not_found(format!("le groupement {} n'a pas de lot {number}", g.reference)));
    };
    conflict_unless(g.status == Status::Consultation, || {
        format!(
            "un groupement {} n'a pas de consultation en cours : seul un lot d'une consultation lancée, avant son \
             attribution, se déclare sans suite",
            g.status.label()
        )
    })?;
    conflict_unless(g.terms.lots.len() > 1, || {
        "le groupement n'a qu'un lot : c'est la consultation entière qui se déclare sans suite"
    })?;
    conflict_unless(!g.lots_sans_suite.iter().any(|d| d.lot == number), || {
        format!("le lot {number} est déjà déclaré sans suite")
    })?;
    conflict_unless(!lot.carries_ent(), || {
        format!(
            "le lot {number} porte la solution d'espace numérique de travail, sans laquelle les autres lots n'ont pas \
             d'objet : déclarez sans suite la consultation entière"
        )
    })?;
    let open = g.terms.lots.iter().filter(|l| !g.lots_sans_suite.iter().any(|d| d.lot == l.number)).count();
    conflict_unless(open > 1, || "c'est le dernier lot à attribuer : déclarez sans suite la consultation entière")?;
    let (motif, justification) = checked(input)?;
    let record = LotSansSuite {
        lot: number,
        motif,
        motif_label: motif.label().to_string(),
        justification,
        declared_at: timestamp(ctx.now),
        declared_on: today_in_france(ctx.now).to_string(),
    };
    let mut all = g.lots_sans_suite.clone();
    all.push(record.clone());
    let mut tx = ctx.store.begin_write().await?;
    let update =
        sqlx::query("UPDATE groupements SET lots_sans_suite = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4")
            .bind(serde_json::to_string(&all).expect("declarations serialise"));
    update_versioned(&mut tx, update, ctx.now, &g.id, expected_version, g.version).await?;
    let summary = json!({
        "lot": number, "title": lot.title, "motif": motif.as_str(), "justification": record.justification,
    });
    ctx.record(&mut tx, "groupements.lot_sans_suite", &g.id, Some(&g.coordinator.id), summary).await?;
    notify_lot(&mut tx, ctx, g, (lot, &record)).await?;
    tx.commit().await?;
    super::must_get(ctx.store, &g.id).await
}

/// What the declaration `record` of `lot` says, after « Le lot … du groupement … »: the day, by
/// whom and why.
pub fn lot_sentence(g: &Groupement, (lot, record): (&super::Lot, &LotSansSuite)) -> String {
    format!(
        "Le lot {} « {} » de la consultation du groupement de commandes {} « {} » a été déclaré sans suite le {} par \
         son coordonnateur, {}, pour le motif suivant : {}. Justification : {}",
        lot.number,
        lot.title,
        g.reference,
        g.title,
        french_date(&record.declared_on),
        naming::of_org(g.coordinator.kind, &naming::display_name(&g.coordinator.name)).article,
        record.motif_label,
        record.justification
    )
}

/// Queues the `lot_sans_suite` notice of `g` in `tx`, to the coordinator's `coordinateur` users and
/// each accepted member's `collectivite` users, each once: no titulaire for that lot, the others
/// go on. The members' DPOs are not told: only the lot carrying the ENT makes a sub-processor.
async fn notify_lot(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    g: &Groupement,
    declared: (&super::Lot, &LotSansSuite),
) -> Result<(), Problem> {
    let mut to = users_with_role(tx, &g.coordinator.id, Role::Coordinateur.as_str()).await?;
    for m in super::membership::members(ctx.store, &g.id).await? {
        to.extend(users_with_role(tx, &m.applicant.id, Role::Collectivite.as_str()).await?);
    }
    let subject = json!({
        "event": "lot_sans_suite", "reference": g.reference, "title": g.title,
        "message": lot_sentence(g, declared), "lot": declared.0.number,
    });
    to_buyers(tx, g, (to, subject), ctx.now).await
}

/// Queues the notice `subject` of `g`, linking its page, to `to` (the coordinator's and the
/// members' representatives), each once.
async fn to_buyers(
    tx: &mut Tx,
    g: &Groupement,
    (to, subject): (Vec<String>, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    Notice::new("groupement", to).unique_recipients().with(subject).page(super::page_of(g)).enqueue(tx, now).await?;
    Ok(())
}

/// What `record` says of `g`'s consultation, after « La consultation du groupement … »: its launch,
/// the day it was declared sans suite, by whom and why.
pub fn sentence(g: &Groupement, record: &SansSuite) -> String {
    let launched = record
        .consultation_launched_at
        .as_deref()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| format!(", lancée le {},", french_date(&today_in_france(at.with_timezone(&Utc)).to_string())))
        .unwrap_or_default();
    let deadline = record
        .offers_deadline_at
        .as_deref()
        .map(|at| format!(" (offres attendues jusqu'au {}, heure de Paris)", french_moment(at)))
        .unwrap_or_default();
    format!(
        "{launched} a été déclarée sans suite le {} par son coordonnateur, {}{deadline}, pour le motif suivant : {}. \
         Justification : {}",
        french_date(&record.declared_on),
        naming::of_org(g.coordinator.kind, &naming::display_name(&g.coordinator.name)).article,
        record.motif_label,
        record.justification
    )
}

/// Queues the `sans_suite` notice of `g` in `tx`: the coordinator's `coordinateur` users and each
/// accepted member's `collectivite` users (its representatives), each once; and each accepted
/// member's DPOs their own (`sans_suite_processor`, [`award::notify_member_dpos`]): no contract will
/// be concluded under this consultation, no titulaire becomes the sub-processor of the ENT the
/// member funds, nothing changes in its register.
async fn notify(tx: &mut Tx, ctx: &Ctx<'_>, g: &Groupement, record: &SansSuite) -> Result<(), Problem> {
    let mut to = users_with_role(tx, &g.coordinator.id, Role::Coordinateur.as_str()).await?;
    let message = sentence(g, record);
    for m in super::membership::members(ctx.store, &g.id).await? {
        to.extend(users_with_role(tx, &m.applicant.id, Role::Collectivite.as_str()).await?);
        let subject = json!({ "event": "sans_suite_processor", "message": message });
        award::notify_member_dpos(tx, g, &m.applicant, subject, None, ctx.now).await?;
    }
    let subject = json!({
        "event": "sans_suite", "reference": g.reference, "title": g.title, "message": message,
        "motif": record.motif_label, "declared_on": french_date(&record.declared_on),
    });
    to_buyers(tx, g, (to, subject), ctx.now).await
}

/// The refusal (409) of what follows a consultation — `what`: its award, its DECP — once that
/// consultation was declared sans suite and none was relaunched; `None` otherwise.
pub fn refusal(g: &Groupement, what: &str) -> Option<Problem> {
    let record = g.sans_suite.as_ref().filter(|_| g.award.is_none() && g.status != Status::Consultation)?;
    Some(Problem::conflict(format!(
        "la consultation du groupement {} a été déclarée sans suite le {} ({}) : {what} ; relancez une consultation \
         (passage à l'état « en consultation », avec une nouvelle date limite de réception des offres)",
        g.reference,
        french_date(&record.declared_on),
        record.motif.label()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_motif_is_one_of_the_list_and_a_justification_is_required_bounded_and_printable() {
        let input = |motif: &str, justification: &str| SansSuiteInput {
            motif: motif.into(),
            justification: justification.into(),
        };
        let ok = checked(&input("infructuosite", "  Aucune offre reçue.  ")).unwrap();
        assert_eq!(ok, (Motif::Infructuosite, "Aucune offre reçue.".to_string()));
        let fields = |p: Problem| p.errors.into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(checked(&input("caprice", "x")).unwrap_err()), ["motif"]);
        assert_eq!(fields(checked(&input("interet_general", " ")).unwrap_err()), ["justification"]);
        let hostile = checked(&input("interet_general", "Budget\u{202e}lin")).unwrap_err();
        assert_eq!(fields(hostile), ["justification"]);
        let long = "a".repeat(JUSTIFICATION_MAX + 1);
        assert_eq!(fields(checked(&input("besoin_redefini", &long)).unwrap_err()), ["justification"]);
        for m in Motif::ALL {
            assert_eq!(Motif::parse(m.as_str()), Some(m));
            assert!(!m.label().is_empty());
        }
    }
}
