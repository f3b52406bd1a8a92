//! What each member pays: its share of the groupement's common expenses (procedure,
//! management), split by the cost key as the convention constitutive says, and apart from it
//! its own orders to the vendor, its declared quantities × the awarded unit prices of the
//! BPU's price lines. The whole maximum of the accord-cadre is never divided.

use super::membership::{Application, MemberQuantities};
use super::shares;
use super::{Groupement, Lot};
/// An amount in cents as a French reader writes it (shared with the conventions' documents).
pub use ent_documents::documents::euros;
use ent_documents::documents::grouped;
use ent_kernel::error::Checks;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::naming;
use ent_kernel::text::capitalised;
use ent_platform::registry::{funds_colleges_and_lycees, OrgRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The TVA rate of the BPU/DQE and of the members' orders (taux normal, art. 278 CGI).
pub const VAT_PERCENT: i64 = 20;

/// A price line of the BPU: the bouquet's two lines in the lot carrying the ENT, the
/// coordinator's numbered lines in any other lot ([`Lot::price_lines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceLine {
    /// Yearly subscription of one ENT account (pupil, teacher or parent).
    AccountYear,
    /// Setting up one école: configuration, data import, training of its teachers.
    SchoolSetup,
    /// The line `n` (from 1) the coordinator defined for a lot other than the ENT's
    /// (`{"custom": 1}`).
    Custom(u32),
}

/// What the members' declared « schools » are, as the documents name them: what each member's
/// kind funds (écoles for communes, EPCI and syndicats mixtes; collèges for départements; lycées
/// for régions), « établissements » when the members mix them or a member funds both
/// collèges and lycées (the collectivités of Corse, Martinique, Guyane and Mayotte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Establishments {
    Ecoles,
    Colleges,
    Lycees,
    Mixed,
}

impl Establishments {
    /// What `members` equip (écoles before any member).
    pub fn of(members: &[Application]) -> Self {
        let mut kinds = members.iter().map(|m| Self::of_member(&m.applicant));
        let Some(first) = kinds.next() else { return Establishments::Ecoles };
        if kinds.all(|k| k == first) {
            first
        } else {
            Establishments::Mixed
        }
    }

    fn of_member(member: &OrgRef) -> Self {
        match member.kind {
            _ if funds_colleges_and_lycees(member.kind, &member.code) => Establishments::Mixed,
            OrgKind::Departement => Establishments::Colleges,
            OrgKind::Region => Establishments::Lycees,
            _ => Establishments::Ecoles,
        }
    }

    /// « école ».
    pub fn one(self) -> &'static str {
        ["école", "collège", "lycée", "établissement"][self as usize]
    }

    /// « écoles ».
    pub fn many(self) -> &'static str {
        ["écoles", "collèges", "lycées", "établissements"][self as usize]
    }

    /// « Écoles », a column or a total's title.
    pub fn title(self) -> &'static str {
        ["Écoles", "Collèges", "Lycées", "Établissements"][self as usize]
    }

    /// « d'une école ».
    pub fn of_one(self) -> &'static str {
        ["d'une école", "d'un collège", "d'un lycée", "d'un établissement"][self as usize]
    }

    /// « de l'école ».
    pub fn of_the(self) -> &'static str {
        ["de l'école", "du collège", "du lycée", "de l'établissement"][self as usize]
    }

    /// « d'écoles », after « le nombre ».
    pub fn of_many(self) -> &'static str {
        ["d'écoles", "de collèges", "de lycées", "d'établissements"][self as usize]
    }

    /// « aucune école déclarée ».
    pub fn none_declared(self) -> &'static str {
        ["aucune école déclarée", "aucun collège déclaré", "aucun lycée déclaré", "aucun établissement déclaré"]
            [self as usize]
    }

    /// « écoles ouvertes ou rattachées », what a margin of the maximum provides for.
    pub fn opened_or_attached(self) -> &'static str {
        [
            "écoles ouvertes ou rattachées",
            "collèges ouverts ou rattachés",
            "lycées ouverts ou rattachés",
            "établissements ouverts ou rattachés",
        ][self as usize]
    }

    /// The words, for the documents' templates.
    pub fn words(self) -> serde_json::Value {
        serde_json::json!({
            "one": self.one(), "many": self.many(), "title": self.title(),
            "of_one": self.of_one(), "of_the": self.of_the(), "of_many": self.of_many(),
            "opened_or_attached": self.opened_or_attached(),
        })
    }
}

