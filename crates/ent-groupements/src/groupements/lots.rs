//! Allotment (article L. 2113-10 du code de la commande publique): the lots of a groupement are
//! distinct prestations, each awarded apart as its own accord-cadre. The lot carrying the ENT is
//! priced by the bouquet's lines; every other lot by the lines its coordinator defines
//! ([`super::LotLine`]). A groupement of several lots is awarded in one act lot by lot ([`LotAward`]:
//! titulaire, unit prices, notification, term, DECP facts), a lot declared sans suite before
//! ([`super::sans_suite::declare_lot`]) left out; the award of the lot carrying the ENT is the
//! groupement's `award` (its titulaire the members' processor and the tenants' vendor, the one
//! [`ent_platform::contracts::binding_market`] finds), each lot's in its `lots`. A groupement of one
//! lot keeps its API, documents and DECP unchanged.

use super::costs::UnitPrice;
use super::decp::DecpFacts;
use super::{Award, Groupement};
use ent_platform::registry::OrgRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The award of one lot of a groupement of several: its own accord-cadre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotAward {
    pub lot: u32,
    pub title: String,
    /// Whether this lot carries the ENT (its titulaire is the groupement's `award.vendor`).
    pub carries_ent: bool,
    pub vendor: OrgRef,
    pub vendor_siret: String,
    /// The lot's maximum at its titulaire's unit prices, HT and TTC.
    pub amount_ht_cents: i64,
    pub amount_ttc_cents: i64,
    /// `YYYY-MM-DD`: notification of the lot's accord-cadre.
    pub notified_on: String,
    pub duration_months: u32,
    /// Served to the same readers as the award's `unit_prices`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unit_prices: Vec<UnitPrice>,
    pub decp: DecpFacts,
    /// The DECP `id` of the lot's marché ([`super::decp::lot_marche_id`]).
    pub marche_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_renounced: Option<bool>,
}

impl LotAward {
    /// What the audit of the award records of it.
    pub fn audited(&self) -> serde_json::Value {
        json!({
            "lot": self.lot, "vendor": self.vendor.id, "siret": self.vendor_siret,
            "amount_ht_cents": self.amount_ht_cents, "notified_on": self.notified_on, "marche_id": self.marche_id,
        })
    }

    /// As the award of a groupement of one lot (the documents' view of the lot, [`view`]).
    pub fn as_award(&self) -> Award {
        Award {
            vendor: self.vendor.clone(),
            vendor_siret: self.vendor_siret.clone(),
            amount_ht_cents: self.amount_ht_cents,
            amount_ttc_cents: self.amount_ttc_cents,
            notified_on: self.notified_on.clone(),
            duration_months: self.duration_months,
            unit_prices: self.unit_prices.clone(),
            decp: self.decp.clone(),
            kept_tenants: Vec::new(),
            warnings: Vec::new(),
            advance_renounced: self.advance_renounced,
            lot: Some(self.lot),
            lots: Vec::new(),
        }
    }

    /// The lot's last day, from its notification ([`Award::last_day`]).
    pub fn last_day(&self) -> Option<chrono::NaiveDate> {
        self.as_award().last_day()
    }
}

impl Award {
    /// The unit prices of every lot awarded: the award's own for a groupement of one lot.
    pub fn all_unit_prices(&self) -> Vec<UnitPrice> {
        match self.lots.is_empty() {
            true => self.unit_prices.clone(),
            false => self.lots.iter().flat_map(|l| l.unit_prices.iter().copied()).collect(),
        }
    }

    /// The award of the lot `number`, if awarded (for a groupement of several lots).
    pub fn of_lot(&self, number: u32) -> Option<&LotAward> {
        self.lots.iter().find(|l| l.lot == number)
    }
}

/// `g` seen as its lot `number` alone: its terms holding that lot only, its award that lot's
/// (none while it is not awarded) — what one lot's maximum, award check and acte d'engagement are
/// computed on.
pub fn view(g: &Groupement, number: u32) -> Groupement {
    let mut view = g.clone();
    view.terms.lots.retain(|l| l.number == number);
    view.award = g.award.as_ref().and_then(|a| a.of_lot(number)).map(LotAward::as_award);
    view
}
