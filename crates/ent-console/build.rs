//! Embeds every file of `assets/` (but the vendoring script): writes the table
//! `ASSETS: &[(path, bytes)]` of `include_bytes!` into `OUT_DIR`.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("assets folder").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut table = String::from("pub(crate) const ASSETS: &[(&str, &[u8])] = &[\n");
    for file in files {
        let name = file.strip_prefix(&root).expect("under assets").to_string_lossy().replace('\\', "/");
        if name == "vendor.sh" || name.ends_with(".md") {
            continue;
        }
        table.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", file.display().to_string()));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    std::fs::write(out, table).expect("write the assets table");
}
