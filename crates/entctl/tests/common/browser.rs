//! The console in a real browser: headless Chromium driven over WebDriver
//! (`fantoccini`) against the real server on a loopback port. `.ci/browser.sh` starts
//! chromedriver and exports `TEST_WEBDRIVER_URL` and `TEST_AXE_JS` (axe-core); without
//! them the browser tests are skipped locally (they say so) and fail in CI.
//!
//! [`journey`] runs a test with a fresh browser (its own `--user-data-dir`), keeps a
//! screenshot under `target/browser-failures/` when it fails; [`Browser::axe`] runs
//! axe-core in the page (in each journey's SQLite case) and fails on any serious or
//! critical violation.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;

/// Chromium's flags on this machine: headless, and no background connections (the
/// network is closed; they would be refused by the dozen).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// A browser at the console `base` (`http://127.0.0.1:<port>`).
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub base: String,
    /// axe-core's script, in the journey's case that checks accessibility (see [`journey`]).
    axe_js: Option<String>,
}

/// The backend whose case of each journey runs axe-core. The pages' markup does not depend on
/// the database, and axe-core was two fifths of a journey's time: the PostgreSQL case runs the
/// same journey and its assertions without checking the same markup again.
const ACCESSIBILITY_CHECKED_ON: &str = "sqlite";

/// The WebDriver URL and axe-core's script, or `None` locally without them.
fn environment() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("TEST_WEBDRIVER_URL"), var("TEST_AXE_JS")) {
        (Some(webdriver), Some(axe)) => {
            let axe_js = std::fs::read_to_string(&axe).unwrap_or_else(|e| panic!("TEST_AXE_JS {axe}: {e}"));
            Some((webdriver, axe_js))
        }
        _ => {
            super::skip_unless_ci(
                "TEST_WEBDRIVER_URL or TEST_AXE_JS is not: .ci/browser.sh must start chromedriver",
                "TEST_WEBDRIVER_URL / TEST_AXE_JS unset: browser test skipped (source .ci/browser.sh)",
            );
            None
        }
    }
}

/// Runs `test` with a fresh headless Chromium at `base`, in the case of `backend` (a
/// [`super::TestDb`]'s name); on failure, the page is kept as
/// `target/browser-failures/<name>-<backend>.png` and the failure goes on. Skipped locally
/// when no WebDriver is configured.
pub async fn journey<F, Fut>(name: &str, backend: &str, base: &str, test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((webdriver, axe_js)) = environment() else { return };
    let profile = tempfile::tempdir().expect("a profile dir");
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let capabilities = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } });
    let Value::Object(capabilities) = capabilities else { unreachable!() };
    // chromedriver listens on the loopback: plain HTTP.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&webdriver)
        .await
        .unwrap_or_else(|e| panic!("no browser session from {webdriver}: {e}"));
    // A page that never loads or a script that never returns fails within a minute, not after
    // WebDriver's default 300 s (scripts: its default 30 s; elements: no implicit wait, as before).
    let seconds = std::time::Duration::from_secs;
    let timeouts = fantoccini::wd::TimeoutConfiguration::new(Some(seconds(30)), Some(seconds(60)), Some(seconds(0)));
    client.update_timeouts(timeouts).await.unwrap_or_else(|e| panic!("the browser's timeouts: {e}"));
    let axe_js = (backend == ACCESSIBILITY_CHECKED_ON).then_some(axe_js);
    let browser = Browser { client: client.clone(), base: base.to_string(), axe_js };
    let outcome = tokio::spawn(test(browser)).await;
    if let Err(failure) = outcome {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-failures");
        let file = dir.join(format!("{name}-{backend}.png"));
        match client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(&file, png);
                eprintln!("screenshot of the failure: {}", file.display());
            }
            Err(e) => eprintln!("no screenshot of the failure: {e}"),
        }
        let _ = client.close().await;
        std::panic::resume_unwind(failure.into_panic());
    }
    client.close().await.expect("the browser closes");
}

impl Browser {
    /// Opens the console's `path`.
    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The current address's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.expect("page text")
    }

    /// The text of the page's first `h1`.
    pub async fn heading(&self) -> String {
        self.find("h1").await.text().await.expect("h1 text")
    }

    /// Types `value` into the field `css` (emptied first).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(value).await.expect("type");
    }

    /// Clicks `css` (WebDriver's click waits for the page it leads to).
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Marks the page shown, so that [`Browser::wait_for_next_page`] knows when it is gone.
    pub async fn mark_page(&self) {
        self.client.execute("window.__entcpLeaving = true; return true;", vec![]).await.expect("mark the page");
    }

    /// Waits until the page marked by [`Browser::mark_page`] is replaced by a loaded one
    /// (a click on a submit button may return before the answer arrives).
    pub async fn wait_for_next_page(&self, after: &str) {
        let loaded = "return window.__entcpLeaving === undefined && document.readyState === 'complete';";
        for _ in 0..300 {
            if let Ok(Value::Bool(true)) = self.client.execute(loaded, vec![]).await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no new page after {after}");
    }

    /// Clicks `css`, a link or button that leads to another page, and waits for it.
    pub async fn click_to_page(&self, css: &str) {
        self.mark_page().await;
        self.click(css).await;
        self.wait_for_next_page(css).await;
    }

    /// Presses Enter in the field `css` (the form's implicit submission), and waits for the
    /// page it leads to.
    pub async fn press_enter_in(&self, css: &str) {
        self.mark_page().await;
        self.find(css).await.send_keys("\u{E007}").await.unwrap_or_else(|e| panic!("Enter in {css}: {e}"));
        self.wait_for_next_page(css).await;
    }

    /// Signs in through the password form of the page shown (the sign-in page).
    pub async fn sign_in_with_password(&self, email: &str, password: &str) {
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click_to_page("form[action='/connexion'] button[type=submit]").await;
    }

    /// Runs axe-core in the page (in the journey's case that checks accessibility, see
    /// [`ACCESSIBILITY_CHECKED_ON`]); fails on any serious or critical violation, listed.
    pub async fn axe(&self) {
        let Some(axe_js) = &self.axe_js else { return };
        self.client.execute(axe_js, vec![]).await.expect("axe-core loads in the page");
        let script = "const done = arguments[arguments.length - 1];\
            axe.run(document, { resultTypes: ['violations'] })\
              .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,\
                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) }))))\
              .catch(e => done({ error: String(e) }));";
        let result = self.client.execute_async(script, vec![]).await.expect("axe-core runs");
        if let Some(error) = result.get("error") {
            panic!("axe-core a échoué sur {} : {error}", self.path().await);
        }
        let violations = result.as_array().cloned().unwrap_or_default();
        let serious: Vec<String> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| {
                let impact = if v["impact"] == "critical" { "critique" } else { "grave" };
                format!(
                    "- règle « {} » ({impact}) : {} ; éléments : {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or(""),
                    v["nodes"]
                )
            })
            .collect();
        assert!(
            serious.is_empty(),
            "accessibilité (axe-core) : {} violation(s) grave(s) ou critique(s) sur {} :\n{}",
            serious.len(),
            self.path().await,
            serious.join("\n")
        );
    }
}
