//! Business time: the opening hours of a support level (time zone, working
//! days, hours, French public holidays computed for any year, closure periods).
//! Pure functions; SLA clocks count seconds inside these hours only.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use ent_kernel::text_enum;

/// How far ahead a due date is searched (a policy never asks more).
const MAX_DAYS: i64 = 3 * 366;

/// A closure period (both dates included), e.g. the vendor's winter shutdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub tz: Tz,
    pub days: Vec<Weekday>,
    pub open: NaiveTime,
    pub close: NaiveTime,
    /// Whether French public holidays are closed days.
    pub public_holidays: bool,
    /// Whose public holidays: the national ones plus the territory's own.
    pub territory: Territory,
    pub closures: Vec<Closure>,
    /// No territory given: the school's territory applies ([`Calendar::at`]).
    pub follows_school: bool,
    /// Time zone left at its default: the school's académie's applies.
    pub follows_academie_tz: bool,
}

/// Where a ticket's school is: whose public holidays, its académie (time zone,
/// school holiday zone) and whether it is an école (1er degré, its own day off).
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub territory: Territory,
    pub academie: Option<String>,
    pub tz: Tz,
    pub ecole: bool,
}

impl Default for Place {
    fn default() -> Place {
        Place::new(None, None, false)
    }
}

impl Place {
    /// From the school's département and académie codes: the territory from the
    /// département (else the académie), the time zone from the académie.
    pub fn new(departement: Option<&str>, academie: Option<&str>, ecole: bool) -> Place {
        let of_academie = academie.map(Territory::of_academie);
        let territory = match departement {
            Some(d) => Territory::of_departement(d),
            None => of_academie.unwrap_or_default(),
        };
        // An overseas territory has its own time zone whatever académie it is attached to
        // (Saint-Pierre-et-Miquelon's schools are not in an overseas académie).
        let zone = if territory.overseas() { territory } else { of_academie.unwrap_or(territory) };
        let tz = zone.timezone();
        Place { territory, academie: academie.map(|a| a.trim_start_matches('0').to_string()), tz, ecole }
    }
}

/// A territory with public holidays of its own, on top of the eleven national ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Territory {
    #[default]
    Metropole,
    /// Bas-Rhin, Haut-Rhin, Moselle: Good Friday and 26 December (local law).
    AlsaceMoselle,
    Guadeloupe,
    Martinique,
    Guyane,
    Reunion,
    Mayotte,
    SaintBarthelemy,
    SaintMartin,
    NouvelleCaledonie,
    Polynesie,
    /// Saint-Pierre-et-Miquelon: the national public holidays only (none of its own is known here).
    SaintPierreEtMiquelon,
    /// Wallis-et-Futuna: the national public holidays only until its own are established (README).
    WallisEtFutuna,
}

// Its text is the name policies use (`territory: alsace-moselle`).
text_enum!(pub Territory {
    Metropole = "metropole", AlsaceMoselle = "alsace-moselle", Guadeloupe = "guadeloupe", Martinique = "martinique",
    Guyane = "guyane", Reunion = "reunion", Mayotte = "mayotte", SaintBarthelemy = "saint-barthelemy",
    SaintMartin = "saint-martin", NouvelleCaledonie = "nouvelle-caledonie", Polynesie = "polynesie",
    SaintPierreEtMiquelon = "saint-pierre-et-miquelon", WallisEtFutuna = "wallis-et-futuna",
});

impl Territory {
    /// The territory of a département or collectivité code (`67`, `974`, `988`...).
    pub fn of_departement(code: &str) -> Territory {
        match code.trim_start_matches('0') {
            "57" | "67" | "68" => Territory::AlsaceMoselle,
            "971" => Territory::Guadeloupe,
            "972" => Territory::Martinique,
            "973" => Territory::Guyane,
            "974" => Territory::Reunion,
            "975" => Territory::SaintPierreEtMiquelon,
            "976" => Territory::Mayotte,
            "977" => Territory::SaintBarthelemy,
            "978" => Territory::SaintMartin,
            "988" => Territory::NouvelleCaledonie,
            "987" => Territory::Polynesie,
            "986" => Territory::WallisEtFutuna,
            _ => Territory::Metropole,
        }
    }

