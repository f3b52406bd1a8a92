//! Territorial SLA calendars through the API: a ticket's clocks follow the
//! public holidays of its school's territory (Alsace-Moselle, overseas) and its
//! académie's time zone; an option of a policy pauses N1 clocks during the
//! school holidays of the school's zone and on the écoles' day off.

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::config::Config;
use entcp::kernel::roles::{OrgKind, Role};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

/// A collège in Strasbourg (Bas-Rhin, académie 15), one in Créteil (Val-de-Marne,
/// académie 24, zone C), an école in Créteil, an école in Nantes (académie 17, zone B) and
/// an école in Fort-de-France (Martinique, académie 31).
const ANNUAIRE: &str = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;\
Code_postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region\n\
0670001M;Collège Jean Sturm;Collège;Public;67000;67482;Strasbourg;067;15;44\n\
0940001R;Collège Victor Hugo;Collège;Public;94000;94028;Créteil;094;24;11\n\
0940002S;École Victor Hugo;Ecole;Public;94000;94028;Créteil;094;24;11\n\
0440002N;École Jules Verne;Ecole;Public;44000;44109;Nantes;044;17;52\n\
9720001U;École Schœlcher;Ecole;Public;97200;97209;Fort-de-France;972;31;02\n";

const TENANTS: [(&str, &str, &str); 5] = [
    ("college-strasbourg", "0670001M", "socle-2d"),
    ("college-creteil", "0940001R", "socle-2d"),
    ("ecole-creteil", "0940002S", "socle-1d"),
    ("ecole-nantes", "0440002N", "socle-1d"),
    ("ecole-fort-de-france", "9720001U", "socle-1d"),
];

fn paris(s: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    chrono_tz::Europe::Paris.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
}

/// `s` in Martinique time (UTC−4 all year).
fn martinique(s: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    chrono_tz::America::Martinique.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a date: {v}"))).unwrap().with_timezone(&Utc)
}

struct World {
    app: common::TestApp,
    clock: Arc<FixedClock>,
    admin: String,
}

impl World {
    /// Every school of the world under the écoles' policy (N1 paused in school holidays).
    async fn use_ecoles_policy(&self) {
        for uai in ["0940002S", "0440002N", "0940001R", "9720001U"] {
            let (status, body) =
                self.call(Method::PUT, &format!("/support/contracts/{uai}"), json!({ "policy": "ecoles" })).await;
            assert_eq!(status, 204, "{body}");
        }
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self.app.request(method, &format!("/api/v1{path}")).bearer(&self.admin).json(&body).send().await;
        (resp.status, serde_json::from_str(&resp.text).unwrap_or(Value::String(resp.text)))
    }

    /// Opens a P2 ticket (1 h first response, 8 h resolution at N1) on `tenant` at `at` (Paris time).
    async fn open(&self, tenant: &str, at: &str) -> Value {
        self.open_at(tenant, paris(at)).await
    }

    /// Opens a P2 ticket on `tenant` at `at` and checks that its first response is due at `due`.
    async fn assert_due(&self, tenant: &str, at: DateTime<Utc>, due: DateTime<Utc>, name: &str) {
        let ticket = self.open_at(tenant, at).await;
        assert_eq!(ts(&ticket["first_response_due"]), due, "{name}: {tenant} opened at {at}: {ticket}");
    }

    /// Opens a P2 ticket on `tenant` at the instant `at`.
    async fn open_at(&self, tenant: &str, at: DateTime<Utc>) -> Value {
        self.clock.set(at);
        let new = json!({
            "tenant": tenant, "subject": "Connexion impossible", "description": "Les élèves ne peuvent plus se connecter.",
            "category": "acces", "impact": "moyenne", "urgency": "haute"
        });
        let (status, body) = self.call(Method::POST, "/support/tickets", new).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["priority"], "P2", "{body}");
        body
    }
}

