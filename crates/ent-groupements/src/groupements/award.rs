//! The award: the vendor (an `editeur` of the registry, created or linked by
//! its Luhn-checked SIRET), the amounts, the notification date and the DECP
//! facts only the coordinator knows — all checked before anything is written.
//! The awarded vendor becomes the processor of record of every member (a
//! processor contract, Art. 28 clauses carried by the CCAP) and the vendor of
//! the tenants the members fund that are still to be served, so that the RGPD registers point
//! to it; a tenant withdrawn or archived keeps the vendor that holds its data (the award says
//! so), a purged one is left alone.

use super::consultation;
use super::decp::{self, DecpFacts, Known};
use super::lots::LotAward;
use super::membership::{self, Application};
use super::{Award, Ctx, Groupement, Status};
use chrono::NaiveDate;
use ent_conventions::conventions::{find_model, get_convention, rgpd_roles};
use ent_kernel::clock::{french_date, french_moment, term_end, today_in_france};
use ent_kernel::error::{conflict_unless, Checks, FieldError, Problem, ProblemKind};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::first_column;
use ent_kernel::store::timestamp;
use ent_kernel::store::update_versioned;
use ent_kernel::store::Condition;
use ent_kernel::store::Store;
use ent_kernel::store::Tx;
use ent_kernel::text::fold;
use ent_kernel::validate::{self, parse_date};
use ent_ops::notify::Notice;
use ent_platform::catalog::Catalog;
use ent_platform::contracts::{self, NewContract};
use ent_platform::identity::authz;
use ent_platform::identity::authz::users_with_role;
use ent_platform::registry::codes::{parse_siren, parse_siret};
use ent_platform::registry::etab_siren;
use ent_platform::registry::manage::{create_org, NewOrg};
use ent_platform::registry::queries::{funds_condition, get_by_code, get_org_in};
use ent_platform::registry::{get_org, Org, OrgRef};
use ent_tenants::tenants::{get_tenant, set_processors, Status as TenantStatus, Tenant};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `POST /groupements/{id}/award`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwardInput {
    /// SIRET of the awarded vendor (14 digits, Luhn-checked).
    pub vendor_siret: Option<String>,
    /// The vendor's name, needed when the registry does not know its SIREN yet.
    pub vendor_name: Option<String>,
    /// The maximum awarded HT, in cents: the accord-cadre's maximum in quantity (the DQE's
    /// quantities raised by the groupement's `maximum_margin_percent`) at the `unit_prices` (the
    /// default; another figure is refused).
    pub amount_ht_cents: Option<i64>,
    /// The same TTC (each lot's TVA added, as the BPU/DQE prints it).
    pub amount_ttc_cents: Option<i64>,
    /// `YYYY-MM-DD`: notification of the contract to the vendor.
    pub notified_on: Option<String>,
    /// The groupement's planned duration when absent.
    pub duration_months: Option<u32>,
    /// The awarded unit prices HT of the BPU's lines, per lot (the members' own orders): every
    /// line of every lot is required.
    #[serde(default)]
    pub unit_prices: Vec<super::costs::UnitPrice>,
    /// The facts of the DECP record only the coordinator knows.
    #[serde(default)]
    pub decp: DecpFacts,
    /// Whether the candidates not retained were told of the rejection of their offer otherwise
    /// than electronically: the standstill before the signature is then 16 days, not 11
    /// (article R. 2182-1 du code de la commande publique). Electronically by default.
    pub rejections_by_post: Option<bool>,
    /// The titulaire's choice in its acte d'engagement (section F) on the advance of the CCAP's
    /// article 7: `true` when it renounces it, `false` when it does not. Required; the post-award
    /// AE ticks its box and the DECP's `attributionAvance` and `tauxAvance` follow it.
    pub advance_renounced: Option<bool>,
    /// A groupement of several lots is awarded lot by lot, each its own accord-cadre (article
    /// L. 2113-10 du code de la commande publique): one entry per lot not declared sans suite,
    /// with its titulaire, its prices, its notification and its DECP facts; the fields above are
    /// then left out (but `rejections_by_post`). Absent for a groupement of one lot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<LotAwardInput>,
}

/// The award of one lot of a groupement of several ([`AwardInput::lots`]): the fields of the
/// award of a groupement of one lot, for that lot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LotAwardInput {
    /// The lot's number.
    pub lot: u32,
    pub vendor_siret: Option<String>,
    pub vendor_name: Option<String>,
    /// The lot's maximum HT at its titulaire's unit prices (the default; another figure is refused).
    pub amount_ht_cents: Option<i64>,
    pub amount_ttc_cents: Option<i64>,
    /// `YYYY-MM-DD`: notification of the lot's accord-cadre to its titulaire.
    pub notified_on: Option<String>,
    /// The lot's unit prices, every line of the lot priced (`lot` the lot's number).
    #[serde(default)]
    pub unit_prices: Vec<super::costs::UnitPrice>,
    #[serde(default)]
    pub decp: DecpFacts,
    pub advance_renounced: Option<bool>,
}

impl LotAwardInput {
    /// The award of a groupement of one lot this entry is, for [`check`].
    fn as_award(&self, rejections_by_post: Option<bool>) -> AwardInput {
        AwardInput {
            vendor_siret: self.vendor_siret.clone(),
            vendor_name: self.vendor_name.clone(),
            amount_ht_cents: self.amount_ht_cents,
            amount_ttc_cents: self.amount_ttc_cents,
            notified_on: self.notified_on.clone(),
            duration_months: None,
            unit_prices: self.unit_prices.clone(),
            decp: self.decp.clone(),
            rejections_by_post,
            advance_renounced: self.advance_renounced,
            lots: Vec::new(),
        }
    }
}

/// One award to check and record: a lot (the only one, or one of several), the award input for
/// it, and the prefix of its fields in the request (`lots[1].` for several lots, none for one).
struct Entry {
    lot: super::Lot,
    input: AwardInput,
    prefix: String,
}

/// The awards `input` asks, one per lot: for a groupement of one lot, `input` itself (`lots`
/// refused); for several, each entry of `lots` — every lot not declared sans suite once, no other,
/// and none of the single-lot fields (422 on each).
fn entries(g: &Groupement, input: AwardInput, checks: &mut Checks) -> Vec<Entry> {
    if g.terms.lots.len() <= 1 {
        if !input.lots.is_empty() {
            checks.fail("lots", "le groupement n'a qu'un lot : l'attribution se donne sans la liste des lots");
        }
        let lot = g.terms.lots.first().cloned().unwrap_or_else(|| super::default_lots().remove(0));
        return vec![Entry { lot, input, prefix: String::new() }];
    }
    let single = [
        ("vendor_siret", input.vendor_siret.is_some()),
        ("vendor_name", input.vendor_name.is_some()),
        ("amount_ht_cents", input.amount_ht_cents.is_some()),
        ("amount_ttc_cents", input.amount_ttc_cents.is_some()),
        ("notified_on", input.notified_on.is_some()),
        ("unit_prices", !input.unit_prices.is_empty()),
        ("decp", input.decp != DecpFacts::default()),
        ("advance_renounced", input.advance_renounced.is_some()),
    ];
    for (field, _) in single.iter().filter(|(_, given)| *given) {
        checks.fail(
            field,
            "le groupement a plusieurs lots, chacun attribué séparément (article L. 2113-10 du code de la commande \
             publique) : indiquez ce champ dans l'attribution de chaque lot (lots)",
        );
    }
    let closed = |n: u32| g.lots_sans_suite.iter().any(|d| d.lot == n);
    let mut entries = Vec::new();
    for (i, given) in input.lots.iter().enumerate() {
        let field = format!("lots[{i}].lot");
        match g.terms.lots.iter().find(|l| l.number == given.lot) {
            None => checks.fail(&field, format!("le groupement n'a pas de lot {}", given.lot)),
            Some(_) if closed(given.lot) => {
                checks.fail(&field, format!("le lot {} est déclaré sans suite : il ne s'attribue pas", given.lot))
            }
            Some(_) if input.lots[..i].iter().any(|o| o.lot == given.lot) => {
                checks.fail(&field, format!("le lot {} est déjà attribué plus haut dans la liste", given.lot))
            }
            Some(lot) => entries.push(Entry {
                lot: lot.clone(),
                input: given.as_award(input.rejections_by_post),
                prefix: format!("lots[{i}]."),
            }),
        }
    }
    for lot in g.terms.lots.iter().filter(|l| !closed(l.number) && !input.lots.iter().any(|e| e.lot == l.number)) {
        checks.fail(
            "lots",
            format!(
                "lot {} « {} » : attribution manquante ; chaque lot est attribué, ou déclaré sans suite avant \
                 l'attribution des autres",
                lot.number, lot.title
            ),
        );
    }
    entries
}

