//! End-to-end: drive the `entctl` binary as a user would.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
#[macro_use]
mod common;

use common::TestDb;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn entctl(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_entctl"));
    cmd.current_dir(cwd);
    for var in [
        "DATABASE_URL",
        "ENTCP_DATABASE_URL",
        "ENTCP_CONFIG",
        "ENTCP_LISTEN",
        "ENTCP_DATA_DIR",
        "ENTCP_MAIL_TRANSPORT",
        "ENTCP_SMTP_HOST",
        "ENTCP_SMTP_PORT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `entctl serve` on a free loopback port in `dir`: the child, the rest of its
/// log, where it listens, and the first-start admin token (read from the file
/// whose path the log gives: the token and the set-up link never appear in the log).
struct Served {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
    address: String,
    token: String,
}

fn serve_in(dir: &Path, global_args: &[&str], serve_args: &[&str]) -> Served {
    let mut child = entctl(dir)
        .args(global_args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(serve_args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut address, mut token, mut setup_link) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        assert!(!line.contains("entcp_"), "a token in the log: {line}");
        assert!(!line.contains("/mot-de-passe/"), "a set-up link in the log: {line}");
        if let Some(rest) = line.split("dans les 24 heures) est dans ").nth(1) {
            let file = dir.join(rest.split(" (").next().unwrap());
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
            setup_link = Some(std::fs::read_to_string(&file).unwrap().trim().to_string());
        }
        if let Some(rest) = line.split("Son jeton d'API est dans ").nth(1) {
            let file = dir.join(rest.split(" (").next().unwrap());
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
            token = Some(std::fs::read_to_string(&file).unwrap().trim().to_string());
        }
        if let Some(pos) = line.find("listening on http://") {
            let rest = &line[pos + "listening on http://".len()..];
            address = Some(rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap().to_string());
            break;
        }
    }
    let address = address.expect("serve logs where it listens");
    // Port 0: the link names the port the system chose, not the default 8080.
    let setup_link = setup_link.expect("the first start prints the admin's set-up link");
    assert!(setup_link.starts_with(&format!("http://{address}/mot-de-passe/")), "{setup_link} on {address}");
    Served { child, lines, address, token: token.expect("the first start prints the admin token") }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("entctl runs");
    assert!(
        out.status.success(),
        "entctl failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The folder of example tenant documents.
fn example_tenants() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tenants/examples")
}

/// A data folder with the 94 écoles sample imported and the example tenants applied.
fn with_example_tenants() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_ok(entctl(dir.path()).args(["import", "annuaire"]).arg(common::fixture("annuaire-education-94-ecoles.csv")));
    run_ok(entctl(dir.path()).args(["apply", "-f"]).arg(example_tenants()));
    dir
}

/// A file with a refused line imports the others and exits 3, so that a script notices.
#[test]
fn an_import_that_refuses_lines_exits_3_with_the_valid_lines_imported() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("partiel.csv");
    std::fs::write(
        &csv,
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;Code_academie\n\
         0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24\n\
         0940176G;Mauvaise lettre;Ecole;94034;Fresnes;24\n",
    )
    .unwrap();
    let out = entctl(dir.path()).args(["import", "annuaire"]).arg(&csv).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ligne 3"), "{text}");
    let listed = run_ok(entctl(dir.path()).args(["orgs", "list", "--q", "Doisneau"]));
    assert!(listed.contains("0940176F"), "{listed}");
}

#[test]
fn first_start_creates_an_admin_whose_token_opens_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let Served { mut child, lines, address, token } = serve_in(dir.path(), &[], &[]);
    // Keep reading the log so that the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let (ready, anonymous, me) = http::block_on(async {
        let get = |path: &str, auth: Option<&str>| {
            let mut req = ::reqwest::Client::new().get(format!("http://{address}{path}"));
            if let Some(token) = auth {
                req = req.bearer_auth(token);
            }
            req.send()
        };
        let ready = get("/readyz", None).await.unwrap().text().await.unwrap();
        let anonymous = get("/api/v1/orgs", None).await.unwrap();
        let anonymous = (anonymous.status().as_u16(), anonymous.text().await.unwrap());
        let me = get("/api/v1/me", Some(&token)).await.unwrap().text().await.unwrap();
        (ready, anonymous, me)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready.contains("ready"), "{ready}");
    assert_eq!(anonymous.0, 401, "{}", anonymous.1);
    assert!(anonymous.1.contains("urn:entcp:problem:unauthorized"), "{}", anonymous.1);
    assert!(me.contains("admin@localhost") && me.contains("\"admin\""), "{me}");
    assert!(dir.path().join("data/entcp.db").exists(), "the SQLite file is created under ./data");

    // A second start does not create another admin nor print a token.
    let out = entctl(dir.path()).args(["users", "list"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

mod http {
    pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
    }
}

#[test]
fn audit_verify_reports_the_first_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let sample = common::fixture("annuaire-education-94-ecoles.csv");
    run_ok(entctl(dir.path()).args(["import", "annuaire"]).arg(&sample));
    run_ok(entctl(dir.path()).args(["orgs", "add", "--kind", "epci", "--siren", "200054781", "--name", "MGP"]));
    let ok = run_ok(entctl(dir.path()).args(["audit", "verify"]));
    assert!(ok.starts_with("OK"), "{ok}");

    let url = format!("sqlite://{}", dir.path().join("data/entcp.db").display());
    http::block_on(async {
        let store = entcp::store::Store::connect(&url, Some(1)).await.unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 1").execute(store.pool()).await.unwrap();
        store.close().await;
    });
    let out = entctl(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ROMPUE à l'enregistrement 1"), "{text}");
}

#[test]
fn import_of_the_real_sample_then_rerun_reports_613_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let sample = common::fixture("annuaire-education-94-ecoles.csv");
    let first = run_ok(entctl(dir.path()).args(["import", "annuaire"]).arg(&sample));
    assert!(first.contains("établissements : 613 créés, 0 mis à jour, 0 inchangé"), "{first}");
    assert!(first.contains("communes : 47 créées"), "{first}");
    assert!(first.starts_with("Import terminé : 613 lignes en "), "{first}");
    let second = run_ok(entctl(dir.path()).args(["import", "annuaire", "--json"]).arg(&sample));
    let report: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(report["etablissements"]["unchanged"], 613);

    let list = run_ok(entctl(dir.path()).args(["orgs", "list", "--commune", "94034", "--degree", "1D"]));
    assert!(list.lines().count() >= 5, "{list}");
    assert!(list.lines().all(|l| l.starts_with("etablissement")), "{list}");
    let show = run_ok(entctl(dir.path()).args(["orgs", "show", "0940176f"]));
    assert!(show.contains("\"funding_collectivite\""), "{show}");
}

#[test]
fn mail_test_writes_an_eml_file_and_the_outbox_and_jobs_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(entctl(dir.path()).args(["mail", "test", "--to", "dane@ac-creteil.fr"]));
    assert!(out.contains("Courriel de test écrit dans"), "{out}");
    let mails: Vec<_> = std::fs::read_dir(dir.path().join("data/mail")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let eml = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(eml.contains("To: dane@ac-creteil.fr"), "{eml}");

    let outbox = run_ok(entctl(dir.path()).args(["outbox", "list", "--status", "sent"]));
    assert!(outbox.contains("dane@ac-creteil.fr"), "{outbox}");

    let ran = run_ok(entctl(dir.path()).args(["jobs", "run", "outbox-purge"]));
    assert!(ran.contains("réussie"), "{ran}");
    let jobs = run_ok(entctl(dir.path()).args(["jobs", "list"]));
    assert!(jobs.contains("outbox-send") && jobs.contains("* * * * *"), "{jobs}");
    let unknown = entctl(dir.path()).args(["jobs", "run", "nope"]).output().unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("tâche inconnue"));
}

#[test]
fn outbox_release_puts_back_the_messages_a_dead_sender_left_sending() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(entctl(dir.path()).args(["mail", "test", "--to", "dane@ac-creteil.fr"]));
    // What a sender killed mid-batch leaves: a message `sending` under its lease.
    let url = format!("sqlite://{}", dir.path().join("data/entcp.db").display());
    http::block_on(async {
        let store = entcp::store::Store::connect(&url, Some(1)).await.unwrap();
        sqlx::query(
            "UPDATE outbox SET status = 'sending', claimed_by = 'dead', claimed_until = '2999-01-01T00:00:00.000000Z'",
        )
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await;
    });
    let kept = run_ok(entctl(dir.path()).args(["outbox", "release"]));
    assert_eq!(kept, "0 courriel(s) remis en file d'envoi\n", "a running lease is kept");
    let forced = run_ok(entctl(dir.path()).args(["outbox", "release", "--force"]));
    assert_eq!(forced, "1 courriel(s) remis en file d'envoi\n");
    let pending = run_ok(entctl(dir.path()).args(["outbox", "list", "--status", "pending"]));
    assert!(pending.contains("dane@ac-creteil.fr"), "{pending}");
}