    /// The territory of an académie (or vice-rectorat) code: overseas ones have their
    /// own time zone; metropolitan ones answer `Metropole` (the département decides holidays).
    pub fn of_academie(code: &str) -> Territory {
        match code.trim_start_matches('0') {
            "28" => Territory::Reunion,
            "31" => Territory::Martinique,
            "32" => Territory::Guadeloupe,
            "33" => Territory::Guyane,
            "40" => Territory::NouvelleCaledonie,
            "41" => Territory::Polynesie,
            "43" => Territory::Mayotte,
            _ => Territory::Metropole,
        }
    }

    /// Outside metropolitan France (its own time zone).
    pub fn overseas(self) -> bool {
        !matches!(self, Territory::Metropole | Territory::AlsaceMoselle)
    }

    /// Its time zone: the académie's by default.
    pub fn timezone(self) -> Tz {
        match self {
            Territory::Metropole | Territory::AlsaceMoselle => chrono_tz::Europe::Paris,
            Territory::Guadeloupe | Territory::SaintBarthelemy | Territory::SaintMartin => {
                chrono_tz::America::Guadeloupe
            }
            Territory::Martinique => chrono_tz::America::Martinique,
            Territory::Guyane => chrono_tz::America::Cayenne,
            Territory::Reunion => chrono_tz::Indian::Reunion,
            Territory::Mayotte => chrono_tz::Indian::Mayotte,
            Territory::NouvelleCaledonie => chrono_tz::Pacific::Noumea,
            Territory::Polynesie => chrono_tz::Pacific::Tahiti,
            Territory::SaintPierreEtMiquelon => chrono_tz::America::Miquelon,
            Territory::WallisEtFutuna => chrono_tz::Pacific::Wallis,
        }
    }

    /// The territory's own public holidays of `year` (abolition of slavery, local law...).
    pub fn own_holidays(self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let fixed = |m, d| NaiveDate::from_ymd_opt(year, m, d).expect("fixed holiday");
        let good_friday = easter(year) - Duration::days(2);
        let abolition = "Abolition de l'esclavage";
        match self {
            // Saint-Pierre-et-Miquelon and Wallis-et-Futuna: no holiday of their own is established
            // from the code or its seeds (README, « Engagements ») rather than invented.
            Territory::Metropole | Territory::SaintPierreEtMiquelon | Territory::WallisEtFutuna => vec![],
            Territory::AlsaceMoselle => vec![(good_friday, "Vendredi saint"), (fixed(12, 26), "Saint-Étienne")],
            Territory::Guadeloupe => vec![(fixed(5, 27), abolition)],
            Territory::Martinique => vec![(fixed(5, 22), abolition)],
            Territory::Guyane => vec![(fixed(6, 10), abolition)],
            Territory::Reunion => vec![(fixed(12, 20), abolition)],
            Territory::Mayotte => vec![(fixed(4, 27), abolition)],
            Territory::SaintBarthelemy => vec![(fixed(10, 9), abolition)],
            Territory::SaintMartin => vec![(fixed(5, 28), abolition)],
            Territory::NouvelleCaledonie => vec![(fixed(9, 24), "Fête de la citoyenneté")],
            Territory::Polynesie => vec![
                (fixed(3, 5), "Arrivée de l'Évangile"),
                (good_friday, "Vendredi saint"),
                (fixed(6, 29), "Fête de l'autonomie"),
            ],
        }
    }

    /// Every public holiday of `year` in the territory, by date.
    pub fn holidays(self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let mut all = french_public_holidays(year);
        all.extend(self.own_holidays(year));
        all.sort();
        all
    }

    pub fn is_holiday(self, date: NaiveDate) -> bool {
        is_french_public_holiday(date) || self.own_holidays(date.year()).iter().any(|(d, _)| *d == date)
    }
}

// The public-holiday calendar lives in the kernel: deadlines outside the support desk
// (RGPD requests) use it too.
pub use ent_kernel::clock::{easter, french_public_holidays, is_french_public_holiday};