/// Moves the errors of `own` into `checks`, their fields prefixed by `prefix`.
fn merge(own: Checks, prefix: &str, checks: &mut Checks) {
    if let Err(p) = own.finish() {
        for FieldError { field, message } in p.errors {
            checks.fail(&format!("{prefix}{field}"), message);
        }
    }
}

/// `problem` with its fields prefixed by `prefix` (a lot's entry's).
fn prefixed(mut problem: Problem, prefix: &str) -> Problem {
    for e in &mut problem.errors {
        e.field = format!("{prefix}{}", e.field);
    }
    problem
}

struct Checked {
    siret: String,
    amount_ht: i64,
    amount_ttc: i64,
    notified_on: String,
    duration: u32,
}

/// The amounts awarded: an accord-cadre à bons de commande is awarded for its maximum, the DQE's
/// quantities raised by the groupement's `margin` (percent) at the titulaire's unit prices (HT,
/// and TTC with each lot's TVA, as the CCAP prints it) — the DECP's `montant`. Absent, they are
/// that maximum; given, they must be it.
fn check_amounts(
    input: &AwardInput,
    (maximum_ht, maximum_ttc): (i64, i64),
    margin: u32,
    checks: &mut Checks,
) -> (Option<i64>, Option<i64>) {
    let quantities = match margin {
        0 => "les quantités du DQE".to_string(),
        _ => format!("les quantités du DQE majorées de {margin} %"),
    };
    if maximum_ht <= 0 {
        checks.fail("unit_prices", "le maximum du marché aux prix unitaires du titulaire est nul : rien à attribuer");
        return (None, None);
    }
    let mut amount = |field: &str, given: Option<i64>, maximum: i64, what: &str| match given {
        Some(given) if given != maximum => {
            checks.fail(
                field,
                format!(
                    "le montant {what} d'un accord-cadre à bons de commande est son maximum aux prix unitaires du \
                     titulaire ({quantities}) : {} ; laissez ce champ vide pour le reprendre",
                    super::costs::euros(maximum)
                ),
            );
            None
        }
        _ => Some(maximum),
    };
    (
        amount("amount_ht_cents", input.amount_ht_cents, maximum_ht, "HT"),
        amount("amount_ttc_cents", input.amount_ttc_cents, maximum_ttc, "TTC"),
    )
}

/// A procédure adaptée concludes no accord-cadre whose maximum reaches the threshold of the
/// formalised procedures in force at the launch (`today` for one not recorded) for its category of
/// buyer (`buyer`: the State's central authorities' when an académie or a DSDEN coordinates or
/// joins, [`consultation::Buyer::of`]): the value of an
/// accord-cadre is its maximum (article R. 2121-8 du code de la commande publique), here its
/// maximum in quantity at the titulaire's unit prices, `maximum_ht`. Refused on `amount_ht_cents`
/// (the estimate taken before the launch did not cover it: the margin or the prices carry the
/// maximum over the threshold), nothing awarded.
fn check_adapted_maximum(
    g: &Groupement,
    (maximum_ht, buyer): (i64, consultation::Buyer),
    today: NaiveDate,
    (field, checks): (&str, &mut Checks),
) {
    if g.terms.procedure != consultation::Procedure::ProcedureAdaptee {
        return;
    }
    let threshold = consultation::formalised_threshold(g.consultation_launched_on().unwrap_or(today), buyer);
    if maximum_ht < threshold.cents {
        return;
    }
    let euros = super::costs::euros;
    let margin = match g.terms.maximum_margin_percent {
        0 => String::new(),
        m => format!(", les quantités du DQE majorées de {m} %"),
    };
    checks.fail(
        field,
        format!(
            "le maximum de l'accord-cadre aux prix unitaires du titulaire, {} HT{margin}, atteint le {} ({}) : la \
             valeur d'un accord-cadre est son maximum (article R. 2121-8 du code de la commande publique) et une \
             procédure adaptée ne peut pas le conclure ; la consultation est à relancer en appel d'offres ouvert",
            euros(maximum_ht),
            threshold.words(),
            threshold.source
        ),
    );
}

fn check(
    input: &AwardInput,
    (g, marche_id, whole): (&Groupement, &str, bool),
    (coordinator, members, taken): (&Org, &[Application], &Taken),
    (today, earliest): (NaiveDate, &Earliest),
    checks: &mut Checks,
) -> Option<Checked> {
    let siret = match &input.vendor_siret {
        Some(s) => checks.check("vendor_siret", parse_siret(s)).and_then(|siret| {
            let siren = parse_siren(&siret[..9]);
            let siret = checks
                .check("vendor_siret", siren.map(|_| siret.clone()).map_err(|e| format!("SIRET {siret} : {e}")))?;
            match taken.vendor_public {
                true => {
                    checks.fail("vendor_siret", public_vendor(&siret));
                    None
                }
                false => Some(siret),
            }
        }),
        None => {
            checks.fail("vendor_siret", "SIRET du titulaire obligatoire pour attribuer le marché");
            None
        }
    };
    let priced = super::costs::check_prices(&input.unit_prices, &g.terms.lots, checks);
    // Only valid prices are multiplied: an unbounded one would overflow.
    let (amount_ht, amount_ttc) = if priced {
        let maximum = super::documents::maximum_totals(g, &super::documents::totals(members), &input.unit_prices);
        // One lot of several: the value of all the lots is checked once, summed (article R. 2121-4).
        if whole {
            check_adapted_maximum(g, (maximum.0, super::buyer_of(g, members)), today, ("amount_ht_cents", checks));
        }
        check_amounts(input, maximum, g.terms.maximum_margin_percent, checks)
    } else {
        (None, None)
    };
    let notified = match input.notified_on.as_deref().map(|d| validate::date(d.trim())) {
        Some(Ok(d)) if d > today => {
            checks.fail("notified_on", "la notification ne peut pas être datée dans le futur");
            None
        }
        Some(Ok(d)) if d.to_string() < earliest.day => {
            let french = |d: &str| french_date(d);
            let (notified, what, day) = (french(&d.to_string()), &earliest.what, french(&earliest.day));
            checks.fail(
                "notified_on",
                match earliest.why.is_empty() {
                    true => format!("la notification ({notified}) ne peut pas précéder {what} ({day})"),
                    false => format!(
                        "l'accord-cadre ne peut pas être notifié avant le {day} (notification indiquée : {notified}){}",
                        earliest.why
                    ),
                },
            );
            None
        }
        Some(Ok(d)) => Some(d.to_string()),
        Some(Err(message)) => {
            checks.fail("notified_on", message);
            None
        }
        None => {
            checks.fail("notified_on", "date de notification du marché obligatoire");
            None
        }
    };
    // One duration for the CCTP, the convention, the award and the DECP: the groupement's terms.
    let duration = g.terms.duration_months;
    if input.duration_months.is_some_and(|d| d != duration) {
        checks.fail(
            "duration_months",
            format!(
                "la durée du marché est celle des documents du groupement ({duration} mois) : modifiez les conditions \
                 du groupement avant la consultation plutôt que la durée à l'attribution"
            ),
        );
    }
    check_buyer(input.decp.acheteur_siret.as_deref(), (coordinator, taken.buyer.as_deref()), checks);
    let today_text = today.to_string();
    let mut k = known(
        g,
        coordinator,
        siret.as_deref().unwrap_or("00000000000000"),
        amount_ht.unwrap_or(1),
        duration,
        notified.as_deref().unwrap_or("2000-01-01"),
        &today_text,
    );
    k.reference = marche_id;
    let record = decp::marche(&k, &input.decp);
    for FieldError { field, message } in decp::check(&record) {
        // The fields checked above already carry their own message.
        let own = ["vendor_siret", "amount_ht_cents", "notified_on", "duration_months", "decp.acheteur_siret"];
        if !own.contains(&field.as_str()) {
            checks.fail(&field, message);
        }
    }
    Some(Checked { siret: siret?, amount_ht: amount_ht?, amount_ttc: amount_ttc?, notified_on: notified?, duration })
}