#[test]
fn config_print_shows_defaults_and_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("entcp.yaml"), "server:\n  listen: 127.0.0.1:9999\n").unwrap();
    let out = run_ok(
        entctl(dir.path()).args(["--config", "entcp.yaml", "config", "print"]).env("ENTCP_IMPORT_BATCH_SIZE", "77"),
    );
    assert!(out.contains("listen: 127.0.0.1:9999"), "{out}");
    assert!(out.contains("batch_size: 77"), "{out}");
    assert!(out.contains("data_dir: ./data"), "{out}");
    // A misspelt variable is named at start instead of leaving its default (SQLite) silently in
    // force; those Kubernetes sets for a Service named `entcp` are not.
    let typo = entctl(dir.path())
        .args(["config", "print"])
        .env("ENTCP_DATABSE_URL", "postgres://entcp@db/entcp")
        .env("ENTCP_SERVICE_HOST", "10.0.0.7")
        .env("ENTCP_PORT", "tcp://10.0.0.7:80")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&typo.stderr);
    assert!(typo.status.success(), "{log}");
    assert!(log.contains("unknown ENTCP_ environment variable") && log.contains("ENTCP_DATABSE_URL"), "{log}");
    assert!(!log.contains("ENTCP_SERVICE_HOST") && !log.contains("ENTCP_PORT"), "{log}");
    std::fs::write(dir.path().join("bad.yaml"), "servre: {}\n").unwrap();
    let bad = entctl(dir.path()).args(["--config", "bad.yaml", "config", "print"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("servre"));
}

// Kill -9 an import midway, run it again: the registry equals one clean run's.
backend_test!(import_killed_midway_converges_on_rerun_without_duplicates);
async fn import_killed_midway_converges_on_rerun_without_duplicates(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("national.csv");
    // Batches of 50 rows: the kill lands in the middle of the file, far from its end.
    let rows = 12_000;
    let options = entcp::synthetic::SyntheticOptions { etablissements: rows, communes: 2_400, seed: 3 };
    entcp::synthetic::write_annuaire(std::io::BufWriter::new(std::fs::File::create(&csv).unwrap()), &options).unwrap();
    let import = |url: &str| {
        let mut cmd = entctl(dir.path());
        cmd.args(["import", "annuaire"]).arg(&csv).env("DATABASE_URL", url).env("ENTCP_IMPORT_BATCH_SIZE", "50");
        cmd
    };
    let mut child = import(&db.url).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let written = loop {
        let n = common::count_kind(&db.store, "etablissement").await;
        if n > 500 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = common::count_kind(&db.store, "etablissement").await;
    assert!(written > 0, "the import wrote nothing before the deadline");
    assert!(after_kill < (rows as i64) * 3 / 4, "the import finished before it could be killed ({after_kill})");

    let rerun = run_ok(import(&db.url).arg("--json"));
    let report: serde_json::Value = serde_json::from_str(&rerun).unwrap();
    assert_eq!(report["etablissements"]["unchanged"].as_i64().unwrap(), after_kill);

    let clean = if db.name == "sqlite" { common::sqlite().await } else { common::postgres().await.unwrap() };
    run_ok(&mut import(&clean.url));
    let killed_then_resumed = common::registry_fingerprint(&db.store).await;
    let one_clean_run = common::registry_fingerprint(&clean.store).await;
    assert_eq!(killed_then_resumed.len(), one_clean_run.len());
    assert!(killed_then_resumed == one_clean_run, "registries differ");
}

#[test]
fn json_logs_carry_the_request_id_on_every_line_of_the_request() {
    let dir = tempfile::tempdir().unwrap();
    // Allowed authorisation decisions are logged at DEBUG.
    let config = dir.path().join("debug.yaml");
    std::fs::write(&config, "log:\n  level: info,entcp=debug\n").unwrap();
    let global = ["--log-format", "json", "--config", config.to_str().unwrap()];
    let Served { mut child, lines, address, token } = serve_in(dir.path(), &global, &[]);
    let collected = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    http::block_on(async {
        let client = ::reqwest::Client::new();
        let vendor = serde_json::json!({ "kind": "editeur", "siren": "552100554", "name": "Éditeur" });
        client.post(format!("http://{address}/api/v1/orgs")).bearer_auth(&token).json(&vendor).send().await.unwrap();
        let url = format!("http://{address}/api/v1/orgs/editeur:552100554");
        let resp = client.get(url).bearer_auth(&token).header("x-request-id", "req-e2e-42").send().await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "req-e2e-42");
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = collected.join().unwrap();
    let of_request: Vec<&String> = lines.iter().filter(|l| l.contains("req-e2e-42")).collect();
    assert!(!of_request.is_empty(), "{lines:?}");
    for line in &of_request {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["span"]["request_id"], "req-e2e-42", "{line}");
    }
    assert!(of_request.iter().any(|l| l.contains("finished processing request")), "{of_request:?}");
    assert!(
        of_request.iter().any(|l| l.contains("\"authorisation\"")),
        "the handler's own lines carry it too: {of_request:?}"
    );
}

#[test]
fn apply_twice_says_unchanged_and_render_prints_the_kubernetes_objects() {
    let dir = tempfile::tempdir().unwrap();
    let sample = common::fixture("annuaire-education-94-ecoles.csv");
    run_ok(entctl(dir.path()).args(["import", "annuaire"]).arg(&sample));
    let examples = example_tenants();
    let first = run_ok(entctl(dir.path()).args(["apply", "-f"]).arg(&examples));
    assert!(first.contains("enttenant/fresnes created"), "{first}");
    let second = run_ok(entctl(dir.path()).args(["apply", "-f"]).arg(&examples));
    assert!(second.lines().all(|l| l.ends_with(" unchanged")), "{second}");
    let refused = entctl(dir.path()).args(["tenants", "transition", "fresnes", "provisioning"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("aucune convention en vigueur"));
    run_ok(entctl(dir.path()).args(["tenants", "transition", "fresnes", "provisioning", "--override-reason", "démo"]));
    let yaml = run_ok(entctl(dir.path()).args(["tenants", "render", "fresnes"]));
    assert!(yaml.contains("kind: Namespace") && yaml.contains("name: ent-fresnes"), "{yaml}");
    assert!(yaml.contains("kind: Deployment") && yaml.contains("ent.fresnes.example.fr"), "{yaml}");
}

#[test]
fn serve_with_demo_loads_the_sample_schools_and_example_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let Served { mut child, lines, address, token } = serve_in(dir.path(), &[], &["--demo"]);
    std::thread::spawn(move || lines.for_each(drop));
    let (school, tenants) = http::block_on(async {
        let client = ::reqwest::Client::new();
        let get = |path: &str| client.get(format!("http://{address}/api/v1{path}")).bearer_auth(&token).send();
        let school = get("/orgs/0940176F").await.unwrap().status().as_u16();
        let tenants: serde_json::Value = get("/tenants").await.unwrap().json().await.unwrap();
        (school, tenants)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(school, 200);
    let slugs: Vec<&str> = tenants["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["fresnes", "vitry-henri-wallon-a"]);
}

#[test]
fn serve_with_demo_loads_the_sample_even_when_the_log_level_hides_info() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = entctl(dir.path())
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("ENTCP_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The console's address printed for the demo is the one it listens on, not the default 8080.
    // (The rest of its log stays open until it stops.)
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let console = log
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.starts_with("Console web de démonstration"))
        .expect("the demo prints the console's address");
    assert_eq!(console, format!("Console web de démonstration : http://127.0.0.1:{port}/connexion"));
    // The server listens once the demo data is loaded.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = entctl(dir.path()).args(["orgs", "show", "0940176F"]).output().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(log);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
}

#[test]
fn rgpd_export_writes_the_register_and_records_a_snapshot_that_diff_starts_from() {
    let dir = with_example_tenants();
    run_ok(entctl(dir.path()).args(["tenants", "transition", "fresnes", "provisioning", "--override-reason", "démo"]));
    // No convention: the écoles' controller is their DSDEN (arrêté of 2006), and the entries say so.
    let out = dir.path().join("registre.csv");
    run_ok(entctl(dir.path()).args(["rgpd", "export", "dsden:94", "--format", "csv", "-o"]).arg(&out));
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.starts_with('\u{feff}') && csv.contains("ENT — Visioconférence"), "{csv}");
    assert!(csv.contains("aucune convention en vigueur"));
    let snapshots = run_ok(entctl(dir.path()).args(["rgpd", "snapshots", "dsden:94"]));
    assert_eq!(snapshots.lines().count(), 2, "a header and one snapshot: {snapshots}");
    let diff = run_ok(entctl(dir.path()).args(["rgpd", "diff", "dsden:94"]));
    assert!(diff.contains("\"to\": \"now\"") && diff.contains("\"added\": []"), "{diff}");
    let incomplete = run_ok(entctl(dir.path()).args(["rgpd", "incomplete", "dsden:94"]));
    assert!(incomplete.contains("délégué à la protection des données"), "{incomplete}");
    let bad = entctl(dir.path()).args(["rgpd", "export", "dsden:94", "--format", "docx"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("format inconnu « docx »"));
}

#[test]
fn a_teacher_opens_a_ticket_on_the_commune_tenant_and_n1_escalates_it_from_the_command_line() {
    let dir = with_example_tenants();
    for (email, role, org) in
        [("prof@fresnes.fr", "usager", "0940176F"), ("rup@fresnes.fr", "support_n1", "commune:94034")]
    {
        run_ok(entctl(dir.path()).args(["users", "add", email, "--name", email, "--org", org]));
        run_ok(entctl(dir.path()).args(["roles", "grant", email, role, "--org", org]));
    }
    let ticket = dir.path().join("ticket.yaml");
    std::fs::write(
        &ticket,
        "tenant: fresnes\nsubject: Messagerie indisponible\ndescription: Les élèves de CM2 ne reçoivent rien.\n\
         category: service\nservice: messagerie\nimpact: moyenne\nurgency: moyenne\n",
    )
    .unwrap();
    // The teacher's école is one of the commune tenant's schools.
    let created = run_ok(entctl(dir.path()).args(["support", "create"]).arg(&ticket).args(["--as", "prof@fresnes.fr"]));
    let reference = created.split_whitespace().next().unwrap().to_string();
    // The requester is not told which level holds their ticket.
    assert!(reference.starts_with("ENT-") && created.contains(" P3 ") && created.contains(" — "), "{created}");
    assert!(!created.contains(" N1 "), "{created}");
    let refused = entctl(dir.path())
        .args(["support", "escalate", &reference, "--reason", " ", "--as", "rup@fresnes.fr"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("reason"));
    let escalated = run_ok(entctl(dir.path()).args([
        "support",
        "escalate",
        &reference,
        "--reason",
        "Panne du relais de messagerie",
        "--as",
        "rup@fresnes.fr",
    ]));
    assert!(escalated.contains(" N2 "), "{escalated}");
    let mine = run_ok(entctl(dir.path()).args(["support", "list", "--as", "prof@fresnes.fr"]));
    assert!(mine.contains(&reference), "{mine}");
    // To the teacher it is taken in charge, at no level they are told of; found as such.
    assert!(mine.contains(" in_progress ") && !mine.contains(" N2 "), "{mine}");
    let new = run_ok(entctl(dir.path()).args(["support", "list", "--status", "new", "--as", "prof@fresnes.fr"]));
    assert!(!new.contains(&reference), "{new}");
    let csv = run_ok(entctl(dir.path()).args(["support", "report", "--format", "csv"]));
    assert!(csv.starts_with("\u{feff}niveau;") && csv.contains("\nN2;1;"), "{csv}");
    assert!(run_ok(entctl(dir.path()).args(["support", "policies"])).contains("renforce"));
    // A file over the YAML bound is refused by its size (checked before the file is read).
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(entcp::yaml::MAX_BYTES + 1)).unwrap();
    let refused = entctl(dir.path()).args(["support", "create"]).arg(&big).args(["--as", "prof@fresnes.fr"]).output();
    let refused = refused.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("document YAML trop volumineux"), "{refused:?}");
}

/// `entctl apply -f` on `text` (written to `name` in a fresh folder): fails, and its error.
fn apply_refused(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let out = entctl(dir.path()).args(["apply", "-f"]).arg(&file).output().unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn apply_refuses_a_document_nested_fifty_thousand_levels_deep() {
    let depth = 50_000;
    let text = format!(
        "apiVersion: entcp.education.fr/v1\nkind: EntTenant\nmetadata:\n  name: abyss\nspec:\n  options: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(text.len() > 100_000);
    let err = apply_refused("abyss.yaml", &text);
    assert!(err.contains("abyss.yaml") && err.contains("document YAML trop imbriqué"), "{err}");
}

#[test]
fn apply_errors_name_the_file_and_the_line() {
    let text = "apiVersion: entcp.education.fr/v1\nkind: EntTenant\nmetadata:\n  name: x\nspec:\n  hostname: [a]\n";
    let err = apply_refused("wrong.yaml", text);
    assert!(err.contains("wrong.yaml") && err.contains("ligne 6"), "{err}");
}

#[test]
fn tenants_crd_prints_the_crd_the_terraform_module_applies_without_touching_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let printed = run_ok(entctl(dir.path()).args(["tenants", "crd"]));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../terraform/crd/enttenant.yaml");
    assert_eq!(
        printed,
        std::fs::read_to_string(committed).unwrap(),
        "terraform/crd/enttenant.yaml is stale: regenerate it with `entctl tenants crd`"
    );
    let rbac: serde_json::Value = serde_json::from_str(&run_ok(entctl(dir.path()).args(["tenants", "rbac"]))).unwrap();
    assert_eq!(rbac["cluster"][0]["resources"], serde_json::json!(["namespaces"]));
    assert!(!dir.path().join("data").exists(), "a definition command opened a database");
}

// Every bench at its smallest sizes: it runs to the end and prints the figures it promises,
// so that a bench broken by a change fails here rather than on the next measurement.

/// `entctl bench <args>` in a fresh folder (its temporary files there too), on `db`'s
/// PostgreSQL server (the bench makes its own database there) or on a SQLite file of its
/// own: what it prints, once it has exited 0. The time it took goes to stderr.
fn bench(db: &TestDb, args: &[&str]) -> String {
    bench_with(db, args, &[])
}

/// [`bench`] with these variables in its environment.
fn bench_with(db: &TestDb, args: &[&str], vars: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = entctl(dir.path());
    cmd.arg("bench").args(args).env("TMPDIR", dir.path()).env_remove("TEST_DATABASE_URL").envs(vars.iter().copied());
    if db.name == "postgres" {
        cmd.args(["--database-url", &db.url]);
    }
    let started = Instant::now();
    let out = run_ok(&mut cmd);
    eprintln!("entctl bench {} ({}): {:.1} s", args.join(" "), db.name, started.elapsed().as_secs_f64());
    out
}

/// The numbers of the first line of `out` holding `label`, after it, in order (a number
/// glued after a letter, as in `p99` or `t0`, is part of a word, not a figure).
fn figures(out: &str, label: &str) -> Vec<f64> {
    let rest = out
        .lines()
        .find_map(|line| line.split_once(label).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no line with « {label} » in:\n{out}"));
    rest.split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|word| {
            let number: String = word.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            number.trim_end_matches('.').parse().ok()
        })
        .collect()
}

/// The first number after `label` on its line.
fn figure(out: &str, label: &str) -> f64 {
    *figures(out, label).first().unwrap_or_else(|| panic!("no figure after « {label} » in:\n{out}"))
}

#[test]
fn figures_are_the_numbers_after_the_label_and_not_those_of_words() {
    let out = "base : x\n  1× (  8 écrivains)  264.5 écritures/s  p99 151.0 ms  erreurs 0 / 8.\n";
    assert_eq!(figures(out, "1× ("), [8.0, 264.5, 151.0, 0.0, 8.0]);
    assert_eq!(figure(out, "erreurs"), 0.0);
}

#[test]
fn a_bench_of_zero_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    for args in [["support", "--tickets", "0"], ["read", "--etablissements", "0"], ["national", "--requests", "0"]] {
        let out = entctl(dir.path()).arg("bench").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(args[1]) && stderr.contains("0"), "{args:?}: {stderr}");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "{args:?} wrote nothing");
    }
}