impl Calendar {
    /// Europe/Paris, Monday to Friday, 08:00–18:00, public holidays closed.
    pub fn standard() -> Calendar {
        Calendar {
            tz: chrono_tz::Europe::Paris,
            days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            open: NaiveTime::from_hms_opt(8, 0, 0).expect("08:00"),
            close: NaiveTime::from_hms_opt(18, 0, 0).expect("18:00"),
            public_holidays: true,
            territory: Territory::Metropole,
            closures: Vec::new(),
            follows_school: false,
            follows_academie_tz: false,
        }
    }

    /// This calendar for a school at `place`: its territory and its académie's time
    /// zone unless the calendar fixes them.
    pub fn at(&self, place: &Place) -> Calendar {
        let mut cal = self.clone();
        if self.follows_school {
            cal.territory = place.territory;
        }
        if self.follows_academie_tz {
            cal.tz = place.tz;
        }
        cal
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.days.contains(&date.weekday())
            && !(self.public_holidays && self.territory.is_holiday(date))
            && !self.closures.iter().any(|c| c.from <= date && date <= c.to)
    }

    /// The instant a wall time of `date` names: at the autumn change, the first of the
    /// two; a wall time the spring change skips (02:30 on the last Sunday of March in
    /// Paris) names the first instant that exists after it, the end of the gap (03:00).
    fn local(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let naive = date.and_time(time);
        if let Some(t) = self.tz.from_local_datetime(&naive).earliest() {
            return t.with_timezone(&Utc);
        }
        // Changes of time fall on whole minutes and skip a day at most.
        let minute = naive.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(naive);
        let after_gap = (1..=24 * 60)
            .map(|m| minute + Duration::minutes(m))
            .find_map(|wall| self.tz.from_local_datetime(&wall).earliest());
        match after_gap {
            Some(t) => t.with_timezone(&Utc),
            None => self.tz.from_utc_datetime(&naive).with_timezone(&Utc),
        }
    }