/// The buyer published in the DECP is the coordinator running the procedure: its SIRET
/// of record, else (none recorded) one of its own establishments, given at award
/// (checked against its SIREN when the registry holds one, and against the registry's other
/// organisations by [`buyer_taken`]) and kept on the award for its DECP, not in the registry.
fn check_buyer(given: Option<&str>, (coordinator, taken): (&Org, Option<&str>), checks: &mut Checks) {
    const FIELD: &str = "decp.acheteur_siret";
    let name = &coordinator.name;
    match (coordinator.siret.as_deref(), given.map(str::trim)) {
        (Some(known), Some(s)) if known != s => checks.fail(
            FIELD,
            format!("l'acheteur est le coordonnateur {name} : son SIRET au répertoire est {known}, pas {s}"),
        ),
        (Some(_), _) => {}
        (None, None) => checks.fail(
            FIELD,
            format!(
                "le coordonnateur {name} n'a pas de SIRET au répertoire : l'acheteur publié est le coordonnateur, \
                 indiquez le SIRET d'un de ses établissements{}",
                coordinator.siren.as_deref().map(|s| format!(" (SIREN {s})")).unwrap_or_default()
            ),
        ),
        (None, Some(s)) => {
            let Some(siret) = checks.check(FIELD, parse_siret(s)) else { return };
            match coordinator.siren.as_deref() {
                Some(siren) if !siret.starts_with(siren) => checks.fail(
                    FIELD,
                    format!(
                        "le SIRET {siret} n'est pas celui du coordonnateur {name} (SIREN {siren}) : l'acheteur \
                         publié est le coordonnateur, pas un membre ni un tiers"
                    ),
                ),
                // Its own SIREN, or none of record (an académie): refused if another's.
                _ => {
                    if let Some(taken) = taken {
                        checks.fail(FIELD, taken);
                    }
                }
            }
        }
    }
}

/// What the registry says of the SIRETs an award names, read before its checks: why the buyer
/// SIRET is another organisation's ([`buyer_taken`]), and whether the vendor's SIREN is a
/// public body's ([`held_by_public_body`]).
struct Taken {
    buyer: Option<String>,
    vendor_public: bool,
}

/// Why the buyer SIRET `given` for a coordinator without a SIRET of record is another
/// organisation's, if the registry says so: that SIRET is another's, or its SIREN (first nine
/// digits) is another's SIREN or that of another's SIRET — unless it is the coordinator's own
/// SIREN. The other organisation is not named (the caller may not read it). None when the
/// coordinator has a SIRET of record or `given` is no SIRET ([`check_buyer`] says why).
async fn buyer_taken(store: &Store, coordinator: &Org, given: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(siret) = given.and_then(|s| parse_siret(s.trim()).ok()) else { return Ok(None) };
    if coordinator.siret.is_some() {
        return Ok(None);
    }
    let siren = &siret[..9];
    let others: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT siret FROM orgs WHERE id <> $1 AND (siret = $2 OR siren = $3 OR SUBSTR(siret, 1, 9) = $3) \
         ORDER BY CASE WHEN siret = $2 THEN 0 ELSE 1 END",
    )
    .bind(&coordinator.id)
    .bind(&siret)
    .bind(siren)
    .fetch_all(store.pool())
    .await?;
    let own_siren = coordinator.siren.as_deref() == Some(siren);
    let taken = |what: String| {
        format!(
            "le SIRET {siret} est {what} : l'acheteur publié est le coordonnateur {}, pas un membre ni un tiers ; \
             indiquez le SIRET d'un de ses propres établissements",
            coordinator.name
        )
    };
    Ok(others.into_iter().find_map(|(other_siret,)| match other_siret {
        Some(s) if s == siret => Some(taken("celui d'une autre organisation du répertoire".into())),
        _ if own_siren => None,
        _ => Some(taken(format!("du SIREN {siren}, qui est au répertoire celui d'une autre organisation"))),
    }))
}

/// Whether the registry holds `siren` (the first nine digits of `siret`, a valid SIRET) for a
/// public body ([`etab_siren::held_by_public_body`]) — a commune, an EPCI, an école under its
/// commune's SIREN…: never the titulaire of the accord-cadre. An établissement carrying a SIREN
/// that is not its own nor its commune's (an annuaire row's error) does not make it one.
async fn held_by_public_body(store: &Store, siret: Option<&str>) -> Result<bool, Problem> {
    let Some(siret) = siret.and_then(|s| parse_siret(s).ok()) else { return Ok(false) };
    etab_siren::held_by_public_body(store, &siret[..9]).await
}

/// The refusal of a vendor SIRET a public body's SIREN holds, naming no organisation.
fn public_vendor(siret: &str) -> String {
    format!(
        "le SIRET {siret} relève d'un SIREN que le répertoire attribue à un organisme public, pas à un éditeur ni à \
         un hébergeur : le titulaire de l'accord-cadre est l'opérateur économique retenu, indiquez son SIRET"
    )
}

/// What the platform knows for the DECP record.
pub fn known<'a>(
    g: &'a Groupement,
    coordinator: &'a Org,
    vendor_siret: &'a str,
    amount_ht_cents: i64,
    duration_months: u32,
    notified_on: &'a str,
    published_on: &'a str,
) -> Known<'a> {
    Known {
        reference: &g.reference,
        object: &g.object,
        coordinator_siret: coordinator.siret.as_deref(),
        coordinator_departement: coordinator.departement_code.as_deref(),
        vendor_siret,
        amount_ht_cents,
        duration_months,
        notified_on,
        published_on,
    }
}

/// The registry's éditeur of this SIRET, created (and its SIRET recorded) when missing, under
/// the name the registry already knows for that SIREN (an hébergeur the caller reads): one
/// legal person, one name; a different `name` is refused. An hébergeur the caller may not read
/// is answered about as an unknown SIREN (its name is not an answer to give). A public body's
/// SIREN never comes here: [`check`] refused it ([`held_by_public_body`]).
async fn vendor_org(ctx: &Ctx<'_>, siret: &str, name: Option<&str>) -> Result<Org, Problem> {
    let siren = &siret[..9];
    if let Some(org) = get_by_code(ctx.store, OrgKind::Editeur, siren).await? {
        return Ok(org);
    }
    // The name the registry holds for it (an hébergeur): said only to a caller who reads that
    // organisation; to any other the SIREN is as unknown, its name never echoed.
    let known = match get_by_code(ctx.store, OrgKind::Hebergeur, siren).await? {
        Some(host) if authz::reads(ctx.store, ctx.actor, &host).await? => Some(host.name),
        _ => None,
    };
    let given = name.map(str::trim).filter(|n| !validate::is_blank(n));
    let name = match (known, given) {
        (Some(known), Some(given)) if fold(&known) != fold(given) => {
            return Err(Problem::invalid_field(
                "vendor_name",
                format!(
                    "le SIREN {siren} figure déjà au répertoire sous le nom « {known} » : laissez le nom vide ou \
                     indiquez celui-ci"
                ),
            ))
        }
        (Some(known), _) => known,
        (None, Some(given)) => given.to_string(),
        (None, None) => {
            return Err(Problem::invalid_field(
                "vendor_name",
                format!("aucun éditeur de SIREN {siren} au répertoire : indiquez son nom pour l'y enregistrer"),
            ))
        }
    };
    // The INSEE numbers collectivités territoriales and their établissements publics from 2:
    // registered from an award, such a titulaire would hold the SIREN an EPCI or syndicat mixte
    // needs (attack review 39, F2). An administrator registers a public titulaire first.
    if siren.starts_with('2') {
        return Err(Problem::invalid_field(
            "vendor_siret",
            format!(
                "le SIREN {siren} commence par 2, comme celui d'une collectivité territoriale ou de l'un de ses \
                 établissements publics : s'il est bien le titulaire, un administrateur l'inscrit d'abord au \
                 répertoire comme éditeur"
            ),
        ));
    }
    let new = NewOrg { kind: OrgKind::Editeur, siren: siren.into(), name, email: None, departement: None };
    create_org(ctx.store, ctx.actor, new, ctx.now).await
}

/// 409 unless the convention constitutive (its article 10) lasts to the contract's last day:
/// otherwise an avenant must first extend it.
async fn require_convention_covers(ctx: &Ctx<'_>, g: &Groupement, checked: &Checked) -> Result<(), Problem> {
    let Some(id) = super::constitutive_id(ctx.store, g).await? else { return Ok(()) };
    let Some(conv) = get_convention(ctx.store, ctx.models, &id).await? else {
        return Ok(());
    };
    let notified = parse_date("notified_on", &checked.notified_on)?;
    let Some(last_day) = term_end(notified, checked.duration) else { return Ok(()) };
    let french = |d: &str| french_date(d);
    conflict_unless(last_day.to_string() <= conv.end_date, || {
        format!(
            "le marché notifié le {} pour {} mois court jusqu'au {}, au-delà de la convention constitutive {} qui \
             s'achève le {} : concluez au préalable un avenant la prolongeant jusqu'au terme du marché (article 10)",
            french(&checked.notified_on),
            checked.duration,
            french(&last_day.to_string()),
            conv.reference,
            french(&conv.end_date)
        )
    })
}

/// The first day the contract may be notified (`YYYY-MM-DD`), what it is, in words, and why
/// (empty, or the délais that lead to it, from « : »).
struct Earliest {
    day: String,
    what: String,
    why: String,
}

