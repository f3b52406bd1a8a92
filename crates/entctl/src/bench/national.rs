//! `entctl bench national` (PostgreSQL): the national sizes of issue #19 — 66,000
//! établissements over 35,000 communes, 30,000 tenants, 1,000,000 tickets of which
//! 100,000 open, 2,000 conventions, 10,000,000 audit records — the annuaire through
//! its import, the rest made by the server (`generate_series`, one statement a table);
//! then timed: reconcile passes, SLA sweep, registers of the largest académie (its own
//! and its DSDENs'), the main routes at 16 clients as a share of `/healthz`, and the
//! database's size.
//! `--scale` multiplies every size (0.1 for a quick try).

use super::load::{load, serve, token, Figures};
use super::{bench_tenants, BenchWorld};
use ent_kernel::config::Config;
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::{timestamp, Backend, Store};
use ent_platform::audit;
use ent_platform::identity::{create_user, Actor, NewUser};
use ent_support::support::jobs;
use ent_tenants::provisioning::reconcile;
use ent_testkit::synthetic::SyntheticOptions;
use std::time::{Duration, Instant};

/// The sizes, before `--scale`.
const ETABLISSEMENTS: f64 = 66_000.0;
const COMMUNES: f64 = 35_000.0;
const TENANTS: f64 = 30_000.0;
const TICKETS: f64 = 1_000_000.0;
const OPEN_TICKETS: f64 = 100_000.0;
const CONVENTIONS: f64 = 2_000.0;
const AUDIT_RECORDS: f64 = 10_000_000.0;

fn fail(p: Problem) -> anyhow::Error {
    anyhow::anyhow!(p.detail)
}

/// Runs `sql` (binds in order) and prints how long it took for `rows` rows of `what`.
async fn generate(store: &Store, what: &str, rows: usize, sql: &str, binds: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let query = binds.iter().fold(sqlx::query(sql), |query, value| query.bind(value.clone()));
    query.bind(rows as i64).execute(store.pool()).await?;
    let seconds = started.elapsed().as_secs_f64();
    outln!("  {what:<34} {rows:>10} lignes en {seconds:>7.1} s");
    Ok(seconds)
}

/// Tenants like `t0` (made by the capability) on the next établissements without one.
const TENANTS_SQL: &str = "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, \
    identity_source, status, spec_hash, version, created_at, updated_at, secret_seed) \
    SELECT 'nat-' || o.n, 'n' || o.n, o.id, 'n' || o.n || '.ent.example.fr', t.base_bouquet, t.options, t.accounts, \
    t.identity_source, t.status, t.spec_hash, 1, t.created_at, t.updated_at, md5(o.id) \
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM orgs WHERE kind = 'etablissement' \
          AND id NOT IN (SELECT org_id FROM tenants) ORDER BY id LIMIT $1) AS o, \
         (SELECT * FROM tenants WHERE slug = 't0') AS t";

/// Tickets spread over every tenant: the first `{open}` open (one in a hundred overdue,
/// each with the two events of [`EVENTS_SQL`]), the others closed.
const TICKETS_SQL: &str = "INSERT INTO support_tickets (id, reference, tenant_id, tenant_org_id, requester_id, \
    requester_role, subject, description, category, impact, urgency, priority, policy, level, reached_n3, n1_org_id, \
    status, resolution_due, next_due, closed_at, created_at, updated_at, last_seq) \
    SELECT 'tk-' || s, 'ENT-NAT-' || lpad(s::text, 8, '0'), t.id, t.org_id, \
    $1, 'usager', 'Ticket ' || s, 'Description', 'autre', 'moyenne', 'moyenne', 'P3', 'standard', 'n1', 0, \
    t.org_id, CASE WHEN s <= {open} THEN 'in_progress' ELSE 'closed' END, \
    CASE WHEN s > {open} THEN NULL WHEN s % 100 = 0 THEN $3 ELSE $4 END, \
    CASE WHEN s > {open} THEN NULL WHEN s % 100 = 0 THEN $3 ELSE $4 END, \
    CASE WHEN s > {open} THEN $2 END, $2, $2, CASE WHEN s <= {open} THEN 2 ELSE 0 END \
    FROM generate_series(1, $5) AS s \
    JOIN (SELECT id, org_id, row_number() OVER (ORDER BY id) - 1 AS k FROM tenants) AS t \
      ON t.k = s % (SELECT COUNT(*) FROM tenants)";

