//! Captures what a `tracing` subscriber writes, for tests that read the logs.

use std::sync::{Arc, Mutex};

/// A `MakeWriter` appending everything to one buffer.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Captures the logs of `INFO` and above written on this thread until the guard is
    /// dropped, formatted as the app writes them (without colours).
    pub fn info_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Whether a statement is one a running app sends on its own connections at its own pace: the
/// read cache's change watcher (`store::cache`: SQLite's `PRAGMA data_version` poll,
/// PostgreSQL's listener check `SELECT 1`), a new SQLite connection's settings (`PRAGMA`)
/// and the pool's check of a PostgreSQL connection given back (`store::OPEN_TRANSACTION`).
/// They are not the code under test's, and would land in a capture at random.
fn background(sql: &str) -> bool {
    sql.starts_with("PRAGMA") || sql == "SELECT 1" || sql == "SELECT statement_timestamp() <> transaction_timestamp()"
}

/// The SQL statements sqlx runs in this process, from its `sqlx::query` events (one per
/// statement: its first four words in `summary`, the full text in `db.statement` when longer).
///
/// [`Statements::capture`] makes it the process's global subscriber: SQLite runs statements
/// on a worker thread of its own, out of reach of a thread's default subscriber. nextest runs
/// each test in a process of its own, so one capture per test.
#[derive(Clone, Default)]
pub struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    pub fn capture() -> Statements {
        use tracing_subscriber::layer::SubscriberExt;
        let statements = Statements::default();
        let subscriber = tracing_subscriber::registry().with(statements.clone());
        tracing::subscriber::set_global_default(subscriber).expect("the test's process has no other global subscriber");
        statements
    }

    /// How many statements have run so far.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The statements run since the `from`-th.
    pub fn since(&self, from: usize) -> Vec<String> {
        self.0.lock().unwrap()[from..].to_vec()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: tracing_subscriber::layer::Context<'_, S>) -> bool {
        metadata.target() == "sqlx::query"
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            summary: String,
            statement: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "summary" => self.summary = value.to_string(),
                    "db.statement" => self.statement = value.trim().to_string(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let sql = if fields.statement.is_empty() { fields.summary } else { fields.statement };
        if !background(&sql) {
            self.0.lock().unwrap().push(sql);
        }
    }
}
