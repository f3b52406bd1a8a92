//! The document as submitted for signature, frozen: at each submission (and each
//! edit in signature) the body is rendered once and its bytes stored, HTML, ODT and
//! PDF when a converter exists, with the document model it came from. Every later
//! read serves these bytes; the fingerprint signatures bind is the SHA-256 of the
//! stored HTML file, so `sha256sum` of the download gives it back.

use super::Convention;
use chrono::{DateTime, Utc};
use ent_documents::documents::{self, Document, Typography, ODT_MIME};
use ent_kernel::error::Problem;
use ent_kernel::store::{timestamp, Tx};
use ent_platform::catalog::Catalog;
use ent_platform::identity::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::collections::BTreeMap;

/// The formats a party downloads, in the order they are listed.
pub const FORMATS: [&str; 3] = ["html", "odt", "pdf"];

/// The document model a frozen version is rebuilt from (not a download).
const MODEL: &str = "json";

/// One stored file of a frozen version (its bytes are read apart).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct FrozenFile {
    /// 1 for the first submission, then one more per edit in signature or resubmission.
    pub version_no: i64,
    /// `html`, `odt` or `pdf`.
    pub format: String,
    pub content_type: String,
    /// SHA-256 of exactly the bytes served for this version and format.
    pub sha256: String,
    pub size: i64,
    pub created_at: String,
}

/// What a frozen version is rebuilt from: the body, and the names of the parties'
/// organisations as they read when it was frozen (for the signature page).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frozen {
    pub body: Document,
    /// Organisation id → name.
    pub party_names: BTreeMap<String, String>,
}

impl Frozen {
    pub fn of(body: Document, conv: &Convention) -> Frozen {
        let party_names = conv.parties.iter().map(|p| (p.org.id.clone(), p.org.name.clone())).collect();
        Frozen { body, party_names }
    }
}

/// The body rendered in every format: (format, content type, bytes).
pub struct Rendering {
    files: Vec<(&'static str, &'static str, Vec<u8>)>,
}

impl Rendering {
    /// HTML and ODT set as `typography` says (the convention's edition,
    /// `document::typography`), and the model; the PDF is added by [`Rendering::with_pdf`]
    /// when converted.
    pub fn of(frozen: &Frozen, typography: Typography) -> Result<Rendering, Problem> {
        let model = serde_json::to_vec(frozen).map_err(|e| anyhow::anyhow!("document model: {e}"))?;
        let body = &frozen.body;
        Ok(Rendering {
            files: vec![
                ("html", "text/html; charset=utf-8", documents::to_html_as(body, typography).into_bytes()),
                ("odt", ODT_MIME, documents::to_odt_as(body, typography)),
                (MODEL, "application/json", model),
            ],
        })
    }

    /// Converts the stored ODT to PDF when LibreOffice is installed (off the async
    /// workers); without a converter the version has no PDF.
    pub async fn with_pdf(mut self) -> Result<Rendering, Problem> {
        let odt = self.bytes("odt").to_vec();
        let pdf = tokio::task::spawn_blocking(move || documents::odt_to_pdf(&odt))
            .await
            .map_err(|e| anyhow::anyhow!("pdf task: {e}"))?;
        match pdf {
            Ok(pdf) => self.files.push(("pdf", "application/pdf", pdf)),
            Err(documents::PdfError::NoConverter) => {}
            Err(e) => tracing::warn!("convention PDF not frozen: {e}"),
        }
        Ok(self)
    }

    fn bytes(&self, format: &str) -> &[u8] {
        self.files.iter().find(|(f, _, _)| *f == format).map(|(_, _, b)| b.as_slice()).unwrap_or_default()
    }

    /// The fingerprint signatures bind: SHA-256 of the HTML file.
    pub fn fingerprint(&self) -> String {
        documents::sha256_hex(self.bytes("html"))
    }
}