impl PriceLine {
    pub const ALL: [PriceLine; 2] = [PriceLine::AccountYear, PriceLine::SchoolSetup];

    /// The line's designation, the set-up one naming what the members equip; a coordinator's
    /// line is named by its lot ([`designation`]), here by its number.
    pub fn label(self, equipped: Establishments) -> String {
        match self {
            PriceLine::AccountYear => "Abonnement annuel par compte ENT (élève, enseignant ou parent)".into(),
            PriceLine::SchoolSetup => {
                format!("Mise en service {} (paramétrage, reprise des données, formation)", equipped.of_one())
            }
            PriceLine::Custom(n) => format!("ligne {n}"),
        }
    }

    pub fn unit(self, equipped: Establishments) -> &'static str {
        match self {
            PriceLine::AccountYear => "compte × an",
            PriceLine::SchoolSetup => equipped.one(),
            PriceLine::Custom(_) => "unité",
        }
    }

    /// The quantity of the line, in hundredths, for declared quantities over `duration_months`:
    /// account-years prorated to the months ([`account_years`]), schools whole; a coordinator's
    /// line owes nothing to the members' quantities (its lot's, [`dqe_hundredths`]).
    pub fn quantity_hundredths(self, q: &MemberQuantities, duration_months: u32) -> i64 {
        match self {
            PriceLine::AccountYear => account_years(q.accounts(), duration_months),
            PriceLine::SchoolSetup => q.schools * 100,
            PriceLine::Custom(_) => 0,
        }
    }

    /// The accord-cadre's maximum of the line, in hundredths: its DQE quantity
    /// ([`PriceLine::quantity_hundredths`]) raised by `margin_percent` ([`with_margin`]).
    pub fn maximum_hundredths(self, q: &MemberQuantities, duration_months: u32, margin_percent: u32) -> i64 {
        with_margin(self.quantity_hundredths(q, duration_months), margin_percent)
    }
}

/// The designation of `line` in `lot`: the coordinator's label for its own lines, the bouquet's
/// line's ([`PriceLine::label`]) otherwise.
pub fn designation(lot: &Lot, line: PriceLine, equipped: Establishments) -> String {
    match (line, lot.line_of(line)) {
        (_, Some(own)) => own.label.clone(),
        _ => line.label(equipped),
    }
}

/// The unit of `line` in `lot`, as the BPU prints it (account-years over `months`).
pub fn unit_of(lot: &Lot, line: PriceLine, equipped: Establishments, months: u32) -> String {
    match (line, lot.line_of(line)) {
        (_, Some(own)) => own.unit.clone(),
        (PriceLine::AccountYear, _) => format!("{} sur {months} mois", line.unit(equipped)),
        _ => line.unit(equipped).to_string(),
    }
}

/// The DQE's quantity of `line` in `lot`, in hundredths: the coordinator's quantity for its own
/// lines, the members' `total` quantities over `months` for the bouquet's.
pub fn dqe_hundredths(lot: &Lot, line: PriceLine, total: &MemberQuantities, months: u32) -> i64 {
    match (line, lot.line_of(line)) {
        (_, Some(own)) => own.quantity * 100,
        _ => line.quantity_hundredths(total, months),
    }
}

/// The accord-cadre's maximum of `line` in `lot`, in hundredths: its DQE quantity
/// ([`dqe_hundredths`]) raised by `margin_percent` ([`with_margin`]).
pub fn maximum_of(lot: &Lot, line: PriceLine, total: &MemberQuantities, months: u32, margin_percent: u32) -> i64 {
    with_margin(dqe_hundredths(lot, line, total, months), margin_percent)
}

/// The coordinator's estimate of a lot of its own (HT, cents): each line's maximum in quantity
/// ([`maximum_of`], the value of an accord-cadre being its maximum, article R. 2121-8 du code de
/// la commande publique) at its estimated unit price; None for the lot carrying the ENT or while a
/// line has no estimated price.
pub fn lot_estimate(lot: &Lot, margin_percent: u32) -> Option<i64> {
    if lot.carries_ent() {
        return None;
    }
    let none = MemberQuantities::default();
    lot.price_lines().into_iter().try_fold(0, |sum, line| {
        let price = lot.line_of(line)?.estimated_unit_price_ht_cents?;
        Some(sum + amount(maximum_of(lot, line, &none, 12, margin_percent), price))
    })
}

