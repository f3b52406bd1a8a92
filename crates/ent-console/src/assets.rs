//! The console's static files (neutral and State themes, htmx), embedded at build time
//! from `crates/ent-console/assets/` and served with long cache headers: their names
//! carry the vendored version, and a new release changes [`VERSION`] in every link.

use crate::page::ErrorPage;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Part of every asset link (`/assets/<VERSION>/…`), so that caches never serve an old file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    fn the_themes_and_htmx_are_embedded() {
        for needed in
            ["neutre.css", "console.css", "htmx.min.js", "dsfr/dsfr.min.css", "dsfr/fonts/Marianne-Regular.woff2"]
        {
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
