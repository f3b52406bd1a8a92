//! Forms that carry files (`multipart/form-data`, RFC 7578): the fields as
//! [`Fields`] and the files chosen, read from a body already in memory (the guard
//! buffers it to check the CSRF token). A form posted without files
//! (`application/x-www-form-urlencoded`) reads the same, with no file.

use crate::forms::Fields;
use axum::http::{header, HeaderMap};

/// Largest form with files a console page accepts (three files of 5 MiB and the fields).
pub const UPLOAD_LIMIT: usize = 16 * 1024 * 1024;

/// A file of a form: the control's name, the file name the browser gave, the bytes.
pub struct File {
    pub field: String,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A posted form: its fields and its files (controls left empty are not listed).
#[derive(Default)]
pub struct Posted {
    pub fields: Fields,
    pub files: Vec<File>,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty()).then(|| v.to_string())
    })
}

/// The content type of a request.
pub fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The form in `body`, multipart or URL-encoded; `None` when it does not parse.
pub fn parse(content_type: &str, body: &[u8]) -> Option<Posted> {
    match boundary(content_type) {
        Some(b) => parse_multipart(&b, body),
        None => Some(Posted { fields: serde_urlencoded::from_bytes(body).ok()?, files: Vec::new() }),
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn parse_multipart(boundary: &str, body: &[u8]) -> Option<Posted> {
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    // The first delimiter may start the body (no CRLF before it).
    let body = [b"\r\n".as_slice(), body].concat();
    let mut at = find(&body, &delimiter, 0)? + delimiter.len();
    let mut posted = Posted::default();
    loop {
        if body.get(at..at + 2)? == b"--" {
            return Some(posted);
        }
        let headers_start = find(&body, b"\r\n", at)? + 2;
        let headers_end = find(&body, b"\r\n\r\n", headers_start)?;
        let content_start = headers_end + 4;
        let content_end = find(&body, &delimiter, content_start)?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end]).ok()?;
        let (name, file_name) = disposition(headers)?;
        let content = &body[content_start..content_end];
        match file_name {
            Some(file_name) if !(file_name.is_empty() && content.is_empty()) => {
                posted.files.push(File { field: name, name: file_name, bytes: content.to_vec() });
            }
            Some(_) => {}
            None => posted.fields.0.push((name, String::from_utf8_lossy(content).into_owned())),
        }
        at = content_end + delimiter.len();
    }
}

/// The `name` and `filename` of a part's `Content-Disposition: form-data`.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let (_, value) = line.split_once(':')?;
    let mut name = None;
    let mut file_name = None;
    for param in split_params(value) {
        let Some((k, v)) = param.split_once('=') else { continue };
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).replace("\\\"", "\"");
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => file_name = Some(v),
            _ => {}
        }
    }
    Some((name?, file_name))
}

/// `form-data; name="a;b"; filename="x"` split on the semicolons outside quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut params = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            ';' if !quoted => params.push(String::new()),
            _ => {
                if c == '"' && !escaped {
                    quoted = !quoted;
                }
                escaped = c == '\\' && !escaped;
                params.last_mut().expect("never empty").push(c);
            }
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_form_gives_its_fields_and_its_chosen_files() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nt0k\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"pieces\"; filename=\"a;\\\"b\\\".txt\"\r\n\
            Content-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"pieces\"; filename=\"\"\r\n\
            Content-Type: application/octet-stream\r\n\r\n\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"sujet\"\r\n\r\nÉcran noir\r\n--XyZ--\r\n";
        let posted = parse("multipart/form-data; boundary=XyZ", body.as_bytes()).unwrap();
        assert_eq!((posted.fields.get("_csrf"), posted.fields.get("sujet")), ("t0k", "Écran noir"));
        assert_eq!(posted.files.len(), 1);
        assert_eq!(posted.files[0].name, "a;\"b\".txt");
        assert_eq!(posted.files[0].bytes, b"line 1\r\nline 2");
        let plain = parse("application/x-www-form-urlencoded", b"a=1&_csrf=x").unwrap();
        assert_eq!((plain.fields.get("_csrf"), plain.files.len()), ("x", 0));
        assert!(parse("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken").is_none());
        assert_eq!(boundary("multipart/form-data; boundary=\"a b\""), Some("a b".into()));
    }
}
