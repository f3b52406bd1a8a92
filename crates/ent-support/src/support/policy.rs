//! Support policies as data: calendars, the impact × urgency → priority matrix,
//! and per policy, for each level, its calendar and its targets per priority
//! (first response, resolution, in business time). `support/policies.yaml` is
//! embedded; the YAML files of `support_dir` (config) replace policies and
//! calendars by name. Everything is validated at start.

use super::calendar::{Calendar, Closure, Place, Territory};
use super::school::{self, SchoolHolidays, SchoolPauseSpec};
use super::{Level, Priority};
use chrono::{NaiveDate, NaiveTime, Weekday};
use ent_kernel::yaml;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SHIPPED: &str = include_str!("../../../../support/policies.yaml");
pub const DEFAULT_POLICY: &str = "standard";

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Working days: `lundi` … `dimanche`.
    #[serde(default = "default_days")]
    pub days: Vec<String>,
    /// Opening time `HH:MM`.
    #[serde(default = "default_open")]
    pub open: String,
    /// Closing time `HH:MM`.
    #[serde(default = "default_close")]
    pub close: String,
    /// French public holidays are closed (Easter Monday, Ascension and Whit Monday computed).
    #[serde(default = "yes")]
    pub public_holidays: bool,
    /// Whose public holidays besides the national ones (`alsace-moselle`, `reunion`...), and
    /// the time zone when `timezone` is left at its default. Absent: the territory of the
    /// ticket's school, and its académie's time zone when `timezone` is left at its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    #[serde(default)]
    pub closures: Vec<ClosureSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClosureSpec {
    #[schemars(with = "String")]
    pub from: NaiveDate,
    #[schemars(with = "String")]
    pub to: NaiveDate,
    #[serde(default)]
    pub label: Option<String>,
}

fn default_tz() -> String {
    "Europe/Paris".into()
}
fn default_days() -> Vec<String> {
    ["lundi", "mardi", "mercredi", "jeudi", "vendredi"].map(String::from).to_vec()
}
fn default_open() -> String {
    "08:00".into()
}
fn default_close() -> String {
    "18:00".into()
}
fn yes() -> bool {
    true
}

/// Targets of one priority, as `30min`, `4h`, `1h30` (business time).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub first_response: String,
    pub resolution: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LevelSpec {
    pub calendar: String,
    /// Escalate automatically to the next level on a resolution breach.
    #[serde(default)]
    pub auto_escalate: bool,
    pub targets: BTreeMap<Priority, TargetSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub label: String,
    pub levels: BTreeMap<Level, LevelSpec>,
    /// Pause N1 clocks during the school holidays of the school's zone and on the écoles' day off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n1_school_pause: Option<SchoolPauseSpec>,
}

/// One policy file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub calendars: BTreeMap<String, CalendarSpec>,
    /// impact → urgency → priority; impacts and urgencies are `haute`, `moyenne`, `basse`.
    #[serde(default)]
    pub priority_matrix: Option<BTreeMap<String, BTreeMap<String, Priority>>>,
    /// Days after which a resolved ticket is closed.
    #[serde(default)]
    pub auto_close_days: Option<u32>,
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySpec>,
    /// The school holidays by zone (shipped: `support/vacances-scolaires.yaml`); replaced whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_holidays: Option<SchoolHolidays>,
}

/// Targets of a level for a priority, in business seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub first_response: i64,
    pub resolution: i64,
}

/// The validated, merged policies.
#[derive(Debug, Clone)]
pub struct Policies {
    pub spec: PolicyFile,
    pub calendars: BTreeMap<String, Calendar>,
    /// School holidays by académie code.
    pub school_holidays: BTreeMap<String, Vec<Closure>>,
}

pub const GRADES: [&str; 3] = ["haute", "moyenne", "basse"];

