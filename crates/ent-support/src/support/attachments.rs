//! Files joined to a ticket, on opening or with a reply: at most [`MAX_BYTES`], of a
//! type of the allow-list recognised by its first bytes (the name's extension must
//! agree), the name cleaned of any path and control character, stored in the
//! database. Each carries the visibility of the message it came with, so a viewer
//! sees the attachments of the entries they see (the requester the public ones, the
//! vendor none of the internal notes'). Every upload is audited.

use super::tickets::{
    find, hides_requester, load_for_update, pseudonym, refuse_public_above_n1, writing_level, Ctx, Ticket, Written,
};
use super::{Level, Viewer};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use ent_documents::documents::{self, sha256_hex};
use ent_kernel::error::{conflict_unless, Problem, ProblemKind};
use ent_kernel::store::{new_id, timestamp, Tx};
use ent_kernel::validate;
use ent_platform::audit;
use ent_platform::identity::authz::forbidden;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

/// Largest attachment accepted (5 MiB).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// Most attachments of one visibility (public, internal, support) on one ticket.
pub const MAX_PER_TICKET: i64 = 20;

/// The accepted kinds: extensions, media type, and what the first bytes must be.
const KINDS: &[(&[&str], &str, Magic)] = &[
    (&["pdf"], "application/pdf", Magic::Prefix(b"%PDF-")),
    (&["png"], "image/png", Magic::Prefix(b"\x89PNG\r\n\x1a\n")),
    (&["jpg", "jpeg"], "image/jpeg", Magic::Prefix(b"\xFF\xD8\xFF")),
    (&["txt"], "text/plain; charset=utf-8", Magic::Text),
    (&["csv"], "text/csv; charset=utf-8", Magic::Text),
    (&["odt"], "application/vnd.oasis.opendocument.text", Magic::Zip(b"application/vnd.oasis.opendocument.text")),
    (
        &["ods"],
        "application/vnd.oasis.opendocument.spreadsheet",
        Magic::Zip(b"application/vnd.oasis.opendocument.spreadsheet"),
    ),
    (&["docx"], "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Magic::Zip(b"word/")),
    (&["xlsx"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Magic::Zip(b"xl/")),
];

/// What a file's bytes must show.
#[derive(Clone, Copy)]
enum Magic {
    /// Starts with these bytes.
    Prefix(&'static [u8]),
    /// UTF-8 text without control characters other than tab and line ends.
    Text,
    /// A ZIP archive naming this entry (or holding this `mimetype`) near its start.
    Zip(&'static [u8]),
}

impl Magic {
    fn matches(self, bytes: &[u8]) -> bool {
        match self {
            Magic::Prefix(prefix) => bytes.starts_with(prefix),
            Magic::Text => std::str::from_utf8(bytes)
                .is_ok_and(|s| s.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))),
            Magic::Zip(marker) => {
                bytes.starts_with(b"PK\x03\x04")
                    && bytes[..bytes.len().min(64 * 1024)].windows(marker.len()).any(|w| w == marker)
            }
        }
    }
}

/// The media types an attachment is served with, one per accepted kind.
pub fn content_types() -> Vec<&'static str> {
    KINDS.iter().map(|(_, content_type, _)| *content_type).collect()
}

/// A downloaded file: no script, no plug-in, no same-origin access even if a browser
/// were to render it.
const SANDBOX: &str = "sandbox; default-src 'none'";

/// `rapport été.pdf` → `rapport%20%C3%A9t%C3%A9.pdf` (RFC 8187 `filename*`).
fn percent_encoded(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The attachment as a download: `attachment` with its name (ASCII and UTF-8),
/// `nosniff`, never cached, and a sandboxing policy.
pub fn served(a: &Attachment, bytes: Vec<u8>) -> Response {
    let mut response = documents::response::document(bytes, &a.content_type, &a.file_name);
    let ascii = documents::response::safe_file_name(&a.file_name);
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", percent_encoded(&a.file_name));
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SANDBOX));
    response
}

/// The accepted extensions, for the forms' hint and the refusals.
pub const ACCEPTED: &str = "PDF, PNG, JPEG, TXT, CSV, ODT, ODS, DOCX, XLSX";

/// A file as uploaded: its name as the browser or the client gave it, and its bytes.
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A file checked against the limits: its cleaned name and its media type.
pub struct Checked {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// An attachment as listed (without its content).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct Attachment {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// `public`, `support` or `internal`: the visibility of the message it came with.
    pub visibility: String,
    /// Who joined it (pseudonymised for the vendor when it is the requester).
    pub uploaded_by: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub uploaded_by_user_id: Option<String>,
    pub created_at: String,
}

