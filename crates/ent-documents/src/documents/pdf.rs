//! PDF: the ODT rendering converted by LibreOffice (`soffice --headless`), when installed.
//!
//! Each conversion runs in its own temporary directory with its own LibreOffice
//! profile, so concurrent conversions do not share (and lock) a user profile; at most
//! [`CONCURRENT`] run at once in a process, the others wait their turn for a while.

use super::{to_odt_as, Document, Typography};
use ent_kernel::error::{Problem, ProblemKind};
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why no PDF could be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// Neither `soffice` nor `libreoffice` is on the PATH: HTML and ODT still work.
    #[error("aucun convertisseur PDF : installez LibreOffice (paquet libreoffice-writer-nogui)")]
    NoConverter,
    /// LibreOffice ran but gave no PDF (its output, or the timeout, is in the message).
    #[error("échec de la conversion en PDF : {0}")]
    Failed(String),
    /// Every conversion slot stayed taken while this one waited: the caller may retry.
    #[error("trop de conversions PDF en cours : réessayez dans un instant")]
    Busy,
}

/// What the API and the console answer: a server without LibreOffice does not offer PDF
/// (406, the other formats named), a failed or busy conversion is a passing fault (503).
impl From<PdfError> for Problem {
    fn from(e: PdfError) -> Self {
        match e {
            PdfError::NoConverter => Problem::new(ProblemKind::FormatUnavailable, NOT_HERE),
            PdfError::Failed(_) | PdfError::Busy => Problem::new(ProblemKind::Unavailable, e.to_string()),
        }
    }
}

/// The detail of [`PdfError::NoConverter`] for a reader of the API or the console.
const NOT_HERE: &str = "Le PDF n'est pas disponible sur ce serveur (LibreOffice n'y est pas installé) : \
                        téléchargez le document dans un autre format proposé (ODT, HTML ou tableur).";

/// Binary names tried in order, in every PATH directory.
const CONVERTERS: [&str; 2] = ["soffice", "libreoffice"];

const TIMEOUT: Duration = Duration::from_secs(60);

/// Conversions at once in this process: each LibreOffice takes 150 to 300 MB, and a replica
/// runs under a memory limit (1 GiB in the Terraform module).
const CONCURRENT: usize = 2;

/// How long a conversion waits for a free slot before [`PdfError::Busy`].
const QUEUE_WAIT: Duration = Duration::from_secs(60);

static SLOTS: Slots = Slots::new(CONCURRENT);

/// A counting semaphore for blocking threads (conversions run under `spawn_blocking`).
struct Slots {
    max: usize,
    busy: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

/// A taken slot, given back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    const fn new(max: usize) -> Slots {
        Slots { max, busy: std::sync::Mutex::new(0), freed: std::sync::Condvar::new() }
    }

    /// A slot, waiting up to `wait` for one to be given back.
    fn take(&self, wait: Duration) -> Result<Slot<'_>, PdfError> {
        let deadline = Instant::now() + wait;
        let mut busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *busy >= self.max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PdfError::Busy);
            }
            busy = self.freed.wait_timeout(busy, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        *busy += 1;
        Ok(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        self.0.freed.notify_one();
    }
}

/// Renders `doc` as PDF through LibreOffice. Blocks for up to a minute: call it
/// from `tokio::task::spawn_blocking` in async code.
pub fn to_pdf(doc: &Document) -> Result<Vec<u8>, PdfError> {
    to_pdf_as(doc, Typography::French)
}

/// [`to_pdf`] from the ODT set as `typography` says ([`super::to_odt_as`]).
pub fn to_pdf_as(doc: &Document, typography: Typography) -> Result<Vec<u8>, PdfError> {
    to_pdf_with(doc, typography, std::env::var_os("PATH").as_deref(), TIMEOUT)
}

/// Whether a converter is installed (on the PATH), so that PDF is worth offering.
pub fn available() -> bool {
    find_converter(std::env::var_os("PATH").as_deref()).is_some()
}

