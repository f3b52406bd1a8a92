//! Rows that fail loudly: an unknown enum value stored in the database is an
//! error (problem+json 500), never a silent default; and the migration folders of
//! both backends describe the same schema (parity check).

use std::path::Path;

/// The only differences allowed between `migrations/sqlite/` and `migrations/postgres/`:
/// (SQLite word, PostgreSQL word), compared as whole SQL words.
const TYPE_MAP: &[(&str, &str)] = &[("BLOB", "BYTEA")];

/// `sql` with every whole-word PostgreSQL type of [`TYPE_MAP`] replaced by its SQLite twin.
fn to_sqlite_dialect(sql: &str) -> String {
    let mut out = sql.to_string();
    for (sqlite, postgres) in TYPE_MAP {
        let word = regex::Regex::new(&format!(r"\b{postgres}\b")).unwrap();
        out = word.replace_all(&out, *sqlite).into_owned();
    }
    out
}

/// The first line where two migration files differ beyond the type map, if any.
fn drift(sqlite: &str, postgres: &str) -> Option<String> {
    let postgres = to_sqlite_dialect(postgres);
    let (a, b): (Vec<&str>, Vec<&str>) = (sqlite.lines().collect(), postgres.lines().collect());
    (0..a.len().max(b.len())).find_map(|i| {
        let (x, y) = (a.get(i).copied().unwrap_or("<fin>"), b.get(i).copied().unwrap_or("<fin>"));
        (x != y).then(|| format!("line {}: sqlite `{x}` / postgres `{y}`", i + 1))
    })
}

fn sql_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn migration_folders_match_but_for_the_type_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let (sqlite, postgres) = (root.join("sqlite"), root.join("postgres"));
    let names = sql_files(&sqlite);
    assert!(names.len() >= 16, "{names:?}");
    assert_eq!(names, sql_files(&postgres), "same files in both folders");
    for name in &names {
        let a = std::fs::read_to_string(sqlite.join(name)).unwrap();
        let b = std::fs::read_to_string(postgres.join(name)).unwrap();
        assert_eq!(drift(&a, &b), None, "{name} differs between backends");
    }
}

#[test]
fn migration_parity_check_catches_drift() {
    let sqlite = "CREATE TABLE t (\n    id TEXT PRIMARY KEY,\n    content BLOB NOT NULL\n);\n";
    assert_eq!(drift(sqlite, &sqlite.replace("BLOB", "BYTEA")), None, "declared type map");
    let extra_column = sqlite.replace("NOT NULL\n", "NOT NULL,\n    note TEXT\n");
    assert!(drift(sqlite, &extra_column).unwrap().contains("line 3"));
    assert!(drift(sqlite, &sqlite.replace("BLOB", "TEXT")).is_some(), "undeclared type change");
    assert!(drift(sqlite, &sqlite.replace("BLOB", "BYTEAX")).is_some(), "whole words only");
    assert!(drift(sqlite, &format!("{sqlite}CREATE INDEX i ON t (id);\n")).is_some(), "extra statement");
}
