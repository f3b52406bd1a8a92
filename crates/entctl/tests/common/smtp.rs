//! A real SMTP server for tests: `tests/support/smtp_sink.py` (aiosmtpd) on loopback.

use entcp::config::{Config, MailTransport, SmtpTls};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A configuration writing under `data_dir`, mail to `.eml` files.
pub fn file_config(data_dir: &Path) -> Config {
    Config { data_dir: data_dir.to_path_buf(), ..Config::default() }
}

/// A temporary data folder and a [`file_config`] writing there (mail as `.eml` files).
pub fn file_config_in_temp() -> (tempfile::TempDir, Config) {
    let data = tempfile::tempdir().unwrap();
    let config = file_config(data.path());
    (data, config)
}

/// A configuration sending to a plain SMTP server on loopback.
pub fn smtp_config(data_dir: &Path, port: u16) -> Config {
    let mut config = file_config(data_dir);
    config.mail.transport = MailTransport::Smtp;
    config.mail.smtp.host = "127.0.0.1".into();
    config.mail.smtp.port = port;
    config.mail.smtp.tls = SmtpTls::None;
    config.mail.smtp.timeout_seconds = 10;
    config
}

/// A data folder, a running [`SmtpSink`] and a configuration sending to it.
pub fn smtp_sink_and_config() -> (tempfile::TempDir, SmtpSink, Config) {
    let data = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_on_any_port();
    let config = smtp_config(data.path(), sink.port());
    (data, sink, config)
}

/// A data folder and a configuration sending to a free loopback port where nothing
/// listens yet (start an [`SmtpSink`] on it later): (folder, port, configuration).
pub fn smtp_on_free_port() -> (tempfile::TempDir, u16, Config) {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = smtp_config(data.path(), port);
    (data, port, config)
}

/// A TCP port nobody listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An SMTP server that accepts connections and never answers: a sender talking
/// to it hangs after claiming its batch, like a process about to be killed.
pub async fn silent_smtp_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    port
}

// --- the real SMTP server -----------------------------------------------------

/// `tests/support/smtp_sink.py` running as a child process on 127.0.0.1.
pub struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// Whether python3 with aiosmtpd is here; in CI its absence is a failure, not a skip.
pub fn smtp_sink_available() -> bool {
    let available = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        super::skip_unless_ci(
            "python3 with aiosmtpd is missing: the SMTP tests would be skipped",
            "SKIPPED: python3 -m pip install aiosmtpd to run the SMTP tests",
        );
    }
    available
}

impl SmtpSink {
    /// A sink on a port it picks itself; [`SmtpSink::port`] tells which.
    pub fn start_on_any_port() -> SmtpSink {
        SmtpSink::start(0)
    }

    /// A sink on `port` (0: any free one). Panics when it cannot listen there itself.
    pub fn start(port: u16) -> SmtpSink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/smtp_sink.py");
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 starts the SMTP sink");
        let mut sink = SmtpSink { child, dir, port };
        sink.port = sink.wait_until_listening();
        sink
    }

    /// The port this sink listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the `.port` file the sink writes once it listens itself: a connection
    /// could reach another sink that holds the same port.
    fn wait_until_listening(&mut self) -> u16 {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let ready = self.dir.path().join(".port");
        while Instant::now() < deadline {
            if let Ok(port) = std::fs::read_to_string(&ready) {
                return port.trim().parse().expect("the sink writes its port");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                use std::io::Read;
                self.child.stderr.take().unwrap().read_to_string(&mut stderr).ok();
                panic!("the SMTP sink exited ({status}): {stderr}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the SMTP sink did not listen on port {} within 20 s", self.port);
    }

    /// Every message received so far, raw.
    pub fn received(&self) -> Vec<String> {
        self.deliveries().into_iter().map(|d| d.raw).collect()
    }

    /// Every message received so far, raw, with its envelope's recipients.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        names.sort();
        let delivery = |path: &PathBuf| Delivery {
            raw: std::fs::read_to_string(path).unwrap(),
            rcpt_to: std::fs::read_to_string(path.with_extension("rcpt"))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect(),
        };
        names.iter().map(delivery).collect()
    }

    /// Answers every RCPT TO `address` with a temporary refusal (450) until [`SmtpSink::accept_all`].
    pub fn refuse(&self, address: &str) {
        std::fs::write(self.dir.path().join("refused"), format!("{address}\n")).unwrap();
    }

    /// Accepts every recipient again.
    pub fn accept_all(&self) {
        std::fs::remove_file(self.dir.path().join("refused")).unwrap();
    }

    /// The message of outbox message `id` as its reader sees it: its parts decoded
    /// (quoted-printable, base64), soft line breaks joined. Empty when not received.
    pub fn text_of(&self, id: &str) -> String {
        let header = format!("Message-ID: <{id}@");
        self.received().iter().find(|m| m.contains(&header)).map(|m| decoded(m)).unwrap_or_default()
    }

    /// How many received messages carry the Message-ID of outbox message `id`.
    pub fn copies_of(&self, id: &str) -> usize {
        let header = format!("Message-ID: <{id}@");
        self.received().iter().filter(|m| m.contains(&header)).count()
    }
}

/// A message the sink received.
pub struct Delivery {
    /// The message as received (headers and body).
    pub raw: String,
    /// Its envelope's recipients (RCPT TO): who the server delivers it to.
    pub rcpt_to: Vec<String>,
}

impl Delivery {
    /// Its `To:`, `Cc:` and `Bcc:` header lines (folded lines joined), as `Name: value`.
    pub fn addressees(&self) -> Vec<String> {
        let raw = self.raw.replace("\r\n", "\n");
        let headers = raw.split("\n\n").next().unwrap_or_default().replace("\n ", " ").replace("\n\t", " ");
        let addressing = |line: &&str| {
            let name = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
            ["to", "cc", "bcc"].contains(&name.as_str())
        };
        headers.lines().filter(addressing).map(str::to_string).collect()
    }
}

/// Each MIME part of `raw` with its body decoded by its Content-Transfer-Encoding.
pub fn decoded(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let mut text = String::new();
    for part in raw.split("\n--") {
        let Some((headers, body)) = part.split_once("\n\n") else { continue };
        let headers = headers.to_ascii_lowercase();
        if headers.contains("content-transfer-encoding: quoted-printable") {
            text.push_str(&quoted_printable(body));
        } else if headers.contains("content-transfer-encoding: base64") {
            use base64::Engine;
            let clean: String = body.chars().take_while(|c| *c != '-').filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(clean).unwrap_or_default();
            text.push_str(&String::from_utf8_lossy(&bytes));
        } else {
            text.push_str(body);
        }
        text.push('\n');
    }
    text
}

fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let mut bytes = Vec::new();
    let mut rest = joined.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b, hex) {
            (b'=', Some(byte)) => {
                bytes.push(byte);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
