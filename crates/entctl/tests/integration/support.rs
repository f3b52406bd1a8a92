//! Support desk through the API: the Nantes story with four users (a teacher,
//! the school's N1, the académie's N2, the vendor's N3) on an injectable clock,
//! notices delivered to a real SMTP server, SLA pauses, weekends and public
//! holidays, a breach flagged once, and what the vendor may not see.

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use common::fixtures::TicketBody;
use common::smtp::{smtp_sink_and_config, smtp_sink_available};
use common::{admin, client_with, t0, token_for};
use entcp::clock::FixedClock;
use entcp::config::Config;
use entcp::kernel::roles::OrgKind;
use entcp::store::Store;
use entcp::support::calendar::Calendar;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

/// A collège in Nantes (académie 17) and one in Rennes (académie 14).
const ANNUAIRE: &str = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;\
Code_postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region\n\
0440001M;Collège Jules Verne;Collège;Public;44000;44109;Nantes;044;17;52\n\
0350001L;Collège Anne de Bretagne;Collège;Public;35000;35238;Rennes;035;14;53\n";

fn paris(s: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    chrono_tz::Europe::Paris.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn luhn_siren(seed: u32) -> String {
    common::fixtures::luhn(&format!("{:08}", 30_000_000 + seed))
}

struct Story {
    app: common::TestApp,
    store: Store,
    clock: Arc<FixedClock>,
    teacher: String,
    n1: String,
    n2: String,
    n3: String,
    admin: String,
}

struct Resp {
    status: u16,
    body: Value,
}

impl Story {
    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>, if_match: Option<i64>) -> Resp {
        let mut req = self.app.request(method, &format!("/api/v1{path}")).bearer(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(v) = if_match {
            req = req.if_match(v);
        }
        let resp = req.send().await;
        Resp { status: resp.status, body: serde_json::from_str(&resp.text).unwrap_or(Value::String(resp.text)) }
    }

    async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(token, Method::GET, path, None, None).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(token, Method::POST, path, Some(body), None).await
    }

    /// `PATCH /support/tickets/{id}` with `If-Match: version`.
    async fn patch_ticket(&self, token: &str, id: &str, body: Value, version: i64) -> Resp {
        self.call(token, Method::PATCH, &format!("/support/tickets/{id}"), Some(body), Some(version)).await
    }

    /// A POST with the ticket's current version as `token` reads it (the requester's own, or
    /// the support's when `token` may not read it) as If-Match; asserts `want`.
    async fn act(&self, token: &str, id: &str, verb: &str, body: Value, want: u16) -> Value {
        let path = format!("/support/tickets/{id}");
        let version = match self.get(token, &path).await.body["version"].as_i64() {
            Some(version) => version,
            None => self.get(&self.admin, &path).await.body["version"].as_i64().unwrap(),
        };
        let r =
            self.call(token, Method::POST, &format!("/support/tickets/{id}/{verb}"), Some(body), Some(version)).await;
        assert_eq!(r.status, want, "{verb}: {}", r.body);
        r.body
    }

    fn at(&self, s: &str) {
        self.clock.set(paris(s));
    }

    async fn sweep(&self) -> entcp::support::jobs::SweepReport {
        let state = crate::common::app::app_state(self.store.clone(), Config::default(), self.clock.clone());
        entcp::support::jobs::sweep(&state.support(), paris_now(&self.clock)).await.unwrap()
    }

    async fn ticket_count(&self) -> i64 {
        common::count(&self.store, "SELECT COUNT(*) AS n FROM support_tickets", &[]).await
    }
}

/// A ticket the teacher opened ([`Story::open`]): its id, its API path, the ticket as created.
struct Opened {
    id: String,
    path: String,
    ticket: Value,
}

impl Story {
    /// The teacher opens `body` at `at` (Paris), which must be accepted (201).
    async fn open(&self, at: &str, body: TicketBody) -> Opened {
        self.at(at);
        let created = self.post(&self.teacher, "/support/tickets", body.json()).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        Opened { path: format!("/support/tickets/{id}"), id, ticket: created.body }
    }
}

/// A ticket on the Nantes collège ([`common::fixtures::ticket_body`]).
fn nantes() -> TicketBody {
    common::fixtures::ticket_body("college-jules-verne")
}

fn paris_now(clock: &FixedClock) -> DateTime<Utc> {
    use entcp::clock::Clock;
    clock.now()
}

async fn setup(db: &common::TestDb) -> Story {
    let store = db.store.clone();
    common::fixtures::annuaire(&store, ANNUAIRE).await;
    let vendor =
        common::fixtures::new_org(&store, OrgKind::Editeur, "Éditeur ENT Atlantique", &luhn_siren(1), None).await;
    let state = crate::common::app::app_state(store.clone(), Config::default(), Arc::new(FixedClock::new(t0())));
    for (slug, uai) in [("college-jules-verne", "0440001M"), ("college-anne-de-bretagne", "0350001L")] {
        let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
            "apiVersion": "entcp.education.fr/v1",
            "kind": "EntTenant",
            "metadata": { "name": slug },
            "spec": {
                "organisation": uai,
                "hostname": format!("{slug}.ent.example.fr"),
                "bouquet": "socle-2d",
                "vendor": format!("editeur:{}", vendor.code),
            }
        }))
        .unwrap();
        entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    }
    // Both ENTs run, as in the story (a ticket on an ENT not yet open is warned of it).
    common::execute(&store, "UPDATE tenants SET status = 'active'", &[]).await;
    let clock = Arc::new(FixedClock::new(paris("2027-05-12 08:30")));
    let app = common::TestApp::over(&store).clock(clock.clone()).build().await;
    let story = Story {
        app,
        store: store.clone(),
        clock,
        teacher: token_for(&store, "prof.svt@ac-nantes.fr", entcp::kernel::roles::Role::Usager, Some("0440001M")).await,
        n1: token_for(&store, "rup.julesverne@ac-nantes.fr", entcp::kernel::roles::Role::SupportN1, Some("0440001M"))
            .await,
        n2: token_for(&store, "dane@ac-nantes.fr", entcp::kernel::roles::Role::SupportN2, Some("academie:17")).await,
        n3: token_for(&store, "support@editeur.fr", entcp::kernel::roles::Role::SupportN3, Some(&vendor.id)).await,
        admin: token_for(&store, "admin@ent.fr", entcp::kernel::roles::Role::Admin, None).await,
    };
    // The tenant's vendor is its N3; the académie's contract only names the policy.
    let r = story
        .call(&story.admin, Method::PUT, "/support/contracts/academie:17", Some(json!({ "policy": "standard" })), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let contract = story.get(&story.n2, "/support/tenants/college-jules-verne/contract").await.body;
    assert_eq!(contract["n3"]["id"], vendor.id.as_str());
    assert_eq!(contract["n2"]["code"], "17");
    assert_eq!(contract["n1"]["code"], "0440001M");
    story
}

/// The clock of `level` in a ticket as the support reads it (`sla.levels`).
fn level_clock<'a>(ticket: &'a Value, level: &str) -> &'a Value {
    let levels = ticket["sla"]["levels"].as_array().expect("the support reads the clocks");
    levels.iter().find(|c| c["level"] == level).unwrap_or_else(|| panic!("no {level} clock: {ticket}"))
}

/// Outbox ids of `support` mails for `event` to `recipient`.
async fn mails(store: &Store, event: &str, recipient: &str) -> Vec<String> {
    let mails = common::queued_mails(store, "support").await.into_iter();
    mails.filter(|m| m.context["event"] == event && m.recipients.contains(recipient)).map(|m| m.id).collect()
}

async fn deliver(story: &Story, config: &Config) {
    entcp::notify::send_due(&story.store, config, "test", story.clock.as_ref()).await.unwrap();
}

backend_test!(the_nantes_story_runs_from_the_teacher_to_the_vendor_and_back);
async fn the_nantes_story_runs_from_the_teacher_to_the_vendor_and_back(db: crate::common::TestDb) {
    if !smtp_sink_available() {
        return;
    }
    let s = setup(&db).await;
    let (_data, sink, mut config) = smtp_sink_and_config();
    config.console.public_url = "https://ent.ac-nantes.fr".into();

    // Wednesday 12 May 2027, 09:00: the teacher reports the empty cahier de textes.
    s.at("2027-05-12 09:00");
    let new = json!({
        "tenant": "college-jules-verne",
        "subject": "Le cahier de textes est vide pour la 5e B",
        "description": "Depuis lundi, aucune séance n'apparaît pour la classe de 5e B.",
        "category": "service",
        "service": "cahier-de-textes",
        "impact": "moyenne",
        "urgency": "haute"
    });
    let created = s.post(&s.teacher, "/support/tickets", new.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let t = created.body;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["reference"], "ENT-2027-000001");
    assert_eq!(t["priority"], "P2");
    // The requester is not told which level works on their ticket: the N1 answers them.
    assert!(t.get("level").is_none(), "{t}");
    assert_eq!(t["status"], "new");
    // P2 at N1: first response within 1 h.
    assert_eq!(ts(t["first_response_due"].as_str().unwrap()), paris("2027-05-12 10:00"));
    assert_eq!(mails(&s.store, "created", "rup.julesverne@ac-nantes.fr").await.len(), 1);

    // A second ticket, solved at N1: it never reaches the vendor.
    s.at("2027-05-12 09:05");
    let other = json!({ "tenant": "college-jules-verne", "subject": "Mot de passe oublié", "description": "Un élève ne peut plus se connecter.", "category": "acces", "impact": "basse", "urgency": "basse" });
    let other = s.post(&s.teacher, "/support/tickets", other).await.body;
    let other_id = other["id"].as_str().unwrap().to_string();
    s.at("2027-05-12 09:40");
    s.act(&s.n1, &other_id, "transition", json!({ "to": "resolved", "message": "Mot de passe réinitialisé." }), 200)
        .await;

    // Bad input changes nothing.
    let before = s.ticket_count().await;
    let mut bad = new.clone();
    bad["category"] = json!("imprimante");
    let r = s.post(&s.teacher, "/support/tickets", bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "category");
    let mut bad = new.clone();
    bad["priority"] = json!("P9");
    let r = s.post(&s.n1, "/support/tickets", bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let mut elsewhere = new.clone();
    elsewhere["tenant"] = json!("college-anne-de-bretagne");
    // A tenant the teacher cannot see answers like an unknown one (its school is not named).
    let r = s.post(&s.teacher, "/support/tickets", elsewhere).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("tenant")), "{}", r.body);
    assert_eq!(s.ticket_count().await, before);

    // 09:30: N1 answers publicly (first response), 10:00 asks the teacher a question: the clock pauses.
    s.at("2027-05-12 09:30");
    let r = s.post(&s.n1, &format!("/support/tickets/{id}/comments"), json!({ "body": "Nous regardons." })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let due_before = ts(r.body["resolution_due"].as_str().unwrap());
    assert_eq!(due_before, paris("2027-05-12 17:00"), "P2 at N1: resolution within 8 h");
    s.at("2027-05-12 10:00");
    let paused =
        s.act(&s.n1, &id, "transition", json!({ "to": "waiting_requester", "message": "Depuis quand ?" }), 200).await;
    assert_eq!(paused["sla"]["paused"], true);
    assert!(paused.get("resolution_due").is_none(), "no due date while paused");
    // 14:00: the teacher replies, which resumes the ticket.
    s.at("2027-05-12 14:00");
    let r = s.post(&s.teacher, &format!("/support/tickets/{id}/comments"), json!({ "body": "Depuis lundi." })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let resumed = s.get(&s.n1, &format!("/support/tickets/{id}")).await.body;
    assert_eq!(resumed["status"], "in_progress");
    let due_after = ts(resumed["resolution_due"].as_str().unwrap());
    let paused_business = Calendar::standard().business_seconds(paris("2027-05-12 10:00"), paris("2027-05-12 14:00"));
    assert_eq!(Calendar::standard().business_seconds(due_before, due_after), paused_business);
    assert_eq!(due_after, paris("2027-05-13 11:00"), "shifted by exactly the 4 paused business hours");

    // Before any escalation the vendor sees nothing.
    assert_eq!(s.get(&s.n3, &format!("/support/tickets/{id}")).await.status, 404);
    assert_eq!(s.get(&s.n3, "/support/tickets").await.body["items"], json!([]));

    // 15:00: N1 escalates to N2; a reason is mandatory, a stale If-Match is refused.
    s.at("2027-05-12 15:00");
    let r = s
        .call(&s.n1, Method::POST, &format!("/support/tickets/{id}/escalate"), Some(json!({ "reason": "x" })), Some(1))
        .await;
    assert_eq!(r.status, 412, "{}", r.body);
    s.act(&s.n1, &id, "escalate", json!({ "reason": "  " }), 422).await;
    let at_n2 = s
        .act(
            &s.n1,
            &id,
            "escalate",
            json!({ "reason": "Les emplois du temps semblent ne pas avoir été importés." }),
            200,
        )
        .await;
    assert_eq!(at_n2["level"], "n2");
    // P2 at N2: first response within 2 h, on N2's own clock; the requester was answered at
    // 09:30, so the ticket's own first response is no longer due.
    assert_eq!(ts(level_clock(&at_n2, "n2")["first_response_due"].as_str().unwrap()), paris("2027-05-12 17:00"));
    assert!(at_n2.get("first_response_due").is_none(), "{at_n2}");
    assert_eq!(mails(&s.store, "escalated", "dane@ac-nantes.fr").await.len(), 1);
    // N1 no longer holds it.
    s.act(&s.n1, &id, "transition", json!({ "to": "resolved" }), 403).await;

    // 19:00: the sweep flags N2's missed first response, once; the notice waits for working hours.
    s.at("2027-05-12 19:00");
    let report = s.sweep().await;
    assert_eq!((report.breaches, report.escalated), (1, 0));
    let breach_mails = mails(&s.store, "breach", "dane@ac-nantes.fr").await;
    assert_eq!(breach_mails.len(), 1);
    deliver(&s, &config).await;
    assert_eq!(sink.copies_of(&breach_mails[0]), 0, "not sent at 19:00");
    s.at("2027-05-13 08:00");
    deliver(&s, &config).await;
    assert_eq!(sink.copies_of(&breach_mails[0]), 1, "sent when the académie opens");
    s.at("2027-05-13 09:00");
    assert_eq!(s.sweep().await.breaches, 0, "a breach is flagged once");
    assert_eq!(s.get(&s.n2, &format!("/support/tickets/{id}")).await.body["breaches"], 1);

    // Thursday: N2 writes an internal note, then escalates to the vendor at 16:00.
    s.at("2027-05-13 10:00");
    let note = "Note interne DANE : import AAF vérifié, rien d'anormal.";
    let r = s
        .post(&s.n2, &format!("/support/tickets/{id}/comments"), json!({ "body": note, "visibility": "internal" }))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.at("2027-05-13 16:00");
    let reason = "Anomalie côté éditeur : le connecteur emploi du temps ne remonte plus la 5e B.";
    let at_n3 = s.act(&s.n2, &id, "escalate", json!({ "reason": reason }), 200).await;
    assert_eq!(at_n3["level"], "n3");
    // P2 at N3 on the vendor's calendar (09:00–18:00): first response within 4 h, resolution within 18 h;
    // the weekend and Whit Monday (17 May 2027) are not counted.
    assert_eq!(ts(level_clock(&at_n3, "n3")["first_response_due"].as_str().unwrap()), paris("2027-05-14 11:00"));
    assert_eq!(ts(at_n3["resolution_due"].as_str().unwrap()), paris("2027-05-18 16:00"));
    assert_eq!(mails(&s.store, "escalated", "support@editeur.fr").await.len(), 1);
    s.act(&s.n2, &id, "escalate", json!({ "reason": "encore" }), 403).await;

    // The vendor: this ticket only, the requester pseudonymised, no internal note.
    let listed = s.get(&s.n3, "/support/tickets").await.body;
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![id.as_str()]);
    assert_eq!(s.get(&s.n3, &format!("/support/tickets/{other_id}")).await.status, 404);
    assert_eq!(s.get(&s.n3, &format!("/support/tickets/{other_id}/history")).await.status, 404);
    let seen = s.get(&s.n3, &format!("/support/tickets/{id}")).await.body;
    assert_eq!(seen["requester"]["pseudonymous"], true);
    assert!(seen["requester"].get("email").is_none());
    assert!(!seen.to_string().contains("prof.svt"));
    let history = s.get(&s.n3, &format!("/support/tickets/{id}/history")).await.body;
    assert!(!history.to_string().contains("Note interne"), "{history}");
    assert!(!history.to_string().contains("prof.svt"), "{history}");
    assert!(history.to_string().contains(reason), "the hand-off reason reaches the vendor");
    // Escalating above N3 is refused.
    s.at("2027-05-14 10:00");
    s.act(&s.n3, &id, "escalate", json!({ "reason": "plus haut" }), 409).await;
    // The vendor writes to the support, not to the requester: only the N1 answers them.
    let comments = format!("/support/tickets/{id}/comments");
    let r = s.post(&s.n3, &comments, json!({ "body": "Correctif en cours." })).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = s.post(&s.n3, &comments, json!({ "body": "Correctif en cours.", "visibility": "internal" })).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Tuesday 18 May: the vendor answers, the answer comes back down, N1 resolves.
    s.at("2027-05-18 10:00");
    let back = s.act(&s.n3, &id, "return", json!({ "answer": "Connecteur corrigé, import relancé." }), 200).await;
    assert_eq!(back["level"], "n2");
    s.at("2027-05-18 11:00");
    s.act(&s.n2, &id, "return", json!({ "answer": "L'éditeur a corrigé le connecteur." }), 200).await;
    s.act(&s.n1, &id, "return", json!({ "answer": "rien" }), 409).await;
    s.at("2027-05-18 11:30");
    let resolved = s
        .act(
            &s.n1,
            &id,
            "transition",
            json!({ "to": "resolved", "message": "Les séances de la 5e B sont revenues." }),
            200,
        )
        .await;
    let n3_clock = resolved["sla"]["levels"].as_array().unwrap().iter().find(|c| c["level"] == "n3").unwrap().clone();
    // Thursday 16:00–18:00, Friday 09:00–18:00, Tuesday 09:00–10:00.
    assert_eq!(n3_clock["held_seconds"], 12 * 3600);
    assert_eq!(n3_clock["resolution_seconds"], 12 * 3600);
    s.at("2027-05-18 12:00");
    assert_eq!(s.sweep().await.breaches, 0);

    // The teacher sees public entries only.
    let theirs = s.get(&s.teacher, &format!("/support/tickets/{id}/history")).await.body;
    assert!(theirs.as_array().unwrap().iter().all(|e| e["visibility"] == "public"), "{theirs}");
    assert!(!theirs.to_string().contains("Note interne"));

    // Every notice reaches the real SMTP server once.
    deliver(&s, &config).await;
    for (event, to) in [
        ("created", "rup.julesverne@ac-nantes.fr"),
        ("waiting", "prof.svt@ac-nantes.fr"),
        ("comment", "prof.svt@ac-nantes.fr"),
        ("reply", "rup.julesverne@ac-nantes.fr"),
        ("escalated", "dane@ac-nantes.fr"),
        ("escalated", "support@editeur.fr"),
        ("returned", "dane@ac-nantes.fr"),
        ("returned", "rup.julesverne@ac-nantes.fr"),
        ("resolved", "prof.svt@ac-nantes.fr"),
    ] {
        let ids = mails(&s.store, event, to).await;
        assert!(!ids.is_empty(), "{}: no {event} mail to {to}", db.name);
        for m in ids {
            assert_eq!(sink.copies_of(&m), 1, "{}: {event} to {to}", db.name);
        }
    }
    // The requester asked to answer gets the address of the ticket's page.
    let waiting = mails(&s.store, "waiting", "prof.svt@ac-nantes.fr").await;
    let text = sink.text_of(&waiting[0]);
    assert!(
        text.contains("Ouvrir dans le plan de contrôle ENT : https://ent.ac-nantes.fr/tickets/ENT-2027-000001\n"),
        "{}: {text}",
        db.name
    );
    let html = text.replace("&#x2F;", "/");
    assert!(html.contains(r#"<a href="https://ent.ac-nantes.fr/tickets/ENT-2027-000001">"#), "{}: {text}", db.name);
    let vendor_mail = sink.received().into_iter().find(|m| m.contains("To: support@editeur.fr")).unwrap();
    assert!(!vendor_mail.contains("prof.svt"), "the vendor's mail does not name the teacher");

    // Reports: per level, in JSON and CSV.
    let report = s.get(&s.n2, "/support/report").await;
    assert_eq!(report.status, 200, "{}", report.body);
    let n2_row = report.body.as_array().unwrap().iter().find(|r| r["key"] == "N2").unwrap().clone();
    assert_eq!(n2_row["breaches"], 1);
    assert_eq!(n2_row["handled"], 1);
    // N2 answers the level below: its internal note to N1 (5 h in) is its first response, not
    // its escalation to the vendor later.
    assert_eq!(n2_row["first_response_median_hours"], 5.0, "{n2_row}");
    // Platform-wide, the percentiles are read through the indexes: the same figures.
    let all = s.get(&s.admin, "/support/report").await.body;
    let row = |key: &str| all.as_array().unwrap().iter().find(|r| r["key"] == key).unwrap().clone();
    assert_eq!(row("N2")["first_response_median_hours"], 5.0);
    assert_eq!(row("N3")["first_response_median_hours"], 3.0, "Thursday 16–18, Friday 09–10");
    assert_eq!(row("N1")["first_response_median_hours"], 0.5);
    assert_eq!(row("N1")["first_response_p90_hours"], 0.58, "35 minutes on the second ticket");
    assert_eq!(row("N1")["handled"], 2);
    let vendor = s.get(&s.n3, "/support/report").await.body;
    let handled: Vec<i64> = vendor.as_array().unwrap().iter().map(|r| r["handled"].as_i64().unwrap()).collect();
    assert_eq!(handled, [1], "the vendor sees its own level's row only");
    let csv = s.app.get("/api/v1/support/report?format=csv&by=tenant").bearer(&s.n2).send().await;
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text;
    assert!(csv.starts_with("\u{feff}tenant;nouveaux;"), "UTF-8 with BOM, as the RGPD exports: {csv}");
    assert!(csv.contains("college-jules-verne;"), "{csv}");

    // Seven days later the resolved ticket is closed; resolving a closed ticket is refused.
    s.at("2027-05-25 12:00");
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone());
    let closed = entcp::support::jobs::auto_close(&state.support(), paris("2027-05-25 12:00")).await.unwrap();
    assert_eq!(closed, 2);
    assert_eq!(s.get(&s.teacher, &format!("/support/tickets/{id}")).await.body["status"], "closed");
    s.act(&s.n1, &id, "transition", json!({ "to": "resolved" }), 409).await;
    assert!(entcp::audit::verify(&s.store).await.is_ok());
}

backend_test!(a_priority_change_keeps_the_counted_time_and_a_p1_breach_escalates_at_night);
async fn a_priority_change_keeps_the_counted_time_and_a_p1_breach_escalates_at_night(db: crate::common::TestDb) {
    let s = setup(&db).await;
    // The académie's contract: the reinforced policy (automatic escalation at N1 and N2).
    let r = s
        .call(&s.admin, Method::PUT, "/support/contracts/academie:17", Some(json!({ "policy": "renforce" })), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s
        .call(&s.admin, Method::PUT, "/support/contracts/academie:17", Some(json!({ "policy": "inconnue" })), None)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);

    let Opened { id, ticket: t, .. } = s.open("2027-05-10 09:00", nantes().graded("haute", "haute")).await;
    assert_eq!((t["priority"].as_str(), t["policy"].as_str()), (Some("P1"), Some("renforce")));
    s.at("2027-05-10 09:10");
    s.post(&s.n1, &format!("/support/tickets/{id}/comments"), json!({ "body": "Pris en charge." })).await;

    // Requalified P4 at 09:20: the resolution target (20 h) counts from 09:00, not from the change.
    s.at("2027-05-10 09:20");
    let version = t["version"].as_i64().unwrap();
    let stale = s.patch_ticket(&s.n1, &id, json!({ "impact": "basse" }), version).await;
    assert_eq!(stale.status, 412, "the comment moved the version: {}", stale.body);
    let current = s.get(&s.n1, &format!("/support/tickets/{id}")).await.body["version"].as_i64().unwrap();
    let patch = json!({ "impact": "basse", "urgency": "basse", "assigned_team": "Équipe ENT", "reason": "Contournement donné." });
    let p4 = s.patch_ticket(&s.n1, &id, patch, current).await;
    assert_eq!(p4.status, 200, "{}", p4.body);
    assert_eq!(p4.body["priority"], "P4");
    assert_eq!(ts(p4.body["resolution_due"].as_str().unwrap()), paris("2027-05-12 09:00"));
    let bad = s.patch_ticket(&s.n1, &id, json!({ "priority": "P0" }), current + 1).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let p1 = s
        .patch_ticket(&s.n1, &id, json!({ "priority": "P1", "reason": "Le contournement ne tient pas." }), current + 1)
        .await;
    assert_eq!(ts(p1.body["resolution_due"].as_str().unwrap()), paris("2027-05-10 11:00"));

    // 22:00: the resolution breach is flagged, notified at once (P1) and escalated to N2.
    s.at("2027-05-10 22:00");
    let report = s.sweep().await;
    assert_eq!((report.breaches, report.escalated), (1, 1));
    let t = s.get(&s.n2, &format!("/support/tickets/{id}")).await.body;
    assert_eq!((t["level"].as_str(), t["status"].as_str()), (Some("n2"), Some("new")));
    let breach = mails(&s.store, "breach", "rup.julesverne@ac-nantes.fr").await;
    assert_eq!(breach.len(), 1);
    let next = entcp::notify::get_message(&s.store, &breach[0]).await.unwrap().next_attempt_at;
    assert_eq!(ts(&next), paris("2027-05-10 22:00"), "P1 notices are not held until morning");
    assert_eq!(mails(&s.store, "escalated", "dane@ac-nantes.fr").await.len(), 1);
    assert_eq!(s.sweep().await.breaches, 0);
}

backend_test!(a_priority_change_counts_each_stretch_against_its_own_priority_and_never_undoes_a_breach);
async fn a_priority_change_counts_each_stretch_against_its_own_priority_and_never_undoes_a_breach(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    // Upgrade: a P4 opened Tuesday 09:00, answered 09:20, made P1 on Friday 15:44. Its 4 h of
    // P1 are already spent: due at the change, not on Tuesday 13:00 before anyone decided.
    let id = ticket_at(&s, "2027-05-11 09:00", "Cahier de textes lent").await;
    s.at("2027-05-11 09:20");
    s.post(&s.n1, &format!("/support/tickets/{id}/comments"), json!({ "body": "Nous regardons." })).await;
    s.at("2027-05-14 15:44");
    let version = s.get(&s.n1, &format!("/support/tickets/{id}")).await.body["version"].as_i64().unwrap();
    let bare = s.patch_ticket(&s.n1, &id, json!({ "priority": "P1" }), version).await;
    assert_eq!(bare.status, 422, "{}", bare.body);
    assert_eq!(bare.body["errors"][0]["field"], "reason", "{}", bare.body);
    assert!(bare.body["errors"][0]["message"].as_str().unwrap().contains("motif obligatoire"), "{}", bare.body);
    let blank = s.patch_ticket(&s.n1, &id, json!({ "priority": "P1", "reason": "  " }), version).await;
    assert_eq!(blank.status, 422, "{}", blank.body);
    let up = json!({ "priority": "P1", "reason": "Tout l'établissement est touché." });
    let p1 = s.patch_ticket(&s.n1, &id, up, version).await;
    assert_eq!(p1.status, 200, "{}", p1.body);
    assert_eq!(ts(p1.body["resolution_due"].as_str().unwrap()), paris("2027-05-14 15:44"), "{}", p1.body);
    let history = s.get(&s.n1, &format!("/support/tickets/{id}/history")).await.body;
    let change = history.as_array().unwrap().iter().find(|e| e["kind"] == "priority").expect("a priority entry");
    assert_eq!((change["from"].as_str(), change["to"].as_str()), (Some("P4"), Some("P1")), "{change}");
    assert_eq!(change["body"], "Tout l'établissement est touché.");
    // A PATCH that leaves the priority needs no reason.
    let team = s.patch_ticket(&s.n1, &id, json!({ "assigned_team": "ENT" }), version + 1).await;
    assert_eq!(team.status, 200, "{}", team.body);
    s.at("2027-05-14 15:45");
    assert_eq!(s.sweep().await.breaches, 1);

    // Downgrade: a P1 6 h 44 of business time past its resolution target, made P4, stays breached.
    let new = json!({ "tenant": "college-jules-verne", "subject": "ENT inaccessible", "description": "Page blanche.", "category": "acces", "impact": "haute", "urgency": "haute" });
    s.at("2027-05-18 09:00");
    let t = s.post(&s.teacher, "/support/tickets", new).await.body;
    let p1_id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["priority"], "P1");
    s.at("2027-05-18 09:10");
    s.post(&s.n1, &format!("/support/tickets/{p1_id}/comments"), json!({ "body": "Pris en charge." })).await;
    s.at("2027-05-19 09:44");
    let version = s.get(&s.n1, &format!("/support/tickets/{p1_id}")).await.body["version"].as_i64().unwrap();
    let down = json!({ "priority": "P4", "reason": "Une seule classe touchée." });
    let p4 = s.patch_ticket(&s.n1, &p1_id, down, version).await;
    assert_eq!(p4.status, 200, "{}", p4.body);
    // Still due when the 4 h of P1 ran out, Tuesday 13:00: breached, and flagged by the sweep.
    assert_eq!(ts(p4.body["resolution_due"].as_str().unwrap()), paris("2027-05-18 13:00"), "{}", p4.body);
    let report = s.sweep().await;
    assert_eq!(report.breaches, 1, "{report:?}");
    let t = s.get(&s.n1, &format!("/support/tickets/{p1_id}")).await.body;
    assert_eq!(t["breaches"], 1, "{t}");
}