/// `entctl migrate` against `url`: its exit code and standard error.
fn migrate_against(url: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = entctl(dir.path()).args(["--database-url", url, "migrate"]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_database_that_cannot_be_reached_is_named_with_the_cause_in_french() {
    // A port nobody listens on: the pool alone said « pool timed out while waiting for an
    // open connection », without the refusal behind it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, stderr) = migrate_against(&format!("postgres://entcp:secret-mdp@127.0.0.1:{closed}/entcp"));
    assert_eq!(code, Some(1), "not a configuration error (2): {stderr}");
    assert!(stderr.contains("connexion à la base impossible"), "{stderr}");
    assert!(stderr.contains("le serveur refuse la connexion"), "the cause: {stderr}");
    assert!(!stderr.contains("secret-mdp"), "the password stays out of the message: {stderr}");
    // A database the server does not have (with the test server only).
    if let Some(admin) = common::postgres_admin_url() {
        let (base, _) = admin.rsplit_once('/').unwrap();
        let (code, stderr) = migrate_against(&format!("{base}/entcp_sans_base_{closed}"));
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("cette base n'existe pas sur le serveur"), "the cause: {stderr}");
    }
}

// Every build called itself 0.1.0 (SRE 43 F8): the version carries the git commit it was built
// from, and the schema this build knows is said beside it.
#[test]
fn version_names_the_commit_of_the_build_and_the_schema_it_knows() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(entctl(dir.path()).arg("version"));
    let schema = entcp::release::schema_version();
    assert_eq!(out.trim(), format!("entctl {} (schéma de base {schema})", entcp::VERSION));
    // Built from a git checkout: the commit is one of the repository's (not necessarily HEAD
    // any more, when a commit was made since the build).
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output();
        out.ok().filter(|out| out.status.success())
    };
    if git(&["rev-parse", "HEAD"]).is_some() {
        let commit = entcp::VERSION.strip_prefix(concat!(env!("CARGO_PKG_VERSION"), "+")).expect(entcp::VERSION);
        assert!(commit.len() == 10 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
        assert!(git(&["cat-file", "-e", &format!("{commit}^{{commit}}")]).is_some(), "{commit} is no commit");
    }
}

// A SQLite file the process cannot write (a read-only volume or file, its rights, a folder that
// cannot be created) was told after the pool's retries as « le serveur ne répond pas dans le
// délai » (SRE 43 F7): it is named at once with its cause, and exits as a configuration error.
#[test]
fn a_sqlite_file_that_cannot_be_written_is_named_with_its_cause_as_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("lecture-seule.db");
    std::fs::write(&read_only, b"").unwrap();
    let not_a_folder = dir.path().join("un-fichier");
    std::fs::write(&not_a_folder, b"").unwrap();
    let cases = [
        (format!("sqlite://{}?mode=ro", read_only.display()), read_only.display().to_string(), "lecture seule"),
        (
            format!("sqlite://{}/entcp.db", not_a_folder.display()),
            not_a_folder.display().to_string(),
            "création du dossier de la base SQLite",
        ),
    ];
    for (url, path, cause) in cases {
        let (code, stderr) = migrate_against(&url);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains(&path) && stderr.contains(cause), "{url}: {stderr}");
        assert!(!stderr.contains("ne répond pas"), "{url}: not a server that does not answer: {stderr}");
    }
}