/// `30min`, `4h`, `1h30`, `2h15min` → seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("durée « {text} » invalide : attendu par exemple 30min, 4h ou 1h30");
    let number = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0 && s.bytes().all(|b| b.is_ascii_digit()));
    let t = text.trim();
    let (hours, minutes) = match t.split_once('h') {
        Some((h, m)) => {
            let m = m.strip_suffix("min").unwrap_or(m);
            let minutes = if m.is_empty() { Some(0) } else { number(m).filter(|m| *m < 60) };
            (number(h), minutes)
        }
        None => (Some(0), t.strip_suffix("min").and_then(number)),
    };
    match (hours, minutes) {
        (Some(h), Some(m)) if h * 60 + m > 0 => Ok(h * 3600 + m * 60),
        _ => Err(bad()),
    }
}

pub(crate) fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "lundi" => Weekday::Mon,
        "mardi" => Weekday::Tue,
        "mercredi" => Weekday::Wed,
        "jeudi" => Weekday::Thu,
        "vendredi" => Weekday::Fri,
        "samedi" => Weekday::Sat,
        "dimanche" => Weekday::Sun,
        _ => return None,
    })
}

fn time(field: &str, text: &str, errors: &mut Vec<String>) -> NaiveTime {
    NaiveTime::parse_from_str(text, "%H:%M").unwrap_or_else(|_| {
        errors.push(format!("{field} : heure « {text} » invalide (HH:MM)"));
        NaiveTime::MIN
    })
}

fn calendar(name: &str, spec: &CalendarSpec, errors: &mut Vec<String>) -> Calendar {
    let at = |f: &str| format!("calendrier {name}, {f}");
    let territory = match spec.territory.as_deref().map(|t| (t, Territory::parse(t))) {
        None => Territory::Metropole,
        Some((_, Some(t))) => t,
        Some((t, None)) => {
            let known: Vec<&str> = Territory::ALL.iter().map(|t| t.as_str()).collect();
            errors.push(format!("{} : territoire « {t} » inconnu ({})", at("territory"), known.join(", ")));
            Territory::Metropole
        }
    };
    let timezone =
        if spec.timezone == default_tz() { territory.timezone().name().to_string() } else { spec.timezone.clone() };
    let tz = timezone.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
        errors.push(format!("{} : fuseau « {} » inconnu", at("timezone"), spec.timezone));
        chrono_tz::Europe::Paris
    });
    let mut days = Vec::new();
    for d in &spec.days {
        match weekday(d) {
            Some(w) if !days.contains(&w) => days.push(w),
            Some(_) => errors.push(format!("{} : « {d} » en double", at("days"))),
            None => errors.push(format!("{} : jour « {d} » inconnu (lundi … dimanche)", at("days"))),
        }
    }
    if days.is_empty() {
        errors.push(format!("{} : au moins un jour ouvré", at("days")));
    }
    let open = time(&at("open"), &spec.open, errors);
    let close = time(&at("close"), &spec.close, errors);
    if close <= open {
        errors.push(format!("{} : la fermeture doit suivre l'ouverture", at("close")));
    }
    for c in &spec.closures {
        if c.to < c.from {
            errors.push(format!("{} : fermeture du {} au {} à l'envers", at("closures"), c.from, c.to));
        }
        for (field, day) in [("from", c.from), ("to", c.to)] {
            if let Err(message) = ent_kernel::validate::within_days(day) {
                errors.push(format!("{}.{field} : {message}", at("closures")));
            }
        }
    }
    Calendar {
        tz,
        days,
        open,
        close,
        public_holidays: spec.public_holidays,
        territory,
        closures: spec.closures.iter().map(|c| Closure { from: c.from, to: c.to }).collect(),
        follows_school: spec.territory.is_none(),
        follows_academie_tz: spec.territory.is_none() && spec.timezone == default_tz(),
    }
}

impl Policies {
    /// The shipped file merged with the files of `dir` (sorted by name), validated. The shipped
    /// files alone are parsed and validated once per process ([`ent_kernel::yaml::shipped_once`]).
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Policies> {
        static SHIPPED_POLICIES: std::sync::OnceLock<Policies> = std::sync::OnceLock::new();
        match dir {
            None => yaml::shipped_once(&SHIPPED_POLICIES, || Policies::parse(None)),
            Some(_) => Policies::parse(dir),
        }
    }