/// The highest margin on the DQE's quantities the accord-cadre's maximum may take, in percent.
pub const MAX_MAXIMUM_MARGIN_PERCENT: u32 = 100;

/// The accord-cadre's maximum in quantity of a line whose DQE quantity is `dqe_hundredths`,
/// raised by `margin_percent` (the groupement's `maximum_margin_percent`): the DQE's quantity
/// itself without a margin; with one, the raised quantity rounded up to the whole unit (a maximum
/// of « 10 825 comptes × an », never below the raised figure).
pub fn with_margin(dqe_hundredths: i64, margin_percent: u32) -> i64 {
    if margin_percent == 0 {
        return dqe_hundredths;
    }
    let raised = dqe_hundredths * (100 + i64::from(margin_percent));
    // In hundredths of a hundredth: up to the next whole unit (10 000).
    (raised + 9_999).div_euclid(10_000) * 100
}

/// Account-years, in hundredths, of `accounts` subscribed for `months`: accounts × months / 12,
/// rounded to the hundredth (half up). Whole years are exact (250 accounts × 24 months: 500,00);
/// a partial year counts its months (250 × 30 months: 625,00; 7 × 1 month: 0,58).
pub fn account_years(accounts: i64, months: u32) -> i64 {
    (accounts * 100 * i64::from(months) + 6).div_euclid(12)
}

/// The amount HT of a quantity in hundredths at a unit price: rounded to the cent (half up), as
/// the BPU/DQE's `ROUND(quantity × price; 2)`; exact for a whole quantity.
pub fn amount(quantity_hundredths: i64, unit_price_ht_cents: i64) -> i64 {
    (quantity_hundredths * unit_price_ht_cents + 50).div_euclid(100)
}

/// The highest unit price HT, in cents (100 000 €: an account-year costs a few euros, setting
/// up an école a few thousand): the national annuaire bounds the quantities, and this bound keeps
/// every amount, total and share far inside an `i64`.
pub const MAX_UNIT_PRICE_HT_CENTS: i64 = 10_000_000;

/// An awarded unit price, HT, of one line of one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitPrice {
    pub lot: u32,
    pub line: PriceLine,
    pub unit_price_ht_cents: i64,
}

/// The months of each contract year: 12, the last one what is left (30 months: 12, 12, 6).
pub fn contract_years(duration_months: u32) -> Vec<u32> {
    let months = duration_months.max(1);
    (0..months.div_ceil(12)).map(|y| (months - y * 12).min(12)).collect()
}

/// The TVA of an HT amount, rounded to the cent (half up).
pub fn vat(ht_cents: i64) -> i64 {
    (ht_cents * VAT_PERCENT + 50).div_euclid(100)
}

/// A quantity in hundredths as a French reader writes it: `1 234` when whole, `1 234,58` else.
pub fn quantity(hundredths: i64) -> String {
    let sign = if hundredths < 0 { "-" } else { "" };
    let abs = hundredths.unsigned_abs();
    match abs % 100 {
        0 => format!("{sign}{}", grouped(abs / 100)),
        cents => format!("{sign}{},{cents:02}", grouped(abs / 100)),
    }
}

/// The awarded unit price of a line of a lot, if given.
pub fn price_of(prices: &[UnitPrice], lot: u32, line: PriceLine) -> Option<i64> {
    prices.iter().find(|p| p.lot == lot && p.line == line).map(|p| p.unit_price_ht_cents)
}

/// Checks the unit prices given at award: known lots, prices positive or nil (a line offered
/// free is priced 0), each line once, and every line of every lot priced (the BPU/DQE, the
/// members' own orders and their shares are computed from them: a missing one would print
/// 0,00 € against the awarded amount). Whether they are all valid.
pub fn check_prices(prices: &[UnitPrice], lots: &[Lot], checks: &mut Checks) -> bool {
    let mut valid = true;
    let mut fail = |field: &str, message: String| {
        valid = false;
        checks.fail(field, message);
    };
    for lot in lots {
        for line in lot.price_lines() {
            if !prices.iter().any(|p| p.lot == lot.number && p.line == line) {
                fail(
                    "unit_prices",
                    format!(
                        "prix unitaire manquant : lot {} — {}",
                        lot.number,
                        designation(lot, line, Establishments::Mixed)
                    ),
                );
            }
        }
    }
    for (i, p) in prices.iter().enumerate() {
        match lots.iter().find(|l| l.number == p.lot) {
            None => fail(&format!("unit_prices[{i}].lot"), format!("le groupement n'a pas de lot {}", p.lot)),
            Some(lot) if !lot.price_lines().contains(&p.line) => fail(
                &format!("unit_prices[{i}].line"),
                format!("le lot {} n'a pas cette ligne de prix ({})", lot.number, p.line.label(Establishments::Mixed)),
            ),
            Some(_) => {}
        }
        if !(0..=MAX_UNIT_PRICE_HT_CENTS).contains(&p.unit_price_ht_cents) {
            fail(
                &format!("unit_prices[{i}].unit_price_ht_cents"),
                "prix unitaire HT en centimes, de 0 à 100 000,00 € au plus".into(),
            );
        }
        if prices[..i].iter().any(|q| q.lot == p.lot && q.line == p.line) {
            fail(&format!("unit_prices[{i}]"), "ce prix unitaire figure déjà pour ce lot".into());
        }
    }
    valid
}