backend_test!(only_what_the_requester_sees_meets_the_first_response_clock);
async fn only_what_the_requester_sees_meets_the_first_response_clock(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = ticket_at(&s, "2027-05-12 09:00", "Messagerie vide").await;
    let n1_clock =
        |t: &Value| t["sla"]["levels"].as_array().unwrap().iter().find(|c| c["level"] == "n1").unwrap().clone();
    // 09:30: a silent « in progress » tells the requester nothing.
    s.at("2027-05-12 09:30");
    let silent = s.act(&s.n1, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    assert_eq!(n1_clock(&silent)["first_response_seconds"], Value::Null, "{silent}");
    assert!(silent["first_response_due"].is_string(), "still due: {silent}");
    // 10:00: the question asked to the requester is the first response.
    s.at("2027-05-12 10:00");
    let asked = json!({ "to": "waiting_requester", "message": "Depuis quand ?" });
    let asked = s.act(&s.n1, &id, "transition", asked, 200).await;
    assert_eq!(n1_clock(&asked)["first_response_seconds"], 3600, "{asked}");
    assert_eq!(asked["first_response_due"], Value::Null, "{asked}");
    // An escalation is no response either, nor the N2's note to the N1: the N2 answers the
    // level below (its own clock), the requester still waits for theirs, the same due date.
    let other = ticket_at(&s, "2027-05-12 10:30", "Import des classes").await;
    let due = s.get(&s.teacher, &format!("/support/tickets/{other}")).await.body["first_response_due"].clone();
    assert!(due.is_string(), "{}: {due}", db.name);
    s.at("2027-05-12 11:00");
    s.act(&s.n1, &other, "escalate", json!({ "reason": "Import à vérifier par la DANE." }), 200).await;
    s.at("2027-05-12 11:30");
    // The N2 writes nothing to the requester, not even with a status change.
    let said = json!({ "to": "in_progress", "message": "Nous regardons l'import." });
    let r = s.act(&s.n2, &other, "transition", said, 409).await;
    assert!(r["detail"].as_str().unwrap().contains("seul le N1 écrit au demandeur"), "{}: {r}", db.name);
    let note = json!({ "body": "Import AAF en échec pour la 5e B.", "visibility": "internal" });
    let r = s.post(&s.n2, &format!("/support/tickets/{other}/comments"), note).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    let t = r.body;
    let n2 = t["sla"]["levels"].as_array().unwrap().iter().find(|c| c["level"] == "n2").unwrap().clone();
    assert_eq!(n2["first_response_seconds"], 1800, "the N2 answered the N1: {t}");
    assert_eq!(n1_clock(&t)["first_response_seconds"], Value::Null, "N1 only escalated: {t}");
    assert_eq!(t["first_response_due"], due, "{}: the requester still waits: {t}", db.name);
    let theirs = s.get(&s.teacher, &format!("/support/tickets/{other}")).await.body;
    assert_eq!(theirs["first_response_due"], due, "{}: {theirs}", db.name);
    assert_eq!(mails(&s.store, "comment", "prof.svt@ac-nantes.fr").await.len(), 0, "{}: nothing sent", db.name);
    // The N1 tells them: the requester's first response is given, whichever level holds it.
    s.at("2027-05-12 12:00");
    let told = json!({ "body": "La DANE vérifie l'import de vos classes." });
    let r = s.post(&s.n1, &format!("/support/tickets/{other}/comments"), told).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    let theirs = s.get(&s.teacher, &format!("/support/tickets/{other}")).await.body;
    assert!(theirs.get("first_response_due").is_none(), "{}: answered: {theirs}", db.name);
    assert_eq!(mails(&s.store, "comment", "prof.svt@ac-nantes.fr").await.len(), 1, "the requester is told");
}

// Policies edited after tickets were opened: the next sweep derives the open tickets' due dates
// again under them (once per set of policies), so a shortened target is flagged when it passes,
// not when the old stored due date would have.
backend_test!(a_target_shortened_in_the_policies_moves_the_due_dates_of_open_tickets);
async fn a_target_shortened_in_the_policies_moves_the_due_dates_of_open_tickets(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = ticket_at(&s, "2027-05-12 09:00", "Messagerie vide").await;
    s.at("2027-05-12 09:05");
    assert_eq!(s.sweep().await.breaches, 0);
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../support/policies.yaml")).unwrap();
    let standard_n1_p4 = "P4: { first_response: 8h, resolution: 40h }";
    assert!(shipped.contains(standard_n1_p4), "the shipped standard N1 P4 target");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("local.yaml"),
        shipped.replacen(standard_n1_p4, "P4: { first_response: 1h, resolution: 40h }", 1),
    )
    .unwrap();
    let config = Config { support_dir: Some(dir.path().into()), ..Config::default() };
    s.at("2027-05-12 10:30");
    let state = crate::common::app::app_state(s.store.clone(), config, s.clock.clone());
    let swept = entcp::support::jobs::sweep(&state.support(), paris("2027-05-12 10:30")).await.unwrap();
    assert_eq!(swept.breaches, 1, "{}: due 10:00 under the new target", db.name);
    let t = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body;
    let flagged = common::count(&s.store, "SELECT COUNT(*) FROM support_breaches WHERE ticket_id = $1", &[&id]).await;
    assert_eq!(flagged, 1, "{}: {t}", db.name);
    // Once per set of policies: the next sweep derives nothing again and flags nothing twice.
    let again = entcp::support::jobs::refresh_for_policies(&state.support(), paris("2027-05-12 10:35")).await.unwrap();
    assert_eq!(again, None, "{}", db.name);
}

// Per tenant, a ticket's first response is when the requester first heard from the support,
// whichever level held the ticket: the N1's message 1.5 h in while N2 held it, not N1's answer
// after the ticket came back down (the sum of the levels' times, 6 h).
backend_test!(the_report_per_tenant_times_the_first_answer_the_requester_received);
async fn the_report_per_tenant_times_the_first_answer_the_requester_received(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = ticket_at(&s, "2027-05-12 09:00", "Import des classes").await;
    s.at("2027-05-12 10:00");
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Import à vérifier par la DANE." }), 200).await;
    // 10:30: the N1, the requester's contact, tells them while the DANE holds the ticket.
    s.at("2027-05-12 10:30");
    let r =
        s.post(&s.n1, &format!("/support/tickets/{id}/comments"), json!({ "body": "La DANE vérifie l'import." })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    s.at("2027-05-12 11:00");
    s.act(&s.n2, &id, "return", json!({ "answer": "Relancez l'import depuis l'ENT." }), 200).await;
    s.at("2027-05-12 16:00");
    s.act(&s.n1, &id, "transition", json!({ "to": "resolved", "message": "Import relancé." }), 200).await;
    let per_tenant = s.get(&s.admin, "/support/report?by=tenant").await.body;
    let row = per_tenant.as_array().unwrap().iter().find(|r| r["key"] == "college-jules-verne").unwrap().clone();
    assert_eq!(row["first_response_median_hours"], 1.5, "{}: {row}", db.name);
}

backend_test!(a_school_address_with_a_line_break_blocks_neither_tickets_nor_the_sweep);
/// Addresses stored before they were checked (here with a CR/LF header injection) must not
/// block anything: the notices to them are parked, the tickets and breaches recorded.
async fn a_school_address_with_a_line_break_blocks_neither_tickets_nor_the_sweep(db: crate::common::TestDb) {
    let s = setup(&db).await;
    sqlx::query("UPDATE orgs SET email = $1 WHERE code IN ('0440001M', '0350001L')")
        .bind("ce.0440001m@ac-nantes.fr\r\nBcc: pirate@exemple.fr")
        .execute(s.store.pool())
        .await
        .unwrap();
    s.at("2027-05-10 09:00");
    let new = |tenant: &str| json!({ "tenant": tenant, "subject": "ENT inaccessible", "description": "Page blanche.", "category": "acces", "impact": "haute", "urgency": "haute" });
    // The Rennes school has no N1 user: its queue is the school's address.
    let r = s.post(&s.admin, "/support/tickets", new("college-anne-de-bretagne")).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    let r = s.post(&s.teacher, "/support/tickets", new("college-jules-verne")).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);

    s.at("2027-05-10 22:00");
    let report = s.sweep().await;
    assert!(report.breaches >= 1, "{}: {report:?}", db.name);
    let parked = common::count(
        &s.store,
        "SELECT COUNT(*) AS n FROM outbox WHERE status = 'failed' AND last_error IS NOT NULL",
        &[],
    )
    .await;
    assert!(parked >= 2, "{}: the notices to the bad address are parked, {parked}", db.name);
}

backend_test!(a_waiting_requester_is_reminded_once_in_working_hours_not_on_whit_monday);
async fn a_waiting_requester_is_reminded_once_in_working_hours_not_on_whit_monday(db: crate::common::TestDb) {
    reminded_once(&db).await;
}

