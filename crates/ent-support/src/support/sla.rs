//! SLA state derived from a ticket's event log, never from running counters:
//! replaying the events gives, per level, the business time the level held the
//! ticket (its clock runs only while the ticket is at that level and neither
//! waiting on the requester nor resolved), when it first responded and resolved,
//! and its due dates under the current policy. A policy or priority change, a
//! reassignment or a pause mid-life therefore keeps every second already counted.
//!
//! A priority change is piecewise: from the change on, the level's budget is the new
//! priority's target less the time already counted (an upgrade whose target is already
//! spent is due at the change, never before it), and a due date passed under the old
//! priority stays passed (a downgrade never undoes a breach).

use super::calendar::{Calendar, Place};
use super::policy::Policies;
use super::{Level, Priority, Status};
use chrono::{DateTime, Utc};
use ent_kernel::skip_serializing_none;
use ent_kernel::text_enum;
use schemars::JsonSchema;
use serde::Serialize;

/// What the SLA needs to know of an event. Only what the requester sees answers them: a
/// public comment, or a status change carrying a public message; a silent status change,
/// an escalation or a return (seen by the support levels only) is no first response.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Created,
    /// A status change (also a requester's reply resuming the ticket).
    Status(Status),
    Escalated(Level),
    Returned(Level),
    /// A priority change (requalification), from the previous priority to the new one.
    Priority {
        from: Priority,
        to: Priority,
    },
    /// A comment; only a public one by the holding level is a response.
    Comment {
        public: bool,
    },
    /// Anything else (assignment, field change): no effect on the clocks.
    Other,
}

#[derive(Debug, Clone)]
pub struct SlaEvent {
    pub at: DateTime<Utc>,
    pub step: Step,
    /// The support level the actor acted as (none for the requester or the system).
    pub actor_level: Option<Level>,
    /// The event carries a message the requester sees (a status change with its public
    /// message: the question asked, the solution given).
    pub public_message: bool,
}

/// One level's clock.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LevelClock {
    pub level: Level,
    /// Business seconds the level has held the ticket (up to now).
    pub held_seconds: i64,
    /// Held business seconds at its first response, once it responded.
    pub first_response_seconds: Option<i64>,
    /// Held business seconds when it resolved the ticket or returned its answer.
    pub resolution_seconds: Option<i64>,
    /// When the first response is due (absent once given, or while the clock is stopped).
    #[schemars(with = "Option<String>")]
    pub first_response_due: Option<DateTime<Utc>>,
    #[schemars(with = "Option<String>")]
    pub resolution_due: Option<DateTime<Utc>>,
    pub first_response_target_seconds: i64,
    pub resolution_target_seconds: i64,
    #[serde(skip)]
    intervals: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SlaState {
    pub level: Level,
    pub status: Status,
    /// True while the ticket waits on the requester (clocks stopped).
    pub paused: bool,
    /// Only the levels the ticket has reached.
    pub levels: Vec<LevelClock>,
    /// When the requester was first answered, whichever level answered (a public comment, a
    /// status change carrying a public message), in business seconds of N1's calendar from
    /// the ticket's creation: the ticket's first response, as the requester lived it.
    pub answered_seconds: Option<i64>,
    /// When the requester's first response is due, until they hear from the support (a public
    /// comment, a status change carrying a public message): N1's target, who answers them,
    /// counted on N1's calendar from the creation while the ticket runs, whichever level holds
    /// it (absent while paused). Each level's own first response, to the requester or to the
    /// level below, is its clock's.
    #[schemars(with = "Option<String>")]
    pub answer_due: Option<DateTime<Utc>>,
}

impl LevelClock {
    /// The level's next step and when it is due: its first response while it has not given it,
    /// else its resolution; none while its clock is stopped (paused, resolved).
    pub fn next_step(&self) -> Option<(BreachKind, DateTime<Utc>)> {
        let first = self.first_response_due.map(|due| (BreachKind::FirstResponse, due));
        first.or_else(|| self.resolution_due.map(|due| (BreachKind::Resolution, due)))
    }
}

impl SlaState {
    pub fn clock(&self, level: Level) -> Option<&LevelClock> {
        self.levels.iter().find(|c| c.level == level)
    }