/// The latest of the groupement's creation, the start of its convention constitutive (the
/// lineage's first version: the day the groupement was constituted) and the end of the délais of
/// `procedure` from the launch of its consultation (the day in France it entered `consultation`,
/// `consultation_launched_at`; [`consultation::earliest_notification`]): a contract is notified
/// after the procedure that awards it, its délais run.
async fn earliest_notification(
    store: &Store,
    g: &Groupement,
    (procedure, by_post): (consultation::Procedure, bool),
) -> Result<Earliest, Problem> {
    let created = g.created_on().to_string();
    let mut earliest = Earliest { day: created, what: "la création du groupement".into(), why: String::new() };
    let mut later = |day: String, what: String, why: String| {
        if day > earliest.day {
            earliest = Earliest { day, what, why };
        }
    };
    if let Some(linked) = &g.first_convention_id {
        let root: Option<(String, String)> = sqlx::query_as(
            "SELECT r.reference, r.start_date FROM conventions l JOIN conventions r ON r.id = l.root_id \
             WHERE l.id = $1",
        )
        .bind(linked)
        .fetch_optional(store.pool())
        .await?;
        if let Some((reference, start)) = root {
            later(start, format!("la prise d'effet de la convention constitutive {reference}"), String::new());
        }
    }
    if let Some(deadline) = g.offers_deadline() {
        let day = today_in_france(deadline);
        let first = consultation::notification_after_deadline(day, procedure, by_post);
        later(first.to_string(), String::new(), after_deadline(deadline, procedure, by_post));
    } else if let Some(day) = g.consultation_launched_on() {
        // A consultation launched before the deadline was recorded: the procedure's minimum délais.
        let first = consultation::earliest_notification(day, procedure, by_post);
        later(first.to_string(), String::new(), launch_delays(day, false, procedure, by_post));
    }
    Ok(earliest)
}

/// Why an accord-cadre is notified [`consultation::notification_after_deadline`] at the earliest,
/// after « : »: the offers received until `deadline`, then, for an open call, the standstill.
fn after_deadline(
    deadline: chrono::DateTime<chrono::Utc>,
    procedure: consultation::Procedure,
    by_post: bool,
) -> String {
    let received = format!(
        " : les offres sont reçues jusqu'au {} (heure de Paris), date et heure limites de réception des offres fixées \
         au lancement de la consultation (article 10 du règlement de la consultation)",
        french_moment(&consultation::stored_deadline(deadline))
    );
    match procedure {
        consultation::Procedure::ProcedureAdaptee => format!("{received} ; aucune offre n'est jugée avant"),
        consultation::Procedure::AppelOffresOuvert => format!(
            "{received}, puis l'accord-cadre n'est signé qu'après l'envoi aux candidats évincés du rejet de leur offre et \
             un délai d'au moins {}",
            standstill_words(by_post)
        ),
    }
}

/// The standstill after the rejection notices, in words with its article.
fn standstill_words(by_post: bool) -> String {
    match by_post {
        false => format!(
            "{} jours (article R. 2182-1 du code de la commande publique ; {} jours si ce rejet ne leur est pas transmis \
             par voie électronique)",
            consultation::STANDSTILL_DAYS,
            consultation::STANDSTILL_DAYS_BY_POST
        ),
        true => format!(
            "{} jours, ce rejet ne leur étant pas transmis par voie électronique (article R. 2182-1 du code de la \
             commande publique)",
            consultation::STANDSTILL_DAYS_BY_POST
        ),
    }
}

/// Why an accord-cadre awarded by `procedure` after a consultation launched (`planned`: planned to
/// be launched) on `launch` is notified [`consultation::earliest_notification`] at the earliest,
/// after « : »: the offers deadline on its first lawful day, then what follows it. The award's
/// check of a consultation without a recorded deadline and the planning's
/// ([`super::check_planned_award`]) cite the same rule as the deadline's.
pub(super) fn launch_delays(
    launch: NaiveDate,
    planned: bool,
    procedure: consultation::Procedure,
    by_post: bool,
) -> String {
    let day = french_date(&launch.to_string());
    let (launched, launched_fem) = match planned {
        false => (format!("lancé le {day}"), format!("lancée le {day}")),
        true => (format!("dont le lancement est prévu le {day}"), format!("dont le lancement est prévu le {day}")),
    };
    let standstill = match by_post {
        false => format!(
            "{} jours (article R. 2182-1 du même code ; {} jours si ce rejet ne leur est pas transmis par voie \
             électronique)",
            consultation::STANDSTILL_DAYS,
            consultation::STANDSTILL_DAYS_BY_POST
        ),
        true => format!(
            "{} jours, ce rejet ne leur étant pas transmis par voie électronique (article R. 2182-1 du même code)",
            consultation::STANDSTILL_DAYS_BY_POST
        ),
    };
    match procedure {
        consultation::Procedure::ProcedureAdaptee => format!(
            " : la procédure adaptée {launched_fem} (envoi de l'avis de marché) reçoit les offres jusqu'au lendemain \
             du lancement au plus tôt, jamais le jour même (article R. 2151-1 du code de la commande publique), et \
             aucune offre n'est jugée avant la date limite"
        ),
        consultation::Procedure::AppelOffresOuvert => format!(
            " : l'appel d'offres ouvert {launched} (envoi de l'avis de marché) laisse au moins {} jours francs aux \
             candidats pour remettre leur offre ({} jours de l'article R. 2161-2 du code de la commande publique, \
             ramenés à {} les offres étant transmises par voie électronique, article R. 2161-3, 2°), puis \
             l'accord-cadre n'est signé qu'après l'envoi aux candidats évincés du rejet de leur offre et un délai \
             d'au moins {standstill}",
            consultation::OFFER_DAYS_ELECTRONIC,
            consultation::OFFER_DAYS,
            consultation::OFFER_DAYS_ELECTRONIC
        ),
    }
}

/// The advance the titulaire chose and the DECP facts the consultation's documents fix, in `input`
/// (its `decp` the documented facts): the choice is required, a fact contradicting the documents
/// refused (422 on each, in `checks`).
fn documented_input(input: AwardInput, procedure: consultation::Procedure, checks: &mut Checks) -> AwardInput {
    let mut chosen = input.decp.clone();
    match input.advance_renounced {
        Some(renounced) => {
            for FieldError { field, message } in decp::chosen_advance(&mut chosen, renounced) {
                checks.fail(&field, message);
            }
        }
        None => checks.fail(
            "advance_renounced",
            "indiquez si le titulaire renonce ou non au bénéfice de l'avance, comme il l'a fait dans son acte \
             d'engagement (section F ; article 7 du CCAP)",
        ),
    }
    let (facts, contradicting) = decp::documented(&chosen, procedure);
    for FieldError { field, message } in contradicting {
        checks.fail(&field, message);
    }
    AwardInput { decp: facts, ..input }
}

/// One lot's award, checked, its titulaire in the registry.
struct Awarded {
    lot: super::Lot,
    input: AwardInput,
    checked: Checked,
    vendor: Org,
    decp: DecpFacts,
    marche_id: String,
}

impl Awarded {
    /// As the award of a groupement of several lots records it ([`Award::lots`]).
    fn lot_award(&self) -> LotAward {
        LotAward {
            lot: self.lot.number,
            title: self.lot.title.clone(),
            carries_ent: self.lot.carries_ent(),
            vendor: self.vendor.as_ref(),
            vendor_siret: self.checked.siret.clone(),
            amount_ht_cents: self.checked.amount_ht,
            amount_ttc_cents: self.checked.amount_ttc,
            notified_on: self.checked.notified_on.clone(),
            duration_months: self.checked.duration,
            unit_prices: self.input.unit_prices.clone(),
            decp: self.decp.clone(),
            marche_id: self.marche_id.clone(),
            advance_renounced: self.input.advance_renounced,
        }
    }
}