/// `C:\fakepath\rapport\u{7}.pdf` → `rapport.pdf`: the last part of any path, without
/// control characters (bidirectional ones included), at most 120 characters; « piece-jointe » when nothing is left.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let kept: String = last.chars().filter(|c| !validate::line_forbids(*c)).collect();
    let kept = kept.trim().trim_start_matches('.').trim();
    let mut name: String = kept.chars().take(120).collect();
    if name.is_empty() {
        name = "piece-jointe".into();
    }
    name
}

/// The file checked: not empty, at most [`MAX_BYTES`], an accepted extension whose
/// kind the first bytes confirm. The refusals name field `field`.
pub fn check(field: &str, upload: Upload) -> Result<Checked, Problem> {
    let name = clean_name(&upload.name);
    let refuse = |detail: String| Problem::invalid_field(field, detail);
    if upload.bytes.is_empty() {
        return Err(refuse(format!("« {name} » est vide")));
    }
    if upload.bytes.len() > MAX_BYTES {
        return Err(refuse(format!("« {name} » dépasse 5 Mio")));
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let Some((_, content_type, magic)) = KINDS.iter().find(|(exts, _, _)| exts.contains(&extension.as_str())) else {
        return Err(refuse(format!("« {name} » : type de fichier non accepté (acceptés : {ACCEPTED})")));
    };
    if !magic.matches(&upload.bytes) {
        return Err(refuse(format!("« {name} » : le contenu ne correspond pas à un fichier .{extension}")));
    }
    Ok(Checked { name, content_type, bytes: upload.bytes })
}

/// The visibility an attachment sent by `viewer`, writing at `level` ([`writing_level`]), with a
/// `public` (or internal) message gets: the comment's ([`Written`]), so a file written at N3 (the
/// vendor's, or an administrator's or N2's acting there) is the support's note like the note
/// itself; a requester sends public files only.
pub(super) fn visibility_of(viewer: Viewer, level: Option<Level>, public: bool) -> Result<&'static str, Problem> {
    match (viewer, public) {
        (Viewer::Requester, false) => Err(forbidden("un demandeur ne joint que des fichiers visibles du support")),
        (_, true) => Ok("public"),
        (_, false) if Written::of(viewer, level, false) == Written::SupportNote => Ok("support"),
        (_, false) => Ok("internal"),
    }
}

/// Joins `files` to ticket `id` (id or reference) as a message `public` or not would
/// be seen; refused on a closed ticket and beyond [`MAX_PER_TICKET`]. Audited.
pub async fn attach(ctx: &Ctx<'_>, id: &str, public: bool, files: Vec<Checked>) -> Result<Vec<Attachment>, Problem> {
    let (t, viewer) = find(&ctx.state.store, ctx.actor, id).await?;
    let levels = super::levels_of(&ctx.state.store, ctx.actor, &t).await?;
    let level = writing_level(&levels, &t).filter(|_| viewer != Viewer::Requester);
    let visibility = visibility_of(viewer, level, public)?;
    if let Some(level) = level.filter(|_| public) {
        refuse_public_above_n1(&t, level)?;
    }
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let store = &ctx.state.store;
    let mut tx = store.begin_write().await?;
    let t = load_for_update(&mut tx, store.backend(), &t.id)
        .await?
        .ok_or_else(|| Problem::not_found("ticket introuvable"))?;
    conflict_unless(t.status != super::Status::Closed, || {
        format!("le ticket {} est clos : ouvrez-en un nouveau", t.reference)
    })?;
    // A file the actor already put on the ticket, same name, bytes and visibility, is a retry
    // whose answer was lost: it is answered again, not stored twice.
    let (mut answered, mut fresh) = (Vec::new(), Vec::new());
    for file in files {
        match already_attached(&mut tx, ctx, &t, visibility, &file).await? {
            Some(a) => answered.push(a),
            None => fresh.push(file),
        }
    }
    if let Some(refusal) = room_for(&mut tx, &t, visibility, fresh.len()).await? {
        return Err(Problem::conflict(refusal));
    }
    answered.extend(insert(&mut tx, ctx, &t, visibility, fresh).await?);
    tx.commit().await?;
    Ok(answered)
}