    /// The open window of `date` in UTC, if it is a working day.
    fn window(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.is_working_day(date).then(|| (self.local(date, self.open), self.local(date, self.close)))
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Business seconds between `from` and `to` (0 if `to <= from`).
    pub fn business_seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let mut total = 0;
        let mut date = self.local_date(from);
        let last = self.local_date(to);
        while date <= last {
            if let Some((open, close)) = self.window(date) {
                let start = open.max(from);
                let end = close.min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
            date = date.succ_opt().expect("date in range");
        }
        total
    }

    /// The instant at which `seconds` business seconds have elapsed from `from`
    /// (`from` itself for zero). `None` beyond the search horizon (a calendar with no open day).
    pub fn add_business(&self, from: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
        if seconds <= 0 {
            return Some(from);
        }
        let mut remaining = seconds;
        let mut date = self.local_date(from);
        for _ in 0..MAX_DAYS {
            if let Some((open, close)) = self.window(date) {
                let start = open.max(from);
                if close > start {
                    let available = (close - start).num_seconds();
                    if remaining <= available {
                        return Some(start + Duration::seconds(remaining));
                    }
                    remaining -= available;
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// `at` if the calendar is open then, else its next opening.
    pub fn next_open(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut date = self.local_date(at);
        for _ in 0..MAX_DAYS {
            if let Some((open, close)) = self.window(date) {
                if at < close {
                    return open.max(at);
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris(s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        chrono_tz::Europe::Paris.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn easter_and_its_movable_holidays_are_computed() {
        assert_eq!(easter(2024), date("2024-03-31"));
        assert_eq!(easter(2026), date("2026-04-05"));
        assert_eq!(easter(2027), date("2027-03-28"));
        assert_eq!(easter(2038), date("2038-04-25"));
        let h2026: Vec<NaiveDate> = french_public_holidays(2026).into_iter().map(|(d, _)| d).collect();
        assert!(h2026.contains(&date("2026-04-06")), "Easter Monday");
        assert!(h2026.contains(&date("2026-05-14")), "Ascension");
        assert!(h2026.contains(&date("2026-05-25")), "Whit Monday");
        assert_eq!(h2026.len(), 11);
        assert!(is_french_public_holiday(date("2027-05-17")), "Whit Monday 2027");
        assert!(!is_french_public_holiday(date("2027-05-18")));
    }

    #[test]
    fn weekends_holidays_and_closures_are_not_counted() {
        let cal = Calendar::standard();
        // Friday 2027-05-14 17:00 → Tuesday 2027-05-18 09:00: 1 h Friday, weekend, Whit Monday, 1 h Tuesday.
        assert_eq!(cal.business_seconds(paris("2027-05-14 17:00"), paris("2027-05-18 09:00")), 2 * 3600);
        assert_eq!(cal.add_business(paris("2027-05-14 17:00"), 2 * 3600), Some(paris("2027-05-18 09:00")));
        let mut closed = cal.clone();
        closed.closures.push(Closure { from: date("2027-05-18"), to: date("2027-05-18") });
        assert_eq!(closed.add_business(paris("2027-05-14 17:00"), 2 * 3600), Some(paris("2027-05-19 09:00")));
        assert_eq!(cal.business_seconds(paris("2027-05-15 10:00"), paris("2027-05-16 10:00")), 0);
    }

    #[test]
    fn due_dates_fall_inside_opening_hours_across_dst() {
        let cal = Calendar::standard();
        // Night start: counting begins at the next opening.
        assert_eq!(cal.add_business(paris("2026-10-23 22:00"), 3600), Some(paris("2026-10-26 09:00")));
        // The DST change on Sunday 2026-10-25 does not shift Monday's hours.
        assert_eq!(cal.business_seconds(paris("2026-10-23 17:00"), paris("2026-10-26 09:00")), 2 * 3600);
        assert_eq!(cal.next_open(paris("2026-10-24 12:00")), paris("2026-10-26 08:00"));
        assert_eq!(cal.next_open(paris("2026-10-26 12:00")), paris("2026-10-26 12:00"));
        assert_eq!(cal.add_business(paris("2026-10-26 12:00"), 0), Some(paris("2026-10-26 12:00")));
    }

    #[test]
    fn a_day_opening_inside_the_spring_gap_opens_when_the_gap_ends() {
        // Sunday 28 March 2027 in Paris: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let at = |h, m| Utc.with_ymd_and_hms(2027, 3, 28, h, m, 0).unwrap();
        let every_day =
            vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
        for open in ["02:00", "02:30", "02:59"] {
            let cal = Calendar {
                days: every_day.clone(),
                open: NaiveTime::parse_from_str(open, "%H:%M").unwrap(),
                close: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
                public_holidays: false,
                ..Calendar::standard()
            };
            let day = date("2027-03-28");
            assert_eq!(cal.window(day), Some((at(1, 0), at(8, 0))), "opens at {open}: from 03:00 to 10:00 CEST");
            // The day is kept: seven business hours, the next opening at 03:00 CEST.
            assert_eq!(cal.business_seconds(paris("2027-03-27 23:00"), paris("2027-03-28 12:00")), 7 * 3600);
            assert_eq!(cal.next_open(paris("2027-03-28 01:30")), at(1, 0));
            assert_eq!(cal.add_business(paris("2027-03-28 00:00"), 60), Some(at(1, 1)));
        }
        // A wall time with seconds in the gap still opens at the gap's end, not later.
        let cal = Calendar { open: NaiveTime::from_hms_opt(2, 30, 30).unwrap(), ..Calendar::standard() };
        assert_eq!(cal.local(date("2027-03-28"), cal.open), at(1, 0));
        // Outside the gap nothing moves: the autumn change keeps the first 02:30.
        let autumn = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(cal.local(date("2026-10-25"), autumn), Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
    }

    #[test]
    fn a_calendar_without_open_days_has_no_due_date() {
        let cal = Calendar { days: vec![], ..Calendar::standard() };
        assert_eq!(cal.add_business(paris("2026-10-26 12:00"), 60), None);
    }

    #[test]
    fn saint_pierre_et_miquelon_and_wallis_et_futuna_run_on_their_own_hours() {
        let follows = Calendar { follows_school: true, follows_academie_tz: true, ..Calendar::standard() };
        let utc = |d, h| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
        // A school of Saint-Pierre-et-Miquelon, attached to a metropolitan académie: its territory
        // and its time zone come from its département, not from the académie.
        let spm = Place::new(Some("975"), Some("70"), false);
        assert_eq!((spm.territory, spm.tz), (Territory::SaintPierreEtMiquelon, chrono_tz::America::Miquelon));
        let cal = follows.at(&spm);
        // Monday 2 November 2026, 17:00 in Miquelon (20:00 UTC, 21:00 in Paris): one hour left on
        // Monday, the second from 08:00 on Tuesday in Miquelon (11:00 UTC), so due at 12:00 UTC;
        // on Paris hours it would have been due at 09:00 UTC.
        assert_eq!(cal.add_business(utc(2, 20), 2 * 3600), Some(utc(3, 12)));
        assert_eq!(follows.at(&Place::default()).add_business(utc(2, 20), 2 * 3600), Some(utc(3, 9)));
        // Wallis-et-Futuna (UTC+12): Monday 08:00 there is Sunday 20:00 UTC; two hours later it is due.
        let wf = Place::new(Some("986"), None, false);
        assert_eq!((wf.territory, wf.tz), (Territory::WallisEtFutuna, chrono_tz::Pacific::Wallis));
        assert_eq!(follows.at(&wf).add_business(utc(1, 20), 2 * 3600), Some(utc(1, 22)));
        // Their names are policy names, and they keep the national holidays only (README).
        for t in [Territory::SaintPierreEtMiquelon, Territory::WallisEtFutuna] {
            assert_eq!(Territory::parse(t.as_str()), Some(t));
            let mut national = french_public_holidays(2027);
            national.sort();
            assert_eq!(t.holidays(2027), national);
        }
    }

    #[test]
    fn alsace_moselle_closes_on_good_friday_and_26_december_and_overseas_on_their_own_days() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let strasbourg = Calendar { territory: Territory::of_departement("67"), ..Calendar::standard() };
        assert_eq!(strasbourg.territory, Territory::AlsaceMoselle);
        // 2027: Good Friday is 26 March. A 2-hour task started on Maundy Thursday at 17:00
        // runs one hour on Thursday, then waits for Tuesday (Good Friday, week-end, Easter Monday).
        let thursday = Territory::Metropole.timezone().with_ymd_and_hms(2027, 3, 25, 17, 0, 0).unwrap().to_utc();
        let due = strasbourg.add_business(thursday, 2 * 3600).unwrap();
        assert_eq!(due.with_timezone(&chrono_tz::Europe::Paris).date_naive(), d(2027, 3, 30));
        assert_eq!(Calendar::standard().add_business(thursday, 2 * 3600).unwrap().date_naive(), d(2027, 3, 26));
        assert!(!strasbourg.is_working_day(d(2031, 12, 26)) && Calendar::standard().is_working_day(d(2031, 12, 26)));
        // Any year, each territory its own day, in its own time zone.
        assert!(Territory::Reunion.is_holiday(d(2040, 12, 20)) && !Territory::Metropole.is_holiday(d(2040, 12, 20)));
        assert!(Territory::Martinique.is_holiday(d(2035, 5, 22)) && Territory::Guadeloupe.is_holiday(d(2035, 5, 27)));
        assert!(Territory::Guyane.is_holiday(d(2029, 6, 10)) && Territory::Mayotte.is_holiday(d(2029, 4, 27)));
        assert!(Territory::NouvelleCaledonie.is_holiday(d(2028, 9, 24)));
        assert!(Territory::Polynesie.is_holiday(d(2028, 4, 14)), "Good Friday 2028");
        assert_eq!(Territory::of_departement("974").timezone(), chrono_tz::Indian::Reunion);
        assert_eq!(Territory::AlsaceMoselle.holidays(2026).len(), 13);
        for t in Territory::ALL {
            assert_eq!(Territory::parse(t.as_str()), Some(t));
        }
    }
}
