//! Rows that fail loudly: an unknown enum value stored in the database is an
//! error (problem+json 500), never a silent default.

use crate::common::{self, TestDb};
use entcp::clock::FixedClock;
use entcp::kernel::roles::Role;
use serde_json::Value;
use std::sync::Arc;

/// One collège in Nantes (académie 17).
const ANNUAIRE: &str = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;\
Code_postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region\n\
0440001M;Collège Jules Verne;Collège;Public;44000;44109;Nantes;044;17;52\n";

/// The breach log of the collège (by its UAI).
const BREACHES: &str = "/rgpd/breaches/0440001M";
/// The data-subject request log of the collège.
const REQUESTS: &str = "/rgpd/requests/0440001M";

/// Valid groupement terms, as an SQL literal.
const TERMS: &str = "'{\"lots\": [], \"bouquet\": \"essentiel\", \"options\": [], \"support\": [], \
    \"cost_key\": [{\"basis\": \"equal\", \"weight\": 100}], \"duration_months\": 48}'";

const NOW: &str = "2026-09-01T08:00:00.000000Z";

/// A served database holding one établissement, two rows of each kind written
/// directly (a good one and one to corrupt), and an admin client.
struct World {
    db: TestDb,
    base: String,
    client: reqwest::Client,
}

impl World {
    async fn new(db: TestDb) -> World {
        let csv = std::io::Cursor::new(ANNUAIRE.as_bytes().to_vec());
        let options = entcp::registry::import::ImportOptions::default();
        entcp::registry::import::import_annuaire(&db.store, &common::admin(), csv, options, common::t0())
            .await
            .unwrap();
        let token = common::token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
        let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(common::t0()))).await;
        let world = World { db, base, client: common::client_with(&token) };
        for name in ["ok", "bad"] {
            world.insert_tenant(name).await;
            world.insert_ticket(name).await;
            world.insert_convention(name).await;
            world.insert_breach(name).await;
            world.insert_request(name).await;
            world.insert_groupement(name).await;
        }
        world
    }

    async fn exec(&self, sql: &str, binds: &[&str]) {
        let mut query = sqlx::query(sql);
        for value in binds {
            query = query.bind(*value);
        }
        query.execute(self.db.store.pool()).await.unwrap();
    }

    async fn scalar(&self, sql: &str) -> String {
        sqlx::query_scalar(sql).fetch_one(self.db.store.pool()).await.unwrap()
    }

    async fn insert_tenant(&self, name: &str) {
        let org = self.scalar("SELECT id FROM orgs WHERE kind = 'etablissement'").await;
        self.exec(
            "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
             spec_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, 'essentiel', '[]', 100, 'educonnect', \
             'requested', 'h', $5, $5)",
            &[&format!("tenant-{name}"), name, &org, &format!("{name}.ent.test"), NOW],
        )
        .await;
    }

    async fn insert_ticket(&self, name: &str) {
        let org = self.scalar("SELECT id FROM orgs WHERE kind = 'etablissement'").await;
        let user = self.scalar("SELECT id FROM users WHERE email = 'admin@ent.fr'").await;
        self.exec(
            "INSERT INTO support_tickets (id, reference, tenant_id, tenant_org_id, requester_id, requester_role, \
             subject, description, category, impact, urgency, priority, policy, level, n1_org_id, status, \
             created_at, updated_at) VALUES ($1, $2, 'tenant-ok', $3, $4, 'admin', 'Sujet', 'Description', \
             'incident', 'moyen', 'moyenne', 'P3', 'standard', 'n1', $5, 'new', $6, $6)",
            &[&format!("ticket-{name}"), &format!("SUP-{name}"), &org, &user, &org, NOW],
        )
        .await;
    }

    async fn insert_convention(&self, name: &str) {
        self.exec(
            "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, \
             end_date, root_id, created_by, created_at, updated_at) VALUES ($1, $2, 'tripartite', 1, 'Convention', \
             'draft', '{}', '2026-09-01', '2027-08-31', $1, 'admin', $3, $3)",
            &[&format!("conv-{name}"), &format!("CONV-2026-{name}"), NOW],
        )
        .await;
    }

    async fn insert_breach(&self, name: &str) {
        let org = self.scalar("SELECT id FROM orgs WHERE kind = 'etablissement'").await;
        self.exec(
            "INSERT INTO rgpd_breaches (id, reference, org_id, title, facts, aware_at, data_categories, people_approx, \
             records_approx, consequences, measures, cnil_decision, created_by, created_at, updated_at) VALUES \
             ($1, $2, $3, 'Violation', 'Faits', $4, '[\"identité\"]', 10, 10, 'Conséquences', 'Mesures', 'pending', \
             'admin', $4, $4)",
            &[&format!("breach-{name}"), &format!("VIO-{name}"), &org, NOW],
        )
        .await;
    }

    async fn insert_request(&self, name: &str) {
        let org = self.scalar("SELECT id FROM orgs WHERE kind = 'etablissement'").await;
        self.exec(
            "INSERT INTO rgpd_requests (id, reference, org_id, kind, requester, received_on, due_on, status, \
             created_by, created_at, updated_at) VALUES ($1, $2, $3, 'access', 'Parent', '2026-09-01', '2026-10-01', \
             'received', 'admin', $4, $4)",
            &[&format!("request-{name}"), &format!("DEM-{name}"), &org, NOW],
        )
        .await;
    }

    /// A groupement coordinated by the académie, with one application (the collège)
    /// and one document version.
    async fn insert_groupement(&self, name: &str) {
        let academie = self.scalar("SELECT id FROM orgs WHERE kind = 'academie'").await;
        let etab = self.scalar("SELECT id FROM orgs WHERE kind = 'etablissement'").await;
        let id = format!("grp-{name}");
        self.exec(
            &format!(
                "INSERT INTO groupements (id, reference, coordinator_org_id, title, object, terms, \
                 application_deadline, status, created_by, created_at, updated_at) VALUES ($1, $2, $3, 'ENT', \
                 'Objet', {TERMS}, '2026-10-15', 'open', 'admin', $4, $4)"
            ),
            &[&id, &format!("GC-2026-{name}"), &academie, NOW],
        )
        .await;
        self.exec(
            "INSERT INTO groupement_members (id, groupement_id, org_id, status, deliberation_number, \
             deliberation_date, schools, classes, pupils, teacher_accounts, parent_accounts, applied_by, applied_at, \
             updated_at) VALUES ($1, $2, $3, 'applied', 'DCM-1', '2026-06-30', 1, 5, 100, 6, 100, 'admin', $4, $4)",
            &[&format!("app-{name}"), &id, &etab, NOW],
        )
        .await;
        self.exec(
            "INSERT INTO groupement_documents (id, groupement_id, kind, version_no, title, sha256, shared, created_by, \
             created_at) VALUES ($1, $2, 'cctp', 1, 'CCTP', 'h', 0, 'admin', $3)",
            &[&format!("doc-{name}"), &id, NOW],
        )
        .await;
    }

    async fn get(&self, path: &str) -> (u16, Value, String) {
        let resp = self.client.get(format!("{}/api/v1{path}", self.base)).send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), content_type)
    }

    /// `path` answers a problem+json 500 (`internal`).
    async fn assert_internal(&self, path: &str, what: &str) {
        let (status, body, content_type) = self.get(path).await;
        assert_eq!(status, 500, "{} {what}: {path} answered {body}", self.db.name);
        assert_eq!(content_type, "application/problem+json", "{} {what}", self.db.name);
        assert_eq!(body["type"], "urn:entcp:problem:internal", "{} {what}", self.db.name);
    }

    /// The log at `path` answers 200 with both rows, `field` of each being `expected`.
    async fn assert_rgpd_log(&self, path: &str, field: &str, expected: &str) {
        let (status, body, _) = self.get(path).await;
        assert_eq!(status, 200, "{}: {path} answered {body}", self.db.name);
        let rows = body.as_array().unwrap_or_else(|| panic!("{}: {path} answered {body}", self.db.name));
        assert_eq!(rows.len(), 2, "{}: {path}", self.db.name);
        assert!(rows.iter().all(|r| r[field] == expected), "{}: {path} answered {body}", self.db.name);
    }

    /// `path` answers 200 and `field` of its body is `expected`.
    async fn assert_field(&self, path: &str, field: &str, expected: &str) {
        let (status, body, _) = self.get(path).await;
        assert_eq!(status, 200, "{}: {path} answered {body}", self.db.name);
        assert_eq!(body[field], expected, "{}: {path}", self.db.name);
    }
}