backend_test!(bench_import_prints_the_rates_of_both_passes_and_of_its_references);
async fn bench_import_prints_the_rates_of_both_passes_and_of_its_references(db: TestDb) {
    let out = bench(&db, &["import", "--rows", "60", "--communes", "30"]);
    assert_eq!(figure(&out, "annuaire synthétique : "), 60.0, "{out}");
    assert!(figure(&out, "même pilote) : ") > 0.0, "the driver's raw insert rate: {out}");
    // Rows, seconds, rows/s, then created, updated, unchanged, skipped, rejected.
    let first = figures(&out, "premier import : ");
    assert_eq!(first.len(), 8, "{out}");
    assert!(first[0] == 60.0 && first[2] > 0.0 && first[3] > 0.0, "{out}");
    let again = figures(&out, "ré-import sans changement : ");
    assert_eq!(again.len(), 8, "{out}");
    assert_eq!((again[3], again[4], again[5]), (0.0, 0.0, first[3]), "the re-run changes nothing: {out}");
    assert!(figure(&out, "part de la référence").is_finite(), "{out}");
    // The académie, rows, seconds, rows/s, then unchanged, out of scope, updated: every row
    // hosted and valid is unchanged or out of scope.
    let scoped = figures(&out, "ré-import sans changement par le DAN de l'académie ");
    assert_eq!(scoped.len(), 7, "{out}");
    assert_eq!(scoped[1], 60.0, "{out}");
    assert_eq!((scoped[4] + scoped[5] + again[6] + again[7], scoped[6]), (60.0, 0.0), "{out}");
    assert!(scoped[5] > 0.0, "the rows of the other académies: {out}");
    // Rows read, the whole directory, those placed elsewhere, milliseconds: the scoped pre-read
    // reads no more than the directory.
    let pre = figures(&out, "pré-lecture des organisations hors périmètre : ");
    assert_eq!(pre.len(), 4, "{out}");
    assert!(pre[0] <= pre[1] && pre[2] <= pre[0], "{out}");
    assert!(figure(&out, "mémoire résidente maximale : ") > 0.0, "{out}");
}

backend_test!(bench_groupement_times_each_step_and_the_shares_add_up);
async fn bench_groupement_times_each_step_and_the_shares_add_up(db: TestDb) {
    let out = bench(&db, &["groupement", "--communes", "4"]);
    let applied = figure(&out, "candidatures préremplies : ");
    assert!(applied >= 2.0, "{out}");
    let one_by_one = figure(&out, "acceptations une à une (convention mise à jour à chaque fois) : ");
    let batch = figure(&out, "acceptations groupées (une mise à jour de la convention) : ");
    assert_eq!(one_by_one + batch, applied, "every application is accepted: {out}");
    assert_eq!(
        figure(&out, "documents générés (note de présentation, RC, AE, CCAP, CCTP, membres, BPU/DQE) : "),
        7.0,
        "{out}"
    );
    assert_eq!(figure(&out, "attribution (contrats de sous-traitance, tenants) : "), 1.0, "{out}");
    assert_eq!(figure(&out, "quotes-parts calculées : "), applied, "{out}");
    let sums = figures(&out, "somme des quotes-parts");
    assert!(sums.len() == 2 && sums[0] == sums[1] && sums[0] > 0.0, "the shares add up to the expenses: {out}");
}

backend_test!(bench_reconcile_writes_every_tenant_once_then_nothing_and_counts_kube_requests);
async fn bench_reconcile_writes_every_tenant_once_then_nothing_and_counts_kube_requests(db: TestDb) {
    let out = bench(&db, &["reconcile", "--tenants", "3"]);
    assert!(out.lines().any(|l| l.starts_with("3 tenants créés")), "{out}");
    // Seconds, engine writes, unchanged, failures.
    let first = figures(&out, "première passe : ");
    assert!(first.len() == 4 && first[1] > 0.0 && first[3] == 0.0, "{out}");
    let again = figures(&out, "passe sans changement : ");
    assert_eq!((again[1], again[2], again[3]), (0.0, 3.0, 0.0), "nothing to write the second time: {out}");
    let change = figures(&out, "kube, changement du catalogue (image de chaque service) : ");
    assert!(change[0] > 0.0 && change[1] == 3.0 && change[2] > 0.0, "requests, tenants, per tenant: {out}");
    let none = figures(&out, "kube, passe sans changement : ");
    assert!(none[0] < change[0] && none[1] == 3.0, "{out}");
    assert!(figure(&out, "mémoire résidente maximale : ") > 0.0, "{out}");
}

backend_test!(bench_support_sweeps_and_flags_the_overdue_tickets_once_then_reports);
async fn bench_support_sweeps_and_flags_the_overdue_tickets_once_then_reports(db: TestDb) {
    let out = bench(&db, &["support", "--tickets", "200", "--tenants", "3"]);
    assert!(out.lines().any(|l| l.starts_with("3 tenants créés")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("200 tickets ouverts créés")), "{out}");
    // Seconds, tickets due examined, breaches flagged: one ticket in a hundred is overdue.
    let first = figures(&out, "balayage SLA (dépassements à signaler) : ");
    assert!(first.len() == 3 && first[1] >= 2.0 && first[2] >= 2.0, "{out}");
    let again = figures(&out, "balayage SLA (rien de nouveau) : ");
    assert!(again.len() == 3 && again[2] == 0.0, "a breach is flagged once: {out}");
    let by_level = figures(&out, "rapport par niveau : ");
    assert!(by_level.len() == 2 && by_level[1] > 0.0, "{out}");
    let by_tenant = figures(&out, "rapport par tenant : ");
    assert!(by_tenant.len() == 2 && by_tenant[1] > 0.0, "{out}");
}

backend_test!(bench_coverage_reads_the_gate_both_ways_alike_then_records_the_lapses_once);
async fn bench_coverage_reads_the_gate_both_ways_alike_then_records_the_lapses_once(db: TestDb) {
    let out = bench(&db, &["coverage", "--tenants", "8"]);
    assert!(out.lines().any(|l| l.starts_with("8 tenants créés (6 communes et leurs écoles, 2 collèges)")), "{out}");
    // Tenants, seconds, tenants per second.
    let before = figures(&out, "contrôle question par question (avant) : ");
    let after = figures(&out, "contrôle par la mémoire de passe (après) : ");
    assert!(before.len() == 3 && before[0] == 8.0 && after.len() == 3 && after[0] == 8.0, "{out}");
    // One commune in four has no convention at all: at least one tenant is uncovered.
    let uncovered = figure(&out, "réponses identiques, ");
    assert!(uncovered >= 1.0, "{out}");
    // Tenants, seconds, tenants per second, lapses recorded, failures.
    let first = figures(&out, "passe tenants-coverage (absences enregistrées) : ");
    assert_eq!((first[0], first[3], first[4]), (8.0, uncovered, 0.0), "every uncovered tenant recorded: {out}");
    let again = figures(&out, "passe tenants-coverage sans changement : ");
    assert_eq!((again[0], again[3], again[4]), (8.0, 0.0, 0.0), "recorded once: {out}");
    assert!(figure(&out, "mémoire résidente maximale : ") > 0.0, "{out}");
}

backend_test!(bench_rgpd_derives_the_register_and_times_each_export);
async fn bench_rgpd_derives_the_register_and_times_each_export(db: TestDb) {
    let out = bench(&db, &["rgpd", "--tenants", "3"]);
    assert!(out.lines().any(|l| l.starts_with("3 tenants de 12 services sous une convention d'Académie de ")), "{out}");
    // Reading, derivation, total (ms), fiches, establishment lines: each école under its
    // DSDEN, one line for each of its 12 services.
    let derivation = figures(&out, "dérivation (meilleur de 5) : ");
    assert_eq!(derivation.len(), 5, "{out}");
    assert!(derivation[3] >= 12.0 && derivation[4] == 36.0, "{out}");
    let largest = figures(&out, "exports du plus grand registre (");
    assert!(largest.len() == 2 && largest[0] >= 12.0 && largest[1] >= 12.0, "fiches, lines: {out}");
    for format in ["json", "csv", "ods", "html"] {
        let export = figures(&out, &format!("export {format} : "));
        assert_eq!(export.len(), 2, "{format}: milliseconds and kilobytes: {out}");
    }
    // What GET of the register takes past its authorisation: its milliseconds.
    let get = figures(&out, "GET du registre (article 30.1, JSON, meilleur de 5) : ");
    assert_eq!(get.len(), 1, "milliseconds: {out}");
    // Without LibreOffice, the PDF line says why instead.
    assert!(out.contains("export pdf : "), "{out}");
    assert!(figure(&out, "enregistrement de l'instantané : ").is_finite(), "{out}");
    assert!(figure(&out, "mémoire résidente maximale : ") > 0.0, "{out}");
}

/// The backends `bench read|write|console` run on: SQLite, and PostgreSQL when given one.
fn load_backends(db: &TestDb) -> &'static [&'static str] {
    if db.name == "postgres" {
        &["SQLite", "PostgreSQL"]
    } else {
        &["SQLite"]
    }
}

backend_test!(bench_read_serves_each_route_without_an_error);
async fn bench_read_serves_each_route_without_an_error(db: TestDb) {
    let args = ["read", "--etablissements", "300", "--connections", "2", "--requests", "20", "--seconds", "10"];
    let out = bench(&db, &args);
    for backend in load_backends(&db) {
        let section = out.split(&format!("{backend} : ")).nth(1).unwrap_or_else(|| panic!("{backend}: {out}"));
        assert_eq!(figures(section, "")[..2], [2.0, 20.0], "connections and requests: {section}");
        for route in
            ["/healthz ", "liste (limit=50) ", "une organisation ", "liste, sans cache ", "une org., sans cache "]
        {
            // Requests/s, p99 (ms), errors, share of /healthz.
            let f = figures(section, &format!("  {route}"));
            assert!(f.len() == 4 && f[0] > 0.0 && f[3] > 0.0, "{route}: {section}");
            assert_eq!(f[2], 0.0, "{route}: no error: {section}");
        }
        assert!(section.contains("plan de la requête de la liste :"), "{section}");
    }
}