/// The [`world`] under the écoles' policy (its N1 clock paused in the school holidays).
async fn ecoles_world(db: &common::TestDb) -> World {
    let w = world(db).await;
    w.use_ecoles_policy().await;
    w
}

async fn world(db: &common::TestDb) -> World {
    let store = db.store.clone();
    common::fixtures::annuaire(&store, ANNUAIRE).await;
    let siren = common::fixtures::luhn(&format!("{:08}", 30_000_042));
    let vendor = common::fixtures::new_org(&store, OrgKind::Editeur, "Éditeur ENT Rhin", &siren, None).await;
    let state = crate::common::app::app_state(store.clone(), Config::default(), Arc::new(FixedClock::new(t0())));
    for (slug, uai, bouquet) in TENANTS {
        let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": uai, "hostname": format!("{slug}.ent.example.fr"), "bouquet": bouquet,
                      "vendor": format!("editeur:{}", vendor.code) }
        }))
        .unwrap();
        entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    }
    let clock = Arc::new(FixedClock::new(t0()));
    let app = common::TestApp::over(&store).clock(clock.clone()).build().await;
    let admin = token_for(&store, "admin@ent.fr", Role::Admin, None).await;
    World { app, clock, admin }
}

backend_test!(a_ticket_in_strasbourg_waits_past_good_friday_and_one_in_creteil_does_not);
async fn a_ticket_in_strasbourg_waits_past_good_friday_and_one_in_creteil_does_not(db: crate::common::TestDb) {
    let w = world(&db).await;
    // Maundy Thursday 25 March 2027, 17:30: half an hour of N1 time is left that day.
    let strasbourg = w.open("college-strasbourg", "2027-03-25 17:30").await;
    let creteil = w.open("college-creteil", "2027-03-25 17:30").await;
    // Strasbourg (local law): Good Friday closed, then the week-end and Easter Monday.
    assert_eq!(ts(&strasbourg["first_response_due"]), paris("2027-03-30 08:30"), "{}: {strasbourg}", db.name);
    // Créteil: Good Friday is a working day.
    assert_eq!(ts(&creteil["first_response_due"]), paris("2027-03-26 08:30"), "{}: {creteil}", db.name);
    // The vendor's N3 calendar keeps its own (metropolitan) holidays wherever the school is.
    let policies = entcp::support::policy::Policies::shipped();
    let place = entcp::support::calendar::Place::new(Some("067"), Some("15"), false);
    let n3 = policies.calendar_at("standard", entcp::support::Level::N3, &place);
    assert!(n3.is_working_day(chrono::NaiveDate::from_ymd_opt(2027, 3, 26).unwrap()));
}

backend_test!(with_the_school_pause_an_n1_clock_stops_for_the_zone_holidays_and_the_ecoles_wednesday);
async fn with_the_school_pause_an_n1_clock_stops_for_the_zone_holidays_and_the_ecoles_wednesday(
    db: crate::common::TestDb,
) {
    let w = world(&db).await;
    // Monday 20 October 2025, 10:00, Toussaint holidays everywhere: under the standard policy
    // the N1 clock runs (due at 11:00).
    w.assert_due("ecole-creteil", paris("2025-10-20 10:00"), paris("2025-10-20 11:00"), db.name).await;
    // The écoles' policy: the clock waits for the return to class on Monday 3 November.
    w.use_ecoles_policy().await;
    for (tenant, at, due) in [
        ("ecole-creteil", paris("2025-10-20 10:00"), paris("2025-11-03 09:00")),
        // Each school its zone: Monday 2 March 2026 is in the winter holidays of zone C
        // (Créteil, until 8 March), not of zone B (Nantes, back on 2 March).
        ("ecole-creteil", paris("2026-03-02 10:00"), paris("2026-03-09 09:00")),
        ("ecole-nantes", paris("2026-03-02 10:00"), paris("2026-03-02 11:00")),
        // Tuesday 10 March 2026, 17:30: the école's Wednesday is its day off, the collège's is worked.
        ("ecole-creteil", paris("2026-03-10 17:30"), paris("2026-03-12 08:30")),
        ("college-creteil", paris("2026-03-10 17:30"), paris("2026-03-11 08:30")),
    ] {
        w.assert_due(tenant, at, due, db.name).await;
    }
}

