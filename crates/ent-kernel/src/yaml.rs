//! Every YAML read and write of the control plane (serde-saphyr, the parser kube-rs uses too),
//! bounded: a document over [`MAX_BYTES`] or nested deeper than [`MAX_DEPTH`] is refused before
//! any work proportional to its shape, with a French message. Errors name the line and column.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest YAML text read (configuration, catalog, models, policies, `apply -f` files).
pub const MAX_BYTES: usize = 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted (the real files stay under 10).
pub const MAX_DEPTH: usize = 64;

/// A YAML text that could not be read or a value that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

/// One document of `text` as a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    check_size(text)?;
    serde_saphyr::from_str_with_options(text, options()).map_err(read_error)
}

/// Every document of `text` (separated by `---`), each as a `T`.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, Error> {
    check_size(text)?;
    serde_saphyr::from_multiple_with_options(text, options()).map_err(read_error)
}

/// `value` as a YAML document.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_saphyr::to_string(value).map_err(|e| Error(format!("écriture YAML impossible : {e}")))
}

/// What `load` makes of the shipped files alone (no overlay folder), made once per process and
/// cloned after: they are embedded in the binary, so the result is the same every time. Every
/// application state (each test builds one or more) would otherwise parse and validate them
/// again. A failure is not kept: the next call tries again and returns it again.
pub fn shipped_once<T: Clone>(
    cell: &'static std::sync::OnceLock<T>,
    load: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if let Some(loaded) = cell.get() {
        return Ok(loaded.clone());
    }
    let loaded = load()?;
    Ok(cell.get_or_init(|| loaded).clone())
}