backend_test!(bench_console_times_every_list_page_for_the_admin_and_the_dan);
async fn bench_console_times_every_list_page_for_the_admin_and_the_dan(db: TestDb) {
    let out = bench(&db, &["console", "--requests", "1"]);
    for backend in load_backends(&db) {
        let section = out.split(&format!("{backend} — ")).nth(1).unwrap_or_else(|| panic!("{backend}: {out}"));
        let pages = ["tableau de bord", "organisations ?q= (UAI)", "utilisateurs", "conventions ?q=", "ENT ?q="];
        for page in pages.into_iter().chain(["registre (académie)", "registre (DSDEN 94)"]) {
            for who in ["admin", "DAN"] {
                // Status, p50, p95.
                let f = figures(section, &format!("  {page:<26} {who:<6}"));
                assert!(f.len() == 3 && f[1] > 0.0 && f[2] >= f[1], "{page} ({who}): {section}");
                assert_eq!(f[0], 200.0, "{page} ({who}): {section}");
            }
        }
        assert!(section.contains("au p95"), "the verdict against the target: {section}");
        assert!(figure(section, "mémoire résidente maximale : ") > 0.0, "{section}");
    }
}

backend_test!(bench_write_loads_three_levels_of_writers_without_an_error);
async fn bench_write_loads_three_levels_of_writers_without_an_error(db: TestDb) {
    // A pool of two: 2, 6 and 20 writers.
    let pool = [("ENTCP_DATABASE_MAX_CONNECTIONS", "2")];
    let out = bench_with(&db, &["write", "--per-writer", "1", "--seconds", "30"], &pool);
    for backend in load_backends(&db) {
        let section = out.split(&format!("{backend} : pool de ")).nth(1).unwrap_or_else(|| panic!("{backend}: {out}"));
        let pool = figure(section, "");
        assert_eq!(pool, 2.0, "{section}");
        for factor in [1.0, 3.0, 10.0] {
            // Writers, writes/s, p99 (ms), errors, requests sent.
            let f = figures(section, &format!("{factor:>2}× ("));
            assert_eq!(f.len(), 5, "{factor}×: {section}");
            assert_eq!(f[0], pool * factor, "{factor}× the pool: {section}");
            assert!(f[1] > 0.0, "{factor}×: {section}");
            assert_eq!((f[3], f[4]), (0.0, f[0]), "{factor}×: one write per writer, none failed: {section}");
        }
    }
}

backend_test!(bench_national_runs_at_a_thousandth_of_the_national_sizes_on_postgresql_only);
async fn bench_national_runs_at_a_thousandth_of_the_national_sizes_on_postgresql_only(db: TestDb) {
    let args = ["national", "--scale", "0.001", "--requests", "16"];
    if db.name == "sqlite" {
        let dir = tempfile::tempdir().unwrap();
        let refused = entctl(dir.path()).arg("bench").args(args).output().unwrap();
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("il faut une base PostgreSQL"), "{err}");
        return;
    }
    let out = bench(&db, &args);
    assert_eq!(figure(&out, "annuaire (import)"), 66.0, "{out}");
    assert_eq!(figure(&out, "  tickets "), 1000.0, "{out}");
    assert_eq!(figure(&out, "enregistrements d'audit chaînés"), 10_000.0, "{out}");
    assert!(figure(&out, "données générées en ") > 0.0, "{out}");
    assert!(figure(&out, "réconciliation sans changement : ").is_finite(), "{out}");
    // Seconds, tickets due examined, breaches: one open ticket in a hundred is overdue.
    let sweep = figures(&out, "balayage SLA : ");
    assert!(sweep.len() == 3 && sweep[1] >= 1.0 && sweep[2] >= 1.0, "{out}");
    assert_eq!(figures(&out, "balayage SLA sans rien de nouveau : ")[2], 0.0, "{out}");
    // Tenants, DSDENs, read, derivation and total ms, then fiches and establishment lines
    // of all the registers, then of the académie's own: the DSDENs' registers hold the écoles.
    let registers = figures(&out, "registres de la plus grande académie (");
    assert_eq!(registers.len(), 9, "{out}");
    assert!(registers[0] > 0.0 && registers[1] >= 1.0, "tenants and DSDENs: {out}");
    assert!(registers[5] > 0.0 && registers[6] > 0.0, "an empty register: {out}");
    assert!(registers[6] > registers[8], "the DSDENs' registers hold no école: {out}");
    assert!(out.contains("vérification de la chaîne d'audit : ") && out.contains("Intact"), "{out}");
    for route in ["/healthz", "organisations (limit=50)", "un tenant", "un ticket", "audit (limit=50)"] {
        // p50, its share, p95, p99, its share, requests/s, errors.
        let f = figures(&out, &format!("  {route:<26} p50 "));
        assert_eq!(f.len(), 7, "{route}: {out}");
        assert_eq!(f[6], 0.0, "{route}: no error: {out}");
    }
    assert!(figure(&out, "taille de la base : ") > 0.0, "{out}");
}

backend_test!(a_replica_of_the_previous_release_restarts_on_the_schema_the_next_one_migrated);
async fn a_replica_of_the_previous_release_restarts_on_the_schema_the_next_one_migrated(db: TestDb) {
    // The next release's `entctl migrate` ran (it only adds to the schema): this binary is now
    // the previous release, whose replicas restart during the rolling upgrade or after a rollback.
    let next = entcp::backup::known_schema_version(db.store.backend()) + 1;
    let checksum = if db.name == "sqlite" { "X'00'" } else { "'\\x00'::bytea" };
    sqlx::query(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({next}, 'next release', TRUE, {checksum}, 0)"
    ))
    .execute(db.store.pool())
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| entctl(dir.path()).args(["--database-url", &db.url]).args(args).output().unwrap();

    let listed = run(&["orgs", "list"]);
    let log = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{}: {log}", db.name);
    assert!(log.contains("database schema is newer than this entctl"), "{}: {log}", db.name);
    let migrated = run(&["migrate"]);
    let out = String::from_utf8_lossy(&migrated.stdout);
    assert!(migrated.status.success(), "{}: {}", db.name, String::from_utf8_lossy(&migrated.stderr));
    assert!(out.contains(&format!("au schéma {next}, plus récent que celui de cet entctl")), "{}: {out}", db.name);

    // A replica starts and is ready.
    let Served { mut child, lines, address, .. } = serve_in(dir.path(), &["--database-url", &db.url], &[]);
    std::thread::spawn(move || lines.for_each(drop));
    let ready = ::reqwest::get(format!("http://{address}/readyz")).await.unwrap().status().as_u16();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ready, 200, "{}", db.name);
    let applied = common::count(&db.store, "SELECT MAX(version) FROM _sqlx_migrations", &[]).await;
    assert_eq!(applied, next, "{}: the schema is left as the next release made it", db.name);
}

backend_test!(backup_and_restore_keep_their_temporary_files_beside_the_archive_and_the_data_folder);
async fn backup_and_restore_keep_their_temporary_files_beside_the_archive_and_the_data_folder(db: TestDb) {
    // The pod's /tmp is a small emptyDir: neither command may write there. With TMPDIR naming
    // a folder that does not exist, anything created in it fails.
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("tmp-absent");
    let data_dir = dir.path().join("donnees");
    std::fs::create_dir_all(data_dir.join("pieces")).unwrap();
    let attachment: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(data_dir.join("pieces/annexe.pdf"), &attachment).unwrap();
    let run = |url: &str, data_dir: &Path, args: &[&str]| {
        let mut cmd = entctl(dir.path());
        cmd.env("TMPDIR", &absent).env("ENTCP_DATA_DIR", data_dir).args(["--database-url", url]).args(args);
        run_ok(&mut cmd)
    };
    let out = run(&db.url, &data_dir, &["backup", "sauvegarde.zip"]);
    assert!(out.contains("Sauvegarde"), "{}: {out}", db.name);
    let mut left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["donnees", "sauvegarde.zip"], "{}: no temporary file left beside the archive", db.name);

    let (url, _target) = common::empty_target(&db).await;
    let restored_dir = dir.path().join("restaure");
    let out = run(&url, &restored_dir, &["restore", "sauvegarde.zip"]);
    assert!(out.contains("terminée"), "{}: {out}", db.name);
    // The audit chain as `entctl audit verify` words it, the backup's date in French.
    assert!(out.contains("journal d'audit : OK : chaîne d'audit intègre ("), "{}: {out}", db.name);
    assert!(!out.contains("Intact"), "{}: {out}", db.name);
    assert!(out.contains(" h ") && !out.contains("+00:00"), "{}: a French date: {out}", db.name);
    assert_eq!(std::fs::read(restored_dir.join("pieces/annexe.pdf")).unwrap(), attachment, "{}", db.name);
    let hidden: Vec<_> = std::fs::read_dir(&restored_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".entcp-"))
        .collect();
    assert!(hidden.is_empty(), "{}: the staging folder is removed: {hidden:?}", db.name);
}

/// `serve` with `server:` set to `settings` (YAML lines), its log read in a thread
/// (returned by the handle once the child is killed).
fn serve_with_server_settings(
    dir: &Path,
    settings: &str,
) -> (std::process::Child, String, std::thread::JoinHandle<Vec<String>>) {
    let config = dir.join("serveur.yaml");
    std::fs::write(&config, format!("server:\n{settings}")).unwrap();
    let Served { child, lines, address, .. } = serve_in(dir, &["--config", config.to_str().unwrap()], &[]);
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    (child, address, log)
}

/// The longest a listener test waits for the server to close a connection: far above the
/// timeouts it configures (a loaded machine is slow, never wrong).
const CLOSED_WITHIN: Duration = Duration::from_secs(60);