backend_test!(the_shipped_school_calendar_knows_2026_27_corse_and_la_reunion);
async fn the_shipped_school_calendar_knows_2026_27_corse_and_la_reunion(db: crate::common::TestDb) {
    let w = ecoles_world(&db).await;
    // Monday 8 February 2027, 10:00: zone C (Créteil) is in its winter holidays until Sunday 21
    // February 2027 (calendar 2026-2027): the écoles' N1 clock waits for Monday 22.
    w.assert_due("ecole-creteil", paris("2027-02-08 10:00"), paris("2027-02-22 09:00"), db.name).await;
    // Zone B (Nantes) starts its winter holidays on 20 February 2027 only.
    w.assert_due("ecole-nantes", paris("2027-02-08 10:00"), paris("2027-02-08 11:00"), db.name).await;
    // One known date of every set the file ships, by académie code.
    let policies = entcp::support::policy::Policies::shipped();
    let closed = |academie: &str, date: &str| {
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        policies.school_holidays[academie].iter().any(|c| c.from <= day && day <= c.to)
    };
    for (academie, date, set) in [
        ("10", "2027-02-15", "zone A (Lyon), hiver 2027"),
        ("17", "2027-03-01", "zone B (Nantes), hiver 2027"),
        ("24", "2027-04-05", "zone C (Créteil), printemps 2027"),
        ("24", "2027-05-07", "pont de l'Ascension 2027"),
        ("27", "2025-09-08", "Corse, Nativité de la Vierge"),
        ("27", "2026-02-16", "Corse, hiver 2026"),
        ("28", "2027-01-25", "La Réunion, été austral 2026-2027"),
        ("28", "2027-03-22", "La Réunion, 3e période 2027"),
    ] {
        assert!(closed(academie, date), "{}: {set} ({date}) is a school holiday", db.name);
    }
    assert!(!closed("28", "2027-02-01"), "{}: La Réunion is back in class on 1 February 2027", db.name);
    assert!(!closed("24", "2027-02-22"), "{}: zone C is back on 22 February 2027", db.name);
    // The file says where its dates come from and that the operator keeps it up to date.
    let shipped = entcp::support::school::SHIPPED;
    assert!(shipped.contains("MISE À JOUR PAR L'OPÉRATEUR") && shipped.contains("Sources"), "{}", db.name);
}

backend_test!(an_ecole_in_martinique_waits_out_its_carnaval_holidays_and_not_the_week_after);
async fn an_ecole_in_martinique_waits_out_its_carnaval_holidays_and_not_the_week_after(db: crate::common::TestDb) {
    let w = ecoles_world(&db).await;
    // Monday 16 February 2026, 10:00 in Fort-de-France: Carnaval holidays of the académie de
    // Martinique (7 to 22 February 2026); the N1 clock waits for Monday 23, 08:00 local time.
    w.assert_due("ecole-fort-de-france", martinique("2026-02-16 10:00"), martinique("2026-02-23 09:00"), db.name).await;
    // The week after, classes are back: one hour of N1 time, in Martinique time.
    w.assert_due("ecole-fort-de-france", martinique("2026-02-23 10:00"), martinique("2026-02-23 11:00"), db.name).await;
    // The same Monday is a school day in Créteil (zone C, winter holidays from 21 February):
    // the pause follows the school's own académie.
    w.assert_due("ecole-creteil", paris("2026-02-16 10:00"), paris("2026-02-16 11:00"), db.name).await;
}