async fn reminded_once(db: &common::TestDb) {
    let s = setup(db).await;
    s.at("2027-05-14 17:00");
    let new = json!({ "tenant": "college-jules-verne", "subject": "Import des notes", "description": "Les notes du trimestre manquent.", "category": "donnees", "impact": "moyenne", "urgency": "basse" });
    let id = s.post(&s.teacher, "/support/tickets", new).await.body["id"].as_str().unwrap().to_string();
    s.at("2027-05-14 17:30");
    s.act(&s.n1, &id, "transition", json!({ "to": "waiting_requester", "message": "Quelle classe ?" }), 200).await;
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone());
    assert_eq!(
        entcp::support::jobs::remind(&state.support(), paris("2027-05-16 09:00")).await.unwrap(),
        0,
        "not yet 3 days"
    );
    // Tuesday 07:00, after the weekend and Whit Monday: queued for the opening at 08:00.
    assert_eq!(entcp::support::jobs::remind(&state.support(), paris("2027-05-18 07:00")).await.unwrap(), 1);
    assert_eq!(
        entcp::support::jobs::remind(&state.support(), paris("2027-05-18 09:00")).await.unwrap(),
        0,
        "once per wait"
    );
    let reminders = mails(&s.store, "reminder", "prof.svt@ac-nantes.fr").await;
    assert_eq!(reminders.len(), 1);
    let next = entcp::notify::get_message(&s.store, &reminders[0]).await.unwrap().next_attempt_at;
    assert_eq!(ts(&next), paris("2027-05-18 08:00"));
    let history = s.get(&s.teacher, &format!("/support/tickets/{id}/history")).await.body;
    assert!(history.to_string().contains("relance du demandeur"), "{history}");
}

// Two runs of `support-reminders` at once (two replicas) both listed the ticket, then each
// locked it and found it still waiting: the requester got two reminders. Under the lock the
// run checks that nobody reminded it since the wait began.
race_test!(two_reminder_runs_at_once_remind_a_waiting_requester_once);
async fn two_reminder_runs_at_once_remind_a_waiting_requester_once(db: crate::common::TestDb) {
    let s = setup(&db).await;
    s.at("2027-05-14 17:00");
    let new = json!({ "tenant": "college-jules-verne", "subject": "Import des notes", "description": "Les notes du trimestre manquent.", "category": "donnees", "impact": "moyenne", "urgency": "basse" });
    let id = s.post(&s.teacher, "/support/tickets", new).await.body["id"].as_str().unwrap().to_string();
    s.at("2027-05-14 17:30");
    s.act(&s.n1, &id, "transition", json!({ "to": "waiting_requester", "message": "Quelle classe ?" }), 200).await;
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let a = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone());
    let b = crate::common::app::app_state(replica_b.clone(), Config::default(), s.clock.clone());
    let at = paris("2027-05-18 09:00");
    // Both runs list the ticket, then wait for its lock.
    let hold = common::hold_writes(&s.store, "SELECT id FROM support_tickets WHERE id = $1 FOR UPDATE", &[&id]).await;
    let runs = [a, b]
        .map(|state| tokio::spawn(async move { entcp::support::jobs::remind(&state.support(), at).await.unwrap() }));
    common::let_them_queue().await;
    hold.commit().await.unwrap();
    let mut reminded = 0;
    for run in runs {
        reminded += run.await.unwrap();
    }
    assert_eq!(reminded, 1, "{}: one run reminds, the other finds it done", db.name);
    assert_eq!(mails(&s.store, "reminder", "prof.svt@ac-nantes.fr").await.len(), 1, "{}", db.name);
    let events = common::count(
        &s.store,
        "SELECT COUNT(*) FROM support_events WHERE ticket_id = $1 AND kind = 'reminder'",
        &[&id],
    )
    .await;
    assert_eq!(events, 1, "{}", db.name);
    replica_b.close().await;
}

/// A ticket of the teacher the N1 asks a question on at `asked` (Paris time): its id.
async fn question_asked(s: &Story, opened: &str, asked: &str) -> String {
    question_asked_in(s, "acces", opened, asked).await
}

/// [`question_asked`] on a ticket of `category`.
async fn question_asked_in(s: &Story, category: &str, opened: &str, asked: &str) -> String {
    s.at(opened);
    let new = json!({ "tenant": "college-jules-verne", "subject": "Import des notes", "description": "Les notes du trimestre manquent.", "category": category, "impact": "moyenne", "urgency": "basse" });
    let id = s.post(&s.teacher, "/support/tickets", new).await.body["id"].as_str().unwrap().to_string();
    s.at(asked);
    s.act(&s.n1, &id, "transition", json!({ "to": "waiting_requester", "message": "Quelle classe ?" }), 200).await;
    id
}

backend_test!(a_question_left_unanswered_fifteen_days_resolves_the_ticket_once_and_a_reply_reopens_it);
async fn a_question_left_unanswered_fifteen_days_resolves_the_ticket_once_and_a_reply_reopens_it(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    let id = question_asked(&s, "2027-05-14 17:00", "2027-05-14 17:30").await;
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone()).support();
    let resolve = |at: &str| entcp::support::jobs::resolve_unanswered(&state, paris(at));
    assert_eq!(resolve("2027-05-29 17:29").await.unwrap().0, 0, "{}: not yet 15 days", db.name);
    // Saturday: the requester could not be told before Monday, so the ticket waits for then
    // (they keep the whole delay to reopen it after reading the notice).
    assert_eq!(resolve("2027-05-29 17:31").await.unwrap().0, 0, "{}: N1 closed", db.name);
    assert_eq!(resolve("2027-05-30 09:00").await.unwrap().0, 0, "{}: N1 closed", db.name);
    assert_eq!(resolve("2027-05-31 08:00").await.unwrap().0, 1, "{}: at the opening", db.name);
    assert_eq!(resolve("2027-05-31 09:00").await.unwrap().0, 0, "{}: once", db.name);

    let ticket = s.get(&s.teacher, &format!("/support/tickets/{id}")).await.body;
    assert_eq!(ticket["status"], "resolved", "{}: {ticket}", db.name);
    let history = s.get(&s.teacher, &format!("/support/tickets/{id}/history")).await.body;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("waiting_requester"), Some("resolved")), "{last}");
    assert_eq!(last["body"], "résolu sans réponse du demandeur après 15 jours", "{last}");
    // The waiting time counts for nothing: N1 held it 30 minutes, then asked its question.
    let n1 = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body["sla"]["levels"][0].clone();
    assert_eq!((n1["held_seconds"].as_i64(), n1["resolution_seconds"].as_i64()), (Some(1800), Some(1800)), "{n1}");
    // The requester is told at once: in their working hours, Monday at 08:00.
    let told = common::queued_mails(&s.store, "support").await;
    let told: Vec<_> = told.iter().filter(|m| m.context["event"] == "unanswered").collect();
    assert_eq!(told.len(), 1, "{}", db.name);
    assert!(
        told[0].recipients.contains("prof.svt@ac-nantes.fr") && told[0].context["days"] == 15,
        "{}",
        told[0].context
    );
    let next = entcp::notify::get_message(&s.store, &told[0].id).await.unwrap().next_attempt_at;
    assert_eq!(ts(&next), paris("2027-05-31 08:00"));
    assert_eq!(common::audited_on(&s.store, "support.tickets.auto_resolve", &id).await, 1, "{}", db.name);

    // Their reply reopens it, as on any resolved ticket.
    s.at("2027-05-31 10:00");
    let r = s.post(&s.teacher, &format!("/support/tickets/{id}/comments"), json!({ "body": "La 4e B." })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.get(&s.teacher, &format!("/support/tickets/{id}")).await.body["status"], "in_progress");
}

// A requester's question on their data is not closed for their silence.
backend_test!(a_question_on_personal_data_is_never_resolved_for_silence);
async fn a_question_on_personal_data_is_never_resolved_for_silence(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = question_asked_in(&s, "donnees", "2027-05-14 17:00", "2027-05-14 17:30").await;
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone()).support();
    let (resolved, failed) = entcp::support::jobs::resolve_unanswered(&state, paris("2027-06-14 10:00")).await.unwrap();
    assert_eq!((resolved, failed.len()), (0, 0), "{}", db.name);
    assert_eq!(s.get(&s.admin, &format!("/support/tickets/{id}")).await.body["status"], "waiting_requester");
}

// One ticket whose resolution fails is skipped, logged and named; the others are resolved.
backend_test!(a_ticket_whose_auto_resolution_fails_does_not_stop_the_others);
async fn a_ticket_whose_auto_resolution_fails_does_not_stop_the_others(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let first = question_asked(&s, "2027-05-14 17:00", "2027-05-14 17:30").await;
    let second = question_asked(&s, "2027-05-14 17:00", "2027-05-14 17:30").await;
    let (failing, other) = if first < second { (first, second) } else { (second, first) };
    common::inject_fault(
        &s.store,
        "support_tickets",
        "UPDATE",
        &format!("NEW.id = '{failing}' AND NEW.status = 'resolved'"),
    )
    .await;
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone()).support();
    let pass = entcp::support::jobs::follow_up_waiting(&state, paris("2027-06-01 09:00")).await.unwrap();
    common::lift_fault(&s.store, "support_tickets").await;
    assert_eq!((pass.resolved, pass.failed.clone()), (1, vec![failing.clone()]), "{}", db.name);
    assert!(pass.outcome().contains(&format!("en échec : {failing}")), "{}", pass.outcome());
    assert_eq!(s.get(&s.admin, &format!("/support/tickets/{other}")).await.body["status"], "resolved");
    assert_eq!(s.get(&s.admin, &format!("/support/tickets/{failing}")).await.body["status"], "waiting_requester");
}

backend_test!(a_reply_before_the_fifteen_days_keeps_the_ticket_open_and_a_new_question_waits_its_own_fifteen_days);
async fn a_reply_before_the_fifteen_days_keeps_the_ticket_open_and_a_new_question_waits_its_own_fifteen_days(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    let id = question_asked(&s, "2027-05-14 17:00", "2027-05-14 17:30").await;
    s.at("2027-05-24 10:00");
    let r = s.post(&s.teacher, &format!("/support/tickets/{id}/comments"), json!({ "body": "La 4e B." })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone()).support();
    let resolve = |at: &str| entcp::support::jobs::resolve_unanswered(&state, paris(at));
    assert_eq!(resolve("2027-05-31 09:00").await.unwrap().0, 0, "{}: answered in time", db.name);
    s.at("2027-06-01 10:00");
    s.act(&s.n1, &id, "transition", json!({ "to": "waiting_requester", "message": "Et l'autre ?" }), 200).await;
    assert_eq!(resolve("2027-06-10 09:00").await.unwrap().0, 0, "{}: 27 days since the first question", db.name);
    let path = format!("/support/tickets/{id}");
    assert_eq!(s.get(&s.admin, &path).await.body["status"], "waiting_requester");
    assert_eq!(resolve("2027-06-16 10:01").await.unwrap().0, 1, "{}: 15 days after the second", db.name);
    assert_eq!(s.get(&s.admin, &path).await.body["status"], "resolved");
}

// Only the N1 resolves: a ticket left waiting on its requester above N1 (asked there before
// only the N1 could ask; the API refuses it now) is never resolved for silence there; it waits
// for that level to hand the ticket back down.
backend_test!(a_question_left_unanswered_above_n1_is_not_resolved_for_silence);
async fn a_question_left_unanswered_above_n1_is_not_resolved_for_silence(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = question_asked(&s, "2027-05-12 09:00", "2027-05-12 09:30").await;
    // As the rows of a question the vendor asked at N3 before the rule.
    let vendor: String = sqlx::query_scalar("SELECT vendor_org_id FROM tenants WHERE slug = 'college-jules-verne'")
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    let at_n3 = "UPDATE support_tickets SET level = 'n3', reached_n3 = 1, n3_org_id = $1 WHERE id = $2";
    common::execute(&s.store, at_n3, &[&vendor, &id]).await;
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone()).support();
    let (resolved, failed) = entcp::support::jobs::resolve_unanswered(&state, paris("2027-06-14 10:00")).await.unwrap();
    assert_eq!((resolved, failed), (0, vec![]), "{}", db.name);
    let t = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body;
    assert_eq!((t["level"].as_str(), t["status"].as_str()), (Some("n3"), Some("waiting_requester")), "{}", db.name);
}

// Two runs of `support-reminders` at once (two replicas) each list the ticket unanswered for
// 15 days; under its lock the second finds it no longer waiting.
race_test!(two_runs_at_once_resolve_an_unanswered_ticket_once);
async fn two_runs_at_once_resolve_an_unanswered_ticket_once(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = question_asked(&s, "2027-05-14 17:00", "2027-05-14 17:30").await;
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let a = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone());
    let b = crate::common::app::app_state(replica_b.clone(), Config::default(), s.clock.clone());
    let at = paris("2027-06-01 09:00");
    let hold = common::hold_writes(&s.store, "SELECT id FROM support_tickets WHERE id = $1 FOR UPDATE", &[&id]).await;
    let runs = [a, b].map(|state| {
        tokio::spawn(async move { entcp::support::jobs::resolve_unanswered(&state.support(), at).await.unwrap() })
    });
    common::let_them_queue().await;
    hold.commit().await.unwrap();
    let mut resolved = 0;
    for run in runs {
        resolved += run.await.unwrap().0;
    }
    assert_eq!(resolved, 1, "{}: one run resolves, the other finds it done", db.name);
    assert_eq!(mails(&s.store, "unanswered", "prof.svt@ac-nantes.fr").await.len(), 1, "{}", db.name);
    let events =
        "SELECT COUNT(*) FROM support_events WHERE ticket_id = $1 AND kind = 'status' AND to_value = 'resolved'";
    assert_eq!(common::count(&s.store, events, &[&id]).await, 1, "{}", db.name);
    replica_b.close().await;
}

/// Archives college-jules-verne long ago (its purge due on 1 March 2027), then purges it on 12 May
/// 2027 at noon: its open tickets held it 60 days already, so the purge goes ahead over them. The
/// state it purged through.
async fn purge_college_at_noon(s: &Story, db: &crate::common::TestDb) -> entcp::api::AppState {
    let archive = "UPDATE tenants SET status = 'archived', archived_at = $1, purge_due_at = $2 \
                   WHERE slug = 'college-jules-verne'";
    common::execute(&s.store, archive, &["2026-12-01T00:00:00.000000Z", "2027-03-01T00:00:00.000000Z"]).await;
    let state = crate::common::app::app_state(s.store.clone(), common::app::test_config(), s.clock.clone());
    let purged = entcp::provisioning::purge::purge_due(&state.provisioning(), paris("2027-05-12 12:00")).await;
    assert_eq!(purged.unwrap(), ["college-jules-verne"], "{}", db.name);
    state
}

backend_test!(a_ticket_left_open_on_a_purged_tenant_is_closed_once_and_nothing_is_flagged_after_the_purge);
async fn a_ticket_left_open_on_a_purged_tenant_is_closed_once_and_nothing_is_flagged_after_the_purge(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    // P3: N1's first response is due at 13:00.
    s.at("2027-05-12 09:00");
    let new = json!({ "tenant": "college-jules-verne", "subject": "Import des notes", "description": "Les notes manquent.",
        "category": "donnees", "impact": "moyenne", "urgency": "moyenne" });
    let id = s.post(&s.teacher, "/support/tickets", new).await.body["id"].as_str().unwrap().to_string();
    // Archived long ago: its purge, held 60 days by the open ticket, goes ahead at noon.
    purge_college_at_noon(&s, &db).await;

    // The sweep after the first response's due date closes the ticket and flags nothing.
    s.at("2027-05-12 14:00");
    let report = s.sweep().await;
    assert_eq!((report.closed_purged, report.breaches), (1, 0), "{}: {report:?}", db.name);
    let ticket = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body;
    assert_eq!(ticket["status"], "closed", "{}: {ticket}", db.name);
    let n1 = &ticket["sla"]["levels"][0];
    assert_eq!(n1["held_seconds"], 3 * 3600, "{}: the clock stopped at the purge: {n1}", db.name);
    assert!(n1.get("first_response_due").is_none(), "{n1}");
    let history = s.get(&s.teacher, &format!("/support/tickets/{id}/history")).await.body;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["body"], "clôturé : les données de l'ENT ont été purgées", "{last}");
    assert_eq!((last["to"].as_str(), ts(last["at"].as_str().unwrap())), (Some("closed"), paris("2027-05-12 12:00")));
    let told = common::queued_mails(&s.store, "support").await;
    let told: Vec<_> = told.iter().filter(|m| m.context["event"] == "purged").collect();
    assert_eq!(told.len(), 1, "{}", db.name);
    assert!(told[0].recipients.contains("prof.svt@ac-nantes.fr"), "{}", told[0].recipients);
    assert_eq!(told[0].context["tenant"], "college-jules-verne");
    assert_eq!(common::audited_on(&s.store, "support.tickets.close_purged", &id).await, 1, "{}", db.name);

    // Later sweeps: nothing more, never a breach.
    s.at("2027-05-20 14:00");
    let report = s.sweep().await;
    assert_eq!((report.closed_purged, report.breaches), (0, 0), "{}: {report:?}", db.name);
    let flagged = "SELECT COUNT(*) FROM support_breaches WHERE ticket_id = $1";
    assert_eq!(common::count(&s.store, flagged, &[&id]).await, 0, "{}", db.name);
    let closes = "SELECT COUNT(*) FROM support_events WHERE ticket_id = $1 AND to_value = 'closed'";
    assert_eq!(common::count(&s.store, closes, &[&id]).await, 1, "{}", db.name);
}