    /// [`Policies::load`], parsed.
    fn parse(dir: Option<&Path>) -> anyhow::Result<Policies> {
        let shipped =
            [("support/policies.yaml (livré)", SHIPPED), ("support/vacances-scolaires.yaml (livré)", school::SHIPPED)];
        let mut merged = PolicyFile::default();
        for (name, text) in yaml::shipped_then_overlay(&shipped, "support_dir", dir)? {
            let file: PolicyFile = yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{name} : {e}"))?;
            merged.calendars.extend(file.calendars);
            merged.policies.extend(file.policies);
            if file.priority_matrix.is_some() {
                merged.priority_matrix = file.priority_matrix;
            }
            if file.auto_close_days.is_some() {
                merged.auto_close_days = file.auto_close_days;
            }
            if file.school_holidays.is_some() {
                merged.school_holidays = file.school_holidays;
            }
        }
        Policies::validate(merged)
            .map_err(|errors| anyhow::anyhow!("politiques de support invalides :\n- {}", errors.join("\n- ")))
    }

    pub fn shipped() -> Policies {
        Policies::load(None).expect("the shipped support policies are valid")
    }

    pub fn validate(spec: PolicyFile) -> Result<Policies, Vec<String>> {
        let mut errors = Vec::new();
        let calendars: BTreeMap<String, Calendar> =
            spec.calendars.iter().map(|(name, c)| (name.clone(), calendar(name, c, &mut errors))).collect();
        match &spec.priority_matrix {
            None => errors.push("priority_matrix : matrice impact × urgence obligatoire".into()),
            Some(matrix) => {
                for impact in GRADES {
                    for urgency in GRADES {
                        if matrix.get(impact).and_then(|row| row.get(urgency)).is_none() {
                            errors.push(format!("priority_matrix : impact {impact} × urgence {urgency} manquant"));
                        }
                    }
                }
                for (impact, row) in matrix {
                    if !GRADES.contains(&impact.as_str()) || row.keys().any(|u| !GRADES.contains(&u.as_str())) {
                        errors.push(format!("priority_matrix.{impact} : valeurs possibles haute, moyenne, basse"));
                    }
                }
            }
        }
        if spec.auto_close_days == Some(0) {
            errors.push("auto_close_days : au moins 1 jour".into());
        }
        if !spec.policies.contains_key(DEFAULT_POLICY) {
            errors.push(format!("policies : la politique « {DEFAULT_POLICY} » est obligatoire"));
        }
        let school_holidays =
            spec.school_holidays.as_ref().map(|h| school::by_academie(h, &mut errors)).unwrap_or_default();
        for (name, policy) in &spec.policies {
            if let Some(pause) = &policy.n1_school_pause {
                school::check_pause(name, pause, &mut errors);
            }
            for level in Level::ALL {
                let Some(l) = policy.levels.get(&level) else {
                    errors.push(format!("politique {name} : niveau {} manquant", level.label()));
                    continue;
                };
                if !calendars.contains_key(&l.calendar) {
                    errors.push(format!("politique {name}, {} : calendrier « {} » inconnu", level.label(), l.calendar));
                }
                for p in Priority::ALL {
                    match l.targets.get(&p) {
                        None => errors.push(format!(
                            "politique {name}, {} : cibles {} manquantes",
                            level.label(),
                            p.as_str()
                        )),
                        Some(t) => {
                            let fr = parse_duration(&t.first_response);
                            let res = parse_duration(&t.resolution);
                            for e in [&fr, &res].into_iter().filter_map(|r| r.as_ref().err()) {
                                errors.push(format!("politique {name}, {}, {} : {e}", level.label(), p.as_str()));
                            }
                            if let (Ok(fr), Ok(res)) = (fr, res) {
                                if fr > res {
                                    errors.push(format!(
                                        "politique {name}, {}, {} : la première réponse doit précéder la résolution",
                                        level.label(),
                                        p.as_str()
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Policies { spec, calendars, school_holidays })
        } else {
            Err(errors)
        }
    }

    pub fn exists(&self, policy: &str) -> bool {
        self.spec.policies.contains_key(policy)
    }

    fn level(&self, policy: &str, level: Level) -> &LevelSpec {
        let p = self.spec.policies.get(policy).unwrap_or_else(|| &self.spec.policies[DEFAULT_POLICY]);
        &p.levels[&level]
    }

    pub fn targets(&self, policy: &str, level: Level, priority: Priority) -> Targets {
        let t = &self.level(policy, level).targets[&priority];
        Targets {
            first_response: parse_duration(&t.first_response).expect("validated"),
            resolution: parse_duration(&t.resolution).expect("validated"),
        }
    }

    pub fn calendar(&self, policy: &str, level: Level) -> &Calendar {
        &self.calendars[&self.level(policy, level).calendar]
    }

    /// The calendar of `level` for a ticket of a school at `place`, paused for N1 as the
    /// policy's `n1_school_pause` says.
    pub fn calendar_at(&self, policy: &str, level: Level, place: &Place) -> Calendar {
        let cal = self.calendar(policy, level).at(place);
        let pause = self.spec.policies.get(policy).and_then(|p| p.n1_school_pause.as_ref());
        match pause {
            Some(pause) if level == Level::N1 => school::paused(cal, pause, &self.school_holidays, place),
            _ => cal,
        }
    }

    pub fn auto_escalate(&self, policy: &str, level: Level) -> bool {
        self.level(policy, level).auto_escalate
    }

    pub fn priority(&self, impact: &str, urgency: &str) -> Option<Priority> {
        self.spec.priority_matrix.as_ref()?.get(impact)?.get(urgency).copied()
    }

    pub fn auto_close_days(&self) -> u32 {
        self.spec.auto_close_days.unwrap_or(7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_french_shorthand() {
        assert_eq!(parse_duration("30min"), Ok(1800));
        assert_eq!(parse_duration("4h"), Ok(14400));
        assert_eq!(parse_duration("1h30"), Ok(5400));
        assert_eq!(parse_duration("2h15min"), Ok(8100));
        for bad in ["", "4", "h", "0h", "1h75", "-2h", "3 jours"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_policies_are_valid() {
        let p = Policies::shipped();
        assert_eq!(p.priority("haute", "haute"), Some(Priority::P1));
        let t = p.targets("standard", Level::N1, Priority::P3);
        assert!(t.first_response < t.resolution);
    }

    #[test]
    fn files_of_support_dir_replace_policies_and_calendars_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let extra = "calendars:\n  editeur:\n    open: \"10:00\"\n    close: \"16:00\"\n    days: [lundi, mardi]\n";
        std::fs::write(dir.path().join("editeur.yaml"), extra).unwrap();
        let p = Policies::load(Some(dir.path())).unwrap();
        let cal = p.calendar("standard", Level::N3);
        assert_eq!(cal.days, vec![Weekday::Mon, Weekday::Tue]);
        assert_eq!(cal.open, NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        std::fs::write(dir.path().join("z.yaml"), "calendars:\n  editeur:\n    ouverture: \"10:00\"\n").unwrap();
        let err = Policies::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("z.yaml") && err.contains("ouverture"), "{err}");
    }

    #[test]
    fn unknown_fields_and_missing_targets_are_reported() {
        assert!(yaml::from_str::<PolicyFile>("policies: {}\nsurprise: 1\n").is_err());
        let mut spec: PolicyFile = yaml::from_str(SHIPPED).unwrap();
        let std = spec.policies.get_mut("standard").unwrap();
        std.levels.get_mut(&Level::N2).unwrap().targets.remove(&Priority::P1);
        std.levels.get_mut(&Level::N3).unwrap().calendar = "lune".into();
        let errors = Policies::validate(spec).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("N2") && e.contains("P1")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("lune")), "{errors:?}");
    }

    #[test]
    fn a_school_calendar_takes_the_territory_and_the_academie_time_zone_unless_fixed() {
        use chrono::{TimeZone, Utc};
        let p = Policies::shipped();
        // La Réunion: opening at 08:00 Indian/Reunion (UTC+4), 20 December closed.
        let reunion = Place::new(Some("974"), Some("28"), false);
        let cal = p.calendar_at("standard", Level::N1, &reunion);
        assert_eq!((cal.tz, cal.territory), (chrono_tz::Indian::Reunion, Territory::Reunion));
        let monday = Utc.with_ymd_and_hms(2027, 12, 20, 3, 0, 0).unwrap();
        assert_eq!(cal.next_open(monday), Utc.with_ymd_and_hms(2027, 12, 21, 4, 0, 0).unwrap());
        // The vendor's calendar names its territory: it stays metropolitan.
        let n3 = p.calendar_at("standard", Level::N3, &reunion);
        assert_eq!((n3.tz, n3.territory), (chrono_tz::Europe::Paris, Territory::Metropole));
        // Strasbourg: Alsace-Moselle holidays, Paris time.
        let strasbourg = p.calendar_at("standard", Level::N1, &Place::new(Some("067"), Some("15"), false));
        assert_eq!((strasbourg.tz, strasbourg.territory), (chrono_tz::Europe::Paris, Territory::AlsaceMoselle));
    }

    #[test]
    fn the_school_calendar_is_data_the_operator_replaces_whole() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let creteil = Place::new(Some("094"), Some("24"), true);
        let shipped = Policies::shipped();
        let cal = shipped.calendar_at("ecoles", Level::N1, &creteil);
        assert!(!cal.is_working_day(d("2025-10-27")), "Toussaint, zone C");
        assert!(!cal.is_working_day(d("2025-11-05")), "the écoles' Wednesday");
        assert!(shipped.calendar_at("standard", Level::N1, &creteil).is_working_day(d("2025-10-27")));
        assert!(shipped.calendar_at("ecoles", Level::N2, &creteil).is_working_day(d("2025-10-27")), "N1 only");
        let dir = tempfile::tempdir().unwrap();
        let mine = "school_holidays:\n  source: arrêté rectoral\n  years: [\"2026-2027\"]\n  zones:\n    C:\n      \
                    label: Zone C\n      academies: [\"24\"]\n      periods: [{ from: 2026-10-17, to: 2026-11-01 }]\n";
        std::fs::write(dir.path().join("vacances.yaml"), mine).unwrap();
        let replaced = Policies::load(Some(dir.path())).unwrap();
        let cal = replaced.calendar_at("ecoles", Level::N1, &creteil);
        assert!(!cal.is_working_day(d("2026-10-19")) && cal.is_working_day(d("2025-10-27")), "replaced whole");
        let twice =
            mine.replace("periods", "periods: []\n    B:\n      label: B\n      academies: [\"24\"]\n      periods");
        std::fs::write(dir.path().join("vacances.yaml"), twice).unwrap();
        let err = Policies::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("l'académie 24 est dans les zones"), "{err}");
    }

    #[test]
    fn the_shipped_school_periods_are_ordered_apart_and_cover_martinique_and_nouvelle_caledonie() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let shipped = Policies::shipped();
        for (academie, periods) in &shipped.school_holidays {
            for pair in periods.windows(2) {
                assert!(pair[0].to < pair[1].from, "académie {academie}: {:?} then {:?}", pair[0], pair[1]);
            }
        }
        let closed = |academie: &str, day: &str| {
            shipped.school_holidays[academie].iter().any(|c| c.from <= d(day) && d(day) <= c.to)
        };
        // Martinique (31), 2025-2026: Carnaval from Saturday 7 to Sunday 22 February 2026.
        assert!(closed("31", "2026-02-07") && closed("31", "2026-02-22"));
        assert!(!closed("31", "2026-02-06") && !closed("31", "2026-02-23"));
        // Nouvelle-Calédonie (40): a school year per calendar year, summer from mid-December.
        assert!(closed("40", "2026-01-15") && !closed("40", "2026-02-16"), "back on 16 February 2026");
        assert!(closed("40", "2026-04-06") && !closed("40", "2026-04-20"));
        // Territories without a reliable source are declared, with no period: nothing paused.
        for academie in ["32", "33", "41", "43"] {
            assert!(shipped.school_holidays.contains_key(academie), "académie {academie} declared");
        }
    }
}