/// Awards the contract of a groupement in consultation.
pub async fn award(ctx: &Ctx<'_>, g: &Groupement, input: AwardInput) -> Result<Groupement, Problem> {
    super::guard::require_coordinates(ctx.actor, g)?;
    if let Some(refused) = super::sans_suite::refusal(g, "aucun marché ne s'attribue à son issue") {
        return Err(refused);
    }
    super::require_constituted(ctx, g, "le marché ne peut pas être attribué").await?;
    conflict_unless(g.status == Status::Consultation, || {
        format!("un groupement {} ne s'attribue pas : l'attribution suit la consultation", g.status.label())
    })?;
    let coordinator = super::coordinator_org(ctx.store, g).await?;
    let mut checks = Checks::default();
    // The facts the consultation's documents fix (the procedure, the type and form of price).
    let procedure = g.terms.procedure;
    let by_post = input.rejections_by_post.unwrap_or(false);
    let entries = entries(g, input, &mut checks);
    let earliest = earliest_notification(ctx.store, g, (procedure, by_post)).await?;
    let members = membership::members(ctx.store, &g.id).await?;
    conflict_unless(!members.is_empty(), || "aucun membre accepté : rien à attribuer")?;
    let several = g.terms.lots.len() > 1;
    let mut lots = Vec::new();
    for entry in entries {
        let mut own = Checks::default();
        let input = documented_input(entry.input.clone(), procedure, &mut own);
        let taken = Taken {
            buyer: buyer_taken(ctx.store, &coordinator, input.decp.acheteur_siret.as_deref()).await?,
            vendor_public: held_by_public_body(ctx.store, input.vendor_siret.as_deref()).await?,
        };
        let parties = (&coordinator, members.as_slice(), &taken);
        let (view, marche_id) = match several {
            true => (super::lots::view(g, entry.lot.number), decp::lot_marche_id(&g.reference, entry.lot.number)),
            false => (g.clone(), g.reference.clone()),
        };
        let checked = check(&input, (&view, &marche_id, !several), parties, (ctx.today(), &earliest), &mut own);
        merge(own, &entry.prefix, &mut checks);
        lots.push((entry, input, checked, marche_id));
    }
    if several && lots.iter().all(|(_, _, checked, _)| checked.is_some()) {
        let sum = lots.iter().filter_map(|(_, _, c, _)| c.as_ref()).map(|c| c.amount_ht).sum();
        check_adapted_maximum(g, (sum, super::buyer_of(g, &members)), ctx.today(), ("lots", &mut checks));
    }
    checks.finish()?;
    let mut awarded = Vec::new();
    for (entry, input, checked, marche_id) in lots {
        let checked = checked.expect("every field checked");
        require_convention_covers(ctx, g, &checked).await?;
        let name = input.vendor_name.as_deref();
        let vendor = vendor_org(ctx, &checked.siret, name).await.map_err(|p| prefixed(p, &entry.prefix))?;
        let mut decp = input.decp.clone();
        decp.acheteur_siret = coordinator.siret.clone().or_else(|| decp.acheteur_siret.map(|s| s.trim().to_string()));
        awarded.push(Awarded { lot: entry.lot, input, checked, vendor, decp, marche_id });
    }
    let lot_awards: Vec<LotAward> = match several {
        true => awarded.iter().map(Awarded::lot_award).collect(),
        false => Vec::new(),
    };
    let ent = awarded.iter().position(|a| a.lot.carries_ent()).unwrap_or(0);
    let Awarded { lot: ent_lot, input, checked, vendor, decp, .. } = awarded.swap_remove(ent);
    let others: Vec<(Org, String)> = awarded.into_iter().map(|a| (a.vendor, a.checked.siret)).collect();
    let funded = funded_tenants(ctx, &members).await?;
    let notified = parse_date("notified_on", &checked.notified_on)?;
    let mut kept_tenants = bound_elsewhere(ctx.store, g, notified, &vendor, &funded).await?;
    kept_tenants.extend(retired(&vendor, &funded));
    let warnings = services_outside(ctx.catalog, g, &funded, &kept_tenants);
    let award = Award {
        vendor: vendor.as_ref(),
        vendor_siret: checked.siret.clone(),
        amount_ht_cents: checked.amount_ht,
        amount_ttc_cents: checked.amount_ttc,
        notified_on: checked.notified_on.clone(),
        duration_months: checked.duration,
        unit_prices: input.unit_prices.clone(),
        decp,
        kept_tenants,
        warnings,
        advance_renounced: input.advance_renounced,
        lot: several.then_some(ent_lot.number),
        lots: lot_awards,
    };
    let mut tx = ctx.store.begin_write().await?;
    let query = sqlx::query(
        "UPDATE groupements SET status = 'awarded', award = $1, vendor_org_id = $2, version = version + 1, updated_at = $3 \
         WHERE id = $4 AND version = $5",
    )
    .bind(serde_json::to_string(&award).expect("award serialises"))
    .bind(&vendor.id);
    update_versioned(&mut tx, query, ctx.now, &g.id, g.version, g.version).await?;
    for (org, siret) in std::iter::once((&vendor, &checked.siret)).chain(others.iter().map(|(o, s)| (o, s))) {
        sqlx::query("UPDATE orgs SET siret = $1 WHERE id = $2 AND siret IS NULL")
            .bind(siret)
            .bind(&org.id)
            .execute(&mut *tx)
            .await?;
    }
    // The buyer's SIRET given for a coordinator without one stays on the award (its DECP reads
    // it there): an award does not rewrite the registry.
    let (switched, art28) = processor_of_record(ctx, &mut tx, g, &vendor, &award, &members, &funded).await?;
    let suspended = suspended_switched(&funded, &switched, &vendor);
    let mut summary = json!({
        "vendor": vendor.qualified_code(), "siret": checked.siret, "amount_ht_cents": checked.amount_ht,
        "amount_ttc_cents": checked.amount_ttc, "notified_on": checked.notified_on, "tenants": switched.len(),
        "advance_renounced": input.advance_renounced,
        "kept_tenants": award.kept_tenants, "suspended_tenants": suspended,
    });
    if several {
        summary["lots"] = award.lots.iter().map(LotAward::audited).collect();
    }
    ctx.record(&mut tx, "groupements.award", &g.id, Some(&g.coordinator.id), summary).await?;
    tx.commit().await?;
    let awarded = super::must_get(ctx.store, &g.id).await?;
    let ccap = ccap_in_force(ctx.store, &g.id, ctx.now).await?;
    let mut tx = ctx.store.begin_write().await?;
    let mut told = Vec::new();
    // Several lots: each member's orders per lot (a coordinator's lot split by the cost key).
    let split = match several {
        true => super::costs::shares(&awarded, &members, &award.all_unit_prices()).shares,
        false => Vec::new(),
    };
    for m in &members {
        // Its representatives and its DPO: the titulaire is its processor of record now.
        let to = super::ending::member_people(&mut tx, std::slice::from_ref(&m.applicant.id)).await?;
        told.extend(to.iter().cloned());
        let funds = match get_org(ctx.store, &m.applicant.id).await? {
            Some(org) => funded_tenants_of(ctx.store, &org).await?,
            None => Vec::new(),
        };
        let record = ProcessorRecord {
            ccap: ccap.as_ref(),
            contract: art28.get(&m.applicant.id).map(String::as_str),
            outside: outside_of(&award.warnings, &funds),
            cited: processor_under_convention(ctx, &m.applicant.id).await?,
        };
        notify_processor_dpos(&mut tx, g, (&vendor, &m.applicant), record, ctx.now).await?;
        // The quote-part is the buyer's, opened by its representatives (a DPO who is one too gets both).
        let to = users_with_role(&mut tx, &m.applicant.id, Role::Collectivite.as_str()).await?;
        let subject = json!({
            "event": "awarded", "reference": g.reference, "title": g.title, "vendor": vendor.name,
            "contract": member_contract(g, &award, (m, &split)),
            "suspended": suspended_switched(&funds, &switched, &vendor),
            "kept": kept_of(&award.kept_tenants, &funds),
            "outside": outside_of(&award.warnings, &funds),
        });
        let share = format!("{}/quotes-parts/{}", super::page_of(g), m.applicant.id);
        Notice::new("groupement", to).unique_recipients().with(subject).page(share).enqueue(&mut tx, ctx.now).await?;
    }
    notify_over(&mut tx, g, &vendor, (&funded, &switched, &award.warnings), &told, ctx.now).await?;
    tx.commit().await?;
    Ok(awarded)
}

/// What the award notice tells the member `m` of its contract (convention constitutive, art. 3):
/// the day the accord-cadre was notified, its last day, its lots and the member's own orders at
/// the titulaire's unit prices over the duration (HT).
fn member_contract(
    g: &Groupement,
    award: &Award,
    (m, split): (&Application, &[super::costs::MemberShare]),
) -> serde_json::Value {
    if let Some(share) = split.iter().find(|s| s.member.id == m.applicant.id) {
        return lots_contract(g, award, share);
    }
    let own: i64 =
        super::costs::own_orders_per_year(&m.quantities, &award.unit_prices, award.duration_months).iter().sum();
    json!({
        "notified_on": french_date(&award.notified_on),
        "last_day": award.last_day().map(|d| french_date(&d.to_string())),
        "lots": g.terms.lots.iter().map(|l| json!({ "number": l.number, "title": l.title })).collect::<Vec<_>>(),
        "own_orders": super::costs::euros(own),
    })
}

