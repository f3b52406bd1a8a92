//! Time comes from an injectable clock so that tests never sleep.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
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
        Ok(t) => {
            let paris = t.with_timezone(&chrono_tz::Europe::Paris);
            format!("{} à {}", french_date(&paris.format("%Y-%m-%d").to_string()), paris.format("%H h %M"))
        }
        Err(_) => french_date(stored),
    }
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