    /// The requester's first response as the sweep watches it ([`SlaState::answer_due`]): N1's
    /// first response, the N1 answering them whichever level holds the ticket; none once the N1
    /// responded under the rule of its time (a step logged before `RESPONSE_RULE_SINCE`).
    pub fn requester_due(&self) -> Option<DateTime<Utc>> {
        let n1_responded = self.clock(Level::N1).is_some_and(|c| c.first_response_seconds.is_some());
        self.answer_due.filter(|_| !n1_responded)
    }

    /// The due dates the sweep watches, as (level, kind, due): N1's first response is the
    /// requester's ([`SlaState::requester_due`]; N1's own clock runs over fewer stretches, so its
    /// due date is never earlier: one lateness, one breach), N2's and N3's their own, to the level
    /// that handed them the ticket, and each level's resolution.
    fn due_dates(&self) -> Vec<(Level, BreachKind, DateTime<Utc>)> {
        let requester = self.requester_due().map(|due| (Level::N1, BreachKind::FirstResponse, due));
        let levels = self.levels.iter().flat_map(|c| {
            let first = c.first_response_due.filter(|_| c.level != Level::N1);
            [
                first.map(|due| (c.level, BreachKind::FirstResponse, due)),
                c.resolution_due.map(|due| (c.level, BreachKind::Resolution, due)),
            ]
        });
        requester.into_iter().chain(levels.flatten()).collect()
    }

    /// The earliest due date not yet passed-and-flagged: what the sweep waits for.
    /// `flagged(level, kind)` says whether that breach is already recorded.
    pub fn next_due(&self, flagged: impl Fn(Level, BreachKind) -> bool) -> Option<DateTime<Utc>> {
        self.due_dates().into_iter().filter(|(level, kind, _)| !flagged(*level, *kind)).map(|(_, _, due)| due).min()
    }

    /// The breaches due at `now`: (level, kind, due).
    pub fn overdue(&self, now: DateTime<Utc>) -> Vec<(Level, BreachKind, DateTime<Utc>)> {
        self.due_dates().into_iter().filter(|(_, _, due)| *due <= now).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreachKind {
    FirstResponse,
    Resolution,
}

text_enum!(pub BreachKind from [BreachKind::FirstResponse, BreachKind::Resolution]);

impl BreachKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreachKind::FirstResponse => "first_response",
            BreachKind::Resolution => "resolution",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BreachKind::FirstResponse => "première réponse",
            BreachKind::Resolution => "résolution",
        }
    }

    /// The label of this breach at `level`: N1's first response is the requester's.
    pub fn label_at(self, level: Level) -> &'static str {
        match (self, level) {
            (BreachKind::FirstResponse, Level::N1) => "première réponse au demandeur",
            _ => self.label(),
        }
    }
}

fn running(status: Status) -> bool {
    matches!(status, Status::New | Status::InProgress)
}

/// The day the first-response rule below took effect: before it, any status change, escalation
/// or return by the holding level was its first response, and the steps logged then keep that
/// rule (their tickets were measured so).
const RESPONSE_RULE_SINCE: DateTime<Utc> = DateTime::from_timestamp(1_796_342_400, 0).expect("2026-12-04");

/// Whether `event`, by the holding `level`, is that level's first response: for N1, what the
/// requester sees (a public comment, a status change carrying a public message); for N2 and
/// N3, who answer the level below, also a comment to the support or a return down.
fn responds(level: Level, event: &SlaEvent) -> bool {
    if event.at < RESPONSE_RULE_SINCE {
        return matches!(
            event.step,
            Step::Comment { public: true } | Step::Status(_) | Step::Escalated(_) | Step::Returned(_)
        );
    }
    match &event.step {
        Step::Comment { public } => *public || level != Level::N1,
        Step::Status(_) => event.public_message,
        Step::Returned(_) => level != Level::N1,
        Step::Escalated(_) | Step::Created | Step::Priority { .. } | Step::Other => false,
    }
}