const CONVENTIONS_SQL: &str = "INSERT INTO conventions (id, reference, model_id, model_version, title, status, \
    parameters, start_date, end_date, root_id, created_by, created_at, updated_at) \
    SELECT 'conv-' || s, 'CONV-NAT-' || lpad(s::text, 6, '0'), 'tripartite-premier-degre', 1, 'Convention ' || s, \
    'active', '{}', '2026-09-01', '2029-08-31', 'conv-' || s, 'bench', $1, $1 FROM generate_series(1, $2) AS s";

/// The parties of the generated conventions: each covers the établissement of one tenant,
/// with its académie and its commune (a tripartite convention, as the console makes them).
const PARTIES_SQL: &str = "INSERT INTO convention_parties (convention_id, party_key, org_id, position) \
    SELECT c.id, p.party_key, p.org_id, p.position FROM \
    (SELECT id, row_number() OVER (ORDER BY id) AS k FROM conventions WHERE id LIKE 'conv-%' LIMIT $1) AS c \
    JOIN (SELECT e.id, e.academie_code, e.commune_code, row_number() OVER (ORDER BY t.id) AS k \
          FROM tenants t JOIN orgs e ON e.id = t.org_id) AS e ON e.k = c.k \
    CROSS JOIN LATERAL (VALUES \
      ('academie', (SELECT id FROM orgs WHERE kind = 'academie' AND code = e.academie_code), 1), \
      ('collectivite', (SELECT id FROM orgs WHERE kind = 'commune' AND code = e.commune_code), 2), \
      ('etablissement', e.id, 3)) AS p (party_key, org_id, position) \
    WHERE p.org_id IS NOT NULL";

const SCHOOLS_SQL: &str = "INSERT INTO convention_schools (convention_id, org_id) \
    SELECT convention_id, org_id FROM convention_parties WHERE party_key = 'etablissement' \
    AND convention_id LIKE 'conv-%' LIMIT $1";

/// The level history of the open tickets (what the SLA sweep reads): created at n1, then
/// taken (`last_seq` is 2 on these tickets).
const EVENTS_SQL: &str = "INSERT INTO support_events (id, ticket_id, seq, at, actor, actor_level, kind, from_value, \
    to_value, visibility) \
    SELECT t.id || '-' || k.n, t.id, k.n, t.created_at, 'user:bench', CASE WHEN k.n = 2 THEN 'n1' END, \
    CASE WHEN k.n = 1 THEN 'created' ELSE 'status' END, CASE WHEN k.n = 2 THEN 'new' END, \
    CASE WHEN k.n = 1 THEN 'n1' ELSE 'in_progress' END, 'public' \
    FROM (SELECT id, created_at FROM support_tickets WHERE status <> 'closed' LIMIT $1) AS t \
    CROSS JOIN (VALUES (1), (2)) AS k (n)";

/// Each ticket's time at n1 (what the support reports read), one in a hundred breached.
const LEVELS_SQL: &str = "INSERT INTO support_ticket_levels (ticket_id, level, tenant_id, held_seconds, \
    first_response_seconds, resolution_seconds, breached) \
    SELECT id, 'n1', tenant_id, 7200, 1800, CASE WHEN status = 'closed' THEN 7200 END, \
    CASE WHEN right(id, 2) = '00' THEN 1 ELSE 0 END FROM support_tickets LIMIT $1";