/// A connection to `address` on which `sent` (a request, its beginning, or nothing) was sent.
fn connection(address: &str, sent: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    if let Err(e) = stream.write_all(sent.as_bytes()) {
        // Closed by the server already (past `max_connections`): the read says so.
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        assert!(matches!(e.kind(), BrokenPipe | ConnectionReset), "{e}");
    }
    stream.set_read_timeout(Some(CLOSED_WITHIN)).unwrap();
    stream
}

/// What the server sent on `stream` until it closed it; fails if it is still open after
/// [`CLOSED_WITHIN`] without a byte.
fn read_until_closed(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // Closed with the request unread: a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after {CLOSED_WITHIN:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// One answer read from a kept-alive `stream` (headers, then `Content-Length` bytes).
fn read_one_answer(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let (mut got, mut byte) = (Vec::new(), [0u8; 1]);
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-answer: {}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().parse::<usize>().unwrap())
        })
        .expect("a Content-Length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: ent\r\n\r\n";
const HEALTHZ_THEN_CLOSE: &str = "GET /healthz HTTP/1.1\r\nHost: ent\r\nConnection: close\r\n\r\n";
/// A request whose headers never end.
const UNFINISHED: &str = "GET /healthz HTTP/1.1\r\nHost: ent\r\n";

// A connection that sent half its headers, or nothing, was kept open for ever (attack 43 F2):
// with `server.header_read_timeout_seconds: 1` the server closes both, and serves on.
#[test]
fn a_connection_that_does_not_finish_its_headers_in_time_is_closed_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address, log) = serve_with_server_settings(dir.path(), "  header_read_timeout_seconds: 1\n");
    let mut unfinished = connection(&address, UNFINISHED);
    let mut silent = connection(&address, "");
    let (unfinished, silent) = (read_until_closed(&mut unfinished), read_until_closed(&mut silent));
    let healthz = read_until_closed(&mut connection(&address, HEALTHZ_THEN_CLOSE));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(log.join());
    assert!(!unfinished.contains(" 200 "), "no answer to unfinished headers: {unfinished}");
    assert!(silent.is_empty(), "{silent}");
    assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
}

// About a thousand idle connections took every file descriptor (attack 43 F2). With
// `server.max_connections: 3`, one kept-alive and two unfinished connections fill the listener:
// a fourth is closed unanswered (and logged, without its address), the kept-alive one still
// answers; once the server closed the unfinished ones, new connections are served again.
#[test]
fn past_max_connections_a_new_connection_is_closed_and_those_accepted_are_served() {
    let dir = tempfile::tempdir().unwrap();
    // Five seconds: far more than the test needs to fill the listener and try a fourth.
    let settings = "  header_read_timeout_seconds: 5\n  max_connections: 3\n";
    let (mut child, address, log) = serve_with_server_settings(dir.path(), settings);
    let mut kept = connection(&address, HEALTHZ);
    assert!(read_one_answer(&mut kept).starts_with("HTTP/1.1 200"));
    let mut unfinished = [connection(&address, UNFINISHED), connection(&address, UNFINISHED)];
    let fourth = read_until_closed(&mut connection(&address, HEALTHZ_THEN_CLOSE));
    {
        use std::io::Write;
        kept.write_all(HEALTHZ.as_bytes()).unwrap();
    }
    let again = read_one_answer(&mut kept);
    drop(kept);
    for stream in &mut unfinished {
        read_until_closed(stream);
    }
    let served = read_until_closed(&mut connection(&address, HEALTHZ_THEN_CLOSE));
    let metrics =
        read_until_closed(&mut connection(&address, "GET /metrics HTTP/1.1\r\nHost: ent\r\nConnection: close\r\n\r\n"));
    child.kill().unwrap();
    child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(fourth.is_empty(), "the fourth connection was answered: {fourth}");
    assert!(again.starts_with("HTTP/1.1 200"), "the accepted connection still answers: {again}");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    assert!(metrics.contains("\nentcp_http_connections_refused_total 1\n"), "{metrics}");
    let warned: Vec<&String> = log.iter().filter(|l| l.contains("server.max_connections reached")).collect();
    assert_eq!(warned.len(), 1, "{log:?}");
    assert!(warned[0].contains("WARN") && !warned[0].contains("127.0.0.1"), "{}", warned[0]);
}

// A configuration error exits with 2 whatever its source, its French message unchanged: a bad
// listening address exited with 1 (found only when `serve` bound it), from the file, the
// environment or `--listen` alike, as did an unreadable folder the configuration names, an
// OpenID Connect issuer its client could not read, and a database URL its driver could not.
#[test]
fn every_configuration_error_exits_with_2_whatever_its_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ecoute.yaml"), "server:\n  listen: pas-une-adresse\n").unwrap();
    std::fs::write(dir.path().join("inconnue.yaml"), "serveur:\n  listen: 127.0.0.1:0\n").unwrap();
    std::fs::write(dir.path().join("catalogue.yaml"), "catalog_dir: dossier-absent\n").unwrap();
    std::fs::write(dir.path().join("secret-vide"), "\n").unwrap();
    std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
    let oidc = |name: &str, issuer: &str, secret: &str| {
        let yaml = format!(
            "identity:\n  oidc:\n    issuer: {issuer}\n    client_id: entcp\n    client_secret_file: {secret}\n    \
             redirect_url: https://ent.exemple.fr/connexion/oidc/retour\n"
        );
        std::fs::write(dir.path().join(name), yaml).unwrap();
    };
    oidc("oidc-sans-secret.yaml", "https://auth.exemple.fr", "secret-absent");
    oidc("oidc-secret-vide.yaml", "https://auth.exemple.fr", "secret-vide");
    oidc("oidc-emetteur.yaml", "\"https://[auth.exemple.fr\"", "secret");
    // The provisioning backend `serve` writes with is built at start (#SRE: a wrong kubeconfig
    // or sealing certificate was a warning of every pass while `/readyz` stayed green).
    let kube = "provisioning:\n  backend: kube\n  kube:\n    kubeconfig: kubeconfig-absent.yaml\n";
    std::fs::write(dir.path().join("kube.yaml"), kube).unwrap();
    let sealed = "provisioning:\n  manifests_credentials:\n    mode: sealed\n    sealing_cert: cert-absent.pem\n";
    std::fs::write(dir.path().join("scelle.yaml"), sealed).unwrap();
    let listen = "adresse d'écoute « pas-une-adresse » invalide";
    let serve = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = entctl(dir.path());
        cmd.args(args).arg("serve").envs(env.iter().copied());
        cmd
    };
    let mut cases = vec![
        ("file", serve(&["--config", "ecoute.yaml"], &[]), listen),
        ("environment", serve(&[], &[("ENTCP_LISTEN", "pas-une-adresse")]), listen),
        ("environment value", serve(&[], &[("ENTCP_SMTP_PORT", "abc")]), "ENTCP_SMTP_PORT=abc invalide"),
        // A pool of 0 connections panicked in sqlx (exit 101) instead of being refused (SRE 42).
        ("pool size", serve(&[], &[("ENTCP_DATABASE_MAX_CONNECTIONS", "0")]), "database.max_connections : 0 invalide"),
        (
            "import lease",
            serve(&[], &[("ENTCP_IMPORT_LEASE_SECONDS", "1")]),
            "import.lease_seconds : 1 hors des bornes : le bail du verrou d'un import",
        ),
        ("unknown key", serve(&["--config", "inconnue.yaml"], &[]), "configuration inconnue.yaml invalide"),
        ("folder named", serve(&["--config", "catalogue.yaml"], &[]), "catalog_dir : dossier dossier-absent illisible"),
        ("flag", serve(&["--log-format", "xml"], &[]), "log.format « xml » invalide"),
        ("unknown flag", serve(&["--ecoute", "x"], &[]), "--ecoute"),
        ("oidc secret missing", serve(&["--config", "oidc-sans-secret.yaml"], &[]), "secret-absent illisible"),
        ("oidc secret empty", serve(&["--config", "oidc-secret-vide.yaml"], &[]), "le secret du client est vide"),
        // Refused by the OpenID Connect client, which `serve` built after migrating the database.
        ("oidc issuer", serve(&["--config", "oidc-emetteur.yaml"], &[]), "identity.oidc.issuer « https://[auth"),
        ("kubeconfig", serve(&["--config", "kube.yaml"], &[]), "provisioning.backend : kubeconfig"),
        ("sealing certificate", serve(&["--config", "scelle.yaml"], &[]), "certificat sealed-secrets"),
        // Refused by sqlx when it connected, after the start.
        (
            "database url",
            serve(&["--database-url", "postgres://entcp:mdp-cache@127.0.0.1:port/entcp"], &[]),
            "database.url « postgres://entcp:***@127.0.0.1:port/entcp » invalide",
        ),
        (
            "database scheme",
            serve(&[], &[("ENTCP_DATABASE_URL", "mysql://127.0.0.1/entcp")]),
            "database.url « mysql://127.0.0.1/entcp » invalide",
        ),
    ];
    // A listener that closed every connection at once, or accepted none (attack 43 F2).
    for (key, message) in [
        ("header_read_timeout_seconds: 0", "server.header_read_timeout_seconds : 0 invalide"),
        ("idle_timeout_seconds: 0", "server.idle_timeout_seconds : 0 invalide"),
        ("max_connections: 0", "server.max_connections : 0 invalide"),
    ] {
        let file = format!("{}.yaml", key.split(':').next().unwrap());
        std::fs::write(dir.path().join(&file), format!("server:\n  {key}\n")).unwrap();
        cases.push((key, serve(&["--config", file.as_str()], &[]), message));
    }
    let mut flag = entctl(dir.path());
    flag.args(["serve", "--listen", "pas-une-adresse"]);
    cases.push(("serve flag", flag, listen));
    std::fs::write(dir.path().join("pool.yaml"), "database:\n  max_connections: 0\n").unwrap();
    let mut pool = entctl(dir.path());
    pool.args(["--config", "pool.yaml", "orgs", "list"]);
    cases.push(("pool size in the file, any command", pool, "database.max_connections : 0 invalide"));
    for (source, mut cmd, message) in cases {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{source}: {stderr}");
        assert!(stderr.contains(message), "{source}: {stderr}");
        assert!(!stderr.contains("mdp-cache"), "{source}: the password stays out of the message: {stderr}");
    }
    assert!(!dir.path().join("data").exists(), "refused before anything is written");
}