// One ticket of a purged tenant whose closing fails is skipped, logged and named; the other
// is closed, the breach detection that follows still runs, and the sweep's job fails at its end.
backend_test!(a_ticket_of_a_purged_tenant_whose_closing_fails_does_not_stop_the_sweep);
async fn a_ticket_of_a_purged_tenant_whose_closing_fails_does_not_stop_the_sweep(db: crate::common::TestDb) {
    let s = setup(&db).await;
    // P3: N1's first responses are due at 13:00.
    s.at("2027-05-12 09:00");
    let mut ids = Vec::new();
    for subject in ["Import des notes", "Cahier de textes"] {
        let new = json!({ "tenant": "college-jules-verne", "subject": subject, "description": "Rien ne s'affiche.",
            "category": "acces", "impact": "moyenne", "urgency": "moyenne" });
        ids.push(s.post(&s.teacher, "/support/tickets", new).await.body["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    let (failing, other) = (ids[0].clone(), ids[1].clone());
    let state = purge_college_at_noon(&s, &db).await;

    s.at("2027-05-12 14:00");
    let when = format!("NEW.id = '{failing}' AND NEW.status = 'closed'");
    common::inject_fault(&s.store, "support_tickets", "UPDATE", &when).await;
    let report = s.sweep().await;
    let job = entcp::support::jobs::sweep_job(&state.support(), paris("2027-05-12 14:05")).await;
    common::lift_fault(&s.store, "support_tickets").await;
    assert_eq!((report.closed_purged, report.failed.clone()), (1, vec![failing.clone()]), "{}: {report:?}", db.name);
    assert!(report.outcome().contains(&format!("en échec : {failing}")), "{}", report.outcome());
    // The breach detection ran after the failure: the ticket left open missed its response.
    assert_eq!(report.breaches, 1, "{}: {report:?}", db.name);
    let flagged = "SELECT COUNT(*) FROM support_breaches WHERE ticket_id = $1";
    assert_eq!(common::count(&s.store, flagged, &[&failing]).await, 1, "{}", db.name);
    let job = job.expect_err("the job fails when a ticket failed").to_string();
    assert!(job.contains(&format!("en échec : {failing}")), "{}: {job}", db.name);
    assert_eq!(s.get(&s.admin, &format!("/support/tickets/{other}")).await.body["status"], "closed");
    assert_ne!(s.get(&s.admin, &format!("/support/tickets/{failing}")).await.body["status"], "closed");

    // The next sweep closes it.
    s.at("2027-05-12 14:10");
    let report = s.sweep().await;
    assert_eq!((report.closed_purged, report.failed.len()), (1, 0), "{}: {report:?}", db.name);
    assert_eq!(s.get(&s.admin, &format!("/support/tickets/{failing}")).await.body["status"], "closed");
}

backend_test!(the_sla_annex_of_the_active_convention_gives_the_support_contract);
/// A convention model with an SLA annex: the active convention covering a tenant gives its
/// support contract (policy and N1 here); without a convention the defaults apply.
async fn the_sla_annex_of_the_active_convention_gives_the_support_contract(db: crate::common::TestDb) {
    let store = &db.store;
    common::import_sample(store).await;
    let dir = tempfile::tempdir().unwrap();
    // The version new conventions open on (the latest) carries the annex.
    let shipped = include_str!("../../../../conventions/tripartite-premier-degre-v3.yaml");
    let with_annex = format!("{shipped}\nsupport:\n  policy: renforce\n  n1: collectivite\n");
    std::fs::write(dir.path().join("tripartite-premier-degre-v3.yaml"), with_annex).unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        conventions_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let state = crate::common::app::app_state(store.clone(), config, Arc::new(FixedClock::new(t0())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let app = entcp::api::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tenant = |slug: &str, uai: &str| {
        let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": uai, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
        }))
        .unwrap();
        let state = state.clone();
        async move { entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap().1 }
    };
    let covered = tenant("doisneau", "0940176F").await;
    let uncovered = tenant("wallon", "0940198E").await;

    let dan =
        client_with(&token_for(store, "dan@ac-creteil.fr", entcp::kernel::roles::Role::Dan, Some("academie:24")).await);
    let mairie = client_with(
        &token_for(store, "ent@fresnes.fr", entcp::kernel::roles::Role::Collectivite, Some("commune:94034")).await,
    );
    let directeur = client_with(
        &token_for(store, "dir@ecole.fr", entcp::kernel::roles::Role::ChefEtablissement, Some("0940176F")).await,
    );
    let convention = crate::common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": "2026-09-01"
    }));
    let conv: Value =
        dan.post(format!("{base}/conventions")).json(&convention).send().await.unwrap().json().await.unwrap();
    let id = conv["id"].as_str().unwrap_or_else(|| panic!("{}: {conv}", db.name));
    dan.post(format!("{base}/conventions/{id}/submit")).json(&json!({})).send().await.unwrap();
    for who in [&dan, &mairie, &directeur] {
        let signed = who
            .post(format!("{base}/conventions/{id}/sign"))
            .json(&crate::common::fixtures::by_delegation(json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 200, "{}", db.name);
    }
    let conv: Value = dan.get(format!("{base}/conventions/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(conv["status"], "active", "{}: {conv}", db.name);

    let contract = entcp::support::resolve_contract(&state.support(), &covered, None, t0()).await.unwrap();
    assert_eq!(contract.policy, "renforce", "{}: the annex's policy", db.name);
    assert_eq!(contract.n1.code, "94034", "{}: the annex names the collectivité as N1", db.name);
    assert_eq!(contract.n2.as_ref().map(|o| o.code.as_str()), Some("24"), "{}: N2 stays the académie", db.name);
    let default = entcp::support::resolve_contract(&state.support(), &uncovered, None, t0()).await.unwrap();
    assert_eq!((default.policy.as_str(), default.n1.code.as_str()), ("standard", "0940198E"), "{}", db.name);
}

/// The ticket ids and every event's sequence number, per ticket, in order.
async fn sequences(store: &Store, ticket_id: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT seq FROM support_events WHERE ticket_id = $1 ORDER BY seq")
        .bind(ticket_id)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// A pool of `size` connections whose requests wait up to 20 s for one.
fn patient_pool(size: u32) -> entcp::store::PoolOptions {
    entcp::store::PoolOptions {
        max_connections: Some(size),
        acquire_timeout: std::time::Duration::from_secs(20),
        ..Default::default()
    }
}

/// Statuses of `n` POSTs of `body` to `path` sent at once.
async fn at_once(base: &str, token: &str, path: &str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let (client, url) = (client_with(token), format!("{base}/api/v1{path}"));
        tasks.spawn(async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    tasks.join_all().await
}

backend_test!(writers_at_three_times_the_pool_size_create_and_comment_without_an_error);
async fn writers_at_three_times_the_pool_size_create_and_comment_without_an_error(db: crate::common::TestDb) {
    const POOL: u32 = 3;
    let s = setup(&db).await;
    s.at("2027-05-12 09:00");
    // A server whose pool is small: each writer must hold one connection only. A writer
    // waiting for a second connection would wait for ever: the long wait fails it, not the load.
    let small = Store::connect_with(&db.url, patient_pool(POOL)).await.unwrap();
    let base = common::serve(small, s.clock.clone()).await;
    let new = |i: u32| {
        json!({ "tenant": "college-jules-verne", "subject": format!("Panne {i}"), "description": "Rien ne s'affiche.",
                "category": "acces", "impact": "basse", "urgency": "basse" })
    };
    let created = at_once(&base, &s.teacher, "/support/tickets", (0..POOL * 3).map(new).collect()).await;
    assert!(created.iter().all(|(status, _)| *status == 201), "{}: {created:?}", db.name);
    let ids: Vec<String> = created.iter().map(|(_, t)| t["id"].as_str().unwrap().to_string()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (base, n1) = (base.clone(), s.n1.clone());
        tasks.spawn(async move {
            let bodies =
                vec![json!({ "body": "Nous regardons." }), json!({ "body": "Note", "visibility": "internal" })];
            at_once(&base, &n1, &format!("/support/tickets/{id}/comments"), bodies).await
        });
    }
    let comments: Vec<(u16, Value)> = tasks.join_all().await.into_iter().flatten().collect();
    assert!(comments.iter().all(|(status, _)| *status == 201), "{}: {comments:?}", db.name);
    for id in &ids {
        assert_eq!(sequences(&s.store, id).await, vec![1, 2, 3], "{}", db.name);
    }
}

backend_test!(fifty_simultaneous_comments_on_one_ticket_all_succeed_with_sequences_without_gaps);
async fn fifty_simultaneous_comments_on_one_ticket_all_succeed_with_sequences_without_gaps(db: crate::common::TestDb) {
    let s = setup(&db).await;
    s.at("2027-05-12 09:00");
    let new = json!({ "tenant": "college-jules-verne", "subject": "Panne", "description": "Rien ne s'affiche.",
                      "category": "acces", "impact": "basse", "urgency": "basse" });
    let t = s.post(&s.teacher, "/support/tickets", new).await.body;
    let id = t["id"].as_str().unwrap();
    // The 50 queue on the ticket's row; a patient pool keeps slow machines from answering 503.
    let base = common::serve(Store::connect_with(&db.url, patient_pool(5)).await.unwrap(), s.clock.clone()).await;
    let bodies = (0..50).map(|i| json!({ "body": format!("Commentaire {i}") })).collect();
    let answers = at_once(&base, &s.n1, &format!("/support/tickets/{id}/comments"), bodies).await;
    assert!(answers.iter().all(|(status, _)| *status == 201), "{}: {answers:?}", db.name);
    assert_eq!(sequences(&s.store, id).await, (1..=51).collect::<Vec<i64>>(), "{}", db.name);
}

backend_test!(every_ticket_change_runs_on_a_pool_of_one_connection);
async fn every_ticket_change_runs_on_a_pool_of_one_connection(db: crate::common::TestDb) {
    let s = setup(&db).await;
    s.at("2027-05-12 09:00");
    // A change asking the pool for a second connection while its transaction holds the only one
    // would wait out the acquire timeout and fail.
    let options = entcp::store::PoolOptions {
        max_connections: Some(1),
        acquire_timeout: std::time::Duration::from_secs(3),
        ..Default::default()
    };
    let one = Store::connect_with(&db.url, options).await.unwrap();
    let s = Story { app: common::TestApp::over(&one).clock(s.clock.clone()).build().await, ..s };
    let new = json!({ "tenant": "college-jules-verne", "subject": "Panne", "description": "Rien ne s'affiche.",
                      "category": "acces", "impact": "basse", "urgency": "basse" });
    let created = s.post(&s.teacher, "/support/tickets", new).await;
    assert_eq!(created.status, 201, "{}: {}", db.name, created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let comments = format!("/support/tickets/{id}/comments");
    for (who, body) in
        [(&s.n1, json!({ "body": "Nous regardons." })), (&s.n1, json!({ "body": "Note", "visibility": "internal" }))]
    {
        let r = s.post(who, &comments, body).await;
        assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    }
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Import à vérifier." }), 200).await;
    s.act(&s.n2, &id, "return", json!({ "answer": "Relancez l'import." }), 200).await;
    s.act(&s.n1, &id, "transition", json!({ "to": "waiting_requester", "message": "Est-ce mieux ?" }), 200).await;
    let r = s.post(&s.teacher, &comments, json!({ "body": "Toujours vide." })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    s.act(&s.n1, &id, "transition", json!({ "to": "resolved", "message": "Corrigé." }), 200).await;
    s.act(&s.teacher, &id, "transition", json!({ "to": "closed" }), 200).await;
}

impl Story {
    /// `POST /support/tickets/{id}/attachments?{query}` with `bytes` as the raw body.
    async fn attach(&self, token: &str, id: &str, query: &str, bytes: &[u8]) -> common::app::Resp {
        let path = format!("/api/v1/support/tickets/{id}/attachments?{query}");
        self.app
            .request(Method::POST, &path)
            .bearer(token)
            .bytes("application/octet-stream", bytes.to_vec())
            .send()
            .await
    }

    /// `GET /api/v1{path}` as it answers, bytes and headers.
    async fn raw_get(&self, token: &str, path: &str) -> common::app::Resp {
        self.app.request(Method::GET, &format!("/api/v1{path}")).bearer(token).send().await
    }
}

backend_test!(attachments_through_the_api_follow_the_tickets_visibility_and_are_never_served_inline);
async fn attachments_through_the_api_follow_the_tickets_visibility_and_are_never_served_inline(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    let new = json!({ "tenant": "college-jules-verne", "subject": "Écran figé", "description": "L'ENT se fige.", "category": "acces", "impact": "basse", "urgency": "basse" });
    let created = s.post(&s.teacher, "/support/tickets", new).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let files = format!("/support/tickets/{id}/attachments");

    // The requester joins a PDF; an HTML page named .pdf and an internal file are refused, nothing stored.
    let pdf = b"%PDF-1.7\n% capture\n".to_vec();
    let r = s.attach(&s.teacher, &id, "name=capture%20%C3%A9cran.pdf", &pdf).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body[0]["file_name"], "capture écran.pdf", "{}", r.text);
    assert_eq!(
        (r.body[0]["content_type"].as_str(), r.body[0]["size"].as_i64()),
        (Some("application/pdf"), Some(pdf.len() as i64))
    );
    let pdf_id = r.body[0]["id"].as_str().unwrap().to_string();
    // Sent again (its answer lost): the same attachment answers, nothing is stored twice.
    let again = s.attach(&s.teacher, &id, "name=capture%20%C3%A9cran.pdf", &pdf).await;
    assert_eq!((again.status, again.body[0]["id"].as_str()), (201, Some(pdf_id.as_str())), "{}", again.text);
    let r = s.attach(&s.teacher, &id, "name=faux.pdf", b"<html><script>alert(1)</script></html>").await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("file")), "{}", r.text);
    let r = s.attach(&s.teacher, &id, "name=note.txt&visibility=internal", b"interne").await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r =
        s.attach(&s.teacher, &id, "name=trop.pdf", &[b"%PDF-".as_slice(), &vec![b'x'; 5 * 1024 * 1024]].concat()).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(s.get(&s.teacher, &files).await.body.as_array().map(Vec::len), Some(1));

    // N1 joins an internal file; the requester never lists nor reads it.
    let r = s.attach(&s.n1, &id, "name=journal.txt&visibility=internal", b"trace du serveur\n").await;
    assert_eq!((r.status, r.body[0]["visibility"].as_str()), (201, Some("internal")), "{}", r.text);
    let journal_id = r.body[0]["id"].as_str().unwrap().to_string();
    let listed = s.get(&s.n1, &files).await.body;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let listed = s.get(&s.teacher, &files).await.body;
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|a| a["file_name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["capture écran.pdf"], "{listed}");
    assert_eq!(s.raw_get(&s.teacher, &format!("{files}/{journal_id}")).await.status, 404);

    // Downloaded as an attachment, never sniffed nor run, byte for byte.
    let file = s.raw_get(&s.teacher, &format!("{files}/{pdf_id}")).await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert_eq!(file.bytes, pdf);
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    assert!(file.header("content-disposition").unwrap().starts_with("attachment; filename=\"capture--cran.pdf\""));
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    assert!(file.header("content-security-policy").unwrap().contains("sandbox"));

    // The vendor sees nothing before N3, then the public file only, its author pseudonymised.
    assert_eq!(s.get(&s.n3, &files).await.status, 404);
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Besoin de la DANE." }), 200).await;
    s.act(&s.n2, &id, "escalate", json!({ "reason": "Anomalie de l'éditeur." }), 200).await;
    let listed = s.get(&s.n3, &files).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{}", listed.body);
    assert_eq!(listed.body[0]["id"], pdf_id.as_str());
    assert!(!listed.body.to_string().contains("prof.svt"), "{}", listed.body);
    assert_eq!(s.raw_get(&s.n3, &format!("{files}/{journal_id}")).await.status, 404);

    // A user of another school neither lists, reads nor adds: not revealed.
    let other = token_for(&s.store, "prof@ac-rennes.fr", entcp::kernel::roles::Role::Usager, Some("0350001L")).await;
    assert_eq!(s.get(&other, &files).await.status, 404);
    assert_eq!(s.raw_get(&other, &format!("{files}/{pdf_id}")).await.status, 404);
    let r = s.attach(&other, &id, "name=x.pdf", &pdf).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let audited = common::audited_on(&s.store, "support.tickets.attach", &id).await;
    assert_eq!(audited, 2, "{}: one audit row per accepted upload", db.name);
}

/// The actor `email` acts as, with the roles it holds.
async fn actor_of(store: &Store, email: &str) -> entcp::identity::Actor {
    let user = entcp::identity::get_user(store, email).await.unwrap().expect("the user exists");
    let bindings = entcp::identity::bindings_of(store, &user.id).await.unwrap();
    entcp::identity::Actor { user_id: Some(user.id), name: format!("user:{email}"), bindings }
}

backend_test!(a_page_of_tickets_takes_as_many_statements_at_ten_as_at_two);
async fn a_page_of_tickets_takes_as_many_statements_at_ten_as_at_two(db: common::TestDb) {
    use crate::console_tickets::{desk, N1, N2, N3, OTHER_N1, TENANT, USAGER};
    use entcp::support::tickets::{self, Ctx, EscalateInput, NewTicket, Ticket, TicketFilter};
    desk(&db.store).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let support = common::app::app_state(db.store.clone(), Config::default(), clock.clone()).support();
    // Twelve tickets of the usager; all but two reach the vendor (N1 → N2 → N3), every
    // other one with the requester's identity shared.
    let usager = actor_of(&db.store, USAGER).await;
    let operator = admin();
    for k in 0..12 {
        let new = NewTicket {
            tenant: TENANT.into(),
            subject: format!("Panne {k}"),
            description: "Décrite par le test.".into(),
            category: "acces".into(),
            service: None,
            impact: "haute".into(),
            urgency: "moyenne".into(),
            priority: None,
        };
        let mut t = tickets::create(&Ctx { state: &support, actor: &usager, now: t0() }, new).await.unwrap();
        if k >= 2 {
            let ctx = Ctx { state: &support, actor: &operator, now: t0() };
            for share_requester in [false, k % 2 == 0] {
                let up = EscalateInput { reason: "Hors de portée de ce niveau.".into(), share_requester };
                t = tickets::escalate(&ctx, &t.id, t.version, up).await.unwrap();
            }
        }
    }
    // A store of its own, so that only the listing's statements run on it.
    let store = Store::connect(&db.url, Some(1)).await.unwrap();
    let listing = common::app::app_state(store.clone(), Config::default(), clock).support();
    let callers = [(N1, 12), (N2, 12), (N3, 10), (USAGER, 12), (OTHER_N1, 0)];
    let mut actors = Vec::new();
    for (email, sees) in callers {
        actors.push((email, sees, actor_of(&store, email).await));
    }
    let statements = common::logs::Statements::capture();
    for (email, sees, actor) in &actors {
        let ctx = Ctx { state: &listing, actor, now: t0() };
        let mut counts = Vec::new();
        for size in [2, 10] {
            let before = statements.count();
            let filter = TicketFilter { limit: Some(size), ..Default::default() };
            let page = tickets::list(&ctx, &filter).await.unwrap();
            counts.push((statements.count() - before, statements.since(before)));
            assert_eq!(page.items.len(), (*sees).min(size as usize), "{} {email}", db.name);
            // Each ticket of the page is what its own read shows the caller (but the SLA
            // clocks, which only a single read derives).
            for listed in &page.items {
                let alone = tickets::get(&ctx, &listed.id).await.unwrap();
                let alone = serde_json::to_value(Ticket { sla: None, ..alone }).unwrap();
                assert_eq!(serde_json::to_value(listed).unwrap(), alone, "{} {email}", db.name);
            }
            // What each kind of caller may see of the tickets.
            let json = serde_json::to_value(&page.items).unwrap();
            let pseudonymous = json.as_array().unwrap().iter().filter(|t| t["requester"]["pseudonymous"] == true);
            let flagged = json.as_array().unwrap().iter().filter(|t| t.get("convention_flag").is_some());
            match *email {
                N3 => {
                    assert!(json.as_array().unwrap().iter().all(|t| t["level"] == "n3"), "{json}");
                    if size == 10 {
                        assert_eq!(pseudonymous.count(), 5, "{} the five unshared ones: {json}", db.name);
                    }
                    assert_eq!(flagged.count(), 0, "{json}");
                }
                USAGER => {
                    assert_eq!((pseudonymous.count(), flagged.count()), (0, 0), "{json}");
                    assert!(page.items.iter().all(|t| t.breaches.is_none() && t.assigned_team.is_none()), "{json}");
                }
                _ => {
                    assert_eq!(pseudonymous.count(), 0, "{json}");
                    assert_eq!(flagged.count(), page.items.len(), "the staff sees the flag: {json}");
                }
            }
        }
        let ((two, _), (ten, ten_run)) = (&counts[0], &counts[1]);
        assert_eq!(two, ten, "{} {email}: a page of 10 takes the statements of a page of 2: {ten_run:#?}", db.name);
        assert!(*ten <= 2, "{} {email}: the page, then its organisations in the caller's scope: {ten_run:#?}", db.name);
    }
}

backend_test!(a_comment_retried_with_its_idempotency_key_is_written_once);
async fn a_comment_retried_with_its_idempotency_key_is_written_once(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let new = json!({ "tenant": "college-jules-verne", "subject": "Mot de passe oublié",
        "description": "Un élève ne peut plus se connecter.", "category": "acces", "impact": "basse", "urgency": "basse" });
    let created = s.post(&s.teacher, "/support/tickets", new).await;
    assert_eq!(created.status, 201, "{}: {}", db.name, created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/support/tickets/{id}/comments");
    let comments = async || {
        let sql = "SELECT COUNT(*) AS n FROM support_events WHERE ticket_id = $1 AND kind = 'comment'";
        common::count(&s.store, sql, &[id.as_str()]).await
    };
    // A client whose first answer was lost (a timeout) sends the same comment again with
    // the same key: the first answer is replayed, the comment is written once.
    let body = json!({ "body": "Nous regardons." });
    let send = async |key: &str| {
        s.app.request(Method::POST, &path).bearer(&s.n1).header("idempotency-key", key).json(&body).send().await
    };
    let first = send("reponse-1").await;
    let retried = send("reponse-1").await;
    assert_eq!((first.status, retried.status), (201, 201), "{}: {} / {}", db.name, first.text, retried.text);
    assert_eq!(retried.text, first.text, "{}: the first answer replayed", db.name);
    assert_eq!(comments().await, 1, "{}: one comment for one key", db.name);
    // Another key is another comment.
    assert_eq!(send("reponse-2").await.status, 201, "{}", db.name);
    assert_eq!(comments().await, 2, "{}", db.name);
}

backend_test!(a_ticket_is_assigned_only_to_someone_who_handles_it_at_its_level);
async fn a_ticket_is_assigned_only_to_someone_who_handles_it_at_its_level(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let rennes_n1 = "rup.annedebretagne@ac-rennes.fr";
    token_for(&s.store, rennes_n1, entcp::kernel::roles::Role::SupportN1, Some("0350001L")).await;
    let new = json!({ "tenant": "college-jules-verne", "subject": "Mot de passe oublié",
        "description": "Un élève ne peut plus se connecter.", "category": "acces", "impact": "basse", "urgency": "basse" });
    let created = s.post(&s.teacher, "/support/tickets", new).await;
    assert_eq!(created.status, 201, "{}: {}", db.name, created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let version = created.body["version"].as_i64().unwrap();
    // At N1: neither the académie's N2, nor the requester, nor another school's N1, nor an
    // address nobody has; each refused alike, so that a refusal tells nothing of who exists.
    for who in ["dane@ac-nantes.fr", "prof.svt@ac-nantes.fr", rennes_n1, "personne@ac-nantes.fr"] {
        let r = s.patch_ticket(&s.n1, &id, json!({ "assignee": who }), version).await;
        assert_eq!(r.status, 422, "{}: {who}: {}", db.name, r.body);
        let said = r.body.to_string();
        assert!(said.contains("ne traite pas les tickets du niveau N1"), "{}: {who}: {said}", db.name);
        assert!(!said.contains("aucun utilisateur"), "{}: {who}: {said}", db.name);
    }
    let ticket = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body;
    assert_eq!((ticket["version"].as_i64(), ticket.get("assignee")), (Some(version), None), "{}: {ticket}", db.name);
    // The school's N1 may be given it.
    let r = s.patch_ticket(&s.n1, &id, json!({ "assignee": "rup.julesverne@ac-nantes.fr" }), version).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);
    assert!(r.body["assignee"].is_string(), "{}: {}", db.name, r.body);
}

backend_test!(a_resolution_committed_while_the_sweep_runs_is_not_undone_by_its_escalation);
async fn a_resolution_committed_while_the_sweep_runs_is_not_undone_by_its_escalation(db: crate::common::TestDb) {
    // SQLite's `BEGIN IMMEDIATE` queues the sweep behind any writer: only PostgreSQL lets a
    // pass read a ticket that a change is about to commit.
    if db.name == "sqlite" {
        return;
    }
    let s = setup(&db).await;
    let renforce = Some(json!({ "policy": "renforce" }));
    let r = s.call(&s.admin, Method::PUT, "/support/contracts/academie:17", renforce, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let Opened { id, ticket: t, .. } = s.open("2027-05-10 09:00", nantes().graded("haute", "haute")).await;
    assert_eq!(t["priority"], "P1", "{t}");

    // 22:00: the P1 resolution is overdue and the policy escalates it; at that very moment the
    // N1 resolves it: its change (the status, its log entry, no due date left) holds the row.
    s.at("2027-05-10 22:00");
    let now = paris("2027-05-10 22:00");
    let mut resolving = s.store.pool().begin().await.unwrap();
    let seq: i64 = sqlx::query_scalar(
        "UPDATE support_tickets SET last_seq = last_seq + 1, status = 'resolved', resolved_at = $1, \
         first_response_due = NULL, resolution_due = NULL, next_due = NULL, version = version + 1 \
         WHERE id = $2 RETURNING last_seq",
    )
    .bind(entcp::store::timestamp(now))
    .bind(&id)
    .fetch_one(&mut *resolving)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO support_events (id, ticket_id, seq, at, actor, actor_level, kind, from_value, to_value, \
         visibility) VALUES ($1, $2, $3, $4, 'rup.julesverne@ac-nantes.fr', 'n1', 'status', 'new', 'resolved', 'public')",
    )
    .bind(entcp::store::new_id())
    .bind(&id)
    .bind(seq)
    .bind(entcp::store::timestamp(now))
    .execute(&mut *resolving)
    .await
    .unwrap();
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone());
    let sweep = tokio::spawn(async move { entcp::support::jobs::sweep(&state.support(), now).await.unwrap() });
    // The resolution commits once the pass is over or waits for the row.
    let waiting =
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    for _ in 0..600 {
        if sweep.is_finished() || common::count(&s.store, waiting, &[]).await > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    resolving.commit().await.unwrap();
    let report = sweep.await.unwrap();
    assert_eq!(report.escalated, 0, "{report:?}");
    let t = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body;
    assert_eq!((t["level"].as_str(), t["status"].as_str()), (Some("n1"), Some("resolved")), "{t}");
    assert!(mails(&s.store, "escalated", "dane@ac-nantes.fr").await.is_empty(), "no escalation notice");
}

backend_test!(a_reply_on_several_lines_reads_on_several_lines_in_the_html_mail_and_its_markup_as_text);
async fn a_reply_on_several_lines_reads_on_several_lines_in_the_html_mail_and_its_markup_as_text(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    let new = json!({ "tenant": "college-jules-verne", "subject": "Mot de passe oublié",
        "description": "Un élève ne peut plus se connecter.", "category": "acces", "impact": "basse", "urgency": "basse" });
    let id = s.post(&s.teacher, "/support/tickets", new).await.body["id"].as_str().unwrap().to_string();
    let body = json!({ "body": "Redémarrez le poste,\r\npuis ouvrez <b>Mon compte</b>." });
    assert_eq!(s.post(&s.n1, &format!("/support/tickets/{id}/comments"), body).await.status, 201, "{}", db.name);
    let mail = common::queued_mails(&s.store, "support").await.into_iter().find(|m| m.context["event"] == "comment");
    let mail = mail.unwrap_or_else(|| panic!("{}: no mail of the reply", db.name));
    let rendered = entcp::notify::mailer::render("support", &mail.context).unwrap();
    let html = rendered.html;
    assert!(
        html.contains("Redémarrez le poste,<br>puis ouvrez &lt;b&gt;Mon compte&lt;&#x2F;b&gt;."),
        "{}: {html}",
        db.name
    );
    assert!(!html.contains("&lt;br&gt;"), "{}: {html}", db.name);
    assert!(rendered.text.contains("Redémarrez le poste,\r\npuis ouvrez <b>Mon compte</b>."), "{}", db.name);
}

/// A ticket on the Nantes collège opened at `at` (Paris); its id.
async fn ticket_at(s: &Story, at: &str, subject: &str) -> String {
    s.open(at, nantes().about(subject, "Rien ne s'affiche.").graded("basse", "basse")).await.id
}

/// The report rows' keys and `handled` figures.
fn handled_by_key(report: &Value) -> Vec<(String, i64)> {
    let rows = report.as_array().unwrap_or_else(|| panic!("{report}"));
    rows.iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["handled"].as_i64().unwrap())).collect()
}

/// Tickets in a report row's backlog, whatever their status.
fn backlog_total(row: &Value) -> i64 {
    row["backlog"].as_object().unwrap().values().map(|n| n.as_i64().unwrap()).sum()
}

backend_test!(the_vendor_reports_on_its_own_level_only_even_on_tickets_returned_below);
async fn the_vendor_reports_on_its_own_level_only_even_on_tickets_returned_below(db: crate::common::TestDb) {
    let s = setup(&db).await;
    ticket_at(&s, "2027-05-12 09:00", "Mot de passe oublié").await;
    let id = ticket_at(&s, "2027-05-12 09:10", "Le connecteur ne remonte plus la 5e B").await;
    s.at("2027-05-12 10:00");
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Import à vérifier par la DANE." }), 200).await;
    s.at("2027-05-12 11:00");
    s.act(&s.n2, &id, "escalate", json!({ "reason": "Anomalie du connecteur de l'éditeur." }), 200).await;
    // The vendor answers and sends the ticket back to N2: it still sees it (it reached N3),
    // but it is now N2's.
    s.at("2027-05-12 14:00");
    s.act(&s.n3, &id, "return", json!({ "answer": "Connecteur corrigé." }), 200).await;
    assert_eq!(s.get(&s.n3, &format!("/support/tickets/{id}")).await.status, 200);

    let vendor = s.get(&s.n3, "/support/report").await;
    assert_eq!(vendor.status, 200, "{}", vendor.body);
    assert_eq!(handled_by_key(&vendor.body), [("N3".to_string(), 1)], "{}: {}", db.name, vendor.body);
    assert_eq!(backlog_total(&vendor.body[0]), 0, "the ticket is at N2 now, not in the vendor's backlog");
    let per_tenant = s.get(&s.n3, "/support/report?by=tenant").await.body;
    assert_eq!(handled_by_key(&per_tenant), [("college-jules-verne".to_string(), 1)], "{per_tenant}");
    assert_eq!(backlog_total(&per_tenant[0]), 0, "{per_tenant}");
    let csv = s.app.get("/api/v1/support/report?format=csv").bearer(&s.n3).send().await.text;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("N3;0;0;0;0;0;1;"), "{csv}");
    // The académie keeps its three levels, the returned ticket in N2's backlog.
    let academie = s.get(&s.n2, "/support/report").await.body;
    let want = [("N1".to_string(), 2), ("N2".to_string(), 1), ("N3".to_string(), 1)];
    assert_eq!(handled_by_key(&academie), want, "{academie}");
    assert_eq!(backlog_total(&academie[1]), 1, "{academie}");
}

backend_test!(the_report_per_tenant_counts_each_ticket_once_and_compliance_only_over_settled_tickets);
async fn the_report_per_tenant_counts_each_ticket_once_and_compliance_only_over_settled_tickets(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    // C: Monday, never answered: its first response is breached by Wednesday.
    ticket_at(&s, "2027-05-10 09:00", "Agenda vide").await;
    // A: N1 → N2 → N3 → N2 → N1, resolved after 7 business hours (2 at N1, 2 at N2, 3 at N3).
    let a = ticket_at(&s, "2027-05-12 09:00", "Le connecteur ne remonte plus la 5e B").await;
    s.at("2027-05-12 09:30");
    s.post(&s.n1, &format!("/support/tickets/{a}/comments"), json!({ "body": "Nous regardons." })).await;
    s.at("2027-05-12 10:00");
    s.act(&s.n1, &a, "escalate", json!({ "reason": "Import à vérifier par la DANE." }), 200).await;
    s.at("2027-05-12 11:00");
    s.act(&s.n2, &a, "escalate", json!({ "reason": "Anomalie du connecteur." }), 200).await;
    s.at("2027-05-12 14:00");
    s.act(&s.n3, &a, "return", json!({ "answer": "Connecteur corrigé." }), 200).await;
    s.at("2027-05-12 15:00");
    s.act(&s.n2, &a, "return", json!({ "answer": "L'éditeur a corrigé." }), 200).await;
    s.at("2027-05-12 16:00");
    let done = json!({ "to": "resolved", "message": "Les séances sont revenues." });
    s.act(&s.n1, &a, "transition", done, 200).await;
    // B: open, unanswered, within its targets. D: open, answered, within its targets.
    ticket_at(&s, "2027-05-12 10:30", "Pas de notes").await;
    let d = ticket_at(&s, "2027-05-12 11:30", "Cahier de textes").await;
    s.at("2027-05-12 12:00");
    s.post(&s.n1, &format!("/support/tickets/{d}/comments"), json!({ "body": "Nous regardons." })).await;
    s.at("2027-05-12 16:30");
    assert_eq!(s.sweep().await.breaches, 1, "C's first response");

    let per_tenant = s.get(&s.n2, "/support/report?by=tenant").await.body;
    let row = per_tenant.as_array().unwrap().iter().find(|r| r["key"] == "college-jules-verne").unwrap().clone();
    assert_eq!(row["handled"], 4, "each ticket once: {row}");
    assert_eq!(row["breaches"], 1, "{row}");
    assert_eq!(
        (row["settled"].as_i64(), row["open_on_time"].as_i64(), row["unanswered"].as_i64()),
        (Some(2), Some(1), Some(1)),
        "{row}"
    );
    assert_eq!(row["compliance_percent"], 50.0, "A on time, C late; B and D undecided: {row}");
    assert_eq!(row["resolution_median_hours"], 7.0, "A end to end, not its levels' hand-offs: {row}");
    assert_eq!(row["first_response_median_hours"], 0.5, "{row}");
    let csv = s.app.get("/api/v1/support/report?format=csv&by=tenant").bearer(&s.n2).send().await.text;
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with(";conformite_pct;depassements;regles;en_cours_dans_les_delais;sans_reponse"), "{csv}");
    assert!(csv.contains("college-jules-verne;3;0;0;1;0;4;0,50;0,50;7,00;7,00;50,00;1;2;1;1"), "{csv}");

    // Per level, N1: A resolved and C breached are settled; B unanswered, D answered in time.
    let per_level = s.get(&s.n2, "/support/report").await.body;
    let n1 = per_level.as_array().unwrap().iter().find(|r| r["key"] == "N1").unwrap().clone();
    assert_eq!(n1["handled"], 4, "{n1}");
    assert_eq!(
        (n1["settled"].as_i64(), n1["open_on_time"].as_i64(), n1["unanswered"].as_i64()),
        (Some(2), Some(1), Some(1)),
        "{n1}"
    );
    assert_eq!(n1["compliance_percent"], 50.0, "{n1}");
}

backend_test!(the_report_counts_the_tickets_created_in_its_period_in_paris_and_refuses_bad_dates);
async fn the_report_counts_the_tickets_created_in_its_period_in_paris_and_refuses_bad_dates(db: crate::common::TestDb) {
    let s = setup(&db).await;
    // 30 April 23:30 in Paris is April's (21:30 UTC); 1 May 00:30 is May's (30 April 22:30 UTC).
    ticket_at(&s, "2027-04-30 23:30", "Avril").await;
    ticket_at(&s, "2027-05-01 00:30", "Premier mai").await;
    ticket_at(&s, "2027-05-31 23:50", "Fin mai").await;
    ticket_at(&s, "2027-06-01 08:00", "Juin").await;
    let s = &s;
    let n1 = |path: &str| {
        let path = format!("/support/report{path}");
        async move {
            let r = s.get(&s.n2, &path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            let row = r.body.as_array().unwrap().iter().find(|r| r["key"] == "N1").unwrap().clone();
            (row["handled"].as_i64().unwrap(), backlog_total(&row))
        }
    };
    assert_eq!(n1("").await, (4, 4), "all time");
    assert_eq!(n1("?month=2027-05").await, (2, 2), "{}: May only", db.name);
    assert_eq!(n1("?from=2027-05-01&to=2027-05-01").await, (1, 1), "one day, inclusive");
    assert_eq!(n1("?to=2027-04-30").await, (1, 1), "up to April");
    assert_eq!(n1("?from=2027-05-02").await, (2, 2), "from 2 May");
    assert_eq!(n1("?from=2027-07-01").await, (0, 0), "nothing yet");
    let tenant = s.get(&s.n2, "/support/report?by=tenant&month=2027-04").await.body;
    assert_eq!(handled_by_key(&tenant), [("college-jules-verne".to_string(), 1)], "{tenant}");

    let csv = s.app.get("/api/v1/support/report?format=csv&month=2027-05").bearer(&s.n2).send().await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.headers["content-disposition"].to_str().unwrap().contains("rapport-support-niveaux-2027-05.csv"));
    assert!(csv.text.starts_with("\u{feff}période;mai 2027"), "{}", csv.text);
    assert!(csv.text.lines().nth(1).unwrap().starts_with("niveau;nouveaux;"), "{}", csv.text);
    let days = s.app.get("/api/v1/support/report?format=csv&from=2027-05-01&to=2027-05-15").bearer(&s.n2).send().await;
    assert!(days.text.starts_with("\u{feff}période;du 1er mai 2027 au 15 mai 2027"), "{}", days.text);

    for (query, field, says) in [
        ("from=2027-02-30", "from", "AAAA-MM-JJ"),
        ("from=01/05/2027", "from", "AAAA-MM-JJ"),
        ("from=2027-05-10&to=2027-05-01", "to", "précède son début"),
        ("month=2027-13", "month", "AAAA-MM"),
        ("month=2027-05&from=2027-05-01", "month", "pas les deux"),
    ] {
        let r = s.get(&s.n2, &format!("/support/report?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{query}: {}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains(says), "{query}: {}", r.body);
    }
}

backend_test!(only_the_support_of_the_tenant_forces_a_priority_and_the_requester_keeps_the_role_held_there);
async fn only_the_support_of_the_tenant_forces_a_priority_and_the_requester_keeps_the_role_held_there(
    db: crate::common::TestDb,
) {
    use entcp::kernel::roles::Role;
    let s = setup(&db).await;
    // N1 of the Rennes collège, and a teacher at the Nantes one.
    let email = "n1.rennes.prof.nantes@ac-nantes.fr";
    let token = token_for(&s.store, email, Role::SupportN1, Some("0350001L")).await;
    let user = entcp::identity::get_user(&s.store, email).await.unwrap().unwrap();
    let nantes = entcp::registry::resolve_org(&s.store, "0440001M").await.unwrap();
    let teacher = entcp::identity::UserRole::new(&user.id, Role::Usager, Some(&nantes));
    entcp::identity::grant(&s.store, &admin(), teacher, t0()).await.unwrap();
    let new = json!({ "tenant": "college-jules-verne", "subject": "ENT lent", "description": "Les pages sont lentes.",
        "category": "acces", "impact": "basse", "urgency": "basse" });
    let mut forced = new.clone();
    forced["priority"] = json!("P1");

    // A support role elsewhere forces nothing on the Nantes tenant.
    let before = s.ticket_count().await;
    let r = s.post(&token, "/support/tickets", forced.clone()).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("priority")), "{}", r.body);
    assert_eq!(s.ticket_count().await, before);
    // Opened as the teacher it is there: the matrix's priority, the role held over the tenant.
    let r = s.post(&token, "/support/tickets", new).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_ne!(r.body["priority"], "P1", "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let recorded = "SELECT COUNT(*) FROM support_tickets WHERE id = $1 AND requester_role = $2";
    assert_eq!(common::count(&s.store, recorded, &[id, "usager"]).await, 1, "{}", db.name);
    // The tenant's own N1 forces it.
    let r = s.post(&s.n1, "/support/tickets", forced).await;
    assert_eq!((r.status, r.body["priority"].as_str()), (201, Some("P1")), "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(common::count(&s.store, recorded, &[id, "support_n1"]).await, 1, "{}", db.name);
}

/// Takes `id` from N1 up to N3 (N1 then N2 escalate); the ticket at N3.
async fn escalate_to_n3(s: &Story, id: &str) -> Value {
    s.act(&s.n1, id, "escalate", json!({ "reason": "Import à vérifier par la DANE." }), 200).await;
    s.act(&s.n2, id, "escalate", json!({ "reason": "Anomalie du connecteur de l'éditeur." }), 200).await
}

backend_test!(n3_is_always_the_tenants_vendor_whatever_the_contract_and_after_an_award);
async fn n3_is_always_the_tenants_vendor_whatever_the_contract_and_after_an_award(db: crate::common::TestDb) {
    use entcp::kernel::roles::Role;
    let s = setup(&db).await;
    // The académie's contract names éditeur A as N3; the collège's vendor (its processor) is B.
    let a = common::fixtures::new_org(&s.store, OrgKind::Editeur, "Éditeur A", &luhn_siren(2), None).await;
    let a_n3 = token_for(&s.store, "support@editeur-a.fr", Role::SupportN3, Some(&a.id)).await;
    let body = json!({ "n3": a.id, "policy": "standard" });
    let r = s.call(&s.admin, Method::PUT, "/support/contracts/academie:17", Some(body), None).await;
    assert_eq!(r.status, 204, "{}: {}", db.name, r.body);
    let contract = s.get(&s.n2, "/support/tenants/college-jules-verne/contract").await.body;
    assert_ne!(contract["n3"]["id"], a.id.as_str(), "{}: {contract}", db.name);
    assert_eq!(contract["n3"]["name"], "Éditeur ENT Atlantique", "{}: {contract}", db.name);
    let id = ticket_at(&s, "2027-05-12 09:00", "Le connecteur ne remonte plus la 5e B").await;
    let at_n3 = escalate_to_n3(&s, &id).await;
    assert_eq!(at_n3["level"], "n3", "{}: {at_n3}", db.name);
    // B, the processor, reads and gets the mail; A neither reads the ticket nor gets a mail.
    assert_eq!(s.get(&s.n3, &format!("/support/tickets/{id}")).await.status, 200, "{}", db.name);
    assert_eq!(s.get(&a_n3, &format!("/support/tickets/{id}")).await.status, 404, "{}", db.name);
    assert_eq!(s.get(&a_n3, &format!("/support/tickets/{id}/history")).await.status, 404, "{}", db.name);
    assert_eq!(s.get(&a_n3, "/support/tickets").await.body["items"], json!([]), "{}", db.name);
    assert_eq!(mails(&s.store, "escalated", "support@editeur.fr").await.len(), 1, "{}", db.name);
    assert!(mails(&s.store, "escalated", "support@editeur-a.fr").await.is_empty(), "{}", db.name);

    // An award makes C the collège's vendor (the same `set_processors` the award runs).
    let c = common::fixtures::new_org(&s.store, OrgKind::Editeur, "Éditeur C", &luhn_siren(3), None).await;
    let c_n3 = token_for(&s.store, "support@editeur-c.fr", Role::SupportN3, Some(&c.id)).await;
    let opened_before = ticket_at(&s, "2027-05-12 10:00", "Emploi du temps vide").await;
    let tenant = entcp::tenants::get_tenant(&s.store, "college-jules-verne").await.unwrap().unwrap();
    let mut tx = s.store.begin_write().await.unwrap();
    entcp::tenants::set_processors(&mut tx, &s.store, &common::admin(), &tenant, Some(&c), None, t0()).await.unwrap();
    tx.commit().await.unwrap();
    let contract = s.get(&s.n2, "/support/tenants/college-jules-verne/contract").await.body;
    assert_eq!(contract["n3"]["id"], c.id.as_str(), "{}: {contract}", db.name);
    // A new ticket, and one opened before the award escalated after it, go to C, not to B.
    let new_id = ticket_at(&s, "2027-05-12 11:00", "Cahier de textes inaccessible").await;
    for id in [&new_id, &opened_before] {
        escalate_to_n3(&s, id).await;
        assert_eq!(s.get(&c_n3, &format!("/support/tickets/{id}")).await.status, 200, "{}", db.name);
        assert_eq!(s.get(&s.n3, &format!("/support/tickets/{id}")).await.status, 404, "{}", db.name);
    }
    assert_eq!(mails(&s.store, "escalated", "support@editeur-c.fr").await.len(), 2, "{}", db.name);
}

backend_test!(escalating_to_n3_a_tenant_without_a_vendor_is_refused_in_french);
async fn escalating_to_n3_a_tenant_without_a_vendor_is_refused_in_french(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let id = ticket_at(&s, "2027-05-12 09:00", "Le connecteur ne remonte plus la 5e B").await;
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Import à vérifier par la DANE." }), 200).await;
    sqlx::query("UPDATE tenants SET vendor_org_id = NULL").execute(s.store.pool()).await.unwrap();
    let refused = s.act(&s.n2, &id, "escalate", json!({ "reason": "Pour l'éditeur." }), 409).await;
    assert!(refused.to_string().contains("pas d'éditeur déclaré"), "{}: {refused}", db.name);
    let ticket = s.get(&s.admin, &format!("/support/tickets/{id}")).await.body;
    assert_eq!(ticket["level"], "n2", "{}: {ticket}", db.name);
}

backend_test!(the_n1_a_contract_designates_reads_takes_and_is_mailed_the_ticket);
async fn the_n1_a_contract_designates_reads_takes_and_is_mailed_the_ticket(db: crate::common::TestDb) {
    use entcp::kernel::roles::Role;
    let s = setup(&db).await;
    // A commune outside the collège's scope, and its N1 agent; a Rennes school's N1, not designated.
    let x = common::fixtures::org(&s.store, "commune:35238").await;
    let agent = "support@vitre.fr";
    let x_n1 = token_for(&s.store, agent, Role::SupportN1, Some(&x.id)).await;
    let rennes_n1 = token_for(&s.store, "rup.annedebretagne@ac-rennes.fr", Role::SupportN1, Some("0350001L")).await;
    let before = ticket_at(&s, "2027-05-12 08:45", "Mot de passe oublié").await;
    assert_eq!(s.get(&x_n1, &format!("/support/tickets/{before}")).await.status, 404, "{}", db.name);
    // The académie's contract names the commune as N1 of its tickets.
    let body = json!({ "n1": x.id, "policy": "standard" });
    let r = s.call(&s.admin, Method::PUT, "/support/contracts/academie:17", Some(body), None).await;
    assert_eq!(r.status, 204, "{}: {}", db.name, r.body);
    let id = ticket_at(&s, "2027-05-12 09:00", "Le connecteur ne remonte plus la 5e B").await;
    assert_eq!(mails(&s.store, "created", agent).await.len(), 1, "{}: the designated N1 is mailed", db.name);
    // The designated N1 lists it, reads it, is assigned it and takes it; the earlier ticket stays out.
    let listed = s.get(&x_n1, "/support/tickets").await.body;
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()], "{}: {listed}", db.name);
    let seen = s.get(&x_n1, &format!("/support/tickets/{id}")).await;
    assert_eq!(seen.status, 200, "{}: {}", db.name, seen.body);
    let version = seen.body["version"].as_i64().unwrap();
    let r = s.patch_ticket(&s.n1, &id, json!({ "assignee": agent }), version).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);
    let taken = s.act(&x_n1, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    assert_eq!(taken["status"], "in_progress", "{}: {taken}", db.name);
    // An N1 neither designated nor in scope sees nothing of it.
    assert_eq!(s.get(&rennes_n1, &format!("/support/tickets/{id}")).await.status, 404, "{}", db.name);
    assert_eq!(s.get(&rennes_n1, "/support/tickets").await.body["items"], json!([]), "{}", db.name);
}

backend_test!(only_the_n1_resolves_only_the_requester_closes_and_a_settled_ticket_keeps_its_priority);
async fn only_the_n1_resolves_only_the_requester_closes_and_a_settled_ticket_keeps_its_priority(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    s.at("2027-05-12 09:00");
    // A subject or a description that shows nothing (zero-width spaces, a soft hyphen) is missing.
    let invisible = json!({ "tenant": "college-jules-verne", "subject": "\u{200b}\u{200b}", "description": "\u{ad}",
        "category": "acces", "impact": "haute", "urgency": "haute" });
    let r = s.post(&s.teacher, "/support/tickets", invisible).await;
    assert_eq!(r.status, 422, "{}: {}", db.name, r.body);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["subject", "description"], "{}: {}", db.name, r.body);
    assert_eq!(s.ticket_count().await, 0, "{}", db.name);

    let new = json!({ "tenant": "college-jules-verne", "subject": "ENT inaccessible", "description": "Page blanche.",
        "category": "acces", "impact": "haute", "urgency": "haute" });
    let t = s.post(&s.teacher, "/support/tickets", new).await.body;
    assert_eq!(t["priority"], "P1", "{}: {t}", db.name);
    let id = t["id"].as_str().unwrap().to_string();
    let path = format!("/support/tickets/{id}");
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    s.act(&s.n2, &id, "escalate", json!({ "reason": "Pour l'éditeur." }), 200).await;
    s.at("2027-05-12 10:00");
    // The vendor takes it in charge without a word to the requester: only the N1 writes to them.
    let taken = s.act(&s.n3, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    // The vendor does not requalify the ticket whose delays it is held to, directly or through
    // impact and urgency (even keeping the priority), nor move it out of a category, nor name
    // its service (refused as a requalification, 403, before whether a service fits its category).
    let version = taken["version"].as_i64().unwrap();
    for patch in [
        json!({ "priority": "P4", "reason": "Requalifié." }),
        json!({ "impact": "basse", "urgency": "basse", "reason": "Requalifié." }),
        json!({ "impact": "basse", "urgency": "basse", "priority": "P1", "reason": "Requalifié." }),
        json!({ "category": "donnees" }),
        json!({ "service": "visio" }),
    ] {
        let r = s.patch_ticket(&s.n3, &id, patch, version).await;
        assert_eq!(r.status, 403, "{}: {}", db.name, r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("ne requalifie pas"), "{}", r.body);
    }
    // At N3 the ticket is not resolved nor closed by hand, by the vendor or an admin: the
    // answer goes back down.
    for (who, token) in [("n3", &s.n3), ("admin", &s.admin)] {
        let r = s.act(token, &id, "transition", json!({ "to": "resolved", "message": "Corrigé." }), 409).await;
        assert!(r["detail"].as_str().unwrap().contains("seul le N1 le résout"), "{}: {who}: {r}", db.name);
        let r = s.act(token, &id, "transition", json!({ "to": "closed" }), 403).await;
        assert!(r["detail"].as_str().unwrap().contains("seul le demandeur clôt"), "{}: {who}: {r}", db.name);
    }
    // A status message is bounded as a comment is (20,000 characters).
    let long = json!({ "to": "waiting_requester", "message": "A".repeat(20_001) });
    let r = s.act(&s.n3, &id, "transition", long, 422).await;
    assert_eq!(r["errors"][0]["field"], "message", "{}: {r}", db.name);
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("20000 caractères au plus"), "{}: {r}", db.name);
    s.at("2027-05-12 11:00");
    let back = s.act(&s.n3, &id, "return", json!({ "answer": "Certificat renouvelé." }), 200).await;
    assert_eq!((back["level"].as_str(), back["status"].as_str()), (Some("n2"), Some("in_progress")), "{}", db.name);
    s.act(&s.n2, &id, "transition", json!({ "to": "resolved" }), 409).await;
    s.act(&s.n2, &id, "return", json!({ "answer": "L'éditeur a renouvelé le certificat." }), 200).await;
    // The N1 resolves; it does not close, before or after: the requester has 7 days to reopen.
    s.act(&s.n1, &id, "transition", json!({ "to": "closed" }), 403).await;
    s.at("2027-05-12 11:30");
    let done = json!({ "to": "resolved", "message": "L'ENT est de nouveau accessible." });
    let resolved = s.act(&s.n1, &id, "transition", done, 200).await;
    assert_eq!(resolved["status"], "resolved", "{}: {resolved}", db.name);
    for token in [&s.n1, &s.admin] {
        s.act(token, &id, "transition", json!({ "to": "closed" }), 403).await;
    }
    let n3_clock = |t: &Value| t["sla"]["levels"].as_array().unwrap().iter().find(|c| c["level"] == "n3").cloned();
    let n3_before = n3_clock(&resolved).unwrap();
    assert_eq!(n3_before["resolution_seconds"], 7200, "{}: answered in two hours: {n3_before}", db.name);

    // Resolved, its qualification is settled (the delays the reports and penalties read); the
    // rest may still change.
    let version = resolved["version"].as_i64().unwrap();
    for patch in [
        json!({ "priority": "P4", "reason": "Requalifié." }),
        json!({ "impact": "basse", "urgency": "basse", "reason": "Requalifié." }),
    ] {
        let r = s.patch_ticket(&s.n1, &id, patch, version).await;
        assert_eq!(r.status, 409, "{}: {}", db.name, r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("est résolu : sa qualification"), "{}", r.body);
    }
    let r = s.patch_ticket(&s.n1, &id, json!({ "assigned_team": "Équipe réseau" }), version).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);

    // The requester closes it; closed, it changes no more.
    s.act(&s.teacher, &id, "transition", json!({ "to": "closed" }), 200).await;
    let version = s.get(&s.admin, &path).await.body["version"].as_i64().unwrap();
    for patch in [json!({ "priority": "P4", "reason": "Requalifié." }), json!({ "assigned_team": "Autre équipe" })] {
        let r = s.patch_ticket(&s.n1, &id, patch, version).await;
        assert_eq!(r.status, 409, "{}: {}", db.name, r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("est clos : ouvrez-en un nouveau"), "{}", r.body);
    }
    let after = s.get(&s.admin, &path).await.body;
    assert_eq!(
        (after["status"].as_str(), after["priority"].as_str(), after["assigned_team"].as_str()),
        (Some("closed"), Some("P1"), Some("Équipe réseau")),
        "{}: {after}",
        db.name
    );
    assert_eq!(after["version"], version, "{}", db.name);
    let n3_after = n3_clock(&after).unwrap();
    assert_eq!(n3_after["resolution_target_seconds"], n3_before["resolution_target_seconds"], "{}", db.name);

    // Each viewer's history is numbered 1, 2, 3… over what it sees: no gap tells of the
    // internal escalation hidden from the vendor, nor of what is hidden from the requester.
    let mut counts = Vec::new();
    for token in [&s.teacher, &s.n3, &s.admin] {
        let history = s.get(token, &format!("{path}/history")).await.body;
        let seqs: Vec<i64> = history.as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{}: {history}", db.name);
        counts.push(seqs.len());
    }
    assert!(counts[0] < counts[1] && counts[1] < counts[2], "{}: {counts:?}", db.name);
}