/// Converts an ODT package (e.g. a stored version of a document) to PDF through LibreOffice.
/// Blocks like [`to_pdf`].
pub fn odt_to_pdf(odt: &[u8]) -> Result<Vec<u8>, PdfError> {
    let converter = find_converter(std::env::var_os("PATH").as_deref()).ok_or(PdfError::NoConverter)?;
    convert(&converter, odt, TIMEOUT)
}

/// [`to_pdf`] with the PATH to search and the timeout given (tests).
fn to_pdf_with(
    doc: &Document,
    typography: Typography,
    path: Option<&OsStr>,
    timeout: Duration,
) -> Result<Vec<u8>, PdfError> {
    let converter = find_converter(path).ok_or(PdfError::NoConverter)?;
    convert(&converter, &to_odt_as(doc, typography), timeout)
}

/// The first converter found in the directories of `path` (a PATH value).
fn find_converter(path: Option<&OsStr>) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = path.map(|path| std::env::split_paths(path).collect()).unwrap_or_default();
    CONVERTERS.iter().find_map(|name| dirs.iter().map(|dir| dir.join(name)).find(|file| is_executable(file)))
}

fn is_executable(file: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        file.is_file()
    }
}

fn convert(converter: &Path, odt: &[u8], timeout: Duration) -> Result<Vec<u8>, PdfError> {
    let _slot = SLOTS.take(QUEUE_WAIT)?;
    let dir = tempfile::Builder::new().prefix("entcp-pdf-").tempdir().map_err(io("répertoire temporaire"))?;
    let input = dir.path().join("document.odt");
    std::fs::write(&input, odt).map_err(io("écriture du fichier ODT"))?;
    // stdout and stderr go to a file, not pipes, so a chatty converter cannot block on a full pipe.
    let log_path = dir.path().join("conversion.log");
    let log = File::create(&log_path).map_err(io("journal de conversion"))?;
    let mut command = Command::new(converter);
    command
        .arg(format!("-env:UserInstallation={}", file_url(&dir.path().join("profile"))))
        .args(["--headless", "--norestore", "--nolockcheck", "--convert-to", "pdf", "--outdir"])
        .arg(dir.path())
        .arg(&input)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("journal de conversion"))?)
        .stderr(log);
    // Its own process group, so that a timeout also stops the soffice.bin it starts.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(io(&format!("lancement de {}", converter.display())))?;

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(io("attente du convertisseur"))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(PdfError::Failed(format!("délai de conversion dépassé ({timeout:?})")));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let output = output.trim();
    if !status.success() {
        return Err(PdfError::Failed(format!("{} a échoué ({status}) : {output}", converter.display())));
    }
    std::fs::read(dir.path().join("document.pdf"))
        .map_err(|_| PdfError::Failed(format!("{} n'a produit aucun PDF : {output}", converter.display())))
}

/// Maps an I/O error to [`PdfError::Failed`], saying what was being done.
fn io(what: &str) -> impl FnOnce(std::io::Error) -> PdfError + '_ {
    move |e| PdfError::Failed(format!("{what} : {e}"))
}