/// The fenced block of the README that follows `heading` (its first line after the fence).
fn readme_block(heading: &str) -> String {
    let readme = include_str!("../../../README.md");
    let after = &readme[readme.find(heading).unwrap_or_else(|| panic!("the README says {heading}"))..];
    let body = &after[after.find("```").unwrap()..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

// The README's convention quick-start, run as printed (the reference the creation prints in
// place of the README's): the draft created from its `convention.yaml`, edited with its
// `modification.yaml` (`entctl conventions update`, which the quick-start lacked), submitted,
// signed, listed and exported. An update based on a version read before is refused.
backend_test!(the_readme_convention_quick_start_runs_as_printed);
async fn the_readme_convention_quick_start_runs_as_printed(db: TestDb) {
    common::import_sample(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let entctl_db = || {
        let mut cmd = entctl(dir.path());
        cmd.args(["--database-url", &db.url]);
        cmd
    };
    let signers = [("dan@ac-creteil.fr", "dan", "academie:24"), ("ent@fresnes.fr", "collectivite", "commune:94034")];
    for (email, role, org) in
        signers.into_iter().chain([("ce.0940176f@ac-creteil.fr", "chef_etablissement", "0940176F")])
    {
        run_ok(entctl_db().args(["users", "add", email, "--name", email, "--org", org]));
        run_ok(entctl_db().args(["roles", "grant", email, role, "--org", org]));
    }
    let commands = readme_block("### Conventions");
    std::fs::write(dir.path().join("convention.yaml"), readme_block("`convention.yaml` (ou le corps JSON")).unwrap();
    std::fs::write(dir.path().join("modification.yaml"), readme_block("`modification.yaml` (ou le corps JSON"))
        .unwrap();
    let mut reference = None;
    for line in commands.lines() {
        let line = line.split(" #").next().unwrap().trim();
        let Some(args) = line.strip_prefix("entctl ") else { continue };
        let args = args.replace("CONV-2026-000001", reference.as_deref().unwrap_or("CONV-2026-000001"));
        let out = run_ok(entctl_db().args(args.split_whitespace()));
        if args.starts_with("conventions create") {
            reference = Some(out.split_whitespace().next().unwrap().to_string());
        }
        if args.starts_with("conventions update") {
            let shown = run_ok(entctl_db().args(["conventions", "show", reference.as_deref().unwrap()]));
            assert!(shown.contains("\"accounts\": 300") && shown.contains("M. Paul Bernard"), "{}: {shown}", db.name);
        }
    }
    let reference = reference.expect("the quick-start creates a convention");
    assert!(dir.path().join("convention.odt").exists(), "{}: the export is written", db.name);
    let shown = run_ok(entctl_db().args(["conventions", "show", &reference]));
    assert!(shown.contains("\"status\": \"in_signature\""), "{}: {shown}", db.name);
    // In signature, an edit based on the version read before the submission is refused.
    let stale = entctl_db()
        .args([
            "conventions",
            "update",
            &reference,
            "modification.yaml",
            "--if-match",
            "1",
            "--as",
            "dan@ac-creteil.fr",
        ])
        .output()
        .unwrap();
    assert!(!stale.status.success(), "{}", db.name);
    let error = String::from_utf8_lossy(&stale.stderr);
    assert!(error.contains("modifiée entre-temps"), "{}: {error}", db.name);
    // The API's checks: a title is one line.
    std::fs::write(dir.path().join("titre.yaml"), "title: \"ENT\\n## Autre\"\n").unwrap();
    let titled = entctl_db()
        .args(["conventions", "update", &reference, "titre.yaml", "--as", "dan@ac-creteil.fr"])
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&titled.stderr);
    assert!(!titled.status.success() && error.contains("title"), "{}: {error}", db.name);
}

/// A renewable bipartite convention of Fresnes in force, written straight into `db`, its term two
/// years from today (the command line acts today) and its notice none: its reference.
async fn bipartite_in_force(db: &TestDb) -> &'static str {
    let org = |key: &'static str| async move { entcp::registry::resolve_org(&db.store, key).await.unwrap().id };
    let end = (chrono::Utc::now().date_naive() + chrono::Months::new(24)).to_string();
    let convention = ent_testkit::conventions::ActiveConvention {
        id: "fresnes-bipartite",
        model_id: "bipartite-commune",
        model_version: 3,
        start: "2026-09-01",
        end: &end,
        parties: vec![("academie", org("academie:24").await), ("collectivite", org("commune:94034").await)],
        schools: vec![],
    };
    ent_testkit::conventions::insert_active(db.store.pool(), &convention).await.unwrap();
    "CONV-FRESNES-BIPARTITE"
}

// `entctl conventions deposit` and `entctl conventions oppose-renewal` record what a party's
// signatory sent on paper, as `POST …/signed-copies` and `POST …/non-renewal` do, with the same
// checks: a user who is no party's signatory finds no convention (as the API's 404), a file that
// is not a PDF is refused, the same copy sent twice is kept once, a second non-reconduction is
// refused; the operator alone (without --as) may do neither.
backend_test!(a_signed_copy_and_a_non_renewal_are_recorded_from_the_command_line_for_a_party_signatory_only);
async fn a_signed_copy_and_a_non_renewal_are_recorded_from_the_command_line_for_a_party_signatory_only(db: TestDb) {
    common::import_sample(&db.store).await;
    let reference = bipartite_in_force(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let entctl_db = || {
        let mut cmd = entctl(dir.path());
        cmd.args(["--database-url", &db.url]);
        cmd
    };
    for (email, role, org) in
        [("ent@fresnes.fr", "collectivite", "commune:94034"), ("ent@vitry.fr", "collectivite", "commune:94081")]
    {
        run_ok(entctl_db().args(["users", "add", email, "--name", email, "--org", org]));
        run_ok(entctl_db().args(["roles", "grant", email, role, "--org", org]));
    }
    let name = db.name;
    let refused = |args: &[&str]| {
        let out = entctl_db().args(["conventions"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{name}: {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    std::fs::write(dir.path().join("convention-signee.pdf"), b"%PDF-1.4\nexemplaire signe\n%%EOF\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "signée le 3 décembre").unwrap();
    let deposit = |file: &'static str, who: &'static str| ["deposit", reference, "--file", file, "--as", who];

    let vitry = refused(&deposit("convention-signee.pdf", "ent@vitry.fr"));
    assert!(vitry.contains(&format!("convention introuvable : {reference}")), "{name}: {vitry}");
    let text = refused(&deposit("notes.txt", "ent@fresnes.fr"));
    assert!(text.contains("ce fichier n'est pas un PDF"), "{name}: {text}");
    let operator = refused(&["deposit", reference, "--file", "convention-signee.pdf"]);
    assert!(operator.contains("--as"), "{name}: {operator}");
    for _ in 0..2 {
        let out = run_ok(entctl_db().args(["conventions"]).args(deposit("convention-signee.pdf", "ent@fresnes.fr")));
        assert!(out.contains("exemplaire signé déposé : convention-signee.pdf (SHA-256 "), "{name}: {out}");
    }
    let shown = run_ok(entctl_db().args(["conventions", "show", reference]));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let files = shown["signed_files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{name}: the same copy sent twice is kept once: {files:?}");
    assert_eq!(files[0]["file_name"], "convention-signee.pdf", "{name}");
    assert!(files[0]["uploaded_by"].as_str().unwrap().ends_with(" pour user:ent@fresnes.fr"), "{name}: {files:?}");

    let vitry = refused(&["oppose-renewal", reference, "--as", "ent@vitry.fr"]);
    assert!(vitry.contains(&format!("convention introuvable : {reference}")), "{name}: {vitry}");
    assert!(refused(&["oppose-renewal", reference]).contains("--as"), "{name}: the operator alone");
    let opposed = ["oppose-renewal", reference, "--as", "ent@fresnes.fr", "--reason", "Nouveau marché en 2028"];
    let out = run_ok(entctl_db().args(["conventions"]).args(opposed));
    assert!(out.contains("non-reconduction enregistrée : la convention prend fin à son terme, le "), "{name}: {out}");
    let shown = run_ok(entctl_db().args(["conventions", "show", reference]));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["non_renewal"]["reason"], "Nouveau marché en 2028", "{name}: {shown}");
    assert!(shown["non_renewal"]["by"].as_str().unwrap().contains("ent@fresnes.fr"), "{name}: {shown}");
    let again = refused(&opposed);
    assert!(again.contains("déjà enregistrée"), "{name}: {again}");
}

backend_test!(a_listing_piped_into_a_reader_that_quits_early_ends_quietly);
async fn a_listing_piped_into_a_reader_that_quits_early_ends_quietly(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let entctl_on = || {
        let mut cmd = entctl(dir.path());
        cmd.args(["--database-url", &db.url]);
        cmd
    };
    run_ok(entctl_on().args(["import", "annuaire"]).arg(common::fixture("annuaire-education-94-ecoles.csv")));
    run_ok(entctl_on().args(["apply", "-f"]).arg(example_tenants()));
    // A tenant renders its objects once past the gate.
    run_ok(entctl_on().args(["tenants", "transition", "fresnes", "provisioning", "--override-reason", "essai"]));
    let listings: [&[&str]; 5] = [
        &["orgs", "list", "--limit", "500"],
        &["orgs", "list", "--limit", "500", "--json"],
        &["tenants", "render", "fresnes"],
        &["config", "print"],
        &["version"],
    ];
    for args in listings {
        let mut child = entctl_on().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // `| head -1`: the reader takes one line and is gone.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{}: {args:?} printed nothing", db.name);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{}: {args:?}: {stderr}", db.name);
        assert!(!stderr.contains("erreur"), "{}: {args:?}: {stderr}", db.name);
        assert!(matches!(out.status.code(), Some(0 | 141)), "{}: {args:?}: {:?}", db.name, out.status);
    }
    // A listing longer than the pipe holds (64 KiB) meets the closed pipe for sure.
    let mut child = entctl_on()
        .args(["orgs", "list", "--limit", "500", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{}: {stderr}", db.name);
    assert!(!stderr.contains("panicked"), "{}: {stderr}", db.name);
}

// A standard error nobody reads any more (its pipe's reader gone: a log shipper that died, or
// `entctl … 2>&1 | head`): the first `eprintln!`, or the log's own report of a line it could not
// write, panicked, and the process exited with 101 instead of the command's own status.
#[test]
fn a_failing_command_whose_standard_error_is_closed_exits_with_its_own_status() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("entcp.db").display());
    let cases: [(&str, &[&str], i32); 2] = [
        ("configuration error", &["--log-format", "xml", "orgs", "list"], 2),
        // A log line first (an unknown ENTCP_ variable is warned about), then the error.
        ("failing command", &["--database-url", &url, "orgs", "show", "0000000X"], 1),
    ];
    for (what, args, code) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = entctl(dir.path());
        cmd.args(args).env("ENTCP_FAUTE_DE_FRAPPE", "1").stdout(Stdio::null()).stderr(writer);
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(code), "{what}: {status:?}");
    }
}

// A first run: a listing on a database not created yet sets it up as any command does, and
// answers (only a database some migrations behind is left as it is).
#[test]
fn a_read_only_command_on_a_new_database_sets_it_up_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("neuve").join("entcp.db").display());
    for args in [&["orgs", "list"][..], &["conventions", "models"]] {
        let out = entctl(dir.path()).args(["--database-url", &url]).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(dir.path().join("neuve").join("entcp.db").exists());
}

backend_test!(a_read_only_command_on_a_schema_one_migration_behind_leaves_it_untouched_and_says_so);
async fn a_read_only_command_on_a_schema_one_migration_behind_leaves_it_untouched_and_says_so(db: TestDb) {
    // The last migration of this entctl not applied (recorded as failed): the schema is behind.
    let last = entcp::backup::known_schema_version(db.store.backend());
    let mark = |success: bool| format!("UPDATE _sqlx_migrations SET success = {success} WHERE version = {last}");
    sqlx::query(&mark(false)).execute(db.store.pool()).await.unwrap();
    let migrations = || async {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(db.store.pool())
                .await
                .unwrap();
        applied
    };
    let before = migrations().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| entctl(dir.path()).args(["--database-url", &db.url]).args(args).output().unwrap();
    for args in [&["orgs", "list"][..], &["users", "list"], &["tenants", "list"], &["audit", "verify"]] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {args:?}: {stderr}", db.name);
        assert!(out.stdout.is_empty(), "{}: {args:?}: {}", db.name, String::from_utf8_lossy(&out.stdout));
        let said = format!("au schéma {}, plus ancien que celui de cet entctl ({last})", last - 1);
        assert!(
            stderr.contains(&said) && stderr.contains("lancez d'abord « entctl migrate »"),
            "{}: {stderr}",
            db.name
        );
        assert_eq!(migrations().await, before, "{}: {args:?} left the schema as it was", db.name);
    }
    // Current again: the same commands just read.
    sqlx::query(&mark(true)).execute(db.store.pool()).await.unwrap();
    let listed = run(&["users", "list"]);
    assert!(listed.status.success(), "{}: {}", db.name, String::from_utf8_lossy(&listed.stderr));
}

// Migration 0050 leaves the back-fill of the services tenants dropped before 0048 to the
// program that has the catalog: `entctl migrate` (as every command that migrates) runs it once.
backend_test!(migrate_backfills_once_the_services_a_tenant_dropped_before_they_were_recorded);
async fn migrate_backfills_once_the_services_a_tenant_dropped_before_they_were_recorded(db: TestDb) {
    let at = "2026-01-05T10:00:00.000000Z";
    let statements = [
        "INSERT INTO orgs (id, kind, code, name, sort_name, content_hash, created_at, updated_at) \
         VALUES ('o1', 'commune', '94001', 'Ablon', 'ablon', 'h', $1, $1)",
        "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
         spec_hash, version, created_at, updated_at) VALUES ('t1', 'ablon', 'o1', 'ablon.ent.example.fr', \
         'socle-1d', '[]', 250, 'educonnect', 'active', 'h', 1, $1, $1)",
    ];
    for sql in statements {
        sqlx::query(sql).bind(at).execute(db.store.pool()).await.unwrap();
    }
    let history = [
        ("tenants.create", r#"{"bouquet":"socle-1d","options":["moodle"]}"#),
        ("tenants.transition", r#"{"from":"requested","to":"provisioning"}"#),
        ("tenants.configure", r#"{"bouquet":"socle-1d","options":[]}"#),
    ];
    for (seq, (action, summary)) in (1_000_000_i64..).zip(history) {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target_kind, target_id, summary, prev_hash, hash) \
             VALUES ($1, $2, 'dan', $3, 'tenant', 't1', $4, 'p', 'h')",
        )
        .bind(seq)
        .bind(at)
        .bind(action)
        .bind(summary)
        .execute(db.store.pool())
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = entctl(dir.path()).args(["--database-url", &db.url, "migrate"]).output().unwrap();
        assert!(out.status.success(), "{}: {}", db.name, String::from_utf8_lossy(&out.stderr));
    }
    let retained = common::texts(&db.store, "SELECT retained_services FROM tenants", &[]).await;
    assert_eq!(retained, [r#"["exercices"]"#], "{}", db.name);
    let events = "SELECT COUNT(*) FROM tenant_events WHERE tenant_id = 't1' AND kind = 'retained'";
    assert_eq!(common::count(&db.store, events, &[]).await, 1, "{}: once", db.name);
}

// `entctl backup` opened the database as the read-only commands do: step 1 of an upgrade, run
// with the new image, was refused on the schema of the previous one (and before that, it
// migrated the database first: the archive was no longer the state before the upgrade, and a
// migration that failed left no backup). It now copies the database as it is.
backend_test!(a_backup_with_the_new_entctl_copies_a_schema_one_migration_behind_as_it_is_and_restores_it_migrated);
async fn a_backup_with_the_new_entctl_copies_a_schema_one_migration_behind_as_it_is_and_restores_it_migrated(
    db: TestDb,
) {
    // The database of the previous entctl: every migration of this one but its last, and data.
    let last = entcp::backup::known_schema_version(db.store.backend());
    let (url, _source) = common::empty_target(&db).await;
    let source = entcp::store::Store::connect(&url, Some(2)).await.unwrap();
    common::migrate_up_to(&source, last - 1).await;
    common::import_sample(&source).await;
    let etablissements = common::count_kind(&source, "etablissement").await;
    let applied = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
    let dir = tempfile::tempdir().unwrap();
    let run = |url: &str, args: &[&str]| entctl(dir.path()).args(["--database-url", url]).args(args).output().unwrap();

    let out = run(&url, &["backup", "sauvegarde.zip"]);
    assert!(out.status.success(), "{}: {}", db.name, String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("au schéma {}, ", last - 1)), "{}: {said}", db.name);
    let (_, manifest) = entcp::backup::open_archive(&dir.path().join("sauvegarde.zip")).unwrap();
    assert_eq!(manifest.schema_version, last - 1, "{}: the copy is of the schema as it was", db.name);
    assert_eq!(common::count(&source, applied, &[]).await, last - 1, "{}: the original is untouched", db.name);
    source.close().await;

    // Restored by this entctl into a new database, then started: migrated.
    let (target, _target) = common::empty_target(&db).await;
    let out = run(&target, &["restore", "sauvegarde.zip"]);
    assert!(out.status.success(), "{}: {}", db.name, String::from_utf8_lossy(&out.stderr));
    // A read-only command refuses a schema behind this entctl: it answers on a migrated one.
    let listed = run(&target, &["orgs", "list", "--limit", "1"]);
    assert!(listed.status.success(), "{}: {}", db.name, String::from_utf8_lossy(&listed.stderr));
    let restored = entcp::store::Store::connect(&target, Some(1)).await.unwrap();
    assert_eq!(common::count(&restored, applied, &[]).await, last, "{}: migrated", db.name);
    assert_eq!(common::count_kind(&restored, "etablissement").await, etablissements, "{}", db.name);
    let pending = "SELECT COUNT(*) FROM data_backfills WHERE done_at IS NULL";
    assert_eq!(common::count(&restored, pending, &[]).await, 0, "{}: back-filled", db.name);
    restored.close().await;

    // The restore itself migrates and back-fills, as every path that migrates does.
    let (again, _again) = common::empty_target(&db).await;
    let store = entcp::store::Store::connect(&again, Some(2)).await.unwrap();
    let archive = dir.path().join("sauvegarde.zip");
    entcp::backup::restore(store, &again, &dir.path().join("encore"), None, &archive).await.unwrap();
    let restored = entcp::store::Store::connect(&again, Some(1)).await.unwrap();
    assert_eq!(common::count(&restored, applied, &[]).await, last, "{}: migrated", db.name);
    assert_eq!(common::count(&restored, pending, &[]).await, 0, "{}: back-filled", db.name);
    restored.close().await;
}