/// [`member_contract`] for a groupement of several lots: each lot with its titulaire, its
/// notification and last day and the member's own orders in it ([`super::costs::MemberShare::lots`]),
/// or its declaration sans suite; the member's own orders summed over the lots.
fn lots_contract(g: &Groupement, award: &Award, share: &super::costs::MemberShare) -> serde_json::Value {
    let lots: Vec<_> = g
        .terms
        .lots
        .iter()
        .map(|l| {
            let own = share.lots.iter().find(|o| o.lot == l.number).map(|o| super::costs::euros(o.own_orders_ht_cents));
            let awarded = award.of_lot(l.number).map(|a| {
                json!({
                    "vendor": a.vendor.name, "notified_on": french_date(&a.notified_on),
                    "last_day": a.last_day().map(|d| french_date(&d.to_string())),
                })
            });
            let sans_suite = g.lots_sans_suite.iter().any(|d| d.lot == l.number);
            json!({ "number": l.number, "title": l.title, "award": awarded, "own_orders": own, "sans_suite": sans_suite })
        })
        .collect();
    json!({
        "several": true,
        "notified_on": french_date(&award.notified_on),
        "last_day": award.last_day().map(|d| french_date(&d.to_string())),
        "lots": lots,
        "own_orders": super::costs::euros(share.own_orders_ht_cents),
    })
}

/// The CCAP version holding the Art. 28 clauses of the contracts the award of `id` records at
/// `now` (its article 9), by the one rule the registers and the contracts export read them by
/// (`contracts::in_force_at`: at the award, the last version made); `None` when none was
/// generated.
async fn ccap_in_force(
    store: &Store,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<contracts::ClausesVersion>, Problem> {
    let versions = contracts::ccap_versions(store, vec![id.to_string()]).await?;
    let recorded_at = timestamp(now);
    Ok(versions.get(id).and_then(|v| contracts::in_force_at(v, &recorded_at)).cloned())
}

/// What the award records for one member, as its DPOs are told it ([`notify_processor_dpos`]).
struct ProcessorRecord<'a> {
    /// The CCAP version holding the Art. 28 clauses ([`ccap_in_force`]).
    ccap: Option<&'a contracts::ClausesVersion>,
    /// The id of the contract recorded in the member's register.
    contract: Option<&'a str>,
    /// The award's sentences on the member's ENT running services the accord-cadre does not
    /// cover ([`outside_of`]): the CCAP's Art. 28 clauses do not apply to them.
    outside: Vec<String>,
    /// Whether a convention in force makes the member a processor, so that the controller's
    /// register cites the contract ([`processor_under_convention`]).
    cited: bool,
}

/// Tells the DPOs of the member `member` what the award means for them (domain review 39, G5):
/// the titulaire becomes the member's sub-processor for its ENT, under the Art. 28 clauses of the
/// CCAP's article 9 (version, SHA-256), recorded as the contract `record.contract` in the
/// member's register, which the controller's register cites only once a convention in force
/// makes the member its processor (`cited`), and the services of its ENT those clauses do not
/// cover (`outside`, as the other notices of the award say them; domain review 40, G2, G3): the
/// link opens that contract's page, which a DPO reads (the groupement and its quotes-parts are
/// the buyers', closed to them), its register without one.
async fn notify_processor_dpos(
    tx: &mut Tx,
    g: &Groupement,
    (vendor, member): (&Org, &OrgRef),
    record: ProcessorRecord<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    let ProcessorRecord { ccap, contract, outside, cited } = record;
    let subject = json!({
        "event": "awarded_processor", "vendor": vendor.name,
        "ccap_version": ccap.map(|d| d.version), "ccap_sha256": ccap.map(|d| d.sha256.clone()),
        "outside": outside, "cited": cited,
    });
    let page = contract.map(|id| format!("/rgpd/{}/contrats/{id}", member.id));
    notify_member_dpos(tx, g, member, subject, page, now).await
}

/// Whether a convention in force today makes `member` a processor under its model's RGPD roles,
/// read as the registers read them (an `active` convention between its dates, its parties by
/// role: `conventions::rgpd_roles`): only then does the controller's register cite the contracts
/// that bind the member's sub-processors.
async fn processor_under_convention(ctx: &Ctx<'_>, member: &str) -> Result<bool, Problem> {
    let today = ctx.today().to_string();
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM conventions WHERE status = 'active' AND start_date <= $1 AND end_date >= $2 \
         AND id IN (SELECT convention_id FROM convention_parties WHERE org_id = $3) ORDER BY id",
    )
    .bind(&today)
    .bind(&today)
    .bind(member)
    .fetch_all(ctx.store.pool())
    .await?;
    for id in ids {
        let Some(conv) = get_convention(ctx.store, ctx.models, &id).await? else { continue };
        let Ok(model) = find_model(ctx.models, &conv.model_id, Some(conv.model_version)) else { continue };
        let orgs_of = |key: &str| -> Vec<&str> {
            conv.parties.iter().filter(|p| p.key == key).map(|p| p.org.id.as_str()).collect()
        };
        if rgpd_roles(model, orgs_of).is_some_and(|(_, _, processors)| processors.contains(&member)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Queues the notice `subject` (its `event` and what it says) of `g` to the DPOs who keep the
/// register of its member `member` ([`authz::dpos_keeping`]), each once, the member named as the notices name it (`member`: « la Commune de
/// Fresnes », `member_of`: « de la Commune de Fresnes »): the one notice the DPOs of a
/// groupement's members get (an award, a consultation declared sans suite). Its link is in their
/// registers: `page`, else the member's register (the groupement's pages are the buyers').
pub(super) async fn notify_member_dpos(
    tx: &mut Tx,
    g: &Groupement,
    member: &OrgRef,
    mut subject: serde_json::Value,
    page: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    let dpos = match get_org_in(tx, &member.id).await? {
        Some(org) => authz::dpos_keeping(tx, &org).await?,
        None => Vec::new(),
    };
    let designation = naming::of_org(member.kind, &naming::display_name(&member.name));
    for (key, value) in [
        ("reference", g.reference.as_str()),
        ("title", g.title.as_str()),
        ("member", designation.article.as_str()),
        ("member_of", designation.of.as_str()),
    ] {
        subject[key] = json!(value);
    }
    let page = page.unwrap_or_else(|| format!("/rgpd/{}", member.id));
    Notice::new("groupement", dpos).unique_recipients().with(subject).page(page).enqueue(tx, now).await?;
    Ok(())
}

/// Tells the DANs and DPOs whose scope holds an ENT the award switched to the titulaire `vendor`
/// ([`super::ending::people_over`]: its processor changed, their register or their deployment
/// names it) or an ENT running services the accord-cadre does not cover (`outside`, the award's
/// [`ServicesOutside`]: their controller's processing of them is under no contract of the
/// market) — but those the members' notices already told (`told`) — which of those ENT, each
/// only those in its scope, one notice each (`switched`: the sentences « « slug » de … »;
/// `outside`: the award's sentences).
async fn notify_over(
    tx: &mut Tx,
    g: &Groupement,
    vendor: &Org,
    (funded, switched, outside): (&[Tenant], &[String], &[ServicesOutside]),
    told: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    let mut over = std::collections::BTreeMap::<String, (Vec<String>, Vec<String>)>::new();
    for tenant in funded {
        let passed = switched.contains(&tenant.id);
        let uncovered: Vec<&ServicesOutside> = outside.iter().filter(|o| o.tenant == tenant.slug).collect();
        if !passed && uncovered.is_empty() {
            continue;
        }
        let sentence = format!("« {} » {}", tenant.slug, naming::de(&tenant.organisation.name));
        for email in super::ending::people_over(tx, vec![tenant.organisation.id.clone()]).await? {
            let (tenants, warnings) = over.entry(email).or_default();
            if passed && !tenants.contains(&sentence) {
                tenants.push(sentence.clone());
            }
            for o in &uncovered {
                if !warnings.contains(&o.message) {
                    warnings.push(o.message.clone());
                }
            }
        }
    }
    for (email, (tenants, warnings)) in over.into_iter().filter(|(email, _)| !told.contains(email)) {
        let subject = json!({
            "event": "awarded", "reference": g.reference, "title": g.title, "vendor": vendor.name, "over": true,
            "switched": tenants, "outside": warnings,
        });
        // A DPO does not read groupements: the registers they keep are their page.
        let page = match reads_groupements(tx, &email).await? {
            true => super::page_of(g),
            false => "/rgpd".to_string(),
        };
        Notice::new("groupement", vec![email]).with(subject).page(page).enqueue(tx, now).await?;
    }
    Ok(())
}

/// Whether the active user `email` holds a role that reads groupements ([`authz::GROUPEMENTS_READ`]).
async fn reads_groupements(tx: &mut Tx, email: &str) -> Result<bool, Problem> {
    let roles: Vec<&str> = authz::GROUPEMENTS_READ.roles.iter().map(|r| r.as_str()).collect();
    let list = roles.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT COUNT(*) FROM users u JOIN role_bindings b ON b.user_id = u.id WHERE u.email = $1 AND u.active = 1 \
         AND b.role IN ({list})"
    );
    let n: i64 = sqlx::query_scalar(&sql).bind(email).fetch_one(&mut **tx).await?;
    Ok(n > 0)
}

/// The tenants the members fund ([`funded_tenants_of`]).
async fn funded_tenants(ctx: &Ctx<'_>, members: &[Application]) -> Result<Vec<Tenant>, Problem> {
    let mut tenants = Vec::new();
    for m in members {
        let Some(org) = get_org(ctx.store, &m.applicant.id).await? else { continue };
        tenants.extend(funded_tenants_of(ctx.store, &org).await?);
    }
    Ok(tenants)
}

/// The tenants `org` funds, not purged, that an award makes its titulaire the vendor of (those
/// still served, [`TenantStatus::still_served`]) or names as kept ([`retired`]): its own and
/// those of the organisations it funds (`queries::funds_condition`: an EPCI's delegating
/// communes and their écoles, not a member commune that runs its own ENT). A purged tenant
/// has no data left: no vendor to change, nothing to say.
pub async fn funded_tenants_of(store: &Store, org: &Org) -> Result<Vec<Tenant>, Problem> {
    let mut own = Condition::default();
    own.push("id = ?", &[&org.id]);
    let cond = Condition::any(vec![own, funds_condition(org)]);
    let sql = format!(
        "SELECT id FROM tenants WHERE status <> '{}' AND org_id IN (SELECT id FROM orgs WHERE {}) ORDER BY id",
        TenantStatus::Purged.as_str(),
        cond.sql()
    );
    let ids: Vec<String> = first_column(&cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?)?;
    let mut tenants = Vec::new();
    for id in ids {
        if let Some(t) = get_tenant(store, &id).await? {
            tenants.push(t);
        }
    }
    Ok(tenants)
}

/// A member's tenant an award leaves with its vendor, never silently (the award's result and
/// its audit name it): the titulaire of another groupement's accord-cadre still running (a
/// public buyer changes no titulaire before the term of the contract that binds it), or the
/// vendor that holds the data of a tenant no longer served (withdrawn or archived, [`retired`]).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeptTenant {
    /// The tenant's slug.
    pub tenant: String,
    /// The organisation it runs for.
    pub organisation: String,
    /// Its vendor, kept: the other accord-cadre's titulaire, or the one holding its data;
    /// absent for a tenant no longer served that never had one.
    #[serde(default)]
    pub vendor: Option<String>,
    /// The state of a tenant kept because it is no longer served (`decommissioning`, `archived`).
    #[serde(default)]
    pub status: Option<TenantStatus>,
    /// The reference of the groupement whose accord-cadre binds it.
    #[serde(default)]
    pub groupement: Option<String>,
    /// `YYYY-MM-DD`: the last day of that accord-cadre.
    #[serde(default)]
    pub ends_on: Option<String>,
    /// Why, in a French sentence.
    pub message: String,
    /// Once the accord-cadre that bound it ended: the titulaire it passed to and when, or why it
    /// stayed (`handover`); absent while it is kept.
    #[serde(default)]
    pub released: Option<super::handover::Release>,
}

