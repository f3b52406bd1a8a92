//! Time comes from an injectable clock so that tests never sleep.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc, Weekday};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set and move by hand.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// The clock of a pass that started at `start` (a job's `now`): it moves on as `clock` does,
/// so a long pass reads the time each step happens (a fixed clock keeps it at `start`).
pub struct PassClock<'a> {
    start: DateTime<Utc>,
    origin: DateTime<Utc>,
    clock: &'a dyn Clock,
}

impl<'a> PassClock<'a> {
    pub fn new(start: DateTime<Utc>, clock: &'a dyn Clock) -> Self {
        PassClock { start, origin: clock.now(), clock }
    }
}

impl Clock for PassClock<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.start + (self.clock.now() - self.origin)
    }
}

/// Today in France, where dates of conventions, requests and deadlines are meant.
/// A periodic timer whose tick, after a round that outlasted `period`, comes a full period
/// later, never as a burst of the ticks missed (tokio's default): a slow pass is not followed
/// by back-to-back passes landing on a database or a cluster that just recovered.
pub fn ticks_every(period: std::time::Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// The instant a wall-clock time in Paris names: at the autumn change of time, the first of
/// the two; in the spring gap, the same time an hour later (what the clocks then show).
pub fn paris_instant(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let at = |t: NaiveDateTime| t.and_local_timezone(chrono_tz::Europe::Paris).earliest();
    at(local).or_else(|| at(local + Duration::hours(1))).map(|t| t.with_timezone(&Utc))
}

pub fn today_in_france(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&chrono_tz::Europe::Paris).date_naive()
}

/// The last day of a term of `months` from `start` (a convention, a contract), reckoned from
/// date to date: the day before the same day `months` later or, when that month has no such
/// day (from 29 February, or a 31st), its last day. The one rule for every term.
pub fn term_end(start: NaiveDate, months: u32) -> Option<NaiveDate> {
    let same_day = start.checked_add_months(chrono::Months::new(months))?;
    if same_day.day() < start.day() {
        Some(same_day)
    } else {
        same_day.pred_opt()
    }
}

/// Easter Sunday of `year` (Gregorian, anonymous algorithm).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a valid date")
}

/// The eleven French public holidays of `year` (metropolitan law), with their names.
pub fn french_public_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let fixed = |m, d| NaiveDate::from_ymd_opt(year, m, d).expect("fixed holiday");
    let easter = easter(year);
    vec![
        (fixed(1, 1), "Jour de l'an"),
        (easter + Duration::days(1), "Lundi de Pâques"),
        (fixed(5, 1), "Fête du Travail"),
        (fixed(5, 8), "Victoire 1945"),
        (easter + Duration::days(39), "Ascension"),
        (easter + Duration::days(50), "Lundi de Pentecôte"),
        (fixed(7, 14), "Fête nationale"),
        (fixed(8, 15), "Assomption"),
        (fixed(11, 1), "Toussaint"),
        (fixed(11, 11), "Armistice 1918"),
        (fixed(12, 25), "Noël"),
    ]
}

pub fn is_french_public_holiday(date: NaiveDate) -> bool {
    french_public_holidays(date.year()).iter().any(|(d, _)| *d == date)
}

/// `date`, or when it falls on a Saturday, a Sunday or a French public holiday, the next
/// working day: where a period expressed in days, weeks, months or years ends (Regulation
/// (EEC, Euratom) No 1182/71, article 3(4)).
pub fn next_working_day(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) || is_french_public_holiday(day) {
        day += Duration::days(1);
    }
    day
}

/// `1er septembre 2026`.
pub fn french_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(d) => {
            let day = if d.day() == 1 { "1er".to_string() } else { d.day().to_string() };
            format!("{day} {} {}", MONTHS[d.month0() as usize], d.year())
        }
        Err(_) => date.to_string(),
    }
}

/// A stored timestamp (RFC 3339, whatever its offset) at its hour in Paris, as a French reader
/// writes it (`23 octobre 2026 à 23 h 30`); a date as [`french_date`]; anything else as it is.
pub fn french_moment(stored: &str) -> String {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => french_moment_in(t.with_timezone(&Utc), chrono_tz::Europe::Paris),
        Err(_) => french_date(stored),
    }
}

/// An instant at its hour in `tz`, as [`french_moment`] writes it in Paris (`7 décembre 2026
/// à 08 h 30`): the one way the platform writes a day and an hour, whatever the time zone (an
/// overseas school's support calendar, say).
pub fn french_moment_in(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&tz);
    format!("{} à {}", french_date(&local.format("%Y-%m-%d").to_string()), local.format("%H h %M"))
}

/// A stored date (`YYYY-MM-DD`) or timestamp (RFC 3339) as a French reader writes the day it
/// falls on in Paris (`1er septembre 2026`); anything else as it is.
pub fn french_day(stored: &str) -> String {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => french_date(&today_in_france(t.with_timezone(&Utc)).format("%Y-%m-%d").to_string()),
        Err(_) => french_date(stored),
    }
}

#[cfg(test)]
mod moment_tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_term_ends_the_day_before_the_same_day_or_on_the_last_day_of_a_shorter_month() {
        assert_eq!(term_end(day("2026-09-01"), 36), Some(day("2029-08-31")));
        assert_eq!(term_end(day("2027-03-01"), 12), Some(day("2028-02-29")), "across a leap day");
        assert_eq!(term_end(day("2028-02-29"), 36), Some(day("2031-02-28")), "from a leap day");
        assert_eq!(term_end(day("2026-01-31"), 1), Some(day("2026-02-28")));
        assert_eq!(term_end(day("2026-12-31"), 12), Some(day("2027-12-30")), "across the new year");
        // Contracts notified at a month's end run to the last day of the shorter month.
        assert_eq!(term_end(day("2026-08-31"), 6), Some(day("2027-02-28")));
        assert_eq!(term_end(day("2026-05-31"), 30), Some(day("2028-11-30")));
        assert_eq!(term_end(day("2026-09-15"), 48), Some(day("2030-09-14")));
    }

    #[test]
    fn moments_read_at_their_hour_in_paris_whatever_the_offset_typed() {
        // Summer time, then winter time after the last Sunday of October.
        assert_eq!(french_moment("2026-10-23T21:30:00Z"), "23 octobre 2026 à 23 h 30");
        assert_eq!(french_moment("2026-10-23T23:30:00+02:00"), "23 octobre 2026 à 23 h 30");
        assert_eq!(french_moment("2026-10-26T21:30:00.000000Z"), "26 octobre 2026 à 22 h 30");
        assert_eq!(french_moment("2026-09-01T08:05:00Z"), "1er septembre 2026 à 10 h 05");
        assert_eq!(french_moment("2026-11-30"), "30 novembre 2026");
        assert_eq!(french_moment("hier"), "hier");
        // 00:30 in Paris on 1 September.
        assert_eq!(french_day("2026-08-31T22:30:00.000000Z"), "1er septembre 2026");
        assert_eq!(french_day("2026-01-31"), "31 janvier 2026");
    }
}
