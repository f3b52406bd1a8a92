//! The files of the support desk's forms: the form read with its files, the files
//! checked by the support domain (`ent_support::support::attachments`), and an
//! attachment served as a download that can never run in the console's origin.

use crate::multipart::{self, File, Posted, UPLOAD_LIMIT};
use crate::page::PageError;
use axum::body::{to_bytes, Body};
use axum::http::HeaderMap;
use axum::response::Response;
use ent_kernel::error::{FieldError, Problem, ProblemKind};
use ent_support::support::attachments::{self, Attachment, Checked, Upload};

/// The form control files are chosen in.
pub const FILES_FIELD: &str = "pieces";
/// Most files one form may join.
const MAX_FILES: usize = 3;

/// The form posted in `body` (multipart with files, or URL-encoded without).
pub async fn posted(headers: &HeaderMap, body: Body) -> Result<Posted, PageError> {
    let bytes = to_bytes(body, UPLOAD_LIMIT)
        .await
        .map_err(|_| Problem::new(ProblemKind::PayloadTooLarge, "formulaire trop volumineux"))?;
    multipart::parse(multipart::content_type(headers), &bytes)
        .ok_or_else(|| Problem::bad_request("formulaire illisible : rechargez la page puis recommencez").into())
}

/// The files of the form, each checked (name, size, type); every refusal on [`FILES_FIELD`].
pub fn checked(files: Vec<File>) -> Result<Vec<Checked>, Problem> {
    let files: Vec<File> = files.into_iter().filter(|f| f.field == FILES_FIELD).collect();
    if files.len() > MAX_FILES {
        return Err(Problem::invalid_field(FILES_FIELD, format!("{MAX_FILES} fichiers au plus par envoi")));
    }
    let mut errors = Vec::new();
    let mut kept = Vec::new();
    for f in files {
        match attachments::check(FILES_FIELD, Upload { name: f.name, bytes: f.bytes }) {
            Ok(c) => kept.push(c),
            Err(p) => errors.extend(p.errors.into_iter().map(|e| FieldError { field: e.field, message: e.message })),
        }
    }
    if errors.is_empty() {
        Ok(kept)
    } else {
        Err(Problem::invalid(errors))
    }
}

/// The attachment as a download: `attachment` with its name (ASCII and UTF-8),
/// `nosniff`, never cached, and a sandboxing policy (as the API serves it).
pub fn served(a: &Attachment, bytes: Vec<u8>) -> Response {
    attachments::served(a, bytes)
}

/// `1,5 Mio`, `12 Kio`, `80 octets`.
pub fn size_text(size: i64) -> String {
    match size {
        s if s >= 1024 * 1024 => format!("{:.1} Mio", s as f64 / (1024.0 * 1024.0)).replace('.', ","),
        s if s >= 1024 => format!("{} Kio", s / 1024),
        s => format!("{s} octets"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_a_sandboxed_attachment_named_in_both_forms() {
        let a = Attachment {
            id: "a".into(),
            file_name: "relevé \"final\".pdf".into(),
            content_type: "application/pdf".into(),
            size: 3,
            sha256: String::new(),
            visibility: "public".into(),
            uploaded_by: "x".into(),
            uploaded_by_user_id: None,
            created_at: String::new(),
        };
        let r = served(&a, b"%PDF".to_vec());
        let h = r.headers();
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"relev---final-.pdf\"; filename*=UTF-8''relev%C3%A9%20%22final%22.pdf"
        );
        assert_eq!(
            (h["x-content-type-options"].to_str().unwrap(), h["content-security-policy"].to_str().unwrap()),
            ("nosniff", "sandbox; default-src 'none'")
        );
        assert_eq!(
            (size_text(80), size_text(12 * 1024 + 5), size_text(1536 * 1024)),
            ("80 octets".into(), "12 Kio".into(), "1,5 Mio".into())
        );
        let many =
            (0..4).map(|_| File { field: FILES_FIELD.into(), name: "a.txt".into(), bytes: b"x".to_vec() }).collect();
        assert!(checked(many).is_err());
        let bad = vec![File { field: FILES_FIELD.into(), name: "a.pdf".into(), bytes: b"<html>".to_vec() }];
        assert_eq!(checked(bad).err().unwrap().errors[0].field, FILES_FIELD);
    }
}