/// Stores `rendering` as the next version of the convention, made by `by`; returns its number.
pub async fn store(
    tx: &mut Tx,
    convention_id: &str,
    rendering: &Rendering,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<i64, Problem> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version_no) FROM convention_documents WHERE convention_id = $1")
            .bind(convention_id)
            .fetch_one(&mut **tx)
            .await?;
    let version = last.unwrap_or(0) + 1;
    for (format, content_type, bytes) in &rendering.files {
        sqlx::query(
            "INSERT INTO convention_documents (convention_id, version_no, format, content_type, sha256, size, content, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(convention_id)
        .bind(version)
        .bind(*format)
        .bind(*content_type)
        .bind(documents::sha256_hex(bytes))
        .bind(bytes.len() as i64)
        .bind(bytes.clone())
        .bind(&by.name)
        .bind(timestamp(now))
        .execute(&mut **tx)
        .await?;
    }
    Ok(version)
}

/// Every stored downloadable file of each of the conventions `ids`, oldest version first,
/// in one query (per 500 conventions).
pub async fn list_of(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<FrozenFile>>, Problem> {
    #[derive(sqlx::FromRow)]
    struct Row {
        convention_id: String,
        #[sqlx(flatten)]
        file: FrozenFile,
    }
    let select = format!(
        "SELECT convention_id, version_no, format, content_type, sha256, size, created_at FROM convention_documents \
         WHERE {{in}} AND format <> '{MODEL}' ORDER BY version_no, format"
    );
    super::grouped(conn, &select, "convention_id", ids, |r: Row| (r.convention_id, r.file)).await
}

/// The stored bytes of a version (the latest when `None`) in `format`.
pub async fn read(
    conn: &mut AnyConnection,
    convention_id: &str,
    version: Option<i64>,
    format: &str,
) -> Result<Option<(FrozenFile, Vec<u8>)>, Problem> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        file: FrozenFile,
        content: Vec<u8>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT version_no, format, content_type, sha256, size, created_at, content FROM convention_documents \
         WHERE convention_id = $1 AND format = $2 AND version_no = COALESCE($3, \
         (SELECT MAX(version_no) FROM convention_documents WHERE convention_id = $4))",
    )
    .bind(convention_id)
    .bind(format)
    .bind(version)
    .bind(convention_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.file, r.content)))
}

/// The latest frozen version, as it was rendered; `None` before any submission.
pub async fn latest(conn: &mut AnyConnection, convention_id: &str) -> Result<Option<Frozen>, Problem> {
    let Some((_, bytes)) = read(conn, convention_id, None, MODEL).await? else { return Ok(None) };
    let doc = serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("frozen document model: {e}"))?;
    Ok(Some(doc))
}

/// The names of the services the signed Art. 28(3) annex of each of the conventions `ids` lists
/// (`processing::annex_service_names` of its latest frozen version, the one signed), in one
/// query (per 500 conventions). A convention without frozen text (written before texts were
/// frozen, migration 0022), or whose text has no such annex, is left out.
pub async fn signed_annex_services(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>, Problem> {
    #[derive(sqlx::FromRow)]
    struct Row {
        convention_id: String,
        content: Vec<u8>,
    }
    let select = format!(
        "SELECT d.convention_id, d.content FROM convention_documents d WHERE d.{{in}} AND d.format = '{MODEL}' \
         AND d.version_no = (SELECT MAX(l.version_no) FROM convention_documents l \
         WHERE l.convention_id = d.convention_id AND l.format = '{MODEL}')"
    );
    let models = super::grouped(conn, &select, "convention_id", ids, |r: Row| (r.convention_id, r.content)).await?;
    let mut out = std::collections::HashMap::new();
    for (id, contents) in models {
        let Some(content) = contents.first() else { continue };
        let frozen: Frozen =
            serde_json::from_slice(content).map_err(|e| anyhow::anyhow!("frozen document model: {e}"))?;
        if let Some(names) = super::processing::annex_service_names(&frozen.body) {
            out.insert(id, names);
        }
    }
    Ok(out)
}

/// The catalog codes of the services the signed Art. 28 annex of each of the conventions `ids`
/// lists ([`signed_annex_services`]), by convention id: the names its frozen text lists read back
/// as `catalog` names them (a name the catalog no longer has covers nothing). What the convention
/// binds its processor for: the RGPD registers and the tenants' annex check both read it here.
pub async fn signed_annex_codes(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>, Problem> {
    let names = signed_annex_services(conn, ids).await?;
    let code_of = |name: &String| catalog.services.iter().find(|s| s.name == *name).map(|s| s.code.clone());
    Ok(names.into_iter().map(|(id, listed)| (id, listed.iter().filter_map(code_of).collect())).collect())
}