backend_test!(unknown_values_fail_loudly);
/// Each corrupted column, one at a time: the row's read route and the list that holds
/// it answer a 500; the good row still reads as stored; the column restored, both read.
async fn unknown_values_fail_loudly(db: TestDb) {
    let world = World::new(db).await;
    let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
        // (table, id, column, bad SQL value, good SQL value, read path)
        ("tenants", "tenant-bad", "status", "'hibernating'", "'requested'", "/tenants/bad"),
        ("tenants", "tenant-bad", "identity_source", "'ldap'", "'educonnect'", "/tenants/bad"),
        ("support_tickets", "ticket-bad", "priority", "'P9'", "'P3'", "/support/tickets/ticket-bad"),
        ("support_tickets", "ticket-bad", "level", "'n7'", "'n1'", "/support/tickets/ticket-bad"),
        ("support_tickets", "ticket-bad", "status", "'lost'", "'new'", "/support/tickets/ticket-bad"),
        ("support_tickets", "ticket-bad", "requester_shared", "2", "0", "/support/tickets/ticket-bad"),
        ("conventions", "conv-bad", "status", "'burnt'", "'draft'", "/conventions/conv-bad"),
        ("conventions", "conv-bad", "parameters", "'{not json'", "'{}'", "/conventions/conv-bad"),
        // The breach and request logs have no read route per row: their list is both.
        ("rgpd_breaches", "breach-bad", "cnil_decision", "'maybe'", "'pending'", BREACHES),
        ("rgpd_breaches", "breach-bad", "data_categories", "'{not json'", "'[]'", BREACHES),
        ("rgpd_breaches", "breach-bad", "risk", "'moyen'", "'unassessed'", BREACHES),
        ("rgpd_breaches", "breach-bad", "people_exception", "'z'", "'none'", BREACHES),
        ("rgpd_breaches", "breach-bad", "people_categories", "'{not json'", "'[]'", BREACHES),
        ("rgpd_breaches", "breach-bad", "reported_as", "'sous-traitant'", "'controller'", BREACHES),
        ("rgpd_requests", "request-bad", "kind", "'telepathy'", "'access'", REQUESTS),
        ("rgpd_requests", "request-bad", "status", "'lost'", "'received'", REQUESTS),
        ("groupements", "grp-bad", "status", "'dormant'", "'open'", "/groupements/grp-bad"),
        ("groupements", "grp-bad", "terms", "'{not json'", TERMS, "/groupements/grp-bad"),
        ("groupements", "grp-bad", "award", "'{not json'", "NULL", "/groupements/grp-bad"),
        // Applications and document versions are read through their groupement's lists.
        ("groupement_members", "app-bad", "status", "'pending'", "'applied'", "/groupements/grp-bad/applications"),
        ("groupement_documents", "doc-bad", "kind", "'poster'", "'cctp'", "/groupements/grp-bad/documents"),
        ("groupement_documents", "doc-bad", "shared", "2", "0", "/groupements/grp-bad/documents"),
    ];
    for (table, id, column, bad, good, path) in cases {
        let what = format!("{table}.{column} = {bad}");
        let list = match *table {
            "tenants" => "/tenants",
            "support_tickets" => "/support/tickets",
            "conventions" => "/conventions",
            "groupements" => "/groupements",
            _ => path,
        };
        world.exec(&format!("UPDATE {table} SET {column} = {bad} WHERE id = $1"), &[id]).await;
        world.assert_internal(path, &what).await;
        world.assert_internal(list, &what).await;
        world.exec(&format!("UPDATE {table} SET {column} = {good} WHERE id = $1"), &[id]).await;
        let (status, body, _) = world.get(path).await;
        assert_eq!(status, 200, "{} {what} restored: {body}", world.db.name);
        let (status, body, _) = world.get(list).await;
        assert_eq!(status, 200, "{} {what} restored: {body}", world.db.name);
    }
    world.assert_field("/tenants/ok", "status", "requested").await;
    world.assert_field("/support/tickets/ticket-ok", "priority", "P3").await;
    world.assert_field("/conventions/conv-ok", "status", "draft").await;
    world.assert_rgpd_log(BREACHES, "cnil_decision", "pending").await;
    world.assert_rgpd_log(REQUESTS, "status", "received").await;
    world.assert_field("/groupements/grp-ok", "status", "open").await;
}
