//! Production (issue #19): `entctl serve` as it runs in a cluster — two replicas of the
//! real binary on one PostgreSQL database under a bounded loopback load, and the
//! graceful shutdown of a replica on SIGTERM; and, in process on both backends, the
//! sign-in lockout that several console replicas over one database share (issue: lockout
//! across replicas and restarts).
//!
//! Two binary cases need PostgreSQL (the SIGTERM readiness case runs on both): a SQLite database is one file of one host, served by one
//! process (the README says so), and the shutdown case holds a row lock, which SQLite
//! has not (the in-process drain of `observability.rs` runs on both backends).

use crate::common::smtp::{smtp_sink_available, SmtpSink};
use crate::common::{self, admin, eventually, t0, token_for, TestDb};
use entcp::clock::FixedClock;
use entcp::kernel::roles::Role;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `entctl serve` of this build as a child process: where it listens and its log so far.
struct Replica {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Starts `entctl serve` on a free loopback port with the configuration file
    /// `config`, and returns once it listens.
    fn start(db_url: &str, data_dir: &Path, config: &Path, env: &[(&str, String)]) -> Replica {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_entctl"));
        for var in ["DATABASE_URL", "ENTCP_CONFIG", "ENTCP_LISTEN", "ENTCP_LOG_FORMAT", "RUST_LOG"] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .current_dir(data_dir)
            .env("ENTCP_CONFIG", config)
            .env("ENTCP_DATABASE_URL", db_url)
            .env("ENTCP_DATA_DIR", data_dir)
            .env("ENTCP_LISTEN", "127.0.0.1:0")
            .env("ENTCP_LOG_LEVEL", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut base = None;
        for line in lines.by_ref().map_while(Result::ok) {
            log.lock().unwrap().push(line.clone());
            if let Some((_, rest)) = line.split_once("listening on http://") {
                let address = rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap();
                base = Some(format!("http://{address}"));
                break;
            }
        }
        let base = base.unwrap_or_else(|| panic!("entctl serve did not listen: {:?}", log.lock().unwrap()));
        // The rest of the log is read on, so that the child never blocks on a full pipe.
        let kept = log.clone();
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| kept.lock().unwrap().push(line)));
        Replica { child, base, log }
    }

    fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit (at most 60 s); its exit status.
    async fn exited(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running: {:?}", self.log.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a case does not run on SQLite (see the module's comment).
fn postgres_only(db: &TestDb) -> bool {
    if db.name == "sqlite" {
        eprintln!("replicas share a PostgreSQL database: one SQLite file is served by one process");
        return false;
    }
    true
}

const SCHOOLS: [(&str, &str); 4] =
    [("doisneau", "0940176F"), ("wallon", "0940198E"), ("ecole-l", "0940204L"), ("ecole-s", "0940209S")];

/// The state of the test process on the replicas' database and data folder (to read
/// and render what they share), with the sample annuaire and `slugs` tenants being provisioned.
async fn shared_state(db: &TestDb, data_dir: &Path, slugs: &[(&str, &str)]) -> entcp::api::AppState {
    common::import_sample(&db.store).await;
    let config = entcp::config::Config { data_dir: data_dir.to_path_buf(), ..Default::default() };
    let state = common::app::app_state(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
    for (slug, uai) in slugs {
        let doc = crate::tenants::doc(slug, uai, &format!("{slug}.ent.example.fr"));
        let doc: entcp::tenants::EntTenant = serde_json::from_value(doc).unwrap();
        let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
        let provisioning = entcp::tenants::Status::Provisioning;
        let step = entcp::tenants::Move::to(provisioning).overriding("essai");
        entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    state
}

/// The tenant document of a school with `options`.
fn tenant_doc((slug, uai): (&str, &str), options: Value) -> Value {
    let mut doc = crate::tenants::doc(slug, uai, &format!("{slug}.ent.example.fr"));
    doc["spec"]["options"] = options;
    doc
}

/// `doc` applied to its existing tenant as a client edits it: `PUT` with the `If-Match` of the
/// version read, read again when a reconcile pass moved the tenant in between (412).
async fn put_tenant(client: &reqwest::Client, base: &str, doc: &Value) -> reqwest::Response {
    let url = format!("{base}/api/v1/tenants/{}", doc["metadata"]["name"].as_str().unwrap());
    loop {
        let read = client.get(&url).send().await.unwrap();
        let etag = read.headers()["etag"].to_str().unwrap().to_string();
        let resp = client.put(&url).header("if-match", etag).json(doc).send().await.unwrap();
        if resp.status() != reqwest::StatusCode::PRECONDITION_FAILED {
            return resp;
        }
    }
}

const CLIENTS: usize = 8;
const WRITES: usize = 12;
const MAILS: usize = 60;

backend_test!(two_replicas_on_one_database_run_each_tick_and_send_each_mail_once_and_lose_no_write);
async fn two_replicas_on_one_database_run_each_tick_and_send_each_mail_once_and_lose_no_write(db: TestDb) {
    if !postgres_only(&db) || !smtp_sink_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let state = shared_state(&db, data.path(), &SCHOOLS).await;
    let token = token_for(&db.store, "root@test.fr", Role::Admin, None).await;
    let mut tx = db.store.begin_write().await.unwrap();
    for n in 0..MAILS {
        let to = [format!("destinataire-{n}@ent.example.fr")];
        let context = json!({ "requested_by": "deux réplicas" });
        entcp::notify::enqueue(&mut tx, &to, "test", context, chrono::Utc::now()).await.unwrap();
    }
    tx.commit().await.unwrap();
    // Every second a tick of the outbox sender and of the reconcile pass, on both replicas.
    let config = data.path().join("entcp.yaml");
    let every_second =
        "jobs:\n  outbox-send:\n    schedule: '* * * * * *'\n  tenants-reconcile:\n    schedule: '* * * * * *'\n";
    std::fs::write(&config, every_second).unwrap();
    let sink = SmtpSink::start_on_any_port();
    let port = sink.port();
    let smtp = [
        ("ENTCP_MAIL_TRANSPORT", "smtp".to_string()),
        ("ENTCP_SMTP_HOST", "127.0.0.1".to_string()),
        ("ENTCP_SMTP_PORT", port.to_string()),
        ("ENTCP_SMTP_TLS", "none".to_string()),
    ];
    let mut replicas =
        [Replica::start(&db.url, data.path(), &config, &smtp), Replica::start(&db.url, data.path(), &config, &smtp)];
    let client = common::client_with(&token);

    // 8 clients, half on each replica, create users; meanwhile the tenants change on
    // replica 0 (its work queue reconciles them) while both run scheduled passes.
    let writers = (0..CLIENTS).map(|c| {
        let (client, url) = (client.clone(), format!("{}/api/v1/users", replicas[c % 2].base));
        tokio::spawn(async move {
            for n in 0..WRITES {
                let user = json!({ "email": format!("charge-{c}-{n}@ent.example.fr"), "display_name": "Chargé" });
                let resp = client.post(&url).json(&user).send().await.unwrap();
                assert_eq!(resp.status(), reqwest::StatusCode::CREATED, "{}", resp.text().await.unwrap());
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let (tenant_client, base) = (client.clone(), replicas[0].base.clone());
    let changes = tokio::spawn(async move {
        for round in 0..6 {
            for school in SCHOOLS {
                let options = if round % 2 == 0 { json!(["visio"]) } else { json!([]) };
                let resp = put_tenant(&tenant_client, &base, &tenant_doc(school, options)).await;
                assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
            }
        }
    });
    for writer in writers {
        writer.await.unwrap();
    }
    changes.await.unwrap();

    let sent = || async { common::count(&db.store, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'", &[]).await };
    eventually("every queued mail sent", 30, || async { sent().await == MAILS as i64 }).await;
    let slugs: Vec<&str> = SCHOOLS.iter().map(|(slug, _)| *slug).collect();
    let root = data.path().join("manifests");
    eventually("every tenant's folder as rendered from its last spec", 30, || async {
        crate::tenants::manifests_difference(&state, &root, &slugs).await.is_none()
    })
    .await;
    for replica in &replicas {
        replica.terminate();
    }
    for replica in &mut replicas {
        assert!(replica.exited().await.success(), "{:?}", replica.log.lock().unwrap());
    }

    // Each mail reached the SMTP server once, under its outbox id.
    assert_eq!(sink.received().len(), MAILS);
    for mail in common::queued_mails(&db.store, "test").await {
        assert_eq!(sink.copies_of(&mail.id), 1, "{}", mail.recipients);
    }
    // Each tick ran on one replica only, and both replicas took part.
    let twice = "SELECT COUNT(*) FROM (SELECT job, tick FROM job_runs WHERE trigger = 'schedule' \
                 GROUP BY job, tick HAVING COUNT(*) > 1) AS twice";
    assert_eq!(common::count(&db.store, twice, &[]).await, 0);
    let ticks = "SELECT COUNT(*) FROM job_runs WHERE trigger = 'schedule' AND job = 'outbox-send'";
    assert!(common::count(&db.store, ticks, &[]).await >= 2);
    // No write lost; the audit chain written by both processes at once verifies.
    let users = common::count(&db.store, "SELECT COUNT(*) FROM users WHERE email LIKE 'charge-%'", &[]).await;
    assert_eq!(users, (CLIENTS * WRITES) as i64);
    match entcp::audit::verify(&db.store).await.unwrap() {
        entcp::audit::Verification::Intact { records } => assert!(records >= (CLIENTS * WRITES) as i64),
        broken => panic!("{broken:?}"),
    }
    // The folders still hold what the last specs render, and no lease outlives the replicas.
    assert_eq!(crate::tenants::manifests_difference(&state, &root, &slugs).await, None);
    assert_eq!(common::count(&db.store, "SELECT COUNT(*) FROM tenant_leases", &[]).await, 0);
}

backend_test!(sigterm_lets_the_request_in_flight_finish_releases_the_tenant_leases_and_exits_zero);
async fn sigterm_lets_the_request_in_flight_finish_releases_the_tenant_leases_and_exits_zero(db: TestDb) {
    if !postgres_only(&db) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let doisneau = SCHOOLS[0];
    shared_state(&db, data.path(), &[doisneau]).await;
    let token = token_for(&db.store, "root@test.fr", Role::Admin, None).await;
    // The test holds the tenant's row: the replica's first reconcile pass takes the
    // tenant's lease, writes its manifests, then waits for the row; so will a request.
    let mut hold = db.store.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM tenants WHERE slug = $1 FOR UPDATE")
        .bind(doisneau.0)
        .fetch_all(&mut *hold)
        .await
        .unwrap();
    let config = data.path().join("entcp.yaml");
    std::fs::write(&config, "server:\n  shutdown_seconds: 25\n").unwrap();
    let mut replica = Replica::start(&db.url, data.path(), &config, &[]);
    let leases = || async { common::count(&db.store, "SELECT COUNT(*) FROM tenant_leases", &[]).await };
    eventually("the replica holds the tenant's lease", 30, || async { leases().await == 1 }).await;
    // An edit at the version the replica's pass leaves unchanged (it waits for the row too).
    let url = format!("{}/api/v1/tenants/{}", replica.base, doisneau.0);
    let version = entcp::tenants::get_tenant(&db.store, doisneau.0).await.unwrap().unwrap().version;
    let request = common::client_with(&token)
        .put(url)
        .header("if-match", format!("\"{version}\""))
        .json(&tenant_doc(doisneau, json!([])))
        .send();
    let in_flight = tokio::spawn(request);
    let waiting =
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    eventually("the reconcile and the request wait for the row", 30, || async {
        common::count(&db.store, waiting, &[]).await >= 2
    })
    .await;

    replica.terminate();
    eventually("the lease released at SIGTERM", 30, || async { leases().await == 0 }).await;
    assert!(std::net::TcpStream::connect(replica.address()).is_err(), "no new connection once signalled");
    assert!(replica.running(), "the request in flight holds the process");
    hold.commit().await.unwrap();
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK, "the request in flight completes");
    let tenant = entcp::tenants::get_tenant(&db.store, doisneau.0).await.unwrap().unwrap();
    assert!(tenant.options.is_empty(), "its change is stored");
    assert!(replica.exited().await.success(), "{:?}", replica.log.lock().unwrap());
    assert_eq!(leases().await, 0);
}

// SRE 42 (F1): at the drain deadline the sending pass and the import were cut, and their claims
// were given back by spawned tasks that the exiting process never ran: the e-mails stayed locked
// for their lease (5 min), the import lock for its own (2 min), and no other pod could take them
// over. `serve` now releases what its process holds, awaited, before it closes the store.
backend_test!(a_shutdown_past_its_deadline_gives_back_the_claimed_mails_and_the_import_locks_at_once);
async fn a_shutdown_past_its_deadline_gives_back_the_claimed_mails_and_the_import_locks_at_once(db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let id = common::queue_test_mail(&db.store, "dsi@ac-creteil.fr", chrono::Utc::now()).await;
    let relay = common::smtp::silent_smtp_server().await;
    let config = data.path().join("entcp.yaml");
    let yaml = format!(
        "server: {{ shutdown_seconds: 1, unready_seconds: 0 }}\n\
         mail:\n  transport: smtp\n  smtp: {{ host: 127.0.0.1, port: {relay}, tls: none, timeout_seconds: 600 }}\n\
         jobs:\n  outbox-send: {{ schedule: \"* * * * * *\" }}\n"
    );
    std::fs::write(&config, yaml).unwrap();
    let mut replica = Replica::start(&db.url, data.path(), &config, &[("HOSTNAME", "pod-a".to_string())]);
    let store = &db.store;
    let status = |id: &str| {
        let id = id.to_string();
        async move {
            let message = entcp::notify::get_message(store, &id).await.unwrap();
            (message.status, message.attempts)
        }
    };
    // Its pass claims the mail and hangs on the relay, far past the drain deadline.
    eventually("the replica's pass holds the mail", 30, || async { status(&id).await.0 == "sending" }).await;
    // Two more claims, whose passes are gone: one of a runner of the replica (its release task
    // never ran), one of another pod's, whose name begins like the replica's (left to its lease).
    let until = entcp::store::timestamp(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut claims = Vec::new();
    let pid = replica.child.id();
    for runner in [format!("pod-a-{pid}-abcdef"), format!("pod-a-{pid}-7-abcdef")] {
        let claimed = common::queue_test_mail(&db.store, "dan@ac-creteil.fr", chrono::Utc::now()).await;
        let claim = "UPDATE outbox SET status = 'sending', claimed_by = $1, claimed_until = $2 WHERE id = $3";
        common::execute(&db.store, claim, &[&runner, &until, &claimed]).await;
        claims.push(claimed);
    }
    // An import of the replica's, cut at the deadline, holds its lock (as `host:pid` names it).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let process = format!("{}:{}", host.trim(), replica.child.id());
    common::execute(
        &db.store,
        "INSERT INTO import_locks (academie_code, run_id, holder, process, started_at, expires_at) \
         VALUES ('*', 'import-coupe', 'admin@localhost', $1, $2, $2)",
        &[&process, &until],
    )
    .await;

    replica.terminate();
    assert!(replica.exited().await.success(), "{}: {:?}", db.name, replica.log.lock().unwrap());
    let pending = ("pending".to_string(), 0);
    assert_eq!(status(&id).await, pending, "{}: due again at once, not after its lease", db.name);
    assert_eq!(status(&claims[0]).await, pending, "{}: a claim of the replica's runners, released", db.name);
    assert_eq!(status(&claims[1]).await.0, "sending", "{}: another process's claim is left", db.name);
    assert_eq!(common::count(&db.store, "SELECT COUNT(*) FROM import_locks", &[]).await, 0, "{}", db.name);
    let logged = |what: &'static str| {
        let log = replica.log.clone();
        move || {
            let said = log.lock().unwrap().iter().any(|line| line.contains(what));
            async move { said }
        }
    };
    eventually("the release logged", 10, logged("claims of this process released at shutdown")).await;
}

backend_test!(sigterm_turns_readyz_to_503_at_once_and_still_serves_new_connections_until_the_listener_closes);
async fn sigterm_turns_readyz_to_503_at_once_and_still_serves_new_connections_until_the_listener_closes(db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("entcp.yaml");
    std::fs::write(&config, "server:\n  unready_seconds: 6\n  shutdown_seconds: 5\n").unwrap();
    let mut replica = Replica::start(&db.url, data.path(), &config, &[]);
    // A client per request: each one opens a new connection, as a new client of the Service would.
    let get = |path: &str| {
        let url = format!("{}{path}", replica.base);
        async move { reqwest::Client::new().get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(get("/readyz").await.unwrap(), 200, "{}", db.name);

    replica.terminate();
    eventually("/readyz answers 503 once signalled", 5, || async { get("/readyz").await.ok() == Some(503) }).await;
    assert_eq!(get("/healthz").await.unwrap(), 200, "{}: a new connection is still served", db.name);
    assert!(replica.running(), "{}", db.name);
    eventually("the listener closes after unready_seconds", 30, || async {
        std::net::TcpStream::connect(replica.address()).is_err()
    })
    .await;
    assert!(replica.exited().await.success(), "{:?}", replica.log.lock().unwrap());
}

/// Signs in through the console form of `app` as the client `from` (the configuration
/// trusts `X-Forwarded-For`, so each client address is its own).
async fn sign_in_from(app: &common::TestApp, from: &str, email: &str, password: &str) -> common::Resp {
    use crate::console::{csrf_of, set_cookie};
    let form = app.get("/connexion").header("x-forwarded-for", from).send().await;
    assert_eq!(form.status, 200, "{}", form.text);
    let cookie = set_cookie(&form, "entcp_formulaire").expect("form cookie");
    let body = serde_urlencoded::to_string([
        ("_csrf", csrf_of(&form.text).as_str()),
        ("email", email),
        ("password", password),
    ])
    .unwrap();
    app.post("/connexion")
        .header("x-forwarded-for", from)
        .header("cookie", format!("entcp_formulaire={cookie}"))
        .bytes("application/x-www-form-urlencoded", body)
        .send()
        .await
}

/// A console replica over the database `db`, with a pool and a read cache of its own as
/// another process has, on the shared `clock`, trusting `X-Forwarded-For`.
async fn console_replica(db: &TestDb, clock: &Arc<FixedClock>) -> common::TestApp {
    let store = entcp::store::Store::connect(&db.url, Some(5)).await.unwrap();
    common::TestApp::over(&store)
        .clock(clock.clone())
        .config(|config| config.server.trust_forwarded_for = true)
        .build()
        .await
}

backend_test!(failed_sign_ins_on_two_replicas_add_up_to_one_lockout_that_a_restart_keeps);
async fn failed_sign_ins_on_two_replicas_add_up_to_one_lockout_that_a_restart_keeps(db: TestDb) {
    use crate::console::{person, PASSWORD};
    person(&db.store, "dan@test.fr", Role::Admin, None).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let (a, b) = (console_replica(&db, &clock).await, console_replica(&db, &clock).await);
    // Five failures (the limit), alternating replicas, from five addresses, in five spellings.
    let spellings = ["dan@test.fr", "DAN@test.fr", " Dan@Test.fr", "dan@TEST.FR ", "dAn@tEsT.fR"];
    for (i, email) in spellings.iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        let failed = sign_in_from(replica, &format!("203.0.113.{i}"), email, "mauvais mot de passe").await;
        assert_eq!(failed.status, 401, "{} {i}: {}", db.name, failed.text);
    }
    // Either replica, and one started afresh, refuses even the right password.
    let restarted = console_replica(&db, &clock).await;
    for replica in [&a, &b, &restarted] {
        let locked = sign_in_from(replica, "203.0.113.50", "dan@test.fr", PASSWORD).await;
        assert_eq!(locked.status, 429, "{}: {}", db.name, locked.text);
        assert_eq!(locked.header("retry-after"), Some("900"), "{}", db.name);
        assert!(locked.text.contains("Trop de tentatives"), "{}", db.name);
    }
    // The window slides on every replica at once.
    clock.set(t0() + chrono::Duration::minutes(15));
    assert_eq!(sign_in_from(&b, "203.0.113.50", "dan@test.fr", PASSWORD).await.status, 303, "{}", db.name);
}

backend_test!(an_unknown_address_is_locked_out_like_a_known_one_across_replicas);
async fn an_unknown_address_is_locked_out_like_a_known_one_across_replicas(db: TestDb) {
    let clock = Arc::new(FixedClock::new(t0()));
    let (a, b) = (console_replica(&db, &clock).await, console_replica(&db, &clock).await);
    for i in 0..5 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let failed = sign_in_from(replica, &format!("203.0.113.{i}"), "Personne@Test.fr", "mauvais mot de passe").await;
        assert_eq!(failed.status, 401, "{} {i}: {}", db.name, failed.text);
        assert!(failed.text.contains("Adresse ou mot de passe incorrect"), "{}", db.name);
    }
    let locked = sign_in_from(&b, "203.0.113.60", "personne@test.fr", "mauvais mot de passe").await;
    assert_eq!(locked.status, 429, "{}: {}", db.name, locked.text);
    assert!(locked.text.contains("Trop de tentatives"), "{}", db.name);
}

backend_test!(a_successful_sign_in_on_one_replica_clears_the_account_s_failures_on_the_other);
async fn a_successful_sign_in_on_one_replica_clears_the_account_s_failures_on_the_other(db: TestDb) {
    use crate::console::{person, PASSWORD};
    person(&db.store, "dan@test.fr", Role::Admin, None).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let (a, b) = (console_replica(&db, &clock).await, console_replica(&db, &clock).await);
    for i in 0..4 {
        let failed = sign_in_from(&a, &format!("203.0.113.{i}"), "dan@test.fr", "mauvais mot de passe").await;
        assert_eq!(failed.status, 401, "{} {i}", db.name);
    }
    assert_eq!(sign_in_from(&b, "203.0.113.10", "Dan@Test.fr", PASSWORD).await.status, 303, "{}", db.name);
    // Four more failures do not reach the limit: the count started again at the success.
    for i in 0..4 {
        let failed = sign_in_from(&a, &format!("203.0.113.{}", 20 + i), "dan@test.fr", "mauvais mot de passe").await;
        assert_eq!(failed.status, 401, "{} {i}", db.name);
    }
    assert_eq!(sign_in_from(&b, "203.0.113.30", "dan@test.fr", PASSWORD).await.status, 303, "{}", db.name);
}

backend_test!(concurrent_failures_on_two_replicas_are_all_counted);
async fn concurrent_failures_on_two_replicas_are_all_counted(db: TestDb) {
    let config = entcp::throttle::ThrottleConfig { max_failures: 20, window_seconds: 60, ..Default::default() };
    let replica = || async { entcp::store::Store::connect(&db.url, Some(5)).await.unwrap() };
    let a = Arc::new(entcp::throttle::Throttle::new(replica().await, "api", config));
    let b = Arc::new(entcp::throttle::Throttle::new(replica().await, "api", config));
    // Twenty failures of one key at one instant, half on each replica, all at once.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let throttle = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { throttle.record_failure("ip:203.0.113.1", t0()).await.unwrap() })
        })
        .collect();
    let mut tripped = 0;
    for task in tasks {
        tripped += usize::from(task.await.unwrap());
    }
    assert_eq!(tripped, 1, "{}: exactly one failure completes the count", db.name);
    assert_eq!(a.retry_after("ip:203.0.113.1", t0()).await.unwrap(), Some(60), "{}", db.name);
    let counted = common::count(&db.store, "SELECT CAST(SUM(failures) AS BIGINT) FROM auth_failures", &[]).await;
    assert_eq!(counted, 20, "{}", db.name);
}

backend_test!(a_failure_counted_on_one_replica_drops_the_lockout_s_cached_reads_only);
async fn a_failure_counted_on_one_replica_drops_the_lockout_s_cached_reads_only(db: TestDb) {
    use entcp::store::Store;
    use entcp::throttle::{Throttle, ThrottleConfig};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let config = ThrottleConfig { max_failures: 3, window_seconds: 60, ..Default::default() };
    let replica = || async {
        let store = Store::connect(&db.url, Some(5)).await.unwrap();
        store.watch_changes();
        store
    };
    let (a, b) = (replica().await, replica().await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(a.caching() && b.caching()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(entcp::store::WATCH_INTERVAL * 4).await;
    // A registry read cached on each replica (its loads counted), and the key's check on b.
    let loads = AtomicUsize::new(0);
    async fn registry_read(store: &Store, loads: &AtomicUsize) {
        let load = async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(1)
        };
        store.cached("essai:registre".into(), load).await.unwrap();
    }
    for store in [&a, &b, &a, &b] {
        registry_read(store, &loads).await;
    }
    assert_eq!(loads.load(Ordering::SeqCst), 2, "{}: each replica read once", db.name);
    let (on_a, on_b) = (Throttle::new(a.clone(), "api", config), Throttle::new(b.clone(), "api", config));
    let key = "ip:2001:db8:1:2::/64";
    assert_eq!(on_b.retry_after(key, t0()).await.unwrap(), None, "{}", db.name);
    for _ in 0..3 {
        on_a.record_failure(key, t0()).await.unwrap();
    }
    assert_eq!(on_a.retry_after(key, t0()).await.unwrap(), Some(60), "{}", db.name);
    // b's cached check is dropped by the count made on a (notification on PostgreSQL).
    let deadline = Instant::now() + Duration::from_secs(5);
    while on_b.retry_after(key, t0()).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "{}: b never saw the lockout", db.name);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(on_b.retry_after(key, t0()).await.unwrap(), Some(60), "{}", db.name);
    // The registry's reads stay cached on both replicas (PostgreSQL: only `entcp_lockout`
    // was notified; SQLite's watcher drops every cached read at any commit, by design).
    if db.store.backend() == entcp::store::Backend::Postgres {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for store in [&a, &b] {
            registry_read(store, &loads).await;
        }
        assert_eq!(loads.load(Ordering::SeqCst), 2, "{}: a failure emptied the registry's cache", db.name);
    }
    a.close().await;
    b.close().await;
}