backend_test!(a_resolved_ticket_keeps_its_whole_qualification_until_it_is_reopened);
async fn a_resolved_ticket_keeps_its_whole_qualification_until_it_is_reopened(db: crate::common::TestDb) {
    let s = setup(&db).await;
    // Impact and urgency low: P4, which either one raised to « moyenne » keeps.
    let Opened { id, path, .. } = s
        .open("2027-05-12 09:00", nantes().about("Import des notes", "Notes absentes.").graded("basse", "basse"))
        .await;
    let resolved = s.act(&s.n1, &id, "transition", json!({ "to": "resolved", "message": "Réimportées." }), 200).await;
    let version = resolved["version"].as_i64().unwrap();
    // Whatever changes the qualification is refused, the priority kept or not, for the N1 and
    // for an administrator alike: the ticket must be reopened first.
    for token in [&s.n1, &s.admin] {
        for patch in [
            json!({ "impact": "moyenne" }),
            json!({ "urgency": "moyenne" }),
            json!({ "priority": "P1", "reason": "Toute la classe." }),
            json!({ "category": "donnees" }),
            json!({ "category": "service", "service": "cahier-de-textes" }),
        ] {
            let r = s.patch_ticket(token, &id, patch.clone(), version).await;
            assert_eq!(r.status, 409, "{}: {patch}: {}", db.name, r.body);
            assert_eq!(r.body["title"], "Conflit avec l'état actuel", "{}: {}", db.name, r.body);
            let detail = r.body["detail"].as_str().unwrap();
            assert!(
                detail.contains("est résolu : sa qualification") && detail.contains("rouvrez-le d'abord"),
                "{detail}"
            );
        }
    }
    let t = s.get(&s.admin, &path).await.body;
    let qualification = |t: &Value| {
        ["impact", "urgency", "priority", "category"].map(|k| t[k].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(qualification(&t), ["basse", "basse", "P4", "acces"], "{}: {t}", db.name);
    assert_eq!(t["version"], version, "{}: nothing written", db.name);
    // The qualification restated as it stands, or the team, is no requalification.
    let r = s.patch_ticket(&s.n1, &id, json!({ "impact": "basse", "assigned_team": "Vie scolaire" }), version).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);

    // Reopened by the N1, it may be requalified again.
    s.act(&s.n1, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    let version = s.get(&s.admin, &path).await.body["version"].as_i64().unwrap();
    let r = s.patch_ticket(&s.n1, &id, json!({ "impact": "moyenne", "category": "donnees" }), version).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);
    assert_eq!(qualification(&r.body), ["moyenne", "basse", "P4", "donnees"], "{}: {}", db.name, r.body);
}

backend_test!(only_the_n1_asks_the_requester_a_question_the_n2_and_the_n3_hand_theirs_down);
async fn only_the_n1_asks_the_requester_a_question_the_n2_and_the_n3_hand_theirs_down(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let Opened { id, path, .. } = s.open("2027-05-12 09:00", nantes().graded("haute", "haute")).await;
    let question = json!({ "to": "waiting_requester", "message": "Quel navigateur ?" });
    let refused = |r: &Value| {
        let detail = r["detail"].as_str().unwrap().to_string();
        assert!(detail.contains("seul le N1 pose une question au demandeur"), "{}: {r}", db.name);
        assert!(detail.contains("renvoyez la vôtre au niveau inférieur"), "{}: {r}", db.name);
    };
    // At N2, taken in hand or not, neither the N2 nor an administrator asks the requester.
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    refused(&s.act(&s.n2, &id, "transition", question.clone(), 409).await);
    s.act(&s.n2, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    for token in [&s.n2, &s.admin] {
        refused(&s.act(token, &id, "transition", question.clone(), 409).await);
    }
    // Nor the vendor at N3.
    s.act(&s.n2, &id, "escalate", json!({ "reason": "Pour l'éditeur." }), 200).await;
    s.act(&s.n3, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    refused(&s.act(&s.n3, &id, "transition", question.clone(), 409).await);
    let t = s.get(&s.admin, &path).await.body;
    assert_eq!((t["level"].as_str(), t["status"].as_str()), (Some("n3"), Some("in_progress")), "{}: {t}", db.name);
    assert!(mails(&s.store, "waiting", "prof.svt@ac-nantes.fr").await.is_empty(), "{}", db.name);

    // The vendor still reads what the requester writes meanwhile (their public entries).
    let r = s.post(&s.teacher, &format!("{path}/comments"), json!({ "body": "Avec Firefox 128." })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    let history = s.get(&s.n3, &format!("{path}/history")).await.body;
    let bodies: Vec<&str> = history.as_array().unwrap().iter().filter_map(|e| e["body"].as_str()).collect();
    assert!(bodies.contains(&"Avec Firefox 128."), "{}: {history}", db.name);

    // The question goes down with the ticket; the N1 asks it.
    s.act(&s.n3, &id, "return", json!({ "answer": "Quelle version de Firefox, exactement ?" }), 200).await;
    s.act(&s.n2, &id, "return", json!({ "answer": "L'éditeur demande la version de Firefox." }), 200).await;
    let asked = s.act(&s.n1, &id, "transition", question, 200).await;
    assert_eq!(asked["status"], "waiting_requester", "{}: {asked}", db.name);
    assert_eq!(mails(&s.store, "waiting", "prof.svt@ac-nantes.fr").await.len(), 1, "{}", db.name);
}

backend_test!(an_internal_note_moves_neither_the_requesters_etag_nor_a_staff_if_match);
async fn an_internal_note_moves_neither_the_requesters_etag_nor_a_staff_if_match(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let Opened { id, path, .. } = s.open("2027-05-12 09:00", nantes()).await;
    let comments = format!("{path}/comments");
    let seen = async |token: &str| {
        let r = s.raw_get(token, &path).await;
        assert_eq!(r.status, 200, "{}: {}", db.name, r.text);
        let body: Value = serde_json::from_str(&r.text).unwrap();
        (r.header("etag").unwrap().to_string(), body["version"].clone(), body["updated_at"].clone())
    };
    // Read by the N1 (the version it will PATCH at) and by the requester.
    s.at("2027-05-12 09:10");
    let stale = s.get(&s.n1, &path).await.body["version"].as_i64().unwrap();
    let before = seen(&s.teacher).await;

    // An internal note: the requester's ticket reads the same, ETag, version and date; so does
    // the staff's.
    s.at("2027-05-12 09:20");
    let r = s.post(&s.n1, &comments, json!({ "body": "Certificat expiré ?", "visibility": "internal" })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    assert_eq!(seen(&s.teacher).await, before, "{}: the note shows through", db.name);
    assert_eq!(seen(&s.n1).await.0, before.0, "{}", db.name);
    // The note is still the ticket's: logged, and its N1 first response still due.
    let staff = s.get(&s.n1, &path).await.body;
    assert!(staff["first_response_due"].is_string(), "{}: {staff}", db.name);
    let history = s.get(&s.n1, &format!("{path}/history")).await.body;
    assert!(history.as_array().unwrap().iter().any(|e| e["body"] == "Certificat expiré ?"), "{}", db.name);

    // A staff PATCH read before the note still applies: the note changed nothing it guards.
    let r = s.patch_ticket(&s.n1, &id, json!({ "assigned_team": "Réseau" }), stale).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);
    // Two PATCHes read at the same version still conflict: the second is refused (412).
    let read = r.body["version"].as_i64().unwrap();
    let r = s.patch_ticket(&s.n1, &id, json!({ "assigned_team": "Messagerie" }), read).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);
    let r = s.patch_ticket(&s.admin, &id, json!({ "assigned_team": "Annuaire" }), read).await;
    assert_eq!(r.status, 412, "{}: {}", db.name, r.body);
    // A public reply is the requester's to see: their ETag moves, and a PATCH read before it is stale.
    let read = s.get(&s.n1, &path).await.body["version"].as_i64().unwrap();
    let before = seen(&s.teacher).await;
    s.at("2027-05-12 09:30");
    let r = s.post(&s.n1, &comments, json!({ "body": "Nous regardons." })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    let after = seen(&s.teacher).await;
    assert_ne!((&after.0, &after.2), (&before.0, &before.2), "{}", db.name);
    let r = s.patch_ticket(&s.n1, &id, json!({ "assigned_team": "Réseau" }), read).await;
    assert_eq!(r.status, 412, "{}: {}", db.name, r.body);
    let t = s.get(&s.admin, &path).await.body;
    assert_eq!(t["assigned_team"], "Messagerie", "{}: {t}", db.name);
}

/// The ticket as `token` reads it: its `ETag` and its body.
async fn read_as(s: &Story, token: &str, path: &str) -> (String, Value) {
    let r = s.raw_get(token, path).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (r.header("etag").unwrap().to_string(), serde_json::from_str(&r.text).unwrap())
}

backend_test!(only_the_n1_writes_to_the_requester_the_n2_and_the_n3_write_to_the_support);
async fn only_the_n1_writes_to_the_requester_the_n2_and_the_n3_write_to_the_support(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let Opened { id, path, .. } = s.open("2027-05-12 09:00", nantes()).await;
    let comments = format!("{path}/comments");
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    let refused = |r: &Resp, who: &str| {
        assert_eq!(r.status, 409, "{}: {who}: {}", db.name, r.body);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains("seul le N1 écrit au demandeur") && detail.contains("note"), "{}: {detail}", db.name);
    };
    // At N2: no reply to the requester, whether public is asked or left as the default, an
    // administrator acting there included; a note for the support is written.
    s.at("2027-05-12 09:30");
    refused(&s.post(&s.n2, &comments, json!({ "body": "Nous regardons." })).await, "n2");
    let public = json!({ "body": "Nous regardons.", "visibility": "public" });
    refused(&s.post(&s.n2, &comments, public.clone()).await, "n2 public");
    refused(&s.post(&s.admin, &comments, public).await, "admin at n2");
    let r = s.attach(&s.n2, &id, "name=journal.txt", b"trace\n").await;
    assert_eq!(r.status, 409, "{}: a public file: {}", db.name, r.text);
    let note = json!({ "body": "Import AAF en échec.", "visibility": "internal" });
    assert_eq!(s.post(&s.n2, &comments, note).await.status, 201, "{}", db.name);
    let r = s.attach(&s.n2, &id, "name=journal.txt&visibility=internal", b"trace\n").await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.text);
    // The N1, the requester's contact, tells them while the N2 holds the ticket.
    let r = s.post(&s.n1, &comments, json!({ "body": "La DANE regarde votre accès." })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    // At N3: the vendor writes to the support only.
    s.act(&s.n2, &id, "escalate", json!({ "reason": "Pour l'éditeur." }), 200).await;
    refused(&s.post(&s.n3, &comments, json!({ "body": "Correctif en cours." })).await, "n3");
    let note = json!({ "body": "Correctif en cours.", "visibility": "internal" });
    assert_eq!(s.post(&s.n3, &comments, note).await.status, 201, "{}", db.name);

    // The requester reads the N1 only: neither the notes nor the file; one mail, the N1's.
    let history = s.get(&s.teacher, &format!("{path}/history")).await.body;
    let bodies: Vec<&str> = history.as_array().unwrap().iter().filter_map(|e| e["body"].as_str()).collect();
    assert_eq!(bodies, ["La DANE regarde votre accès."], "{}: {history}", db.name);
    let files = s.get(&s.teacher, &format!("{path}/attachments")).await.body;
    assert_eq!(files, json!([]), "{}", db.name);
    assert_eq!(mails(&s.store, "comment", "prof.svt@ac-nantes.fr").await.len(), 1, "{}", db.name);
    // The support reads the notes: the vendor's is the support's, the N2's internal.
    let staff = s.get(&s.n1, &format!("{path}/history")).await.body;
    let note_of = |body: &str| staff.as_array().unwrap().iter().find(|e| e["body"] == body).cloned().unwrap();
    assert_eq!(note_of("Import AAF en échec.")["visibility"], "internal", "{}", db.name);
    assert_eq!(note_of("Correctif en cours.")["visibility"], "support", "{}", db.name);
}

backend_test!(an_administrators_file_on_a_note_follows_the_notes_visibility);
async fn an_administrators_file_on_a_note_follows_the_notes_visibility(db: crate::common::TestDb) {
    use entcp::support::attachments::{self, Upload};
    use entcp::support::tickets::{self, Ctx, NewComment};
    let s = setup(&db).await;
    let Opened { id, path, .. } = s.open("2027-05-12 09:00", nantes()).await;
    let files = format!("{path}/attachments");
    escalate_to_n3(&s, &id).await;
    // At N3 an administrator's note is the support's (N1 to N3), and so is its file.
    let note = json!({ "body": "Journal de l'import joint.", "visibility": "internal" });
    assert_eq!(s.post(&s.admin, &format!("{path}/comments"), note).await.status, 201, "{}", db.name);
    let r = s.attach(&s.admin, &id, "name=journal.txt&visibility=internal", b"trace de l'import\n").await;
    assert_eq!((r.status, r.body[0]["visibility"].as_str()), (201, Some("support")), "{}: {}", db.name, r.text);
    let journal = r.body[0]["id"].as_str().unwrap().to_string();
    let history = s.get(&s.n1, &format!("{path}/history")).await.body;
    let noted = history.as_array().unwrap().iter().find(|e| e["body"] == "Journal de l'import joint.").cloned();
    assert_eq!(noted.unwrap()["visibility"], "support", "{}: {history}", db.name);
    // With the note, in one operation (the console's form): the same.
    let state = crate::common::app::app_state(s.store.clone(), Config::default(), s.clock.clone()).support();
    let operator = admin();
    let ctx = Ctx { state: &state, actor: &operator, now: paris_now(&s.clock) };
    let file =
        attachments::check("files", Upload { name: "capture.png".into(), bytes: b"\x89PNG\r\n\x1a\n.".to_vec() });
    let with_note = NewComment { body: "Capture jointe.".into(), visibility: Some("internal".into()) };
    tickets::comment_with_files(&ctx, &id, with_note, "files", vec![file.unwrap()]).await.unwrap();
    // The vendor reads both files, the requester neither.
    let vendor = s.get(&s.n3, &files).await.body;
    let mut seen: Vec<(&str, &str)> = vendor
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["file_name"].as_str().unwrap(), a["visibility"].as_str().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen, [("capture.png", "support"), ("journal.txt", "support")], "{}: {vendor}", db.name);
    assert_eq!(s.raw_get(&s.n3, &format!("{files}/{journal}")).await.status, 200, "{}", db.name);
    assert_eq!(s.get(&s.teacher, &files).await.body, json!([]), "{}", db.name);
    assert_eq!(s.raw_get(&s.teacher, &format!("{files}/{journal}")).await.status, 404, "{}", db.name);

    // Returned to the N2, the administrator's note is the N1's and the N2's again: not the vendor's.
    s.act(&s.n3, &id, "return", json!({ "answer": "Connecteur corrigé." }), 200).await;
    let r = s.attach(&s.admin, &id, "name=interne.txt&visibility=internal", b"note de la DANE\n").await;
    assert_eq!((r.status, r.body[0]["visibility"].as_str()), (201, Some("internal")), "{}: {}", db.name, r.text);
    let vendor = s.get(&s.n3, &files).await.body;
    assert_eq!(vendor.as_array().map(Vec::len), Some(2), "{}: {vendor}", db.name);
}

backend_test!(the_requesters_message_is_titled_as_theirs_not_as_the_supports_reply);
async fn the_requesters_message_is_titled_as_theirs_not_as_the_supports_reply(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let Opened { id, path, ticket } = s.open("2027-05-12 09:00", nantes()).await;
    let comments = format!("{path}/comments");
    let r = s.post(&s.n1, &comments, json!({ "body": "Depuis quand ?" })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    let r = s.post(&s.teacher, &comments, json!({ "body": "Depuis lundi." })).await;
    assert_eq!(r.status, 201, "{}: {}", db.name, r.body);
    escalate_to_n3(&s, &id).await;
    // Each reader's history titles the requester's message as theirs, the N1's as the support's.
    for token in [&s.teacher, &s.n1, &s.n3] {
        let history = s.get(token, &format!("{path}/history")).await.body;
        let title_of = |body: &str| {
            let entry = history.as_array().unwrap().iter().find(|e| e["body"] == body).cloned();
            entry.unwrap_or_else(|| panic!("{}: no « {body} »: {history}", db.name))["title"].clone()
        };
        assert_eq!(title_of("Depuis lundi."), "Message du demandeur", "{}: {history}", db.name);
        assert_eq!(title_of("Depuis quand ?"), "Réponse du support", "{}: {history}", db.name);
        assert_eq!(history[0]["title"], "Ticket ouvert", "{}: {history}", db.name);
    }
    // `entctl support show` titles its lines alike.
    let reference = ticket["reference"].as_str().unwrap();
    let (ok, out) = common::entctl(&db.url, &["support", "show", reference, "--as", "rup.julesverne@ac-nantes.fr"]);
    assert!(ok, "{}: {out}", db.name);
    let line = |body: &str| out.lines().find(|l| l.ends_with(body)).unwrap_or_else(|| panic!("{}: {out}", db.name));
    assert!(line("Depuis lundi.").contains("Message du demandeur"), "{}: {out}", db.name);
    assert!(line("Depuis quand ?").contains("Réponse du support"), "{}: {out}", db.name);
}

backend_test!(an_assignment_an_escalation_or_a_return_moves_the_supports_version_not_the_requesters);
async fn an_assignment_an_escalation_or_a_return_moves_the_supports_version_not_the_requesters(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    let Opened { id, path, .. } = s.open("2027-05-12 09:00", nantes()).await;
    // Taken in charge: the requester sees it (status), their version moves.
    s.at("2027-05-12 09:10");
    let opened = read_as(&s, &s.teacher, &path).await;
    s.act(&s.n1, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    let before = read_as(&s, &s.teacher, &path).await;
    assert_ne!(before.0, opened.0, "{}", db.name);
    assert_eq!(before.1["status"], "in_progress", "{}", db.name);
    assert!(before.1.get("level").is_none() && before.1.get("resolution_due").is_none(), "{}: {}", db.name, before.1);

    // Assigned: the support's If-Match read before it is stale; the requester reads the same.
    s.at("2027-05-12 09:20");
    let read = s.get(&s.n1, &path).await.body["version"].as_i64().unwrap();
    let assign = json!({ "assignee": "rup.julesverne@ac-nantes.fr", "assigned_team": "Réseau" });
    assert_eq!(s.patch_ticket(&s.n1, &id, assign, read).await.status, 200, "{}", db.name);
    let r = s.patch_ticket(&s.admin, &id, json!({ "assigned_team": "Annuaire" }), read).await;
    assert_eq!(r.status, 412, "{}: {}", db.name, r.body);
    assert_eq!(read_as(&s, &s.teacher, &path).await, before, "{}: the assignment shows through", db.name);
    // Escalated, taken at N2, returned: nothing the requester reads changes, ETag included.
    s.at("2027-05-12 10:00");
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    assert_eq!(read_as(&s, &s.teacher, &path).await, before, "{}: the escalation shows through", db.name);
    // Nor may they sort their tickets by level.
    assert_eq!(s.get(&s.teacher, "/support/tickets?level=n2").await.body["items"], json!([]), "{}", db.name);
    assert_eq!(s.get(&s.n2, "/support/tickets?level=n2").await.body["items"][0]["id"], id.as_str(), "{}", db.name);
    s.at("2027-05-12 10:30");
    s.act(&s.n2, &id, "transition", json!({ "to": "in_progress" }), 200).await;
    s.act(&s.n2, &id, "return", json!({ "answer": "Certificat renouvelé." }), 200).await;
    assert_eq!(read_as(&s, &s.teacher, &path).await, before, "{}: the return shows through", db.name);

    // Resolved by the N1: the requester's version moves, and they close with the ETag they read.
    s.at("2027-05-12 11:00");
    s.act(&s.n1, &id, "transition", json!({ "to": "resolved", "message": "Certificat renouvelé." }), 200).await;
    let resolved = read_as(&s, &s.teacher, &path).await;
    assert_ne!(resolved.0, before.0, "{}", db.name);
    let theirs = resolved.1["version"].as_i64().unwrap();
    let support = s.get(&s.n1, &path).await.body["version"].as_i64().unwrap();
    assert!(theirs < support, "{}: the support's work is not counted for them: {theirs} {support}", db.name);
    let close = json!({ "to": "closed" });
    let r = s.call(&s.teacher, Method::POST, &format!("{path}/transition"), Some(close.clone()), Some(support)).await;
    assert_eq!(r.status, 412, "{}: the support's version is not theirs: {}", db.name, r.body);
    let r = s.call(&s.teacher, Method::POST, &format!("{path}/transition"), Some(close), Some(theirs)).await;
    assert_eq!(r.status, 200, "{}: {}", db.name, r.body);
    assert_eq!(r.body["version"], theirs + 1, "{}: {}", db.name, r.body);

    // Escalated before anyone took it: to the requester it is taken in charge, not new again.
    let Opened { id: other, .. } = s.open("2027-05-12 14:00", nantes()).await;
    s.act(&s.n1, &other, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    let seen = s.get(&s.teacher, &format!("/support/tickets/{other}")).await.body;
    assert_eq!((seen["status"].as_str(), seen.get("level")), (Some("in_progress"), None), "{}: {seen}", db.name);
    assert_eq!(s.get(&s.n2, &format!("/support/tickets/{other}")).await.body["status"], "new", "{}", db.name);
}

backend_test!(a_requesters_attachment_limit_counts_only_the_files_they_see);
async fn a_requesters_attachment_limit_counts_only_the_files_they_see(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let Opened { id, .. } =
        s.open("2027-05-12 09:00", nantes().about("Captures", "Voir les captures.").graded("basse", "basse")).await;
    let attach = async |token: &str, n: usize, visibility: &str| {
        let r = s
            .attach(
                token,
                &id,
                &format!("name={visibility}-{n}.txt&visibility={visibility}"),
                format!("{n}\n").as_bytes(),
            )
            .await;
        (r.status, r.text)
    };
    // Five internal files, fifteen public ones.
    for n in 0..5 {
        assert_eq!(attach(&s.n1, n, "internal").await.0, 201, "{}", db.name);
    }
    for n in 0..15 {
        assert_eq!(attach(&s.n1, n, "public").await.0, 201, "{}", db.name);
    }
    // The requester still joins five: the limit counts the files they see.
    for n in 100..105 {
        let (status, text) = attach(&s.teacher, n, "public").await;
        assert_eq!(status, 201, "{}: {text}", db.name);
    }
    // The twenty-first public file is refused, counting the twenty they see, not the hidden ones.
    let (status, text) = attach(&s.teacher, 105, "public").await;
    assert_eq!(status, 409, "{}: {text}", db.name);
    assert!(text.contains("a déjà 20 pièce(s) jointe(s) visible(s) du demandeur : 20 au plus"), "{}: {text}", db.name);
    assert!(!text.contains("25") && !text.contains("interne"), "{}: {text}", db.name);
    let seen = s.get(&s.teacher, &format!("/support/tickets/{id}/attachments")).await.body;
    assert_eq!(seen.as_array().unwrap().len(), 20, "{}", db.name);
    // The support's notes keep their own room.
    assert_eq!(attach(&s.n1, 5, "internal").await.0, 201, "{}", db.name);
}

/// The ids and statuses `token` lists under `status`, sorted.
async fn listed_under(s: &Story, token: &str, status: &str) -> Vec<(String, String)> {
    let page = s.get(token, &format!("/support/tickets?status={status}")).await.body;
    let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
    let mut listed: Vec<(String, String)> =
        items.iter().map(|t| (t["id"].as_str().unwrap().into(), t["status"].as_str().unwrap().into())).collect();
    listed.sort();
    listed
}

// A requester filters on the status they read: a ticket escalated while new is « en cours » to
// them, so `status=new` no longer finds it (the escalation would show through) and
// `status=in_progress` does; the support filters on the stored status.
backend_test!(a_requesters_status_filter_agrees_with_the_status_they_read);
async fn a_requesters_status_filter_agrees_with_the_status_they_read(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let Opened { id: escalated, .. } = s.open("2027-05-12 09:00", nantes()).await;
    let Opened { id: fresh, .. } =
        s.open("2027-05-12 09:05", nantes().about("Import des notes", "Notes absentes.")).await;
    s.at("2027-05-12 09:30");
    s.act(&s.n1, &escalated, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    let one = |id: &String, status: &str| vec![(id.clone(), status.to_string())];

    // The requester: each ticket under the status it reads, and only there.
    assert_eq!(listed_under(&s, &s.teacher, "new").await, one(&fresh, "new"), "{}", db.name);
    assert_eq!(listed_under(&s, &s.teacher, "in_progress").await, one(&escalated, "in_progress"), "{}", db.name);
    // The support: the stored status, new at N2 for the escalated one.
    let mut both = [one(&escalated, "new"), one(&fresh, "new")].concat();
    both.sort();
    assert_eq!(listed_under(&s, &s.n2, "new").await, both, "{}", db.name);
    assert!(listed_under(&s, &s.n2, "in_progress").await.is_empty(), "{}", db.name);
    // Taken at N2: in progress for both, the requester's history unchanged.
    s.act(&s.n2, &escalated, "transition", json!({ "to": "in_progress" }), 200).await;
    assert_eq!(listed_under(&s, &s.n2, "in_progress").await, one(&escalated, "in_progress"), "{}", db.name);
    assert_eq!(listed_under(&s, &s.teacher, "in_progress").await, one(&escalated, "in_progress"), "{}", db.name);
}

// The requester's first response (`first_response_due`) is due whichever level holds the ticket:
// the sweep flags its breach as N1's first response (the N1 answers them), once, tells N1's lead,
// and the ticket and the reports count it once, even when N1's own clock runs out later.
backend_test!(the_sweep_flags_the_requesters_first_response_once_whichever_level_holds_the_ticket);
async fn the_sweep_flags_the_requesters_first_response_once_whichever_level_holds_the_ticket(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    // P3: 4 business hours for the requester's first response.
    let Opened { id, path, ticket } = s.open("2027-05-12 09:00", nantes()).await;
    assert_eq!(ts(ticket["first_response_due"].as_str().unwrap()), paris("2027-05-12 13:00"), "{}", db.name);
    s.at("2027-05-12 09:30");
    s.act(&s.n1, &id, "escalate", json!({ "reason": "Pour la DANE." }), 200).await;
    // The N2 answers the N1 (its own first response), not the requester.
    s.at("2027-05-12 10:00");
    let note = json!({ "body": "Import AAF en échec.", "visibility": "internal" });
    assert_eq!(s.post(&s.n2, &format!("{path}/comments"), note).await.status, 201, "{}", db.name);
    s.at("2027-05-12 12:55");
    assert_eq!(s.sweep().await.breaches, 0, "{}: not yet due", db.name);

    s.at("2027-05-12 13:05");
    assert_eq!(s.sweep().await.breaches, 1, "{}", db.name);
    let flagged: Vec<(String, String, String)> =
        sqlx::query_as("SELECT level, kind, due_at FROM support_breaches WHERE ticket_id = $1")
            .bind(&id)
            .fetch_all(s.store.pool())
            .await
            .unwrap();
    assert_eq!(flagged.len(), 1, "{}: {flagged:?}", db.name);
    assert_eq!((flagged[0].0.as_str(), flagged[0].1.as_str()), ("n1", "first_response"), "{}", db.name);
    assert_eq!(ts(&flagged[0].2), paris("2027-05-12 13:00"), "{}: {flagged:?}", db.name);
    // The N1's lead is told, and the support reads it in the history.
    assert_eq!(mails(&s.store, "breach", "rup.julesverne@ac-nantes.fr").await.len(), 1, "{}", db.name);
    // The mail says the N2 holds the ticket and that the N1 still answers the requester.
    let breach = common::queued_mails(&s.store, "support").await.into_iter().find(|m| m.context["event"] == "breach");
    let mail = entcp::notify::mailer::render("support", &breach.unwrap().context).unwrap();
    let said = "Le ticket est aujourd'hui au niveau N2 : seul le N1 écrit au demandeur, répondez-lui.";
    assert!(mail.text.contains(said), "{}: {}", db.name, mail.text);
    let history = s.get(&s.n1, &format!("{path}/history")).await.body;
    let said = history.as_array().unwrap().iter().filter(|e| e["kind"] == "breach").count();
    assert_eq!(said, 1, "{}: {history}", db.name);
    assert!(
        history.to_string().contains("échéance de première réponse au demandeur dépassée"),
        "{}: {history}",
        db.name
    );

    // Back at N1, whose own clock runs out later: the same lateness, not flagged again.
    s.at("2027-05-12 13:10");
    s.act(&s.n2, &id, "return", json!({ "answer": "Import relancé." }), 200).await;
    s.at("2027-05-13 09:00");
    assert_eq!(s.sweep().await.breaches, 0, "{}", db.name);
    assert_eq!(s.get(&s.n1, &path).await.body["breaches"], 1, "{}", db.name);
    // Counted once in the reports: per tenant, and at N1 only per level.
    let by_tenant = s.get(&s.admin, "/support/report?by=tenant").await.body;
    let row = by_tenant.as_array().unwrap().iter().find(|r| r["key"] == "college-jules-verne").cloned().unwrap();
    assert_eq!((row["handled"].as_i64(), row["breaches"].as_i64()), (Some(1), Some(1)), "{}: {row}", db.name);
    let by_level = s.get(&s.admin, "/support/report?by=level").await.body;
    let breaches =
        |level: &str| by_level.as_array().unwrap().iter().find(|r| r["key"] == level).unwrap()["breaches"].clone();
    assert_eq!((breaches("N1"), breaches("N2")), (json!(1), json!(0)), "{}: {by_level}", db.name);
}

// A commune's ENT serves its écoles: the école provides N1 to its own users (tripartite,
// article 4; bipartite « le support de niveau 1 dans chaque école »). A ticket a school's user
// opens there goes to that school's N1 when the school named one (an N1 bound there, or a
// contract set at the school); a school that named none leaves it to the commune's N1; a
// contract N1 set at the commune itself keeps every ticket at the commune.
backend_test!(a_school_s_users_reach_their_own_n1_on_the_commune_s_ent);
async fn a_school_s_users_reach_their_own_n1_on_the_commune_s_ent(db: common::TestDb) {
    use entcp::kernel::roles::Role;
    let name = db.name;
    common::import_sample(&db.store).await;
    let app = common::TestApp::builder(db)
        .user("admin@test.fr", Role::Admin, None)
        .user("maitre@doisneau.fr", Role::Usager, Some("0940176F"))
        .user("n1@doisneau.fr", Role::SupportN1, Some("0940176F"))
        .user("maitre@monet.fr", Role::Usager, Some("0940289D"))
        .user("n1@fresnes.fr", Role::SupportN1, Some("commune:94034"))
        .build()
        .await;
    let commune = common::fixtures::org(&app.store, "commune:94034").await;
    common::fixtures::tenant(&app, "admin@test.fr", "fresnes-ent", &commune.id, "socle-1d").await;
    let open = async |who: &str| {
        let body = common::fixtures::ticket_body("fresnes-ent").json();
        let resp = app.post("/api/v1/support/tickets").acting_as(who).json(&body).send().await;
        assert_eq!(resp.status, 201, "{name} {who}: {}", resp.text);
        resp.json::<Value>()
    };
    let n1_of = async |t: &Value| {
        let sql = "SELECT o.code FROM support_tickets t JOIN orgs o ON o.id = t.n1_org_id WHERE t.id = $1";
        common::texts(&app.store, sql, &[t["id"].as_str().unwrap()]).await.concat()
    };

    let doisneau = open("maitre@doisneau.fr").await;
    assert_eq!(n1_of(&doisneau).await, "0940176F", "{name}: the école that named an N1 answers its users");
    let mails = common::queued_mails(&app.store, "support").await;
    let told =
        |to: &str| mails.iter().any(|m| m.context["reference"] == doisneau["reference"] && m.recipients.contains(to));
    assert!(told("n1@doisneau.fr"), "{name}: the école's N1 is told");
    assert!(!told("n1@fresnes.fr"), "{name}: the commune's N1 is not");
    let id = doisneau["id"].as_str().unwrap();
    for staff in ["n1@doisneau.fr", "n1@fresnes.fr"] {
        let seen = app.get(&format!("/api/v1/support/tickets/{id}")).acting_as(staff).send().await;
        assert_eq!(seen.status, 200, "{name} {staff}: the école's N1 and the commune's both read it");
        let queue = app.get("/api/v1/support/tickets").acting_as(staff).send().await.json::<Value>();
        assert!(queue.to_string().contains(id), "{name} {staff}: in the queue: {queue}");
    }
    let monet = open("maitre@monet.fr").await;
    assert_eq!(n1_of(&monet).await, "94034", "{name}: an école that named no N1 leaves it to the commune");
    let hidden = app.get(&format!("/api/v1/support/tickets/{}", monet["id"].as_str().unwrap()));
    assert_eq!(hidden.acting_as("n1@doisneau.fr").send().await.status, 404, "{name}: not another école's ticket");

    let contract = app.get("/api/v1/support/tenants/fresnes-ent/contract").acting_as("admin@test.fr").send().await;
    let contract = contract.json::<Value>();
    assert_eq!(contract["n1"]["code"], "94034", "{name}: {contract}");
    let schools = contract["schools"].as_array().unwrap_or_else(|| panic!("{name}: {contract}"));
    let codes: Vec<_> = schools.iter().map(|s| (&s["school"]["code"], &s["n1"]["code"])).collect();
    assert_eq!(codes, [(&json!("0940176F"), &json!("0940176F"))], "{name}: only the école that named an N1");

    let keep = json!({ "n1": "commune:94034" });
    let set = app.put("/api/v1/support/contracts/commune:94034").acting_as("admin@test.fr").json(&keep).send().await;
    assert!(set.status < 300, "{name}: {}", set.text);
    let again = open("maitre@doisneau.fr").await;
    assert_eq!(n1_of(&again).await, "94034", "{name}: the commune's own N1 keeps every ticket");
    let contract = app.get("/api/v1/support/tenants/fresnes-ent/contract").acting_as("admin@test.fr").send().await;
    assert!(contract.status == 200 && contract.json::<Value>().get("schools").is_none(), "{name}: {}", contract.text);

    // The requester is refused what only the support does in the same words whichever level
    // holds the ticket: the refusal does not tell that it was escalated.
    let path = format!("/api/v1/support/tickets/{}", monet["id"].as_str().unwrap());
    let refused = async || {
        let resp = app.patch(&path).acting_as("maitre@monet.fr").if_match(1).json(&json!({ "urgency": "haute" }));
        let resp = resp.send().await;
        assert_eq!(resp.status, 403, "{name}: {}", resp.text);
        resp.text
    };
    let before = refused().await;
    let version = app.get(&path).acting_as("n1@fresnes.fr").send().await.json::<Value>()["version"].as_i64().unwrap();
    let escalate = app.post(&format!("{path}/escalate")).acting_as("n1@fresnes.fr").if_match(version);
    let escalated = escalate.json(&json!({ "reason": "annuaire" })).send().await;
    assert_eq!(escalated.status, 200, "{name}: {}", escalated.text);
    assert_eq!(refused().await, before, "{name}: the same refusal at N1 and at N2");
    assert!(!before.contains("N1") && !before.contains("niveau"), "{name}: {before}");
}

/// Puts the tenant `slug` in `status`, its last deployment failing with `error`, its purge due at `purge_due`.
async fn tenant_state(store: &Store, slug: &str, status: &str, error: Option<&str>, purge_due: Option<&str>) {
    sqlx::query("UPDATE tenants SET status = $1, reconcile_error = $2, purge_due_at = $3 WHERE slug = $4")
        .bind(status)
        .bind(error)
        .bind(purge_due)
        .bind(slug)
        .execute(store.pool())
        .await
        .unwrap();
}

// A ticket on an ENT that is not running is kept, handed to its N1, and says what waits for
// what: the opening of an ENT not yet open (requested, being deployed, its deployment failing),
// the reopening of a suspended one; only its data once it is withdrawn or archived. The answer's
// `warning` is the history's public « Avertissement », which the requester reads; a running ENT
// gets neither, a purged one no ticket.
backend_test!(a_ticket_on_an_ent_not_running_is_kept_with_a_warning_saying_what_waits_for_what);
async fn a_ticket_on_an_ent_not_running_is_kept_with_a_warning_saying_what_waits_for_what(db: crate::common::TestDb) {
    let s = setup(&db).await;
    let slug = "college-jules-verne";
    let opening = "un problème d'accès ou de service ne pourra être traité qu'une fois l'ENT ouvert";
    let data = "seules les demandes sur ses données (récupération, suppression) peuvent encore être traitées";
    let cases = [
        ("requested", None, None, "Cet ENT n'est pas encore ouvert : il est demandé", opening),
        ("provisioning", None, None, "Cet ENT n'est pas encore ouvert : il est en cours de déploiement", opening),
        ("provisioning", Some("PATCH Ingress : 422"), None, "son déploiement a échoué et sera repris", opening),
        ("suspended", None, None, "Cet ENT est suspendu", "ne pourra être traité qu'à sa réouverture"),
        ("decommissioning", None, None, "Cet ENT est en cours de retrait", data),
        ("archived", None, Some("2030-02-28T23:30:00Z"), "supprimées à partir du 1er mars 2030", data),
    ];
    for (status, error, purge_due, state, then) in cases {
        tenant_state(&s.store, slug, status, error, purge_due).await;
        let Opened { path, ticket, .. } = s.open("2027-05-12 09:00", nantes()).await;
        let warning = ticket["warning"].as_str().unwrap_or_else(|| panic!("{} {status}: {ticket}", db.name));
        assert!(warning.contains(state) && warning.contains(then), "{} {status}: {warning}", db.name);
        assert!(warning.contains("Votre ticket est enregistré"), "{} {status}: {warning}", db.name);
        let history = s.get(&s.teacher, &format!("{path}/history")).await.body;
        let said: Vec<&Value> = history.as_array().unwrap().iter().filter(|e| e["kind"] == "warning").collect();
        assert_eq!(said.len(), 1, "{} {status}: {history}", db.name);
        assert_eq!((said[0]["title"].as_str(), said[0]["body"].as_str()), (Some("Avertissement"), Some(warning)));
        // The warning is part of the opening: the requester's version is the support's.
        let support = s.get(&s.n1, &path).await.body;
        assert_eq!(ticket["version"], support["version"], "{} {status}: {ticket}", db.name);
    }
    let handed = mails(&s.store, "created", "rup.julesverne@ac-nantes.fr").await;
    assert_eq!(handed.len(), cases.len(), "{}: each ticket reached the N1", db.name);

    tenant_state(&s.store, slug, "active", None, None).await;
    let Opened { path, ticket, .. } = s.open("2027-05-12 09:00", nantes()).await;
    assert!(ticket.get("warning").is_none(), "{}: {ticket}", db.name);
    let history = s.get(&s.n1, &format!("{path}/history")).await.body;
    assert!(history.as_array().unwrap().iter().all(|e| e["kind"] != "warning"), "{}: {history}", db.name);

    tenant_state(&s.store, slug, "purged", None, None).await;
    let refused = s.post(&s.teacher, "/support/tickets", nantes().json()).await;
    assert_eq!(refused.status, 409, "{}: {}", db.name, refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("est purgé"), "{}: {}", db.name, refused.body);
}

// An escalation to N2 tells whoever handles the ticket there (domain review 41, F5): with no N2
// at the académie the contract designates, the N2 agent of the school's DSDEN, who lists and
// handles the ticket, is mailed; with nobody at all, the escalation answers with a warning, an
// internal « Avertissement » and the « Ticket sans support désigné » mail to the ENT's governors.
backend_test!(an_escalation_to_n2_tells_the_dsden_agent_who_handles_it_and_warns_when_nobody_would_hear);
async fn an_escalation_to_n2_tells_the_dsden_agent_who_handles_it_and_warns_when_nobody_would_hear(
    db: crate::common::TestDb,
) {
    let s = setup(&db).await;
    let name = db.name;
    common::execute(&s.store, "UPDATE users SET active = 0 WHERE email = $1", &["dane@ac-nantes.fr"]).await;
    let dsden = token_for(&s.store, "n2@dsden44.fr", entcp::kernel::roles::Role::SupportN2, Some("dsden:44")).await;
    let principal = "principal@julesverne.fr";
    token_for(&s.store, principal, entcp::kernel::roles::Role::ChefEtablissement, Some("0440001M")).await;

    let first = s.open("2027-05-12 09:00", nantes()).await;
    let escalated = s.act(&s.n1, &first.id, "escalate", json!({ "reason": "relève de l'académie" }), 200).await;
    assert_eq!((&escalated["level"], escalated.get("warning")), (&json!("n2"), None), "{name}: {escalated}");
    assert_eq!(mails(&s.store, "escalated", "n2@dsden44.fr").await.len(), 1, "{name}: the DSDEN's N2 is told");
    assert!(mails(&s.store, "escalated", "dane@ac-nantes.fr").await.is_empty(), "{name}: no inactive account");
    let listed = s.get(&dsden, "/support/tickets").await.body;
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&first.id.as_str()), "{name}: the agent told is one who lists it: {listed}");
    assert!(mails(&s.store, "unstaffed", principal).await.is_empty(), "{name}");

    // Nobody left at N2: the escalation is made, said, and its governors are told instead.
    common::execute(&s.store, "UPDATE users SET active = 0 WHERE email = $1", &["n2@dsden44.fr"]).await;
    let second = s.open("2027-05-12 10:00", nantes()).await;
    let escalated = s.act(&s.n1, &second.id, "escalate", json!({ "reason": "relève de l'académie" }), 200).await;
    let warning = escalated["warning"].as_str().unwrap_or_else(|| panic!("{name}: a warning: {escalated}"));
    assert!(
        warning
            .starts_with("Personne n'est désigné au niveau N2 pour cet ENT (ni utilisateur ni adresse chez l'académie"),
        "{name}: {warning}"
    );
    assert!(
        warning.ends_with("le ticket y est escaladé, les responsables de l'ENT en sont avertis."),
        "{name}: {warning}"
    );
    assert_eq!(escalated["level"], "n2", "{name}");
    let unstaffed = common::queued_mails(&s.store, "support").await;
    let told: Vec<_> = unstaffed.iter().filter(|m| m.context["event"] == "unstaffed").collect();
    assert_eq!(common::recipients_of(told.iter().copied()), [principal], "{name}");
    let rendered = entcp::notify::mailer::render("support", &told[0].context).unwrap();
    assert!(rendered.subject.starts_with("Ticket sans support désigné"), "{name}: {}", rendered.subject);
    assert!(
        rendered.text.contains("a été escaladé au niveau N2, mais personne n'y est désigné"),
        "{name}: {}",
        rendered.text
    );
    let history = s.get(&s.admin, &format!("{}/history", second.path)).await.body;
    let warned = history.as_array().into_iter().flatten().any(|e| e["kind"] == "warning" && e["body"] == warning);
    assert!(warned, "{name}: {history}");
}
