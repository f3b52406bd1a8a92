//! Documents: one capability-neutral model (title, sections of paragraphs,
//! bullets, tables and label/value fields) and its renderers, shared by
//! conventions, RGPD registers and tender documents.
//!
//! - [`to_html`]: a standalone, printable HTML5 page (tera template);
//! - [`to_odt`]: an OpenDocument Text file, zipped here;
//! - [`to_pdf`]: the ODT converted by LibreOffice, when it is installed.
//!
//! HTML and ODT are deterministic: the same document always gives the same
//! bytes, so callers can store and compare [`sha256_hex`] fingerprints.
//! Text is plain: no markup is interpreted, `'\n'` is a line break. Every renderer
//! sets the text in French typography ([`typography`]); `*_as` with
//! [`Typography::AsWritten`] renders a document issued before that pass as it was.

pub mod csv;
mod html;
mod ods;
mod odt;
mod pdf;
#[cfg(any(test, feature = "read-back"))]
pub mod read_back;
pub mod response;
pub mod typography;

pub use html::{embedded, to_html, to_html_as};
pub use ods::{to_ods, Cell, Sheet, Spreadsheet, ODS_MIME};
pub use odt::{to_odt, to_odt_as};
pub use pdf::available as pdf_available;
pub use pdf::{odt_to_pdf, to_pdf, to_pdf_as, PdfError};
pub use typography::Typography;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Media type of [`to_odt`]'s output.
pub const ODT_MIME: &str = "application/vnd.oasis.opendocument.text";

/// A document: a title block, then sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub title: String,
    pub subtitle: Option<String>,
    /// An identifier printed under the title (convention number, register version...).
    pub reference: Option<String>,
    pub sections: Vec<Section>,
}

/// A headed section of a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

/// The content of a section. Every string is plain text in which `'\n'` is a line break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    Paragraph(String),
    Bullets(Vec<String>),
    /// Rows shorter than the widest row (or the header) are padded with empty cells.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// Label / value pairs, rendered as a definition list (HTML) or a two-column table (ODT).
    Fields(Vec<(String, String)>),
}

impl Document {
    pub fn new(title: impl Into<String>) -> Self {
        Document { title: title.into(), subtitle: None, reference: None, sections: Vec::new() }
    }

    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }

    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    pub fn section(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }
}

impl Section {
    pub fn new(heading: impl Into<String>) -> Self {
        Section { heading: heading.into(), blocks: Vec::new() }
    }

    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    pub fn paragraph(self, text: impl Into<String>) -> Self {
        self.block(Block::Paragraph(text.into()))
    }

    pub fn bullets<S: Into<String>>(self, items: impl IntoIterator<Item = S>) -> Self {
        self.block(Block::Bullets(items.into_iter().map(Into::into).collect()))
    }

    pub fn table<H: Into<String>, C: Into<String>, R: IntoIterator<Item = C>>(
        self,
        header: impl IntoIterator<Item = H>,
        rows: impl IntoIterator<Item = R>,
    ) -> Self {
        let header = header.into_iter().map(Into::into).collect();
        let rows = rows.into_iter().map(|row| row.into_iter().map(Into::into).collect()).collect();
        self.block(Block::Table { header, rows })
    }

    pub fn fields<L: Into<String>, V: Into<String>>(self, pairs: impl IntoIterator<Item = (L, V)>) -> Self {
        self.block(Block::Fields(pairs.into_iter().map(|(label, value)| (label.into(), value.into())).collect()))
    }
}

/// Number of columns of a table: its widest row, header included.
fn table_width(header: &[String], rows: &[Vec<String>]) -> usize {
    rows.iter().map(Vec::len).chain([header.len()]).max().unwrap_or(0)
}

/// The cells of a table row, padded with empty cells to `width`.
fn padded(row: &[String], width: usize) -> impl Iterator<Item = &str> {
    row.iter().map(String::as_str).chain(std::iter::repeat("")).take(width)
}

/// An amount in cents as a French reader writes it: `1 234,56 €`.
pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{},{:02}{}€", grouped(abs / 100), abs % 100, typography::NBSP)
}

/// Digits in groups of three, separated by a no-break space: `1 234 567` (the separator
/// [`typography`] gives a number written with ordinary spaces).
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(typography::NBSP);
        }
        grouped.push(d);
    }
    grouped
}

/// Lower-case hexadecimal SHA-256 of `bytes`: the fingerprint stored with a rendered document.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A document exercising every block kind and the characters that need escaping.
#[cfg(test)]
pub(crate) fn sample() -> Document {
    Document::new("Convention de mise à disposition de l'ENT")
        .with_subtitle("Collège Jean Moulin & école <Les Tilleuls>")
        .with_reference("CONV-2025-0042")
        .section(
            Section::new("Parties")
                .paragraph("Entre le département, d'une part,\net le collège, d'autre part.")
                .fields([("Collectivité", "Département de l'Ain"), ("UAI", "0011234A")]),
        )
        .section(
            Section::new("Services & données")
                .bullets(["Messagerie", "Cahier de textes <script>alert(\"x\")</script>"])
                .table(["Service", "Volume", "Prix"], [vec!["Messagerie", "1 200", "0,50 €"], vec!["Stockage"]]),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_lowercase_hex_of_the_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn table_width_counts_the_widest_row_and_pads_the_others() {
        let header = vec!["a".to_string()];
        let rows = vec![vec!["1".to_string(), "2".to_string(), "3".to_string()], vec![]];
        assert_eq!(table_width(&header, &rows), 3);
        assert_eq!(padded(&header, 3).collect::<Vec<_>>(), ["a", "", ""]);
        assert_eq!(table_width(&[], &[]), 0);
    }

    #[test]
    fn builders_fill_the_model() {
        let doc = sample();
        assert_eq!(doc.reference.as_deref(), Some("CONV-2025-0042"));
        assert_eq!(doc.sections.len(), 2);
        assert_eq!(
            doc.sections[0].blocks[1],
            Block::Fields(vec![
                ("Collectivité".into(), "Département de l'Ain".into()),
                ("UAI".into(), "0011234A".into())
            ])
        );
    }
}
