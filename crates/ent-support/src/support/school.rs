//! School holidays by zone as data (`support/vacances-scolaires.yaml`, the
//! official calendar, replaceable by a `school_holidays` key in a file of
//! `support_dir`), each académie in one zone; and the policy option that pauses
//! N1 clocks during the school's holidays and on the écoles' day off.

use super::calendar::{Calendar, Closure, Place};
use super::policy::ClosureSpec;
use chrono::Weekday;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SHIPPED: &str = include_str!("../../../../support/vacances-scolaires.yaml");

/// The school calendar: its source, the school years it covers, its zones.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchoolHolidays {
    pub source: String,
    /// School years covered (`2025-2026`).
    pub years: Vec<String>,
    pub zones: BTreeMap<String, ZoneSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    pub label: String,
    /// Académie codes (`24`, `15`...).
    pub academies: Vec<String>,
    /// Holidays, first and last day without classes included.
    #[serde(default)]
    pub periods: Vec<ClosureSpec>,
}

/// Pause of N1 clocks for schools (a policy option).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchoolPauseSpec {
    /// During the school holidays of the school's zone.
    #[serde(default = "yes")]
    pub holidays: bool,
    /// The écoles' day off (4-day week): `mercredi` by default, `[]` for none.
    #[serde(default = "wednesday")]
    pub ecoles_day_off: Vec<String>,
}

fn yes() -> bool {
    true
}

fn wednesday() -> Vec<String> {
    vec!["mercredi".into()]
}

/// The holidays of each académie, by académie code (without leading zeros).
pub fn by_academie(spec: &SchoolHolidays, errors: &mut Vec<String>) -> BTreeMap<String, Vec<Closure>> {
    let mut out: BTreeMap<String, Vec<Closure>> = BTreeMap::new();
    let mut zone_of: BTreeMap<String, &str> = BTreeMap::new();
    for (name, zone) in &spec.zones {
        for p in zone.periods.iter().filter(|p| p.to < p.from) {
            errors.push(format!("school_holidays, zone {name} : période du {} au {} à l'envers", p.from, p.to));
        }
        for academie in &zone.academies {
            let code = academie.trim_start_matches('0').to_string();
            if let Some(other) = zone_of.insert(code.clone(), name) {
                errors.push(format!("school_holidays : l'académie {academie} est dans les zones {other} et {name}"));
            }
            out.insert(code, zone.periods.iter().map(|p| Closure { from: p.from, to: p.to }).collect());
        }
    }
    out
}

/// Checks the day names of a pause.
pub fn check_pause(policy: &str, pause: &SchoolPauseSpec, errors: &mut Vec<String>) {
    for d in pause.ecoles_day_off.iter().filter(|d| super::policy::weekday(d).is_none()) {
        errors.push(format!("politique {policy}, n1_school_pause : jour « {d} » inconnu (lundi … dimanche)"));
    }
}

/// `cal` paused as `pause` says for a school at `place`.
pub fn paused(
    mut cal: Calendar,
    pause: &SchoolPauseSpec,
    holidays: &BTreeMap<String, Vec<Closure>>,
    place: &Place,
) -> Calendar {
    if pause.holidays {
        if let Some(periods) = place.academie.as_ref().and_then(|a| holidays.get(a)) {
            cal.closures.extend(periods.iter().cloned());
        }
    }
    if place.ecole {
        let off: Vec<Weekday> = pause.ecoles_day_off.iter().filter_map(|d| super::policy::weekday(d)).collect();
        cal.days.retain(|d| !off.contains(d));
    }
    cal
}
