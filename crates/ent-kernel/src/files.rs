//! Files the service writes under its data folder (the SQLite database, `.eml`
//! files, manifests with service passwords) hold secrets or personal data: they
//! are created readable by the service's user only, files 0600 and folders 0700,
//! whatever the umask.

use std::io::Write;
use std::path::Path;

#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents as 0700 folders (existing ones are left as they are).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Writes `bytes` to a new (or truncated) 0600 file.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_options().create(true).truncate(true).open(path)?;
    #[cfg(unix)]
    restrict(&file)?;
    file.write_all(bytes)
}

/// Creates a new 0600 file (an error if `path` exists), to be written in pieces.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    private_options().create_new(true).open(path)
}

/// Creates an empty 0600 file unless `path` exists.
pub fn touch_private(path: &Path) -> std::io::Result<()> {
    match private_options().create_new(true).open(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// A file created earlier with a wider mode is narrowed before it is rewritten.
#[cfg(unix)]
fn restrict(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("the file exists").permissions().mode() & 0o777
    }

    #[test]
    fn folders_are_0700_and_files_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data").join("mail");
        private_dir(&dir).unwrap();
        assert_eq!((mode(&root.path().join("data")), mode(&dir)), (0o700, 0o700));
        let file = dir.join("a.eml");
        write_private(&file, b"x").unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"y").unwrap();
        assert_eq!(mode(&file), 0o600);
        let db = dir.join("entcp.db");
        touch_private(&db).unwrap();
        touch_private(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let streamed = dir.join("b.eml");
        create_private(&streamed).unwrap().write_all(b"z").unwrap();
        assert_eq!(mode(&streamed), 0o600);
        assert!(create_private(&streamed).is_err(), "never over an existing file");
    }
}