/// A member's own orders: its quantities × the unit prices, HT, per contract year
/// (subscriptions every year, a partial last year for its months only, set-up in the first);
/// the total is their sum.
pub fn own_orders_per_year(q: &MemberQuantities, prices: &[UnitPrice], duration_months: u32) -> Vec<i64> {
    let years = contract_years(duration_months);
    let mut per_year = vec![0i64; years.len()];
    for p in prices {
        match p.line {
            PriceLine::AccountYear => {
                for (amount_of_year, months) in per_year.iter_mut().zip(&years) {
                    *amount_of_year += amount(account_years(q.accounts(), *months), p.unit_price_ht_cents);
                }
            }
            PriceLine::SchoolSetup => per_year[0] += q.schools * p.unit_price_ht_cents,
            // A coordinator's line is ordered for all the members: split by [`shares`].
            PriceLine::Custom(_) => {}
        }
    }
    per_year
}

/// What one member pays.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemberShare {
    pub member: OrgRef,
    pub quantities: MemberQuantities,
    /// Its share of the members' part of the common expenses, by the cost key.
    pub common_expenses_cents: i64,
    /// The same per contract year (12 months each), summing exactly to it.
    pub common_expenses_per_year_cents: Vec<i64>,
    /// Its own orders at the awarded unit prices, paid by it to the vendor, HT.
    pub own_orders_ht_cents: i64,
    pub own_orders_ttc_cents: i64,
    /// Its own orders HT per contract year, summing exactly to them.
    pub own_orders_per_year_ht_cents: Vec<i64>,
    /// For a groupement of several lots, its own orders in each lot awarded (HT), which
    /// `own_orders_ht_cents` sums: in the lot carrying the ENT its quantities at the titulaire's
    /// unit prices, in another lot its part, by the cost key, of that lot's DQE at its
    /// titulaire's prices. Absent for a groupement of one lot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<LotOrders>,
}

/// A member's own orders in one lot ([`MemberShare::lots`]).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LotOrders {
    pub lot: u32,
    pub title: String,
    pub own_orders_ht_cents: i64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Shares {
    /// The cost key as it applies to the members (a basis none declares said to be split equally).
    pub cost_key: String,
    /// What the coordinator should know of the key before documents are generated
    /// ([`key_warnings`]); empty when every basis is declared by every member.
    pub cost_key_warnings: Vec<String>,
    /// The groupement's common expenses (procedure, management) over the contract.
    pub common_expenses_cents: i64,
    /// The coordinator's part of them (its `coordinator_share_percent`).
    pub coordinator_common_expenses_cents: i64,
    /// The members' part, split between them by the cost key.
    pub members_common_expenses_cents: i64,
    pub duration_months: u32,
    pub vat_percent: i64,
    /// The awarded unit prices the members' own orders are priced at.
    pub unit_prices: Vec<UnitPrice>,
    pub shares: Vec<MemberShare>,
}