/// Another groupement's running accord-cadre: its reference, titulaire, last day and the tenants
/// its accepted members fund.
struct Running {
    reference: String,
    vendor: OrgRef,
    ends_on: NaiveDate,
    tenants: Vec<String>,
}

/// The accords-cadres of other groupements (awarded or running) still in force on `notified`
/// whose titulaire is the vendor of one of `funded`, with the tenants their members fund.
async fn running_elsewhere(
    store: &Store,
    g: &Groupement,
    notified: NaiveDate,
    funded: &[Tenant],
) -> Result<Vec<Running>, Problem> {
    let vendors: Vec<&str> = funded.iter().filter_map(|t| t.vendor.as_ref()).map(|v| v.id.as_str()).collect();
    let ids: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, vendor_org_id FROM groupements WHERE id <> $1 AND status IN ('awarded', 'running') \
         AND vendor_org_id IS NOT NULL ORDER BY id",
    )
    .bind(&g.id)
    .fetch_all(store.pool())
    .await?;
    let mut running = Vec::new();
    for (id, _) in ids.iter().filter(|(_, vendor)| vendors.contains(&vendor.as_str())) {
        let Some(other) = super::get(store, id).await? else { continue };
        let Some(award) = &other.award else { continue };
        let Some(ends_on) = award.last_day() else { continue };
        if ends_on < notified {
            continue;
        }
        let mut tenants = Vec::new();
        for m in membership::members(store, &other.id).await? {
            let Some(org) = get_org(store, &m.applicant.id).await? else { continue };
            tenants.extend(funded_tenants_of(store, &org).await?.into_iter().map(|t| t.id));
        }
        running.push(Running { reference: other.reference, vendor: award.vendor.clone(), ends_on, tenants });
    }
    Ok(running)
}

/// The tenants of `funded` that another groupement's accord-cadre, still running on `notified`,
/// binds to a titulaire other than `vendor`: their vendor is that titulaire and one of its
/// members funds them. The award leaves them with it ([`KeptTenant`]).
async fn bound_elsewhere(
    store: &Store,
    g: &Groupement,
    notified: NaiveDate,
    vendor: &Org,
    funded: &[Tenant],
) -> Result<Vec<KeptTenant>, Problem> {
    let running = running_elsewhere(store, g, notified, funded).await?;
    let mut kept = Vec::new();
    for tenant in funded.iter().filter(|t| t.status.still_served()) {
        let Some(current) = tenant.vendor.as_ref().filter(|v| v.id != vendor.id) else { continue };
        let binding = running.iter().find(|r| r.vendor.id == current.id && r.tenants.contains(&tenant.id));
        let Some(r) = binding else { continue };
        let ends_on = r.ends_on.to_string();
        kept.push(KeptTenant {
            message: format!(
                "L'ENT « {} » {} garde son éditeur {}, titulaire de l'accord-cadre du groupement {} qui court \
                 jusqu'au {} : il ne passe pas au nouveau titulaire avant ce terme.",
                tenant.slug,
                naming::de(&tenant.organisation.name),
                current.name,
                r.reference,
                french_date(&ends_on)
            ),
            tenant: tenant.slug.clone(),
            organisation: tenant.organisation.name.clone(),
            vendor: Some(current.name.clone()),
            status: None,
            groupement: Some(r.reference.clone()),
            ends_on: Some(ends_on),
            released: None,
        });
    }
    Ok(kept)
}

/// The tenants of `funded` no longer served (withdrawn or archived) whose vendor is not the
/// titulaire `vendor`: their data stays with the vendor that holds it until the purge, which
/// the new titulaire never held. The award leaves them with it ([`KeptTenant`]).
fn retired(vendor: &Org, funded: &[Tenant]) -> Vec<KeptTenant> {
    let retired = funded.iter().filter(|t| !t.status.still_served());
    let changing = retired.filter(|t| t.vendor.as_ref().is_none_or(|v| v.id != vendor.id));
    changing
        .map(|tenant| {
            let (slug, of_org, state) = (&tenant.slug, naming::de(&tenant.organisation.name), tenant.status.label());
            let current = tenant.vendor.as_ref().map(|v| v.name.clone());
            let message = match &current {
                Some(current) => format!(
                    "L'ENT « {slug} » {of_org}, {state}, garde son éditeur {current}, qui détient ses données jusqu'à \
                     leur purge : il ne passe pas au nouveau titulaire."
                ),
                None => format!(
                    "L'ENT « {slug} » {of_org}, {state}, ne passe pas au nouveau titulaire, qui n'a jamais détenu ses \
                     données : elles restent où elles sont jusqu'à leur purge."
                ),
            };
            KeptTenant {
                tenant: slug.clone(),
                organisation: tenant.organisation.name.clone(),
                vendor: current,
                status: Some(tenant.status),
                groupement: None,
                ends_on: None,
                message,
                released: None,
            }
        })
        .collect()
}

/// What the award says of the suspended tenants among `tenants` it switched (`switched`, their
/// ids) to the titulaire `vendor`: a suspended tenant is still to be served (its data kept, its
/// service to resume), so it passes with the others, and the titulaire is who serves it on
/// resumption — said to its members, never left to be found out then.
fn suspended_switched(tenants: &[Tenant], switched: &[String], vendor: &Org) -> Vec<String> {
    let suspended = tenants.iter().filter(|t| t.status == TenantStatus::Suspended && switched.contains(&t.id));
    suspended
        .map(|t| {
            format!(
                "L'ENT « {} » {}, suspendu, passe lui aussi à {} : c'est ce titulaire qui le servira à sa remise \
                 en service.",
                t.slug,
                naming::de(&t.organisation.name),
                vendor.name
            )
        })
        .collect()
}