/// Ten years of records after the real ones (one every 31 s), chained as `audit::record`
/// chains them (SHA-256 of the JSON array of the fields and the previous hash), so that
/// `audit::verify` walks a chain of the national length.
const AUDIT_SQL: &str = "WITH RECURSIVE chain (s, seq, at, target_id, prev_hash, hash) AS ( \
      SELECT 0::bigint, COALESCE(MAX(seq), 0), NULL::text, NULL::text, NULL::text, \
        COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), repeat('0', 64)) FROM audit_log \
      UNION ALL \
      SELECT c.s + 1, c.seq + 1, {at}, {id}, c.hash, encode(sha256(convert_to('[' || (c.seq + 1) || ',\"' || {at} || \
        '\",\"user:bench\",\"ticket.updated\",\"ticket\",\"' || {id} || '\",null,\"{}\",\"' || c.hash || '\"]', \
        'UTF8')), 'hex') FROM chain c WHERE c.s < $1) \
    INSERT INTO audit_log (seq, at, actor, action, target_kind, target_id, scope_org_id, summary, prev_hash, hash) \
    SELECT seq, at, 'user:bench', 'ticket.updated', 'ticket', target_id, NULL, '{}', prev_hash, hash FROM chain WHERE s > 0";

/// The time and target of the `s + 1`-th generated record, in [`AUDIT_SQL`].
const AUDIT_AT: &str =
    "to_char(timestamp '2016-09-01' + (c.s + 1) * interval '31 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
const AUDIT_ID: &str = "'ENT-NAT-' || lpad(((c.s + 1) % 1000000)::text, 8, '0')";

pub async fn national(config: &Config, scale: f64, seconds: u64, requests: usize) -> anyhow::Result<()> {
    let postgres =
        config.database.url.as_deref().is_some_and(|url| Backend::from_url(url).is_ok_and(Backend::is_postgres));
    if !postgres {
        anyhow::bail!("bench national : il faut une base PostgreSQL (--database-url postgres://...)");
    }
    let size = |n: f64| ((n * scale).round() as usize).max(1);
    outln!("échelle {scale} ; chaque étape est chronométrée seule");
    let synthetic = SyntheticOptions { etablissements: size(ETABLISSEMENTS), communes: size(COMMUNES), seed: 19 };
    let started = Instant::now();
    let world = BenchWorld::new(config, "national", synthetic, |_| {}).await?;
    let mut import = started.elapsed().as_secs_f64();
    outln!("  {:<34} {:>10} lignes en {import:>7.1} s", "annuaire (import)", size(ETABLISSEMENTS));
    let (store, state) = (world.store.clone(), world.state.clone());
    import += populate(&world, size).await?;
    outln!("données générées en {import:.1} s");

    let now = chrono::Utc::now();
    for pass in ["réconciliation, première passe", "réconciliation sans changement"] {
        let started = Instant::now();
        let report = reconcile::pass(&state.provisioning(), None, now).await.map_err(fail)?;
        outln!("{pass} : {:.2} s ({report:?})", started.elapsed().as_secs_f64());
    }
    for pass in ["balayage SLA", "balayage SLA sans rien de nouveau"] {
        let started = Instant::now();
        let report = jobs::sweep(&state.support(), now).await.map_err(fail)?;
        outln!(
            "{pass} : {:.2} s, {} ticket(s) examiné(s), {} dépassement(s)",
            started.elapsed().as_secs_f64(),
            report.examined,
            report.breaches
        );
    }
    registers_of_largest_academie(&world).await?;
    let started = Instant::now();
    let verified = audit::verify(&store).await.map_err(fail)?;
    outln!("vérification de la chaîne d'audit : {:.2} s ({verified:?})", started.elapsed().as_secs_f64());
    routes(&world, seconds, requests).await?;
    out_of_scope_and_unknown(&world, requests).await?;
    let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(store.pool()).await?;
    outln!("taille de la base : {:.0} Mo", bytes as f64 / 1e6);
    world.finish().await
}

