//! `entctl bench read` and `entctl bench write`: bounded HTTP load over
//! loopback against an in-process server, on SQLite (a temp file) and, when a
//! PostgreSQL URL is given, on PostgreSQL. A minimal keep-alive HTTP/1.1
//! client keeps the figures about the server, not about a client library.

use super::BenchWorld;
use ent_kernel::config::Config;
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::{Backend, Store};
use ent_platform::identity::authz::Scope;
use ent_platform::identity::{self, Actor};
use ent_platform::registry::queries::{explain_list_orgs_json, list_orgs, OrgFilter};
use ent_platform::registry::Org;
use ent_server::api::{self, AppState};
use ent_testkit::synthetic::SyntheticOptions;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive connection to the bench server.
struct Conn {
    addr: std::net::SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(addr: std::net::SocketAddr) -> Conn {
        Conn { addr, stream: None }
    }

    /// Sends one request and reads the whole answer: its status.
    async fn send(&mut self, method: &str, path: &str, token: &str, body: Option<&str>) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let stream = self.stream.as_mut().expect("connected");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n");
        if let Some(body) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or(""));
        stream.get_mut().write_all(head.as_bytes()).await?;
        let result = read_response(stream).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

async fn read_response(stream: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Err(bad("connection closed"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| bad("content-length"))?;
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(status)
}

/// Serves the application of `state` on a free loopback port.
pub(super) async fn serve(state: AppState) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, api::app(state)).await });
    Ok(addr)
}

/// A user holding `role` at `org` (none: platform-wide) and a fresh token of theirs.
pub(super) async fn token(store: &Store, email: &str, role: Role, org: Option<&Org>) -> anyhow::Result<String> {
    let fail = |p: Problem| anyhow::anyhow!(p.detail);
    let now = chrono::Utc::now();
    let new = identity::NewUser { email: email.into(), display_name: email.into(), org: None };
    let user = identity::create_user(store, &Actor::cli(), new, now).await.map_err(fail)?;
    identity::grant(store, &Actor::cli(), identity::UserRole::new(&user.id, role, org), now).await.map_err(fail)?;
    Ok(identity::create_token(store, &Actor::cli(), &user.id, "bench", None, now).await.map_err(fail)?.token)
}

/// The backends to bench: SQLite always, PostgreSQL when a URL is given.
pub(super) fn backends(config: &Config) -> Vec<Config> {
    let mut sqlite = config.clone();
    sqlite.database.url = None;
    let mut configs = vec![sqlite];
    let postgres = config
        .database
        .url
        .clone()
        .or_else(|| std::env::var("TEST_DATABASE_URL").ok())
        .filter(|url| Backend::from_url(url).is_ok_and(Backend::is_postgres));
    if let Some(url) = postgres {
        let mut pg = config.clone();
        pg.database.url = Some(url);
        configs.push(pg);
    }
    configs
}

pub(super) fn backend_name(store: &Store) -> &'static str {
    store.backend().label()
}

/// What a load of one request kind gave.
pub(super) struct Figures {
    done: usize,
    pub(super) errors: usize,
    seconds: f64,
    latencies: Vec<f64>,
}

impl Figures {
    pub(super) fn per_second(&self) -> f64 {
        self.done as f64 / self.seconds.max(1e-9)
    }

    pub(super) fn p99_ms(&mut self) -> f64 {
        self.percentile_ms(0.99)
    }

    /// The latency under which a share `q` of the successful requests fell, in ms.
    pub(super) fn percentile_ms(&mut self, q: f64) -> f64 {
        self.latencies.sort_by(f64::total_cmp);
        quantile(&self.latencies, q) * 1000.0
    }
}

