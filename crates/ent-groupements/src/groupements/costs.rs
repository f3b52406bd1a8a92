//! What each member pays: its share of the groupement's common expenses (procedure,
//! management), split by the cost key as the convention constitutive says, and apart from it
//! its own orders to the vendor, its declared quantities × the awarded unit prices of the
//! BPU's price lines. The whole maximum of the accord-cadre is never divided.

use super::membership::{Application, MemberQuantities};
use super::shares;
use super::{Groupement, Lot};
use ent_kernel::error::Checks;
use ent_platform::registry::OrgRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The TVA rate of the BPU/DQE and of the members' orders (taux normal, art. 278 CGI).
pub const VAT_PERCENT: i64 = 20;

/// A price line of the BPU, the same in every lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceLine {
    /// Yearly subscription of one ENT account (pupil, teacher or parent).
    AccountYear,
    /// Setting up one école: configuration, data import, training of its teachers.
    SchoolSetup,
}

impl PriceLine {
    pub const ALL: [PriceLine; 2] = [PriceLine::AccountYear, PriceLine::SchoolSetup];

    pub fn label(self) -> &'static str {
        match self {
            PriceLine::AccountYear => "Abonnement annuel par compte ENT (élève, enseignant ou parent)",
            PriceLine::SchoolSetup => "Mise en service d'une école (paramétrage, reprise des données, formation)",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            PriceLine::AccountYear => "compte × an",
            PriceLine::SchoolSetup => "école",
        }
    }

    /// The quantity of the line for declared quantities over `years` contract years.
    pub fn quantity(self, q: &MemberQuantities, years: i64) -> i64 {
        match self {
            PriceLine::AccountYear => q.accounts() * years,
            PriceLine::SchoolSetup => q.schools,
        }
    }
}

/// An awarded unit price, HT, of one line of one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitPrice {
    pub lot: u32,
    pub line: PriceLine,
    pub unit_price_ht_cents: i64,
}

/// Contract years the BPU prices: whole years, the last one counted whole.
pub fn contract_years(duration_months: u32) -> i64 {
    i64::from(duration_months.max(1).div_ceil(12))
}

/// The TVA of an HT amount, rounded to the cent (half up).
pub fn vat(ht_cents: i64) -> i64 {
    (ht_cents * VAT_PERCENT + 50).div_euclid(100)
}

/// An amount in cents as a French reader writes it: `1 234,56 €`.
pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let digits = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(d);
    }
    format!("{sign}{grouped},{:02}\u{a0}€", abs % 100)
}

/// The awarded unit price of a line of a lot, if given.
pub fn price_of(prices: &[UnitPrice], lot: u32, line: PriceLine) -> Option<i64> {
    prices.iter().find(|p| p.lot == lot && p.line == line).map(|p| p.unit_price_ht_cents)
}

/// Checks the unit prices given at award: known lots, positive prices, each line once.
pub fn check_prices(prices: &[UnitPrice], lots: &[Lot], checks: &mut Checks) {
    for (i, p) in prices.iter().enumerate() {
        if !lots.iter().any(|l| l.number == p.lot) {
            checks.fail(&format!("unit_prices[{i}].lot"), format!("le groupement n'a pas de lot {}", p.lot));
        }
        if p.unit_price_ht_cents <= 0 {
            checks.fail(&format!("unit_prices[{i}].unit_price_ht_cents"), "prix unitaire HT en centimes, positif");
        }
        if prices[..i].iter().any(|q| q.lot == p.lot && q.line == p.line) {
            checks.fail(&format!("unit_prices[{i}]"), "ce prix unitaire figure déjà pour ce lot");
        }
    }
}

/// A member's own orders: its quantities × the unit prices, HT, per contract year
/// (subscriptions every year, set-up in the first), summing exactly to the total.
pub fn own_orders_per_year(q: &MemberQuantities, prices: &[UnitPrice], duration_months: u32) -> Vec<i64> {
    let years = contract_years(duration_months);
    let mut per_year = vec![0i64; years as usize];
    for p in prices {
        match p.line {
            PriceLine::AccountYear => per_year.iter_mut().for_each(|y| *y += q.accounts() * p.unit_price_ht_cents),
            PriceLine::SchoolSetup => per_year[0] += q.schools * p.unit_price_ht_cents,
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
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Shares {
    pub cost_key: String,
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
    let list = members
        .iter()
        .zip(split)
        .map(|(m, part)| {
            let own = own_orders_per_year(&m.quantities, prices, months);
            let own_ht: i64 = own.iter().sum();
            MemberShare {
                member: m.applicant.clone(),
                quantities: m.quantities,
                common_expenses_cents: part,
                common_expenses_per_year_cents: shares::per_year(part, months),
                own_orders_ht_cents: own_ht,
                own_orders_ttc_cents: own_ht + vat(own_ht),
                own_orders_per_year_ht_cents: own,
            }
        })
        .collect();
    Shares {
        cost_key: g.cost_key_label.clone(),
        common_expenses_cents: common,
        coordinator_common_expenses_cents: coordinator,
        members_common_expenses_cents: members_part,
        duration_months: months,
        vat_percent: VAT_PERCENT,
        unit_prices: prices.to_vec(),
        shares: list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_orders_are_quantities_times_unit_prices_per_year() {
        let q = MemberQuantities { schools: 2, classes: 0, pupils: 100, teacher_accounts: 10, parent_accounts: 90 };
        let prices = [
            UnitPrice { lot: 1, line: PriceLine::AccountYear, unit_price_ht_cents: 250 },
            UnitPrice { lot: 1, line: PriceLine::SchoolSetup, unit_price_ht_cents: 40_000 },
        ];
        // 200 accounts × 2,50 € a year, 2 × 400 € the first year.
        assert_eq!(own_orders_per_year(&q, &prices, 36), vec![130_000, 50_000, 50_000]);
        assert_eq!(own_orders_per_year(&q, &[], 36), vec![0, 0, 0]);
        assert_eq!(contract_years(18), 2);
    }

    #[test]
    fn euros_are_written_the_french_way() {
        assert_eq!(euros(123_456_789), "1\u{a0}234\u{a0}567,89\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(100_000), "1\u{a0}000,00\u{a0}€");
    }

    #[test]
    fn vat_rounds_to_the_cent() {
        assert_eq!(vat(1000), 200);
        assert_eq!(vat(3), 1, "0,6 cent rounds up");
        assert_eq!(vat(2), 0, "0,4 cent rounds down");
    }
}