/// Tenants, tickets, conventions and audit records by the server; the seconds it took.
async fn populate(world: &BenchWorld, size: impl Fn(f64) -> usize) -> anyhow::Result<f64> {
    let (store, state) = (&world.store, &world.state);
    let now = chrono::Utc::now();
    let mut total = 0.0;
    let started = Instant::now();
    bench_tenants(state, 1, false).await?;
    total += started.elapsed().as_secs_f64();
    total += generate(store, "tenants", size(TENANTS) - 1, TENANTS_SQL, &[]).await?;
    let new_user = NewUser { email: "usager@bench.fr".into(), display_name: "Usager".into(), org: None };
    let actor = Actor::cli();
    let requester = create_user(store, &actor, new_user, now).await.map_err(fail)?;
    let binds = [
        requester.id,
        timestamp(now - chrono::Duration::hours(240)),
        timestamp(now - chrono::Duration::hours(200)),
        timestamp(now + chrono::Duration::hours(100)),
    ];
    let tickets = TICKETS_SQL.replace("{open}", &size(OPEN_TICKETS).to_string());
    total += generate(store, "tickets", size(TICKETS), &tickets, &binds).await?;
    total += generate(store, "historique des tickets ouverts", size(OPEN_TICKETS) * 2, EVENTS_SQL, &[]).await?;
    total += generate(store, "temps par niveau des tickets", size(TICKETS), LEVELS_SQL, &[]).await?;
    total += generate(store, "conventions", size(CONVENTIONS), CONVENTIONS_SQL, &[timestamp(now)]).await?;
    total += generate(store, "parties des conventions", size(CONVENTIONS) * 3, PARTIES_SQL, &[]).await?;
    total += generate(store, "établissements couverts", size(CONVENTIONS), SCHOOLS_SQL, &[]).await?;
    let audit = AUDIT_SQL.replace("{at}", AUDIT_AT).replace("{id}", AUDIT_ID);
    total += generate(store, "enregistrements d'audit chaînés", size(AUDIT_RECORDS), &audit, &[]).await?;
    let started = Instant::now();
    let tables = ["tenants", "support_tickets", "support_events", "support_ticket_levels", "conventions"];
    for table in tables.into_iter().chain(["convention_parties", "convention_schools", "audit_log"]) {
        store.analyze(table).await?;
    }
    let analyze = started.elapsed().as_secs_f64();
    outln!("  {:<34} {:>10}       en {analyze:>7.1} s", "ANALYZE", "");
    Ok(total + analyze)
}

/// The académie with the most tenants, and the time to derive the registers its DPO keeps:
/// its own and those of its DSDENs (the IA-DASEN is the controller of an école's ENT, so
/// the académie's own register holds only its other schools).
async fn registers_of_largest_academie(world: &BenchWorld) -> anyhow::Result<()> {
    let (store, state) = (&world.store, &world.state);
    let (academie_id, academie_code, tenants): (String, String, i64) = sqlx::query_as(
        "SELECT a.id, a.code, COUNT(*) FROM orgs a JOIN orgs e ON e.academie_code = a.code AND e.kind = 'etablissement' \
         JOIN tenants t ON t.org_id = e.id WHERE a.kind = 'academie' GROUP BY a.id, a.code ORDER BY COUNT(*) DESC LIMIT 1",
    )
    .fetch_one(store.pool())
    .await?;
    let dsdens: Vec<String> =
        sqlx::query_scalar("SELECT id FROM orgs WHERE kind = 'dsden' AND academie_code = $1 ORDER BY id")
            .bind(&academie_code)
            .fetch_all(store.pool())
            .await?;
    // The generated tenants are `requested` (the reconcile passes have nothing to write) and a
    // register lists live tenants only: they go live here, as a deployed ENT's would be.
    let live =
        sqlx::query("UPDATE tenants SET status = 'active' WHERE status = 'requested'").execute(store.pool()).await?;
    outln!("  {} tenants passés à l'état actif pour le registre", live.rows_affected());
    let controllers: Vec<String> = std::iter::once(academie_id).chain(dsdens).collect();
    let registers = super::derive_registers(state, &controllers, 1).await?;
    let own = &registers.registers[0];
    outln!(
        "registres de la plus grande académie ({tenants} tenants ; le sien et ceux de ses {} DSDEN) : {registers} \
         (le sien : {} fiches, {} lignes établissement)",
        controllers.len() - 1,
        own.entries.len(),
        super::establishment_lines(own)
    );
    Ok(())
}