/// The cost key's bases that do not apply as worded, in words: one no member declares any of
/// (its part split equally, [`shares::empty_bases`]), and the members declaring none of a basis
/// others declare (they pay nothing of its part).
pub fn key_warnings(g: &Groupement, members: &[Application]) -> Vec<String> {
    let quantities: Vec<shares::Quantities> = members.iter().map(|m| m.quantities.for_key()).collect();
    let empty = shares::empty_bases(&g.terms.cost_key, &quantities);
    let equipped = Establishments::of(members);
    let mut warnings = Vec::new();
    for part in &g.terms.cost_key {
        if part.basis == shares::Basis::Equal {
            continue;
        }
        if empty.contains(part) {
            warnings.push(format!(
                "{} par les membres : les {} % répartis « {} » le sont à parts égales ; saisissez leurs quantités \
                 (candidatures) pour une répartition au prorata",
                capitalised(part.basis.none_declared(equipped)),
                part.weight,
                part.basis.label(equipped)
            ));
            continue;
        }
        // Named as the documents name them: « la Commune de Fresnes et le Département du Val-de-Marne ».
        let without: Vec<String> = members
            .iter()
            .zip(&quantities)
            .filter(|(_, q)| q.of(part.basis) <= 0)
            .map(|(m, _)| naming::of_org(m.applicant.kind, &naming::display_name(&m.applicant.name)).article)
            .collect();
        if !without.is_empty() {
            warnings.push(format!(
                "{} par {}, qui ne {} rien des {} % répartis « {} »",
                capitalised(part.basis.none_declared(equipped)),
                naming::and_list(&without),
                if without.len() > 1 { "paient" } else { "paie" },
                part.weight,
                part.basis.label(equipped)
            ));
        }
    }
    warnings
}

/// Each member's share of the common expenses and its own orders at `prices`.
pub fn shares(g: &Groupement, members: &[Application], prices: &[UnitPrice]) -> Shares {
    let common = g.terms.common_expenses_cents;
    let [coordinator, members_part] = <[i64; 2]>::try_from(shares::largest_remainder(
        common,
        &[i64::from(g.terms.coordinator_share_percent), 100 - i64::from(g.terms.coordinator_share_percent)],
    ))
    .expect("two parts");
    let quantities: Vec<shares::Quantities> = members.iter().map(|m| m.quantities.for_key()).collect();
    let split = shares::split(members_part, &g.terms.cost_key, &quantities);
    let months = g.terms.duration_months;
    let several = g.terms.lots.len() > 1;
    let own_lots = own_lots_split(g, members, prices);
    let list = members
        .iter()
        .zip(split)
        .enumerate()
        .map(|(i, (m, part))| {
            let ent_prices: Vec<UnitPrice> = prices.iter().filter(|p| ent_lot_price(g, p)).copied().collect();
            let mut own = own_orders_per_year(&m.quantities, &ent_prices, months);
            let mut lots = Vec::new();
            for lot in g.terms.lots.iter().filter(|_| several) {
                let in_lot = match own_lots.get(&lot.number) {
                    Some(parts) => {
                        let years = shares::per_year(parts[i], months);
                        own.iter_mut().zip(&years).for_each(|(o, y)| *o += y);
                        parts[i]
                    }
                    None => {
                        own_orders_per_year(&m.quantities, &prices_of_lot(&ent_prices, lot.number), months).iter().sum()
                    }
                };
                if prices.iter().any(|p| p.lot == lot.number) {
                    lots.push(LotOrders { lot: lot.number, title: lot.title.clone(), own_orders_ht_cents: in_lot });
                }
            }
            let own_ht: i64 = own.iter().sum();
            MemberShare {
                member: m.applicant.clone(),
                quantities: m.quantities,
                common_expenses_cents: part,
                common_expenses_per_year_cents: shares::per_year(part, months),
                own_orders_ht_cents: own_ht,
                own_orders_ttc_cents: own_ht + vat(own_ht),
                own_orders_per_year_ht_cents: own,
                lots,
            }
        })
        .collect();
    Shares {
        cost_key: shares::describe_for(&g.terms.cost_key, &quantities, Establishments::of(members)),
        cost_key_warnings: key_warnings(g, members),
        common_expenses_cents: common,
        coordinator_common_expenses_cents: coordinator,
        members_common_expenses_cents: members_part,
        duration_months: months,
        vat_percent: VAT_PERCENT,
        unit_prices: prices.to_vec(),
        shares: list,
    }
}

/// Whether `p` prices a line of the lot carrying the ENT (every price of a groupement of one lot).
fn ent_lot_price(g: &Groupement, p: &UnitPrice) -> bool {
    g.terms.lots.iter().any(|l| l.number == p.lot && l.carries_ent())
}

/// The prices of `prices` of the lot `number`.
fn prices_of_lot(prices: &[UnitPrice], number: u32) -> Vec<UnitPrice> {
    prices.iter().filter(|p| p.lot == number).copied().collect()
}

