//! The console's static files (neutral and State themes, htmx, the console's own script),
//! embedded at build time from `crates/ent-console/assets/` and served with long cache headers: their names
//! carry the vendored version, and a new release changes [`VERSION`] in every link.

use crate::page::ErrorPage;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Part of every asset link (`/assets/<VERSION>/…`), so that caches never serve an old file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The State theme's DSFR script (an ES module), linked only by that theme.
pub const DSFR_SCRIPT: &str = "dsfr/dsfr.module.min.js";

/// The Subresource Integrity value (`sha384-…`) of the embedded file `name`, computed
/// once per file: the page links the script with it, so that the browser runs only
/// the bytes vendored.
pub fn integrity(name: &str) -> Option<&'static str> {
    static HASHES: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    let hashes = HASHES.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        ASSETS
            .iter()
            .filter(|(name, _)| name.ends_with(".js"))
            .map(|(name, bytes)| {
                let digest = sha2::Sha384::digest(bytes);
                (*name, format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(digest)))
            })
            .collect()
    });
    hashes.iter().find(|(n, _)| *n == name).map(|(_, hash)| hash.as_str())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("woff2") => "font/woff2",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path` (`<version>/<file>`).
pub async fn serve(Path(path): Path<String>) -> Response {
    let file = path.split_once('/').map_or("", |(_, file)| file);
    match ASSETS.iter().find(|(name, _)| *name == file) {
        Some((name, bytes)) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            response
        }
        None => ErrorPage::response(StatusCode::NOT_FOUND, "aucun fichier à cette adresse"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integrity_of_a_script_is_the_sha384_of_its_bytes() {
        use base64::Engine;
        use sha2::Digest;
        let bytes = ASSETS.iter().find(|(n, _)| *n == DSFR_SCRIPT).map(|(_, b)| *b).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes));
        assert_eq!(integrity(DSFR_SCRIPT), Some(format!("sha384-{expected}").as_str()));
        assert_eq!(integrity("neutre.css"), None, "scripts only");
    }

    #[test]
    fn the_themes_and_htmx_are_embedded() {
        for needed in [
            "neutre.css",
            "console.css",
            "htmx.min.js",
            "console.js",
            "dsfr/dsfr.min.css",
            DSFR_SCRIPT,
            "dsfr/fonts/Marianne-Regular.woff2",
        ] {
            assert!(ASSETS.iter().any(|(name, bytes)| *name == needed && !bytes.is_empty()), "{needed}");
        }
        // Every icon the DSFR stylesheet refers to is embedded.
        let css =
            ASSETS.iter().find(|(n, _)| *n == "dsfr/dsfr.min.css").map(|(_, b)| String::from_utf8_lossy(b)).unwrap();
        for reference in
            css.split("url(").skip(1).filter_map(|r| r.split(')').next()).filter(|r| r.starts_with("icons/"))
        {
            let name = format!("dsfr/{reference}");
            assert!(ASSETS.iter().any(|(n, _)| *n == name), "{name}");
        }
    }
}
