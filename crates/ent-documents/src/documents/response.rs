//! The one way a document (HTML, CSV, ODS, ODT, PDF, JSON export) leaves the API:
//! never sniffed into another type, never cached, HTML unable to run scripts or
//! load anything, and downloaded as a file rather than shown in the API's origin.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// No script, no external resource, no framing: the document template only needs
/// its inline style sheet and inline images.
pub const DOCUMENT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A document response named `file_name`: `attachment` except for JSON (read by programs).
pub fn document(bytes: impl Into<Vec<u8>>, content_type: &str, file_name: &str) -> Response {
    let mut response = bytes.into().into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("media types are ASCII"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if content_type.starts_with("text/html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCUMENT_CSP));
    }
    let disposition = if content_type.starts_with("application/json") { "inline" } else { "attachment" };
    let value = format!("{disposition}; filename=\"{}\"", safe_file_name(file_name));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&value).expect("sanitised file name"));
    response
}

/// A [`document`] always offered as a download, JSON included (a console's export link).
pub fn attachment(bytes: impl Into<Vec<u8>>, content_type: &str, file_name: &str) -> Response {
    let mut response = document(bytes, content_type, file_name);
    let value = format!("attachment; filename=\"{}\"", safe_file_name(file_name));
    response.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&value).expect("sanitised"));
    response
}

/// ASCII letters, digits, `.`, `_` and `-` only; anything else becomes `-`.
pub fn safe_file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_document_is_a_sandboxed_uncached_attachment() {
        let r = document("<p>x</p>", "text/html; charset=utf-8", "registre \"94\"\r\n.html");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
        assert_eq!(h["content-disposition"], "attachment; filename=\"registre--94---.html\"");
        let r = document("a;b", "text/csv; charset=utf-8", "a.csv");
        assert!(r.headers().get("content-security-policy").is_none());
        assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"a.csv\"");
    }
}