/// The `q` quantile of `sorted` (nearest rank; 0 when empty).
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median time of `requests` GETs of `path` one after the other on one connection, in ms,
/// whatever they answer (a 404 is timed as a 200), and the last status.
pub(super) async fn sequential_median_ms(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    requests: usize,
) -> std::io::Result<(f64, u16)> {
    let (mut conn, mut latencies, mut status) = (Conn::new(addr), Vec::with_capacity(requests), 0);
    for _ in 0..requests {
        let sent = Instant::now();
        status = conn.send("GET", path, token, None).await?;
        latencies.push(sent.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    Ok((quantile(&latencies, 0.5) * 1000.0, status))
}

/// `connections` clients each sending `next(client, i)` until `requests` in all
/// or `limit` elapsed; a request over `timeout` counts as an error.
pub(super) async fn load<F>(
    addr: std::net::SocketAddr,
    connections: usize,
    requests: usize,
    limit: Duration,
    next: F,
) -> Figures
where
    F: Fn(usize, usize) -> (&'static str, String, String, Option<String>) + Send + Sync + 'static,
{
    let next = std::sync::Arc::new(next);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..connections {
        let (next, counter) = (next.clone(), counter.clone());
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let (mut latencies, mut errors, mut i) = (Vec::new(), 0usize, 0usize);
            while counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests && started.elapsed() < limit {
                let (method, path, token, body) = next(client, i);
                let sent = Instant::now();
                let answer =
                    tokio::time::timeout(Duration::from_secs(35), conn.send(method, &path, &token, body.as_deref()));
                match answer.await {
                    Ok(Ok(status)) if status < 300 => latencies.push(sent.elapsed().as_secs_f64()),
                    Ok(_) | Err(_) => {
                        errors += 1;
                        conn.stream = None;
                    }
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let mut figures = Figures { done: 0, errors: 0, seconds: 0.0, latencies: Vec::new() };
    for client in clients {
        if let Ok((latencies, errors)) = client.await {
            figures.done += latencies.len();
            figures.errors += errors;
            figures.latencies.extend(latencies);
        }
    }
    figures.seconds = started.elapsed().as_secs_f64();
    figures
}

/// `entctl bench read`: `/healthz`, the organisation list and one organisation
/// at `connections` connections over an annuaire of `etablissements`, and each route's
/// share of `/healthz`.
pub async fn read(
    config: &Config,
    etablissements: usize,
    connections: usize,
    requests: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    for config in backends(config) {
        let synthetic = SyntheticOptions { etablissements, communes: 5_000, seed: 11 };
        let world = BenchWorld::new(&config, "read", synthetic, |_| {}).await?;
        let store = world.store.clone();
        let academies = OrgFilter { kind: Some("academie".into()), ..Default::default() };
        let academie = first_org(&store, academies).await?;
        let etablissements = OrgFilter {
            kind: Some("etablissement".into()),
            academie: Some(academie.code.clone()),
            ..Default::default()
        };
        let etab = first_org(&store, etablissements).await?;
        let dan = token(&store, "dan@bench.example.fr", Role::Dan, Some(&academie)).await?;
        let addr = serve(world.state.clone()).await?;
        outln!(
            "{} : {connections} connexions, au plus {requests} requêtes ou {seconds} s par route (jeton DAN, académie {})",
            backend_name(&store),
            academie.code
        );
        let limit = Duration::from_secs(seconds);
        let list = "/api/v1/orgs?limit=50".to_string();
        let one = format!("/api/v1/orgs/{}", etab.id);
        // The same reads again with the cache off: what a read costs the database.
        let routes = [
            ("/healthz", "/healthz".to_string(), true),
            ("liste (limit=50)", list.clone(), true),
            ("une organisation", one.clone(), true),
            ("liste, sans cache", list, false),
            ("une org., sans cache", one, false),
        ];
        let mut healthz = 0.0;
        for (label, path, cached) in routes {
            store.set_read_cache(cached);
            let token = dan.clone();
            let mut figures =
                load(addr, connections, requests, limit, move |_, _| ("GET", path.clone(), token.clone(), None)).await;
            let rate = figures.per_second();
            if healthz == 0.0 {
                healthz = rate;
            }
            outln!(
                "  {label:<20} {rate:>8.0} req/s  p99 {:>6.1} ms  erreurs {}  part de /healthz {:.2}",
                figures.p99_ms(),
                figures.errors,
                rate / healthz.max(1e-9)
            );
        }
        print_list_plan(&store, &academie).await?;
        world.finish().await?;
    }
    Ok(())
}

/// The first organisation `filter` lists.
async fn first_org(store: &Store, filter: OrgFilter) -> anyhow::Result<Org> {
    let filter = OrgFilter { limit: Some(1), ..filter };
    let page = list_orgs(store, &filter, None).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    page.items.into_iter().next().ok_or_else(|| anyhow::anyhow!("annuaire synthétique sans {:?}", filter.kind))
}

/// The plan of the list query as the DAN of `academie` sends it.
async fn print_list_plan(store: &Store, academie: &Org) -> anyhow::Result<()> {
    let scope = Scope::Orgs(vec![academie.clone()]).condition();
    let filter = OrgFilter { limit: Some(50), ..Default::default() };
    let plan = explain_list_orgs_json(store, &filter, scope).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    outln!("  plan de la requête de la liste :");
    for step in plan {
        outln!("    {step}");
    }
    Ok(())
}

/// `entctl bench write`: ticket creations and comments by 1×, 3× and 10× the
/// pool size of concurrent writers: throughput, p99 latency, errors.
pub async fn write(config: &Config, per_writer: usize, seconds: u64) -> anyhow::Result<()> {
    for config in backends(config) {
        let synthetic = SyntheticOptions { etablissements: 2_000, communes: 500, seed: 13 };
        let world = BenchWorld::new(&config, "write", synthetic, |_| {}).await?;
        let store = world.store.clone();
        super::bench_tenants(&world.state, 1, true).await?;
        let admin = token(&store, "admin@bench.example.fr", Role::Admin, None).await?;
        let addr = serve(world.state.clone()).await?;
        let pool = store.pool().options().get_max_connections() as usize;
        outln!("{} : pool de {pool} connexions", backend_name(&store));
        for factor in [1, 3, 10] {
            let writers = pool * factor;
            let tickets = open_tickets(addr, &admin, writers).await?;
            let token = admin.clone();
            let mut figures = load(addr, writers, writers * per_writer, Duration::from_secs(seconds), move |w, i| {
                if i % 2 == 0 {
                    ("POST", "/api/v1/support/tickets".into(), token.clone(), Some(ticket_body(w, i)))
                } else {
                    let body = serde_json::json!({ "body": format!("commentaire {i} de l'écrivain {w}") });
                    let path = format!("/api/v1/support/tickets/{}/comments", tickets[w]);
                    ("POST", path, token.clone(), Some(body.to_string()))
                }
            })
            .await;
            outln!(
                "  {factor:>2}× ({writers:>3} écrivains) {:>7.1} écritures/s  p99 {:>8.1} ms  erreurs {} / {}",
                figures.per_second(),
                figures.p99_ms(),
                figures.errors,
                figures.done + figures.errors
            );
        }
        world.finish().await?;
    }
    Ok(())
}

fn ticket_body(writer: usize, i: usize) -> String {
    serde_json::json!({
        "tenant": "t0", "subject": format!("Banc d'essai {writer}-{i}"), "description": "Connexion impossible",
        "category": "acces", "impact": "moyenne", "urgency": "moyenne"
    })
    .to_string()
}

/// One ticket per writer, for its comments.
async fn open_tickets(addr: std::net::SocketAddr, token: &str, writers: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let stream = TcpStream::connect(addr).await?;
    let mut stream = BufReader::new(stream);
    for w in 0..writers {
        let body = ticket_body(w, 999_999);
        let head = format!(
            "POST /api/v1/support/tickets HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.get_mut().write_all(head.as_bytes()).await?;
        let id = read_json_id(&mut stream).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Reads an answer and returns its JSON body's `id`.
async fn read_json_id(stream: &mut BufReader<TcpStream>) -> anyhow::Result<String> {
    let mut line = String::new();
    let mut length = 0usize;
    stream.read_line(&mut line).await?;
    let status = line.clone();
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("réponse illisible ({}) : {e}", status.trim()))?;
    value["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("ticket non créé ({}) : {value}", status.trim()))
}