/// Kills the converter and, on Unix, its process group.
fn kill(child: &mut Child) {
    #[cfg(unix)]
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// `file://` URL of an absolute path, percent-encoding every byte that is not plainly safe.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => url.push(char::from(*byte)),
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::super::{sample, to_odt};
    use super::*;

    #[test]
    fn no_converter_on_the_path_is_reported_in_french() {
        let empty = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([empty.path()]).unwrap();
        let error = to_pdf_with(&sample(), Typography::French, Some(&path), TIMEOUT).unwrap_err();
        assert_eq!(error, PdfError::NoConverter);
        assert_eq!(
            error.to_string(),
            "aucun convertisseur PDF : installez LibreOffice (paquet libreoffice-writer-nogui)"
        );
        assert_eq!(to_pdf_with(&sample(), Typography::French, None, TIMEOUT), Err(PdfError::NoConverter));
    }

    #[test]
    fn conversions_beyond_the_slots_wait_then_are_told_to_retry() {
        let slots = Slots::new(2);
        let first = slots.take(Duration::ZERO).unwrap();
        let _second = slots.take(Duration::ZERO).unwrap();
        assert_eq!(slots.take(Duration::from_millis(20)).err(), Some(PdfError::Busy));
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| slots.take(Duration::from_secs(10)).map(|_| ()));
            std::thread::sleep(Duration::from_millis(50));
            drop(first);
            assert_eq!(waiting.join().unwrap(), Ok(()));
        });
        assert_eq!(*slots.busy.lock().unwrap(), 1);
        assert_eq!(PdfError::Busy.to_string(), "trop de conversions PDF en cours : réessayez dans un instant");
    }

    #[test]
    fn file_url_percent_encodes_the_path() {
        assert_eq!(file_url(Path::new("/tmp/a b/é")), "file:///tmp/a%20b/%C3%A9");
    }

    /// A fake converter: a shell script named `name` in a fresh directory, returned as a PATH.
    #[cfg(unix)]
    fn fake_converter(name: &str, script: &str) -> (tempfile::TempDir, std::ffi::OsString) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        (dir, path)
    }

    #[cfg(unix)]
    #[test]
    fn libreoffice_binary_name_is_found_too_and_non_executables_are_not() {
        let (dir, path) = fake_converter("libreoffice", "exit 0");
        assert_eq!(find_converter(Some(&path)), Some(dir.path().join("libreoffice")));
        std::fs::write(dir.path().join("soffice"), "not executable").unwrap();
        assert_eq!(find_converter(Some(&path)), Some(dir.path().join("libreoffice")));
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_converter_gives_its_output() {
        let (_dir, path) = fake_converter("soffice", "echo 'Error: source file could not be loaded' >&2; exit 1");
        match to_pdf_with(&sample(), Typography::French, Some(&path), TIMEOUT) {
            Err(PdfError::Failed(message)) => assert!(message.contains("source file could not be loaded"), "{message}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_converter_that_writes_nothing_fails() {
        let (_dir, path) = fake_converter("soffice", "exit 0");
        let error = to_pdf_with(&sample(), Typography::French, Some(&path), TIMEOUT).unwrap_err();
        assert!(matches!(&error, PdfError::Failed(m) if m.contains("aucun PDF")), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_converter_that_hangs_is_stopped_at_the_timeout() {
        let (_dir, path) = fake_converter("soffice", "exec sleep 30");
        let started = Instant::now();
        let error = to_pdf_with(&sample(), Typography::French, Some(&path), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(&error, PdfError::Failed(m) if m.contains("délai")), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[cfg(unix)]
    #[test]
    fn fake_converter_receives_a_private_profile_and_the_odt() {
        // Copies its last argument (the ODT) to DIR/document.pdf, as soffice names its output.
        let script = r#"for a; do case "$a" in -env:UserInstallation=file:///*) profile=1;; esac; done
[ "$profile" = 1 ] || { echo "no private profile" >&2; exit 2; }
while [ "$1" != "--outdir" ]; do shift; done
cp "$3" "$2/document.pdf""#;
        let (_dir, path) = fake_converter("soffice", script);
        assert_eq!(to_pdf_with(&sample(), Typography::French, Some(&path), TIMEOUT).unwrap(), to_odt(&sample()));
    }

    /// Converts for real when LibreOffice is installed; says so and checks nothing more otherwise.
    #[test]
    fn converts_to_pdf_when_libreoffice_is_installed() {
        if find_converter(std::env::var_os("PATH").as_deref()).is_none() {
            eprintln!("note: LibreOffice (soffice) is not installed; the real PDF conversion was not checked");
            return;
        }
        let pdf = to_pdf(&sample()).unwrap_or_else(|e| panic!("{e}"));
        assert!(pdf.starts_with(b"%PDF"), "not a PDF: {:?}", &pdf[..pdf.len().min(16)]);
    }
}