/// What the award says of the tenants among `funds` (a member's) it leaves with their vendor:
/// each one's sentence (« L'ENT « … » de … garde son éditeur … »), for the member's notice.
fn kept_of(kept: &[KeptTenant], funds: &[Tenant]) -> Vec<String> {
    let of_member = kept.iter().filter(|k| funds.iter().any(|t| t.slug == k.tenant));
    of_member.map(|k| k.message.clone()).collect()
}

/// A member's tenant passing to the titulaire that runs services the accord-cadre does not cover:
/// neither in its bouquet nor in its options (the CCTP's article 4, the services the CCAP's
/// article 9 has the titulaire process). The titulaire owes them nothing: the member withdraws
/// them or provides for them by another contract — said, never found out later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServicesOutside {
    /// The tenant's slug.
    pub tenant: String,
    /// The organisation it runs for.
    pub organisation: String,
    /// The names of its services the accord-cadre does not cover, in the catalog's order.
    pub services: Vec<String>,
    /// Why, in a French sentence.
    pub message: String,
}

/// The tenants of `funded` still served and passing to the titulaire (not `kept`) whose bouquet
/// and options hold services outside the groupement's bouquet and options ([`ServicesOutside`]).
pub fn services_outside(
    catalog: &Catalog,
    g: &Groupement,
    funded: &[Tenant],
    kept: &[KeptTenant],
) -> Vec<ServicesOutside> {
    let market = catalog.market_services(&g.terms.bouquet, &g.terms.options);
    let covered: Vec<&str> = market.iter().map(|s| s.code.as_str()).collect();
    let passing = funded.iter().filter(|t| t.status.still_served() && !kept.iter().any(|k| k.tenant == t.slug));
    passing
        .filter_map(|tenant| {
            let own: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
            let services = catalog.resolve(&tenant.bouquet, &own).unwrap_or_default();
            let outside: Vec<String> =
                services.iter().filter(|s| !covered.contains(&s.code.as_str())).map(|s| s.name.clone()).collect();
            if outside.is_empty() {
                return None;
            }
            let (slug, of_org) = (&tenant.slug, naming::de(&tenant.organisation.name));
            let (names, reference) = (outside.join(", "), &g.reference);
            let message = format!(
                "L'ENT « {slug} » {of_org} fournit {} que l'accord-cadre du groupement {reference} ne couvre pas (ni \
                 son bouquet ni ses options, article 4 du CCTP) : {names}. Le titulaire n'est pas tenu de {} : retirez-{} \
                 de cet ENT ou prévoyez-{} par un autre contrat.",
                if outside.len() == 1 { "un service" } else { "des services" },
                if outside.len() == 1 { "le fournir" } else { "les fournir" },
                if outside.len() == 1 { "le" } else { "les" },
                if outside.len() == 1 { "le" } else { "les" },
            );
            Some(ServicesOutside {
                tenant: slug.clone(),
                organisation: tenant.organisation.name.clone(),
                services: outside,
                message,
            })
        })
        .collect()
}

/// The sentences of `warnings` on the tenants among `funds` (a member's), for its notice.
fn outside_of(warnings: &[ServicesOutside], funds: &[Tenant]) -> Vec<String> {
    let of_member = warnings.iter().filter(|w| funds.iter().any(|t| t.slug == w.tenant));
    of_member.map(|w| w.message.clone()).collect()
}

/// Records the vendor as processor of each member (the CCTP carries the Art. 28
/// clauses) and as the vendor of those of `tenants` still served and not kept; returns the
/// ids of the tenants that changed.
async fn processor_of_record(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    g: &Groupement,
    vendor: &Org,
    award: &Award,
    members: &[Application],
    tenants: &[Tenant],
) -> Result<(Vec<String>, std::collections::HashMap<String, String>), Problem> {
    let starts = NaiveDate::parse_from_str(&award.notified_on, "%Y-%m-%d").ok();
    let ends = award.last_day();
    let mut recorded = std::collections::HashMap::new();
    for m in members {
        let contract = NewContract {
            processor_org_id: vendor.id.clone(),
            client_org_id: m.applicant.id.clone(),
            parent_processor_org_id: None,
            reference: g.reference.clone(),
            title: format!("Marché ENT du groupement de commandes {} – {}", g.reference, g.title),
            art28_clauses: true,
            starts_on: starts.map(|d| d.to_string()),
            ends_on: ends.map(|d| d.to_string()),
            source_kind: "groupement".into(),
            source_id: Some(g.id.clone()),
        };
        let id = contracts::record(tx, ctx.store, ctx.actor, &contract, ctx.now).await?;
        recorded.insert(m.applicant.id.clone(), id);
    }
    let mut changed = Vec::new();
    for tenant in tenants {
        let kept = award.kept_tenants.iter().any(|k| k.tenant == tenant.slug);
        if kept || !tenant.status.still_served() || tenant.vendor.as_ref().is_some_and(|v| v.id == vendor.id) {
            continue;
        }
        set_processors(tx, ctx.store, ctx.actor, tenant, Some(vendor), None, ctx.now).await?;
        changed.push(tenant.id.clone());
    }
    Ok((changed, recorded))
}

/// The DECP publication file of an awarded groupement, once its coordinator has published it
/// ([`publish_decp`]): its `datePublicationDonnees` is that day. 409 before the award or the
/// publication (the coordinator is told how to publish).
pub async fn decp_publication(ctx: &Ctx<'_>, g: &Groupement) -> Result<serde_json::Value, Problem> {
    let award = awarded(g)?;
    let Some(published_on) = g.decp_published_on.clone() else {
        let how = if super::is_coordinator(ctx.actor, g) {
            " : publiez-les depuis la page du groupement"
        } else {
            " par son coordonnateur"
        };
        return Err(Problem::conflict(format!(
            "les données essentielles du groupement {} ne sont pas encore publiées{how}",
            g.reference
        )));
    };
    let coordinator = super::coordinator_org(ctx.store, g).await?;
    if !award.lots.is_empty() {
        // Several lots: one marché each, its own id, amount and titulaire.
        let mut records = Vec::new();
        for lot in &award.lots {
            let mut k = known(
                g,
                &coordinator,
                &lot.vendor_siret,
                lot.amount_ht_cents,
                lot.duration_months,
                &lot.notified_on,
                &published_on,
            );
            k.reference = &lot.marche_id;
            records.push(checked_record(&k, &lot.decp, g.terms.procedure)?);
        }
        return Ok(decp::publication_of(records));
    }
    let k = known(
        g,
        &coordinator,
        &award.vendor_siret,
        award.amount_ht_cents,
        award.duration_months,
        &award.notified_on,
        &published_on,
    );
    Ok(decp::publication(checked_record(&k, &award.decp, g.terms.procedure)?))
}

/// The DECP record of what the platform knows (`k`) and the coordinator's `facts`, checked (422
/// naming the request fields otherwise).
fn checked_record(
    k: &Known<'_>,
    facts: &DecpFacts,
    procedure: consultation::Procedure,
) -> Result<serde_json::Value, Problem> {
    // An award recorded before the documents' facts were filled in gets them now.
    let record = decp::marche(k, &decp::documented(facts, procedure).0);
    let errors = decp::check(&record);
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    Ok(record)
}

/// 409 unless `g` is awarded: the DECP follow the award.
fn awarded(g: &Groupement) -> Result<&Award, Problem> {
    g.award.as_ref().ok_or_else(|| {
        let none = "aucun marché n'en est issu, il n'a pas de données essentielles";
        super::sans_suite::refusal(g, none).unwrap_or_else(|| {
            Problem::conflict(format!(
                "le groupement {} n'est pas encore attribué : les données essentielles suivent l'attribution",
                g.reference
            ))
        })
    })
}

/// Publishes the DECP of the awarded `g` (its coordinator's act, audited): fixes the
/// publication date, once; a second call keeps the first date. Returns `g` as it now is.
pub async fn publish_decp(ctx: &Ctx<'_>, g: &Groupement) -> Result<Groupement, Problem> {
    awarded(g)?;
    if !super::is_coordinator(ctx.actor, g) {
        return Err(Problem::new(
            ProblemKind::Forbidden,
            "seul le coordonnateur du groupement publie ses données essentielles",
        ));
    }
    let today = ctx.today().to_string();
    let mut tx = ctx.store.begin_write().await?;
    let done = sqlx::query("UPDATE groupements SET decp_published_on = $1 WHERE id = $2 AND decp_published_on IS NULL")
        .bind(&today)
        .bind(&g.id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 1 {
        ctx.record(&mut tx, "groupements.decp", &g.id, Some(&g.coordinator.id), json!({ "published_on": today }))
            .await?;
    }
    tx.commit().await?;
    super::must_get(ctx.store, &g.id).await
}