/// The shipped files (name, text) then the `.yaml`/`.yml` files of the overlay folder named by
/// the configuration key `key`, sorted by name: (name as errors show it, text). A configured
/// folder that is missing or unreadable is an error, as is a file over [`MAX_BYTES`]: a typo in
/// the configuration must not silently drop the local files.
pub fn shipped_then_overlay(
    shipped: &[(&str, &str)],
    key: &str,
    overlay: Option<&Path>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut files: Vec<(String, String)> = shipped.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
    let Some(dir) = overlay else { return Ok(files) };
    let unreadable = |e: std::io::Error| anyhow::anyhow!("{key} : dossier {} illisible : {e}", dir.display());
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(unreadable)?;
    paths.retain(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"));
    paths.sort();
    for path in paths {
        files.push((path.display().to_string(), read_file(&path)?));
    }
    Ok(files)
}

/// The text of a YAML file, refused before reading when it is over [`MAX_BYTES`].
pub fn read_file(path: &Path) -> anyhow::Result<String> {
    let unreadable = |e: std::io::Error| anyhow::anyhow!("lecture de {} impossible : {e}", path.display());
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_BYTES as u64 {
        anyhow::bail!("{} : document YAML trop volumineux : {size} octets, {MAX_BYTES} au plus", path.display());
    }
    std::fs::read_to_string(path).map_err(unreadable)
}

fn check_size(text: &str) -> Result<(), Error> {
    if text.len() > MAX_BYTES {
        return Err(Error(format!("document YAML trop volumineux : {} octets, {} au plus", text.len(), MAX_BYTES)));
    }
    Ok(())
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The parser's message in French with its line and column; a breached limit too.
fn read_error(e: serde_saphyr::Error) -> Error {
    let e = e.without_snippet();
    let message = e.to_string();
    // Block nesting breaches the depth budget; flow nesting (`[[[…`) stops the parser first.
    let too_deep =
        matches!(e, serde_saphyr::Error::Budget { breach: serde_saphyr::budget::BudgetBreach::Depth { .. }, .. })
            || message.contains("recursion limit exceeded");
    if too_deep {
        let at = e.location().map(|l| format!(" (ligne {}, colonne {})", l.line(), l.column())).unwrap_or_default();
        return Error(format!("document YAML trop imbriqué : {MAX_DEPTH} niveaux au plus{at}"));
    }
    let at = e.location().map(|l| format!(" (ligne {}, colonne {})", l.line(), l.column())).unwrap_or_default();
    // A breach is also reported wrapped in the context of the alias that caused it.
    if matches!(e, serde_saphyr::Error::Budget { .. }) || message.contains("budget breached") {
        return Error(format!("document YAML hors limites (trop de nœuds, d'alias ou de texte){at}"));
    }
    Error(crate::validate::serde_in_french(&duplicate_key_in_french(&message)))
}

/// The parser's duplicate-key message, which names a setting of the library, as a reader of
/// the file needs it: which key is twice.
fn duplicate_key_in_french(message: &str) -> String {
    const DUPLICATE: &str = "duplicate mapping key: ";
    const ADVICE: &str = ", set DuplicateKeyPolicy in Options if acceptable";
    match message.split_once(DUPLICATE) {
        Some((before, rest)) => {
            let (key, after) = rest.split_once(ADVICE).unwrap_or((rest, ""));
            format!("{before}clé « {key} » en double{after}")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        count: u32,
    }

    #[test]
    fn a_duplicate_key_and_an_alias_bomb_are_said_in_french() {
        let err = from_str::<Doc>("name: a\ncount: 1\nname: b\n").unwrap_err().to_string();
        assert!(err.contains("clé « name » en double") && !err.contains("DuplicateKeyPolicy"), "{err}");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for n in 1..12 {
            bomb.push_str(&format!("b{n}: &b{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n", prev = if n == 1 { "a".to_string() } else { format!("b{}", n - 1) }));
        }
        let err = from_str::<serde_json::Value>(&bomb).unwrap_err().to_string();
        assert!(err.contains("hors limites") && !err.contains("budget"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = from_str::<Doc>("name: a\ncount: many\n").unwrap_err().to_string();
        assert!(err.contains("ligne 2"), "{err}");
        let err = from_str::<Doc>("name: a\ncount: 1\nsurprise: 2\n").unwrap_err().to_string();
        assert!(err.contains("ligne 3") && err.contains("champ inconnu « surprise »"), "{err}");
        let err = from_str::<Doc>("name: a\n").unwrap_err().to_string();
        assert!(err.contains("champ obligatoire absent : « count »"), "{err}");
    }

    #[test]
    fn deep_and_large_documents_are_refused() {
        let deep = format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000));
        let err = from_str::<serde_json::Value>(&deep).unwrap_err().to_string();
        assert!(err.contains("trop imbriqué"), "{err}");
        let mut block = String::new();
        for level in 0..100 {
            block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
        }
        block.push_str(&format!("{}v: 1\n", "  ".repeat(100)));
        let err = from_str::<serde_json::Value>(&block).unwrap_err().to_string();
        assert!(err.contains("trop imbriqué"), "{err}");
        let large = format!("name: \"{}\"\ncount: 1\n", "x".repeat(MAX_BYTES));
        let err = from_str::<Doc>(&large).unwrap_err().to_string();
        assert!(err.contains("trop volumineux"), "{err}");
    }

    #[test]
    fn the_shipped_files_are_loaded_once_and_a_failure_is_not_kept() {
        static LOADED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        assert!(shipped_once(&LOADED, || anyhow::bail!("illisible")).is_err());
        assert_eq!(shipped_once(&LOADED, || Ok(1)).unwrap(), 1);
        assert_eq!(shipped_once(&LOADED, || -> anyhow::Result<u32> { panic!("loaded twice") }).unwrap(), 1);
    }

    #[test]
    fn the_overlay_follows_the_shipped_files_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("b.yaml", "b"), ("a.yml", "a"), ("notes.txt", "no")] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let files = shipped_then_overlay(&[("shipped.yaml", "s")], "x_dir", Some(dir.path())).unwrap();
        let texts: Vec<_> = files.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["s", "a", "b"]);
        assert!(files[1].0.ends_with("a.yml"), "{files:?}");
        assert_eq!(shipped_then_overlay(&[("shipped.yaml", "s")], "x_dir", None).unwrap().len(), 1);
    }

    #[test]
    fn a_missing_overlay_folder_or_a_large_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = shipped_then_overlay(&[], "catalog_dir", Some(&missing)).unwrap_err().to_string();
        assert!(err.starts_with("catalog_dir : dossier") && err.contains("absent"), "{err}");
        std::fs::write(dir.path().join("big.yaml"), "x".repeat(MAX_BYTES + 1)).unwrap();
        let err = shipped_then_overlay(&[], "catalog_dir", Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("big.yaml") && err.contains("trop volumineux"), "{err}");
    }

    #[test]
    fn several_documents_are_read_in_order() {
        let docs: Vec<Doc> = documents("name: a\ncount: 1\n---\nname: b\ncount: 2\n").unwrap();
        assert_eq!(docs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }
}