/// Replays `events` (in order) under `policy` up to `now`; `priority` is the ticket's
/// current one (it was its priority from the start when the log has no priority change).
pub fn derive(
    policies: &Policies,
    policy: &str,
    place: &Place,
    priority: Priority,
    events: &[SlaEvent],
    now: DateTime<Utc>,
) -> SlaState {
    let mut level = Level::N1;
    let mut status = Status::New;
    let mut clocks: Vec<LevelClock> = Vec::new();
    let mut open_since: Option<DateTime<Utc>> = None;
    let mut first: [Option<DateTime<Utc>>; 3] = [None; 3];
    let mut resolved: [Option<DateTime<Utc>>; 3] = [None; 3];
    // The priority in force from creation, then each change: (since, priority).
    let initial = events
        .iter()
        .find_map(|e| match e.step {
            Step::Priority { from, .. } => Some(from),
            _ => None,
        })
        .unwrap_or(priority);
    let mut changes: Vec<(DateTime<Utc>, Priority)> = Vec::new();
    let created_at = events.iter().find(|e| e.step == Step::Created).map(|e| e.at);
    let answered_at = events
        .iter()
        .find(|e| {
            e.actor_level.is_some()
                && match e.step {
                    Step::Comment { public } => public,
                    Step::Status(_) => e.public_message,
                    _ => false,
                }
        })
        .map(|e| e.at);

    fn clock_mut(clocks: &mut Vec<LevelClock>, policies: &Policies, policy: &str, p: Priority, l: Level) -> usize {
        if let Some(i) = clocks.iter().position(|c| c.level == l) {
            return i;
        }
        let t = policies.targets(policy, l, p);
        clocks.push(LevelClock {
            level: l,
            held_seconds: 0,
            first_response_seconds: None,
            resolution_seconds: None,
            first_response_due: None,
            resolution_due: None,
            first_response_target_seconds: t.first_response,
            resolution_target_seconds: t.resolution,
            intervals: Vec::new(),
        });
        clocks.len() - 1
    }

    // Every stretch the ticket ran, whichever level held it.
    let mut running_intervals: Vec<Interval> = Vec::new();
    for event in events {
        // Close the running interval of the holding level at this event.
        if let Some(since) = open_since.take() {
            let i = clock_mut(&mut clocks, policies, policy, priority, level);
            clocks[i].intervals.push((since, Some(event.at)));
            running_intervals.push((since, Some(event.at)));
        }
        if event.actor_level == Some(level) && first[level.index()].is_none() && responds(level, event) {
            first[level.index()] = Some(event.at);
        }
        match &event.step {
            Step::Created => {
                level = Level::N1;
                status = Status::New;
                clock_mut(&mut clocks, policies, policy, priority, level);
            }
            Step::Status(to) => {
                if *to == Status::Resolved {
                    resolved[level.index()] = Some(event.at);
                } else if matches!(status, Status::Resolved | Status::Closed) && running(*to) {
                    resolved[level.index()] = None;
                }
                status = *to;
            }
            Step::Escalated(to) => {
                level = *to;
                status = Status::New;
                // Back at a level that had answered: its resolution clock runs again.
                resolved[level.index()] = None;
                clock_mut(&mut clocks, policies, policy, priority, level);
            }
            Step::Returned(to) => {
                resolved[level.index()] = Some(event.at);
                level = *to;
                status = Status::InProgress;
                resolved[level.index()] = None;
            }
            Step::Priority { to, .. } => changes.push((event.at, *to)),
            Step::Comment { .. } | Step::Other => {}
        }
        if running(status) {
            open_since = Some(event.at);
        }
    }
    if let Some(since) = open_since {
        let i = clock_mut(&mut clocks, policies, policy, priority, level);
        clocks[i].intervals.push((since, None));
        running_intervals.push((since, None));
    }

    // The priority in force on each stretch of time: (since, priority), the first since creation.
    let segments: Vec<(Option<DateTime<Utc>>, Priority)> =
        std::iter::once((None, initial)).chain(changes.iter().map(|(at, p)| (Some(*at), *p))).collect();
    for clock in &mut clocks {
        let cal = policies.calendar_at(policy, clock.level, place);
        let intervals = &clock.intervals;
        let held_at = |t: DateTime<Utc>| -> i64 {
            intervals.iter().map(|(s, e)| cal.business_seconds(*s, e.unwrap_or(now).min(t))).sum()
        };
        let (held, first_seconds, resolution_seconds) =
            (held_at(now), first[clock.level.index()].map(held_at), resolved[clock.level.index()].map(held_at));
        clock.held_seconds = held;
        clock.first_response_seconds = first_seconds;
        clock.resolution_seconds = resolution_seconds;
        let targets = |p: Priority| policies.targets(policy, clock.level, p);
        let due = |target_of: &dyn Fn(Priority) -> i64| due_date(&cal, &clock.intervals, &segments, now, target_of);
        if clock.first_response_seconds.is_none() {
            clock.first_response_due = due(&|p| targets(p).first_response);
        }
        if clock.resolution_seconds.is_none() {
            clock.resolution_due = due(&|p| targets(p).resolution);
        }
    }
    // The requester's first response: N1's target (the N1 answers them), counted on N1's
    // calendar from the creation while the ticket runs, whichever level holds it, until they
    // hear from the support.
    let answer_due = answered_at.is_none().then(|| {
        let cal = policies.calendar_at(policy, Level::N1, place);
        let target = |p: Priority| policies.targets(policy, Level::N1, p).first_response;
        due_date(&cal, &running_intervals, &segments, now, &target)
    });
    clocks.sort_by_key(|c| c.level);
    let answered_seconds = match (created_at, answered_at) {
        (Some(created), Some(answered)) => {
            Some(policies.calendar_at(policy, Level::N1, place).business_seconds(created, answered))
        }
        _ => None,
    };
    SlaState {
        level,
        status,
        paused: status == Status::WaitingRequester,
        levels: clocks,
        answered_seconds,
        answer_due: answer_due.flatten(),
    }
}