backend_test!(the_console_counts_the_time_left_in_the_calendar_of_the_tickets_school);
async fn the_console_counts_the_time_left_in_the_calendar_of_the_tickets_school(db: crate::common::TestDb) {
    let w = world(&db).await;
    // Maundy Thursday 25 March 2027, 17:30 in Strasbourg: the P2 first response is due on
    // Tuesday 30 March at 08:30 (Good Friday and Easter Monday closed), the resolution at 15:30.
    let ticket = w.open("college-strasbourg", "2027-03-25 17:30").await;
    let reference = ticket["reference"].as_str().unwrap();
    crate::console::person(&w.app.store, "dan@ac-strasbourg.fr", Role::Admin, None).await;
    let session = crate::console::sign_in(&w.app, "dan@ac-strasbourg.fr").await;
    // Left: half an hour on Thursday and half an hour on Tuesday; 8 h for the resolution.
    // Counted in Paris' calendar, Good Friday would add 10 hours to each.
    let page = crate::console::get(&w.app, &session, &format!("/tickets/{reference}")).await;
    assert_eq!(page.status, 200, "{}: {}", db.name, page.text);
    assert!(page.text.contains("<td>1 h ouvrées</td>"), "{}: {}", db.name, page.text);
    assert!(page.text.contains("<td>8 h ouvrées</td>"), "{}: {}", db.name, page.text);
    let queue = crate::console::get(&w.app, &session, "/tickets?ent=college-strasbourg").await;
    assert!(queue.text.contains(reference), "{}: {}", db.name, queue.text);
    assert!(queue.text.contains("<td>1 h ouvrées</td>"), "{}: {}", db.name, queue.text);
    assert!(!queue.text.contains("11 h ouvrées"), "{}: {}", db.name, queue.text);
}

backend_test!(due_dates_mailed_to_an_overseas_school_read_in_its_own_time);
async fn due_dates_mailed_to_an_overseas_school_read_in_its_own_time(db: crate::common::TestDb) {
    let w = world(&db).await;
    let store = &w.app.store;
    token_for(store, "rup@ecole-schoelcher.fr", Role::SupportN1, Some("9720001U")).await;
    token_for(store, "rup@college-creteil.fr", Role::SupportN1, Some("0940001R")).await;
    let mail = async |event: &str, to: &str| {
        let mut mails = common::queued_mails(store, "support").await.into_iter();
        let found = mails.rfind(|m| m.context["event"] == event && m.recipients.contains(to));
        found.unwrap_or_else(|| panic!("{}: no {event} mail to {to}", db.name)).context
    };
    // Monday 23 February 2026, 10:00 in Fort-de-France: the first response is due at 11:00
    // there, 15:00 in Paris. The N1 of the école reads its own time, and that it is local.
    let ticket = w.open_at("ecole-fort-de-france", martinique("2026-02-23 10:00")).await;
    assert_eq!(ts(&ticket["first_response_due"]), martinique("2026-02-23 11:00"), "{}", db.name);
    let created = mail("created", "rup@ecole-schoelcher.fr").await;
    assert_eq!(created["due"], "23 février 2026 à 11 h 00 (heure locale, UTC-04:00)", "{}: {created}", db.name);
    // The breach notice says when it fell in the same time.
    w.clock.set(martinique("2026-02-23 12:00"));
    let state = crate::common::app::app_state(store.clone(), Config::default(), w.clock.clone());
    entcp::support::jobs::sweep(&state.support(), martinique("2026-02-23 12:00")).await.unwrap();
    let breach = mail("breach", "rup@ecole-schoelcher.fr").await;
    assert_eq!(breach["due"], "23 février 2026 à 11 h 00 (heure locale, UTC-04:00)", "{}: {breach}", db.name);
    // A school on Paris time reads Paris time, as it always did.
    w.open("college-creteil", "2026-02-23 10:00").await;
    let created = mail("created", "rup@college-creteil.fr").await;
    assert_eq!(created["due"], "23 février 2026 à 11 h 00", "{}: {created}", db.name);
}