/// The attachment of ticket `t` the actor stored earlier as `file` with `visibility`.
async fn already_attached(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    t: &Ticket,
    visibility: &str,
    file: &Checked,
) -> Result<Option<Attachment>, Problem> {
    let (who, by) = ctx.actor.recorded_as("uploaded_by_user_id", "uploaded_by");
    let sql = format!(
        "SELECT {LISTED} FROM support_attachments WHERE ticket_id = $1 AND visibility = $2 AND file_name = $3 \
         AND sha256 = $4 AND {who} = $5 ORDER BY created_at, id LIMIT 1"
    );
    Ok(sqlx::query_as(&sql)
        .bind(&t.id)
        .bind(visibility)
        .bind(&file.name)
        .bind(sha256_hex(&file.bytes))
        .bind(by)
        .fetch_optional(&mut **tx)
        .await?)
}

/// The refusal, in words, of `n` more files of `visibility` on ticket `t` when they would pass
/// [`MAX_PER_TICKET`]; `None` when there is room. The limit counts the files of that
/// visibility only: those whom the new files are for see every one it counts, so a requester
/// refused learns nothing of the support's files (the internal notes' count apart). Read in the
/// transaction that writes them, the ticket locked.
pub(super) async fn room_for(tx: &mut Tx, t: &Ticket, visibility: &str, n: usize) -> Result<Option<String>, Problem> {
    if n == 0 {
        return Ok(None);
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM support_attachments WHERE ticket_id = $1 AND visibility = $2")
            .bind(&t.id)
            .bind(visibility)
            .fetch_one(&mut **tx)
            .await?;
    let which = match visibility {
        "public" => "visible(s) du demandeur",
        "support" => "des notes au support",
        _ => "des notes internes",
    };
    Ok((stored + n as i64 > MAX_PER_TICKET).then(|| {
        format!("le ticket {} a déjà {stored} pièce(s) jointe(s) {which} : {MAX_PER_TICKET} au plus", t.reference)
    }))
}

/// Writes `files` on ticket `t` with `visibility`, audited, in the caller's
/// transaction: they are committed with what the caller writes, or not at all.
pub(super) async fn insert(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    t: &Ticket,
    visibility: &str,
    files: Vec<Checked>,
) -> Result<Vec<Attachment>, Problem> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let mut added = Vec::new();
    for file in files {
        let a = Attachment {
            id: new_id(),
            file_name: file.name,
            content_type: file.content_type.to_string(),
            size: file.bytes.len() as i64,
            sha256: sha256_hex(&file.bytes),
            visibility: visibility.to_string(),
            uploaded_by: ctx.actor.name.clone(),
            uploaded_by_user_id: ctx.actor.user_id.clone(),
            created_at: timestamp(ctx.now),
        };
        sqlx::query(
            "INSERT INTO support_attachments (id, ticket_id, visibility, file_name, content_type, size, sha256, content, \
             uploaded_by, uploaded_by_user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&a.id)
        .bind(&t.id)
        .bind(&a.visibility)
        .bind(&a.file_name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(file.bytes)
        .bind(&a.uploaded_by)
        .bind(&ctx.actor.user_id)
        .bind(&a.created_at)
        .execute(&mut **tx)
        .await?;
        added.push(a);
    }
    let summary = json!({
        "visibility": visibility,
        "files": added.iter().map(|a| json!({ "id": a.id, "name": a.file_name, "size": a.size, "sha256": a.sha256 })).collect::<Vec<_>>(),
    });
    audit::record(tx, ctx.state.store.backend(), ctx.actor, "support.tickets.attach", t, summary, ctx.now).await?;
    Ok(added)
}

const LISTED: &str =
    "id, file_name, content_type, size, sha256, visibility, uploaded_by, uploaded_by_user_id, created_at";

/// The attachment as `viewer` may see it: the requester pseudonymised as in the history.
fn seen_by(viewer: Viewer, t: &Ticket, mut a: Attachment) -> Option<Attachment> {
    if !viewer.sees(&a.visibility) {
        return None;
    }
    if hides_requester(viewer, t) && a.uploaded_by_user_id.as_deref() == Some(t.requester_id.as_str()) {
        a.uploaded_by = pseudonym(t);
    }
    Some(a)
}

/// The attachments of ticket `id` the actor may see, oldest first (404 when the
/// ticket is not theirs to see).
pub async fn list(ctx: &Ctx<'_>, id: &str) -> Result<Vec<Attachment>, Problem> {
    let (t, viewer) = find(&ctx.state.store, ctx.actor, id).await?;
    let sql = format!("SELECT {LISTED} FROM support_attachments WHERE ticket_id = $1 ORDER BY created_at, id");
    let all: Vec<Attachment> = sqlx::query_as(&sql).bind(&t.id).fetch_all(ctx.state.store.pool()).await?;
    Ok(all.into_iter().filter_map(|a| seen_by(viewer, &t, a)).collect())
}

/// One attachment of ticket `id` with its content; 404 when the actor may not see
/// the ticket or this attachment (an internal note's for the vendor, say).
pub async fn read(ctx: &Ctx<'_>, id: &str, attachment: &str) -> Result<(Attachment, Vec<u8>), Problem> {
    let (t, viewer) = find(&ctx.state.store, ctx.actor, id).await?;
    let sql = format!("SELECT {LISTED} FROM support_attachments WHERE ticket_id = $1 AND id = $2");
    let not_found = || Problem::new(ProblemKind::NotFound, format!("aucune pièce jointe « {attachment} »"));
    let found = sqlx::query_as::<_, Attachment>(&sql)
        .bind(&t.id)
        .bind(attachment)
        .fetch_optional(ctx.state.store.pool())
        .await?
        .and_then(|a| seen_by(viewer, &t, a))
        .ok_or_else(not_found)?;
    let content: Vec<u8> = sqlx::query_scalar("SELECT content FROM support_attachments WHERE id = $1")
        .bind(&found.id)
        .fetch_one(ctx.state.store.pool())
        .await?;
    Ok((found, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(name: &str, bytes: &[u8]) -> Result<Checked, Problem> {
        check("fichier", Upload { name: name.into(), bytes: bytes.to_vec() })
    }

    #[test]
    fn names_lose_their_path_and_control_characters() {
        assert_eq!(clean_name("C:\\fakepath\\rapport\u{7}.pdf"), "rapport.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\r\nb.txt"), "ab.txt");
        assert_eq!(clean_name("photo\u{202e}gpj.pdf"), "photogpj.pdf");
        assert_eq!(clean_name("/"), "piece-jointe");
        assert_eq!(clean_name("..."), "piece-jointe");
    }

    #[test]
    fn a_file_is_accepted_by_its_first_bytes_not_only_its_name() {
        assert_eq!(upload("capture.PNG", b"\x89PNG\r\n\x1a\nrest").unwrap().content_type, "image/png");
        assert_eq!(upload("note.txt", "été\n\tok".as_bytes()).unwrap().content_type, "text/plain; charset=utf-8");
        assert!(upload("x.pdf", b"%PDF-1.7").is_ok());
        let odt = [b"PK\x03\x04".as_slice(), b"....mimetypeapplication/vnd.oasis.opendocument.text"].concat();
        assert!(upload("x.odt", &odt).is_ok());
        assert!(upload("x.ods", &odt).is_err());
        // An HTML page renamed .pdf, a script renamed .txt, an executable, an empty file.
        assert!(upload("x.pdf", b"<html><script>alert(1)</script>").is_err());
        assert!(upload("x.txt", b"MZ\x90\x00\x03").is_err());
        assert!(upload("x.exe", b"%PDF-1.7").is_err());
        assert!(upload("x.html", b"<p>").is_err());
        assert!(upload("x.pdf", b"").is_err());
        assert!(upload("x.pdf", &vec![b'%'; MAX_BYTES + 1]).is_err());
    }

    #[test]
    fn a_file_with_a_note_is_seen_as_the_note_is_whoever_writes_at_n3() {
        // An administrator or an N1/N2 acting at N3 (`Staff`) writes the support's note, as the vendor does.
        for viewer in [Viewer::Staff, Viewer::Vendor] {
            assert_eq!(visibility_of(viewer, Some(Level::N3), false).unwrap(), "support");
            assert_eq!(visibility_of(viewer, Some(Level::N3), true).unwrap(), "public");
        }
        assert_eq!(visibility_of(Viewer::Staff, Some(Level::N2), false).unwrap(), "internal");
        assert_eq!(visibility_of(Viewer::Staff, Some(Level::N1), false).unwrap(), "internal");
        // Without a writing level, a non-public file stays internal, never public.
        assert_eq!(visibility_of(Viewer::Staff, None, false).unwrap(), "internal");
        assert_eq!(visibility_of(Viewer::Requester, None, true).unwrap(), "public");
        assert!(visibility_of(Viewer::Requester, None, false).is_err());
    }
}