/// A stretch of time a clock ran: from, and until (open: still running).
type Interval = (DateTime<Utc>, Option<DateTime<Utc>>);

/// The first instant the business time counted over `intervals` (on `cal`) reaches the target
/// (`target_of`) of the priority in force then (`segments`: since when, which priority; the first
/// since creation). `None` while the clock does not run (paused, or another level holds it).
fn due_date(
    cal: &Calendar,
    intervals: &[Interval],
    segments: &[(Option<DateTime<Utc>>, Priority)],
    now: DateTime<Utc>,
    target_of: &dyn Fn(Priority) -> i64,
) -> Option<DateTime<Utc>> {
    let held_at = |t: DateTime<Utc>| -> i64 {
        intervals.iter().map(|(s, e)| cal.business_seconds(*s, e.unwrap_or(now).min(t))).sum()
    };
    for (k, &(since, p)) in segments.iter().enumerate() {
        let until = segments.get(k + 1).and_then(|s| s.0);
        let target = target_of(p);
        let counted = since.map_or(0, held_at);
        if let Some(since) = since.filter(|_| counted >= target) {
            // Already spent under the new priority (a due date passed under the old one
            // an earlier stretch returned): due when this level's clock next runs from
            // the change, never while another level holds the ticket or it is paused.
            let next_run = intervals.iter().find(|(_, e)| e.is_none_or(|e| e > since)).map(|(s, _)| (*s).max(since));
            match next_run {
                Some(at) if until.is_none_or(|u| at < u) => return Some(at),
                // Not held again before the next change: that stretch decides.
                _ => continue,
            }
        }
        let mut remaining = target - counted;
        for (start, end) in intervals {
            let start = since.map_or(*start, |s| (*start).max(s));
            let end = match (end, until) {
                (Some(e), Some(u)) => Some((*e).min(u)),
                (e, u) => e.or(u),
            };
            if end.is_some_and(|e| e < start) {
                continue;
            }
            let candidate = cal.add_business(start, remaining)?;
            match end {
                Some(end) if candidate > end => remaining -= cal.business_seconds(start, end),
                _ => return Some(candidate),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn paris(s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        chrono_tz::Europe::Paris.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
    }

    fn ev(at: &str, step: Step, by: Option<Level>) -> SlaEvent {
        SlaEvent { at: paris(at), step, actor_level: by, public_message: false }
    }

    fn p() -> Policies {
        Policies::shipped()
    }

    #[test]
    fn a_new_ticket_is_due_after_its_targets_in_business_time() {
        let events = [ev("2027-05-14 16:00", Step::Created, None)];
        let s = derive(&p(), "standard", &Place::default(), Priority::P3, &events, paris("2027-05-14 16:30"));
        let n1 = s.clock(Level::N1).unwrap();
        // P3 at N1: 4 h first response → Friday 16:00 + 2 h, then Tuesday 08:00 + 2 h (weekend, Whit Monday).
        assert_eq!(n1.first_response_due, Some(paris("2027-05-18 10:00")));
        assert_eq!(n1.held_seconds, 1800);
    }

    #[test]
    fn a_pause_shifts_the_due_date_by_the_paused_business_time() {
        let base = vec![
            ev("2027-05-12 09:00", Step::Created, None),
            ev("2027-05-12 09:10", Step::Comment { public: true }, Some(Level::N1)),
        ];
        let before = derive(&p(), "standard", &Place::default(), Priority::P3, &base, paris("2027-05-12 10:00"));
        let due_before = before.clock(Level::N1).unwrap().resolution_due.unwrap();
        let mut paused = base.clone();
        paused.push(ev("2027-05-12 10:00", Step::Status(Status::WaitingRequester), Some(Level::N1)));
        paused.push(ev("2027-05-12 15:00", Step::Status(Status::InProgress), None));
        let during = derive(&p(), "standard", &Place::default(), Priority::P3, &paused[..3], paris("2027-05-12 12:00"));
        assert!(during.paused);
        assert_eq!(during.clock(Level::N1).unwrap().resolution_due, None);
        let after = derive(&p(), "standard", &Place::default(), Priority::P3, &paused, paris("2027-05-12 16:00"));
        let due_after = after.clock(Level::N1).unwrap().resolution_due.unwrap();
        let cal = p().calendar("standard", Level::N1).clone();
        assert_eq!(cal.business_seconds(due_before, due_after), 5 * 3600);
        assert_eq!(after.clock(Level::N1).unwrap().held_seconds, 2 * 3600);
    }

    #[test]
    fn each_level_keeps_its_own_clock_and_calendar() {
        let events = vec![
            ev("2027-05-10 09:00", Step::Created, None),
            ev("2027-05-10 10:00", Step::Escalated(Level::N2), Some(Level::N1)),
            ev("2027-05-10 11:00", Step::Escalated(Level::N3), Some(Level::N2)),
            ev("2027-05-11 11:00", Step::Returned(Level::N2), Some(Level::N3)),
        ];
        let s = derive(&p(), "standard", &Place::default(), Priority::P2, &events, paris("2027-05-11 12:00"));
        assert_eq!(s.level, Level::N2);
        assert_eq!(s.clock(Level::N1).unwrap().held_seconds, 3600);
        assert_eq!(s.clock(Level::N1).unwrap().first_response_seconds, None, "an escalation answers no one");
        assert_eq!(s.clock(Level::N2).unwrap().held_seconds, 2 * 3600);
        // N3 opens at 09:00: Monday 11:00–18:00 then Tuesday 09:00–11:00.
        assert_eq!(s.clock(Level::N3).unwrap().held_seconds, 9 * 3600);
        assert_eq!(s.clock(Level::N3).unwrap().resolution_seconds, Some(9 * 3600));
        assert_eq!(s.clock(Level::N3).unwrap().resolution_due, None);
    }

    #[test]
    fn a_second_escalation_restarts_the_receiving_levels_resolution_clock() {
        let events = vec![
            ev("2027-06-01 09:00", Step::Created, None),
            ev("2027-06-01 10:00", Step::Escalated(Level::N2), Some(Level::N1)),
            ev("2027-06-01 11:00", Step::Escalated(Level::N3), Some(Level::N2)),
            ev("2027-06-01 15:00", Step::Returned(Level::N2), Some(Level::N3)),
            ev("2027-06-02 10:00", Step::Escalated(Level::N3), Some(Level::N2)),
        ];
        let now = paris("2027-06-30 12:00");
        let s = derive(&p(), "standard", &Place::default(), Priority::P2, &events, now);
        let n3 = s.clock(Level::N3).unwrap();
        assert_eq!(n3.resolution_seconds, None, "unresolved since it came back: {n3:?}");
        assert!(n3.resolution_due.is_some_and(|due| due < now), "{n3:?}");
        assert!(s.overdue(now).iter().any(|(level, _, _)| *level == Level::N3), "the sweep sees the N3 breach");
    }

    #[test]
    fn a_due_date_crossed_in_the_past_stays_where_it_was_crossed() {
        let events = vec![
            ev("2027-05-12 09:00", Step::Created, None),
            ev("2027-05-12 12:00", Step::Comment { public: false }, Some(Level::N1)),
        ];
        let s = derive(&p(), "standard", &Place::default(), Priority::P2, &events, paris("2027-05-12 13:00"));
        assert_eq!(s.clock(Level::N1).unwrap().first_response_due, Some(paris("2027-05-12 10:00")));
        assert_eq!(s.overdue(paris("2027-05-12 13:00")).len(), 1);
    }

    #[test]
    fn an_upgrade_counts_the_time_already_spent_from_the_change_never_before_it() {
        let base = vec![
            ev("2027-05-11 09:00", Step::Created, None),
            ev("2027-05-11 09:20", Step::Comment { public: true }, Some(Level::N1)),
        ];
        // P4 → P1 after 36 h 44 of N1 time: the 4 h of P1 are spent, due at the change.
        let mut late = base.clone();
        late.push(ev("2027-05-14 15:44", Step::Priority { from: Priority::P4, to: Priority::P1 }, Some(Level::N1)));
        let s = derive(&p(), "standard", &Place::default(), Priority::P1, &late, paris("2027-05-14 15:45"));
        assert_eq!(s.clock(Level::N1).unwrap().resolution_due, Some(paris("2027-05-14 15:44")));
        // P4 → P1 after 1 h: the remaining 3 h count from the change.
        let mut early = base;
        early.push(ev("2027-05-11 10:00", Step::Priority { from: Priority::P4, to: Priority::P1 }, Some(Level::N1)));
        let s = derive(&p(), "standard", &Place::default(), Priority::P1, &early, paris("2027-05-11 10:05"));
        assert_eq!(s.clock(Level::N1).unwrap().resolution_due, Some(paris("2027-05-11 13:00")));
    }

    #[test]
    fn a_downgrade_never_undoes_a_passed_due_date_but_extends_one_still_ahead() {
        let base = vec![
            ev("2027-05-10 09:00", Step::Created, None),
            ev("2027-05-10 09:10", Step::Comment { public: true }, Some(Level::N1)),
        ];
        let mut late = base.clone();
        late.push(ev("2027-05-11 09:44", Step::Priority { from: Priority::P1, to: Priority::P4 }, Some(Level::N1)));
        let now = paris("2027-05-11 09:45");
        let s = derive(&p(), "standard", &Place::default(), Priority::P4, &late, now);
        assert_eq!(s.clock(Level::N1).unwrap().resolution_due, Some(paris("2027-05-10 13:00")));
        assert_eq!(s.overdue(now).len(), 1, "still breached: {s:?}");
        // Downgraded after 1 h, before the P1 due date: 40 h of P4 from creation.
        let mut early = base;
        early.push(ev("2027-05-10 10:00", Step::Priority { from: Priority::P1, to: Priority::P4 }, Some(Level::N1)));
        let s = derive(&p(), "standard", &Place::default(), Priority::P4, &early, paris("2027-05-10 10:05"));
        assert_eq!(s.clock(Level::N1).unwrap().resolution_due, Some(paris("2027-05-14 09:00")));
    }

    #[test]
    fn only_what_the_requester_sees_is_a_first_response() {
        let created = ev("2027-05-12 09:00", Step::Created, None);
        let first = |events: &[SlaEvent]| {
            let s = derive(&p(), "standard", &Place::default(), Priority::P3, events, paris("2027-05-12 12:00"));
            s.clock(Level::N1).unwrap().first_response_seconds
        };
        let silent = ev("2027-05-12 09:30", Step::Status(Status::InProgress), Some(Level::N1));
        assert_eq!(first(&[created.clone(), silent.clone()]), None, "a silent status change");
        let internal = ev("2027-05-12 09:30", Step::Comment { public: false }, Some(Level::N1));
        assert_eq!(first(&[created.clone(), internal]), None, "an internal note");
        let escalated = ev("2027-05-12 09:30", Step::Escalated(Level::N2), Some(Level::N1));
        assert_eq!(first(&[created.clone(), escalated]), None, "an escalation");
        let asked = SlaEvent {
            public_message: true,
            ..ev("2027-05-12 10:00", Step::Status(Status::WaitingRequester), Some(Level::N1))
        };
        assert_eq!(first(&[created.clone(), silent, asked]), Some(3600), "the question asked");
        let comment = ev("2027-05-12 09:15", Step::Comment { public: true }, Some(Level::N1));
        assert_eq!(first(&[created, comment]), Some(900), "a public comment");
    }

    #[test]
    fn n2_and_n3_answer_the_level_below_and_steps_before_the_rule_keep_the_old_one() {
        let at_n2 = |answer: SlaEvent| {
            let events = vec![
                ev("2027-05-12 09:00", Step::Created, None),
                ev("2027-05-12 09:30", Step::Escalated(Level::N2), Some(Level::N1)),
                answer,
            ];
            let s = derive(&p(), "standard", &Place::default(), Priority::P3, &events, paris("2027-05-12 12:00"));
            s.clock(Level::N2).unwrap().first_response_seconds
        };
        let to_support = ev("2027-05-12 10:00", Step::Comment { public: false }, Some(Level::N2));
        assert_eq!(at_n2(to_support), Some(1800), "a comment to the support");
        let back = ev("2027-05-12 10:30", Step::Returned(Level::N1), Some(Level::N2));
        assert_eq!(at_n2(back), Some(3600), "a return down");
        // Logged before the rule: an escalation by N1 was its first response.
        let old = vec![
            ev("2026-11-30 09:00", Step::Created, None),
            ev("2026-11-30 09:20", Step::Escalated(Level::N2), Some(Level::N1)),
        ];
        let s = derive(&p(), "standard", &Place::default(), Priority::P3, &old, paris("2026-11-30 12:00"));
        assert_eq!(s.clock(Level::N1).unwrap().first_response_seconds, Some(1200));
    }

    #[test]
    fn the_ticket_is_answered_when_the_requester_first_hears_from_any_level() {
        let events = vec![
            ev("2027-05-12 09:00", Step::Created, None),
            ev("2027-05-12 10:00", Step::Escalated(Level::N2), Some(Level::N1)),
            SlaEvent {
                public_message: true,
                ..ev("2027-05-12 10:30", Step::Status(Status::InProgress), Some(Level::N2))
            },
            ev("2027-05-12 11:00", Step::Returned(Level::N1), Some(Level::N2)),
            ev("2027-05-12 16:00", Step::Comment { public: true }, Some(Level::N1)),
        ];
        let s = derive(&p(), "standard", &Place::default(), Priority::P3, &events, paris("2027-05-12 17:00"));
        assert_eq!(s.answered_seconds, Some(5400), "N2's message at 10:30, not N1's comment after the return");
        assert_eq!(s.clock(Level::N1).unwrap().first_response_seconds, Some(6 * 3600), "N1's own, on its time");
    }

    #[test]
    fn the_requesters_first_response_is_due_whichever_level_holds_the_ticket_until_they_hear() {
        let base = vec![
            ev("2027-05-12 09:00", Step::Created, None),
            ev("2027-05-12 09:30", Step::Escalated(Level::N2), Some(Level::N1)),
            // The N2's note to the N1 answers the N1 (its own clock), not the requester.
            ev("2027-05-12 10:00", Step::Comment { public: false }, Some(Level::N2)),
        ];
        let derive_at = |events: &[SlaEvent], now: &str| {
            derive(&p(), "standard", &Place::default(), Priority::P3, events, paris(now))
        };
        let s = derive_at(&base, "2027-05-12 10:05");
        // P3 at N1: 4 h from the creation, the escalation notwithstanding.
        assert_eq!(s.answer_due, Some(paris("2027-05-12 13:00")), "{s:?}");
        assert_eq!(s.clock(Level::N2).unwrap().first_response_seconds, Some(1800), "{s:?}");
        assert_eq!(s.clock(Level::N1).unwrap().first_response_due, None, "N1 does not hold it: {s:?}");
        // The N1 tells the requester: answered.
        let mut told = base.clone();
        told.push(ev("2027-05-12 11:00", Step::Comment { public: true }, Some(Level::N1)));
        assert_eq!(derive_at(&told, "2027-05-12 11:05").answer_due, None);
        // Back at N1 and paused in silence: no due date while the requester is waited on.
        let mut paused = base;
        paused.push(ev("2027-05-12 11:00", Step::Returned(Level::N1), Some(Level::N2)));
        paused.push(ev("2027-05-12 11:30", Step::Status(Status::WaitingRequester), Some(Level::N1)));
        assert_eq!(derive_at(&paused, "2027-05-12 11:35").answer_due, None);
        paused.push(ev("2027-05-12 14:30", Step::Status(Status::InProgress), None));
        // 2 h 30 counted before the pause, 1 h 30 left from 14:30.
        assert_eq!(derive_at(&paused, "2027-05-12 14:35").answer_due, Some(paris("2027-05-12 16:00")));
    }

    #[test]
    fn a_resolution_without_the_requesters_answer_counts_the_time_held_before_the_question() {
        let asked = SlaEvent {
            public_message: true,
            ..ev("2027-05-12 10:00", Step::Status(Status::WaitingRequester), Some(Level::N1))
        };
        // Fifteen days later, by the reminders job: no support level, a message the requester sees.
        let resolved =
            SlaEvent { public_message: true, ..ev("2027-05-27 10:00", Step::Status(Status::Resolved), None) };
        let events = vec![ev("2027-05-12 09:00", Step::Created, None), asked, resolved];
        let now = paris("2027-06-30 12:00");
        let s = derive(&p(), "standard", &Place::default(), Priority::P3, &events, now);
        let n1 = s.clock(Level::N1).unwrap();
        assert_eq!((n1.held_seconds, n1.resolution_seconds), (3600, Some(3600)), "the wait counts for nothing: {n1:?}");
        assert_eq!(n1.first_response_seconds, Some(3600), "the question was N1's response");
        assert_eq!(s.answered_seconds, Some(3600), "answered by the question, not by the job");
        assert_eq!((n1.resolution_due, n1.first_response_due), (None, None));
        assert!(s.overdue(now).is_empty(), "{s:?}");
    }

    #[test]
    fn a_ticket_closed_at_its_tenants_purge_counts_no_time_after_it() {
        // P3 at N1: first response due at 13:00, resolution the next day; purged (closed) at 12:00.
        let events = vec![
            ev("2027-05-12 09:00", Step::Created, None),
            SlaEvent { public_message: true, ..ev("2027-05-12 12:00", Step::Status(Status::Closed), None) },
        ];
        let now = paris("2027-06-30 12:00");
        let s = derive(&p(), "standard", &Place::default(), Priority::P3, &events, now);
        let n1 = s.clock(Level::N1).unwrap();
        assert_eq!(n1.held_seconds, 3 * 3600, "{n1:?}");
        assert_eq!((n1.first_response_due, n1.resolution_due), (None, None), "{n1:?}");
        assert!(s.overdue(now).is_empty() && s.answered_seconds.is_none(), "{s:?}");
    }

    #[test]
    fn an_upgrade_undone_before_the_level_holds_the_ticket_again_flags_nothing() {
        let events = vec![
            ev("2027-05-10 09:00", Step::Created, None),
            ev("2027-05-10 09:10", Step::Comment { public: true }, Some(Level::N1)),
            ev("2027-05-10 15:00", Step::Escalated(Level::N2), Some(Level::N1)),
            ev("2027-05-11 10:00", Step::Priority { from: Priority::P4, to: Priority::P1 }, Some(Level::N2)),
            ev("2027-05-11 10:30", Step::Priority { from: Priority::P1, to: Priority::P4 }, Some(Level::N2)),
            ev("2027-05-11 11:00", Step::Returned(Level::N1), Some(Level::N2)),
        ];
        let now = paris("2027-05-11 11:05");
        let s = derive(&p(), "standard", &Place::default(), Priority::P4, &events, now);
        let due = s.clock(Level::N1).unwrap().resolution_due.unwrap();
        assert!(due > now, "P4 in force again, 34 h left: {due}");
        assert!(s.overdue(now).is_empty(), "{s:?}");
    }

    #[test]
    fn an_upgrade_while_another_level_holds_the_ticket_flags_nothing_on_the_level_that_kept_its_targets() {
        let events = vec![
            ev("2027-05-10 09:00", Step::Created, None),
            ev("2027-05-10 09:10", Step::Comment { public: true }, Some(Level::N1)),
            // N1 holds 6 h under P4 (40 h to resolve), then hands over.
            ev("2027-05-10 15:00", Step::Escalated(Level::N2), Some(Level::N1)),
            ev("2027-05-11 10:00", Step::Priority { from: Priority::P4, to: Priority::P1 }, Some(Level::N2)),
        ];
        let now = paris("2027-05-11 10:05");
        let s = derive(&p(), "standard", &Place::default(), Priority::P1, &events, now);
        assert_eq!(s.clock(Level::N1).unwrap().resolution_due, None, "N1 does not hold it: {s:?}");
        assert!(s.overdue(now).iter().all(|(level, _, _)| *level != Level::N1), "{s:?}");
        // Sent back to N1, whose 4 h of P1 are spent: due as soon as it holds it again.
        let mut back = events.clone();
        back.push(ev("2027-05-11 11:00", Step::Returned(Level::N1), Some(Level::N2)));
        let s = derive(&p(), "standard", &Place::default(), Priority::P1, &back, paris("2027-05-11 11:05"));
        assert_eq!(s.clock(Level::N1).unwrap().resolution_due, Some(paris("2027-05-11 11:00")));
    }
}