/// The medians of `GET /api/v1/tenants/{slug}` for a DAN, on a tenant of another académie and
/// on a slug naming none: two identical 404s after the same work (`tenants::find_for`), so the
/// two figures should match within noise (this is the place for timing, not the tests).
async fn out_of_scope_and_unknown(world: &BenchWorld, requests: usize) -> anyhow::Result<()> {
    let store = &world.store;
    let (academie_id, code): (String, String) =
        sqlx::query_as("SELECT id, code FROM orgs WHERE kind = 'academie' ORDER BY code LIMIT 1")
            .fetch_one(store.pool())
            .await?;
    let (foreign,): (String,) = sqlx::query_as(
        "SELECT t.slug FROM tenants t JOIN orgs o ON o.id = t.org_id WHERE o.academie_code <> $1 ORDER BY t.slug LIMIT 1",
    )
    .bind(&code)
    .fetch_one(store.pool())
    .await?;
    let academie = ent_platform::registry::queries::get_org(store, &academie_id).await.map_err(fail)?;
    let dan = token(store, "dan@bench.example.fr", Role::Dan, academie.as_ref()).await?;
    let addr = serve(world.state.clone()).await?;
    let mut medians = Vec::new();
    for slug in [foreign.as_str(), "inconnu-du-registre"] {
        let path = format!("/api/v1/tenants/{slug}");
        let (median, status) = super::load::sequential_median_ms(addr, &path, &dan, requests.min(2000)).await?;
        medians.push(format!("{median:.2} ms ({status})"));
    }
    outln!(
        "  un tenant, DAN de l'académie {code} : d'une autre académie p50 {}, inconnu p50 {}",
        medians[0],
        medians[1]
    );
    Ok(())
}

/// p50, p95 and p99 of the main list and read routes at 16 clients (at most `requests` or
/// `seconds` each), p50 and p99 as a share of `/healthz`'s.
async fn routes(world: &BenchWorld, seconds: u64, requests: usize) -> anyhow::Result<()> {
    let store = &world.store;
    let admin = token(store, "admin@bench.example.fr", Role::Admin, None).await?;
    let addr = serve(world.state.clone()).await?;
    let (org_id,): (String,) = sqlx::query_as("SELECT id FROM orgs WHERE kind = 'etablissement' ORDER BY id LIMIT 1")
        .fetch_one(store.pool())
        .await?;
    let paths = [
        ("/healthz", "/healthz".to_string()),
        ("organisations (limit=50)", "/api/v1/orgs?limit=50".to_string()),
        ("une organisation", format!("/api/v1/orgs/{org_id}")),
        ("tenants (limit=50)", "/api/v1/tenants?limit=50".to_string()),
        ("un tenant", "/api/v1/tenants/n1".to_string()),
        ("tickets (limit=50)", "/api/v1/support/tickets?limit=50".to_string()),
        ("un ticket", "/api/v1/support/tickets/ENT-NAT-00000001".to_string()),
        ("conventions (limit=50)", "/api/v1/conventions?limit=50".to_string()),
        ("audit (limit=50)", "/api/v1/audit?limit=50".to_string()),
    ];
    outln!("routes, 16 clients, au plus {requests} requêtes ou {seconds} s chacune (jeton admin) :");
    let mut base = (0.0, 0.0);
    for (label, path) in paths {
        let token = admin.clone();
        let limit = Duration::from_secs(seconds);
        let mut figures: Figures =
            load(addr, 16, requests, limit, move |_, _| ("GET", path.clone(), token.clone(), None)).await;
        let (p50, p95, p99) = (figures.percentile_ms(0.5), figures.percentile_ms(0.95), figures.p99_ms());
        if base.0 == 0.0 {
            base = (p50, p99);
        }
        outln!(
            "  {label:<26} p50 {p50:>7.1} ms ({:>5.1} × /healthz)  p95 {p95:>7.1} ms  p99 {p99:>7.1} ms ({:>5.1} ×)  \
             {:>6.0} req/s  erreurs {}",
            p50 / base.0.max(1e-9),
            p99 / base.1.max(1e-9),
            figures.per_second(),
            figures.errors
        );
    }
    Ok(())
}