/// Each coordinator's lot priced in `prices` (by number): its DQE at those prices (HT), split
/// between the `members` by the cost key ([`shares::split`], to the cent, summing exactly to it),
/// in the members' order — the orders the members are expected to issue in that lot.
fn own_lots_split(g: &Groupement, members: &[Application], prices: &[UnitPrice]) -> BTreeMap<u32, Vec<i64>> {
    let quantities: Vec<shares::Quantities> = members.iter().map(|m| m.quantities.for_key()).collect();
    let none = MemberQuantities::default();
    let months = g.terms.duration_months;
    let own_lots = g.terms.lots.iter().filter(|l| !l.carries_ent() && prices.iter().any(|p| p.lot == l.number));
    own_lots
        .map(|lot| {
            let dqe: i64 = lot
                .price_lines()
                .into_iter()
                .map(|line| {
                    let price = price_of(prices, lot.number, line).unwrap_or(0);
                    amount(dqe_hundredths(lot, line, &none, months), price)
                })
                .sum();
            (lot.number, shares::split(dqe, &g.terms.cost_key, &quantities))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two écoles, 200 accounts; 2,50 € an account a year, 400 € a school's set-up.
    fn member_and_prices() -> (MemberQuantities, [UnitPrice; 2]) {
        let q = MemberQuantities { schools: 2, classes: 0, pupils: 100, teacher_accounts: 10, parent_accounts: 90 };
        let prices = [
            UnitPrice { lot: 1, line: PriceLine::AccountYear, unit_price_ht_cents: 250 },
            UnitPrice { lot: 1, line: PriceLine::SchoolSetup, unit_price_ht_cents: 40_000 },
        ];
        (q, prices)
    }

    fn member(kind: OrgKind, code: &str) -> OrgRef {
        OrgRef { id: code.into(), kind, code: code.into(), name: code.into() }
    }

    #[test]
    fn collectivites_funding_colleges_and_lycees_equip_etablissements() {
        assert_eq!(Establishments::of_member(&member(OrgKind::Region, "11")), Establishments::Lycees);
        assert_eq!(Establishments::of_member(&member(OrgKind::Departement, "94")), Establishments::Colleges);
        assert_eq!(Establishments::of_member(&member(OrgKind::Commune, "94028")), Establishments::Ecoles);
        // Collectivité de Corse, CTU de Martinique and Guyane, Département de Mayotte.
        for (kind, code) in [(OrgKind::Region, "94"), (OrgKind::Region, "02"), (OrgKind::Region, "03")] {
            assert_eq!(Establishments::of_member(&member(kind, code)), Establishments::Mixed, "{code}");
        }
        assert_eq!(Establishments::of_member(&member(OrgKind::Departement, "976")), Establishments::Mixed);
        assert_eq!(Establishments::Mixed.one(), "établissement");
    }

    #[test]
    fn own_orders_are_quantities_times_unit_prices_per_year() {
        let (q, prices) = member_and_prices();
        // 200 accounts × 2,50 € a year, 2 × 400 € the first year.
        assert_eq!(own_orders_per_year(&q, &prices, 36), vec![130_000, 50_000, 50_000]);
        assert_eq!(own_orders_per_year(&q, &[], 36), vec![0, 0, 0]);
        assert_eq!(contract_years(36), vec![12, 12, 12]);
        assert_eq!(contract_years(18), vec![12, 6]);
    }

    #[test]
    fn a_partial_last_year_is_priced_for_its_months_only() {
        let (q, prices) = member_and_prices();
        // 30 months: two years of 200 accounts, then 6 months (100 account-years), not a third year.
        assert_eq!(own_orders_per_year(&q, &prices, 30), vec![130_000, 50_000, 25_000]);
        assert_eq!(PriceLine::AccountYear.quantity_hundredths(&q, 30), 50_000, "200 × 30 / 12 account-years");
        assert_eq!(PriceLine::SchoolSetup.quantity_hundredths(&q, 30), 200);
        // 7 accounts for one month: 0,583… account-year, 0,58 to the hundredth; at 2,50 €: 1,45 €.
        assert_eq!(account_years(7, 1), 58);
        assert_eq!(amount(58, 250), 145);
        // Half a hundredth rounds up: 1 account for 3 months is 0,25 exactly; 3 months of 1 account
        // at 0,03 € is 0,0075 €, 1 cent.
        assert_eq!(account_years(1, 3), 25);
        assert_eq!(amount(25, 3), 1);
        // Whole years are unchanged, and the years sum to the whole duration's quantity.
        assert_eq!(account_years(200, 36), 60_000);
        let years: i64 = contract_years(30).iter().map(|m| account_years(200, *m)).sum();
        assert_eq!(years, account_years(200, 30));
    }

    #[test]
    fn a_margin_raises_the_maximum_up_to_the_whole_unit_and_none_keeps_the_dqe() {
        // Without a margin, the DQE's own quantity, hundredths included.
        assert_eq!(with_margin(1_750, 0), 1_750);
        // 9 020 account-years + 20 %: 10 824; 11 écoles + 20 %: 13,2, 14.
        assert_eq!(with_margin(902_000, 20), 1_082_400);
        assert_eq!(with_margin(1_100, 20), 1_400);
        // 17,50 account-years + 10 %: 19,25, 20; 0 stays 0; + 100 % doubles.
        assert_eq!(with_margin(1_750, 10), 2_000);
        assert_eq!(with_margin(0, 20), 0);
        assert_eq!(with_margin(1_100, 100), 2_200);
    }

    /// « Accompagnement et formation »: 40 journées estimated at 900 €, 20 sessions unpriced.
    fn training_lot() -> Lot {
        let line = |label: &str, unit: &str, quantity, price| super::super::LotLine {
            label: label.into(),
            unit: unit.into(),
            quantity,
            estimated_unit_price_ht_cents: price,
        };
        Lot {
            number: 2,
            title: "Accompagnement et formation".into(),
            description: None,
            lines: vec![
                line("Journée de formation", "journée", 40, Some(90_000)),
                line("Classe virtuelle", "session", 20, None),
            ],
        }
    }

    #[test]
    fn a_coordinators_lot_is_priced_by_its_own_lines() {
        let mut lot = training_lot();
        let none = MemberQuantities::default();
        assert!(!lot.carries_ent());
        assert_eq!(lot.price_lines(), vec![PriceLine::Custom(1), PriceLine::Custom(2)]);
        assert_eq!(designation(&lot, PriceLine::Custom(2), Establishments::Ecoles), "Classe virtuelle");
        assert_eq!(dqe_hundredths(&lot, PriceLine::Custom(1), &none, 36), 4_000);
        // 40 + 10 %: 44 journées.
        assert_eq!(maximum_of(&lot, PriceLine::Custom(1), &none, 36, 10), 4_400);
        assert_eq!(lot_estimate(&lot, 0), None, "a line without an estimated price");
        lot.lines[1].estimated_unit_price_ht_cents = Some(20_000);
        assert_eq!(lot_estimate(&lot, 0), Some(40 * 90_000 + 20 * 20_000));
        // The bouquet's lines are not this lot's, nor a line it does not have.
        let mut checks = Checks::default();
        let prices = [
            UnitPrice { lot: 2, line: PriceLine::Custom(1), unit_price_ht_cents: 50_000 },
            UnitPrice { lot: 2, line: PriceLine::Custom(2), unit_price_ht_cents: 20_000 },
            UnitPrice { lot: 2, line: PriceLine::AccountYear, unit_price_ht_cents: 100 },
            UnitPrice { lot: 2, line: PriceLine::Custom(3), unit_price_ht_cents: 100 },
        ];
        assert!(!check_prices(&prices, std::slice::from_ref(&lot), &mut checks));
        let fields: Vec<String> = checks.finish().unwrap_err().errors.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["unit_prices[2].line", "unit_prices[3].line"]);
        assert!(check_prices(&prices[..2], &[lot], &mut Checks::default()));
    }

    #[test]
    fn euros_are_written_the_french_way() {
        assert_eq!(euros(123_456_789), "1\u{a0}234\u{a0}567,89\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(100_000), "1\u{a0}000,00\u{a0}€");
    }

    #[test]
    fn quantities_are_written_the_french_way() {
        assert_eq!(quantity(625_000), "6\u{a0}250");
        assert_eq!(quantity(123_458), "1\u{a0}234,58");
        assert_eq!(quantity(50), "0,50");
    }

    #[test]
    fn vat_rounds_to_the_cent() {
        assert_eq!(vat(1000), 200);
        assert_eq!(vat(3), 1, "0,6 cent rounds up");
        assert_eq!(vat(2), 0, "0,4 cent rounds down");
    }
}
