//! OpenDocument Text: the package (a zip of XML parts) written directly.
//!
//! `styles.xml` (page layout and named styles) and the manifest are fixed files
//! under `templates/documents/odt/`; `content.xml` and `meta.xml` are written
//! here. Every entry carries the same fixed timestamp, so the bytes depend on
//! the document only.

use super::{padded, table_width, Block, Document, Typography, ODT_MIME};
use std::fmt::Write as _;
use std::io::{Cursor, Write as _};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

const MANIFEST: &str = include_str!("../../../../templates/documents/odt/manifest.xml");
const STYLES: &str = include_str!("../../../../templates/documents/odt/styles.xml");

/// Renders `doc` as an `.odt` file, in French typography. Deterministic: the same document
/// always gives the same bytes.
pub fn to_odt(doc: &Document) -> Vec<u8> {
    to_odt_as(doc, Typography::French)
}

/// [`to_odt`] with its text set as `typography` says (the text nodes of `content.xml` and `meta.xml`).
pub fn to_odt_as(doc: &Document, typography: Typography) -> Vec<u8> {
    let parts = [
        ("META-INF/manifest.xml", MANIFEST.to_string()),
        ("meta.xml", typography.markup(meta(doc))),
        ("styles.xml", STYLES.to_string()),
        ("content.xml", typography.markup(content(doc))),
    ];
    package(ODT_MIME, &parts)
}

/// An ODF package: the zip of `parts` after the `mimetype` entry. Every entry carries
/// the same fixed timestamp, so the bytes depend on the parts only.
pub(super) fn package(mime: &str, parts: &[(&str, String)]) -> Vec<u8> {
    // 1980-01-01 00:00, the zip epoch: a fixed date rather than the clock.
    let fixed = SimpleFileOptions::default().last_modified_time(DateTime::default()).unix_permissions(0o644);
    let stored = fixed.compression_method(CompressionMethod::Stored);
    let deflated = fixed.compression_method(CompressionMethod::Deflated);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // ODF 1.3 part 2 §3.3: `mimetype` comes first, uncompressed, without extra
    // field, so that the media type sits at a fixed offset (byte 38).
    let first = std::iter::once(("mimetype", stored, mime));
    let rest = parts.iter().map(|(name, text)| (*name, deflated, text.as_str()));
    for (name, options, text) in first.chain(rest) {
        // Writing into memory fails only on a bug (say, a duplicate name).
        zip.start_file(name, options).expect("zip entry starts");
        zip.write_all(text.as_bytes()).expect("zip entry is written");
    }
    zip.finish().expect("zip is finished").into_inner()
}

/// The namespace declarations of an ODF root element (and its version), with `extra`
/// ones (the spreadsheet's `number:`) after `table:`.
macro_rules! odf_namespaces {
    ($($extra:literal)?) => {
        concat!(
            r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" "#,
            r#"xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" "#,
            r#"xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" "#,
            r#"xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" "#,
            $($extra,)?
            r#"xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" "#,
            r#"xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" "#,
            r#"xmlns:dc="http://purl.org/dc/elements/1.1/" "#,
            r#"office:version="1.3""#,
        )
    };
}
pub(super) use odf_namespaces;

const NAMESPACES: &str = odf_namespaces!();

fn meta(doc: &Document) -> String {
    let mut x = String::new();
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(x, "\n<office:document-meta {NAMESPACES}><office:meta>");
    // No version: a release must not change the fingerprint of unchanged documents.
    x.push_str("<meta:generator>entcp (plan de contrôle ENT)</meta:generator>");
    let _ = write!(x, "<dc:title>{}</dc:title>", escape(&doc.title.replace('\n', " ")));
    if let Some(subtitle) = &doc.subtitle {
        let _ = write!(x, "<dc:subject>{}</dc:subject>", escape(&subtitle.replace('\n', " ")));
    }
    x.push_str("<dc:language>fr-FR</dc:language>");
    x.push_str("</office:meta></office:document-meta>\n");
    x
}

/// Automatic styles of the body: tables and their cells.
const AUTOMATIC_STYLES: &str = concat!(
    "<office:automatic-styles>",
    r#"<style:style style:name="Table" style:family="table">"#,
    r#"<style:table-properties style:width="17cm" table:align="margins" fo:margin-top="0.15cm" fo:margin-bottom="0.25cm" style:may-break-between-rows="false"/>"#,
    "</style:style>",
    r#"<style:style style:name="Column" style:family="table-column"><style:table-column-properties style:rel-column-width="1*"/></style:style>"#,
    r#"<style:style style:name="LabelColumn" style:family="table-column"><style:table-column-properties style:column-width="5.5cm" style:rel-column-width="55*"/></style:style>"#,
    r#"<style:style style:name="ValueColumn" style:family="table-column"><style:table-column-properties style:column-width="11.5cm" style:rel-column-width="115*"/></style:style>"#,
    r#"<style:style style:name="Row" style:family="table-row"><style:table-row-properties style:keep-together="always"/></style:style>"#,
    r#"<style:style style:name="Cell" style:family="table-cell"><style:table-cell-properties fo:border="0.5pt solid #555555" fo:padding="0.1cm"/></style:style>"#,
    r##"<style:style style:name="HeaderCell" style:family="table-cell"><style:table-cell-properties fo:background-color="#eeeeee" fo:border="0.5pt solid #555555" fo:padding="0.1cm"/></style:style>"##,
    "</office:automatic-styles>",
);

fn content(doc: &Document) -> String {
    let mut x = String::with_capacity(8192);
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(x, "\n<office:document-content {NAMESPACES}>{AUTOMATIC_STYLES}<office:body><office:text>");
    paragraph(&mut x, "Title", &doc.title);
    if let Some(subtitle) = &doc.subtitle {
        paragraph(&mut x, "Subtitle", subtitle);
    }
    if let Some(reference) = &doc.reference {
        paragraph(&mut x, "Reference", &format!("Référence : {reference}"));
    }
    let mut tables = 0;
    for section in &doc.sections {
        x.push_str(r#"<text:h text:style-name="Heading_20_1" text:outline-level="1">"#);
        push_text(&mut x, &section.heading);
        x.push_str("</text:h>");
        for block in &section.blocks {
            match block {
                Block::Paragraph(text) => paragraph(&mut x, "Text_20_body", text),
                Block::Bullets(items) if !items.is_empty() => {
                    x.push_str(r#"<text:list text:style-name="Bullets">"#);
                    for item in items {
                        x.push_str("<text:list-item>");
                        paragraph(&mut x, "List_20_Bullet", item);
                        x.push_str("</text:list-item>");
                    }
                    x.push_str("</text:list>");
                }
                Block::Bullets(_) => {}
                Block::Table { header, rows } => {
                    let width = table_width(header, rows);
                    if width == 0 {
                        continue;
                    }
                    tables += 1;
                    table_start(&mut x, tables, &[("Column", width)]);
                    if !header.is_empty() {
                        x.push_str("<table:table-header-rows>");
                        row(&mut x, padded(header, width).map(|cell| ("HeaderCell", "Table_20_Heading", cell)));
                        x.push_str("</table:table-header-rows>");
                    }
                    for cells in rows {
                        row(&mut x, padded(cells, width).map(|cell| ("Cell", "Table_20_Contents", cell)));
                    }
                    x.push_str("</table:table>");
                }
                Block::Fields(pairs) if !pairs.is_empty() => {
                    tables += 1;
                    table_start(&mut x, tables, &[("LabelColumn", 1), ("ValueColumn", 1)]);
                    for (label, value) in pairs {
                        row(&mut x, [("Cell", "Field_20_Label", label.as_str()), ("Cell", "Table_20_Contents", value)]);
                    }
                    x.push_str("</table:table>");
                }
                Block::Fields(_) => {}
            }
        }
    }
    x.push_str("</office:text></office:body></office:document-content>\n");
    x
}

fn paragraph(x: &mut String, style: &str, text: &str) {
    let _ = write!(x, r#"<text:p text:style-name="{style}">"#);
    push_text(x, text);
    x.push_str("</text:p>");
}

/// Opens table number `n` with its columns: (column style, how many).
fn table_start(x: &mut String, n: usize, columns: &[(&str, usize)]) {
    let _ = write!(x, r#"<table:table table:name="Tableau{n}" table:style-name="Table">"#);
    for (style, count) in columns {
        let _ =
            write!(x, r#"<table:table-column table:style-name="{style}" table:number-columns-repeated="{count}"/>"#);
    }
}

/// A table row of (cell style, paragraph style, text) cells.
fn row<'a>(x: &mut String, cells: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) {
    x.push_str(r#"<table:table-row table:style-name="Row">"#);
    for (cell_style, paragraph_style, text) in cells {
        let _ = write!(x, r#"<table:table-cell table:style-name="{cell_style}" office:value-type="string">"#);
        paragraph(x, paragraph_style, text);
        x.push_str("</table:table-cell>");
    }
    x.push_str("</table:table-row>");
}

/// Appends plain text as paragraph content: XML-escaped, `'\n'` as line breaks,
/// tabs and runs of spaces kept (ODF collapses white space as HTML does).
fn push_text(x: &mut String, text: &str) {
    let mut spaces = 0;
    let mut line_start = true;
    for c in text.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        push_spaces(x, spaces, line_start);
        spaces = 0;
        line_start = false;
        match c {
            '\n' => {
                x.push_str("<text:line-break/>");
                line_start = true;
            }
            '\r' => {}
            '\t' => x.push_str("<text:tab/>"),
            c => push_escaped(x, c),
        }
    }
    push_spaces(x, spaces, line_start);
}

/// One space survives white-space collapsing unless it starts a line; the others need `<text:s/>`.
fn push_spaces(x: &mut String, spaces: usize, line_start: bool) {
    let plain = usize::from(!line_start).min(spaces);
    x.push_str(&" "[..plain]);
    if spaces > plain {
        let _ = write!(x, r#"<text:s text:c="{}"/>"#, spaces - plain);
    }
}

/// XML-escapes `text` (for element text or attribute values).
pub(super) fn escape(text: &str) -> String {
    let mut x = String::with_capacity(text.len());
    text.chars().for_each(|c| push_escaped(&mut x, c));
    x
}

fn push_escaped(x: &mut String, c: char) {
    match c {
        '&' => x.push_str("&amp;"),
        '<' => x.push_str("&lt;"),
        '>' => x.push_str("&gt;"),
        '"' => x.push_str("&quot;"),
        '\'' => x.push_str("&apos;"),
        // Characters XML 1.0 forbids even escaped (control characters, U+FFFE, U+FFFF).
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => x.push('\u{fffd}'),
        c => x.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sample, Section};
    use super::*;
    use quick_xml::events::Event;
    use std::io::Read;

    fn entries(odt: &[u8]) -> zip::ZipArchive<Cursor<&[u8]>> {
        zip::ZipArchive::new(Cursor::new(odt)).expect("the ODT is a zip")
    }

    fn entry(odt: &[u8], name: &str) -> String {
        let mut archive = entries(odt);
        let mut text = String::new();
        archive.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}")).read_to_string(&mut text).unwrap();
        text
    }

    /// Parses `xml` to the end (quick-xml checks tag matching and escapes) and returns its text content.
    fn parse(name: &str, xml: &str) -> String {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut text = String::new();
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => return text,
                Ok(Event::Text(t)) => text.push_str(&t.xml10_content()),
                Ok(Event::GeneralRef(r)) => {
                    let c = match &*r.xml10_content() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => r
                            .resolve_char_ref()
                            .ok()
                            .flatten()
                            .unwrap_or_else(|| panic!("{name}: unknown entity &{other};")),
                    };
                    text.push(c);
                }
                Ok(Event::Start(e) | Event::Empty(e)) => {
                    for attribute in e.attributes() {
                        attribute.unwrap_or_else(|err| panic!("{name}: bad attribute: {err}"));
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("{name} is not well-formed at {}: {e}\n{xml}", reader.buffer_position()),
            }
        }
    }

    #[test]
    fn odt_starts_with_a_stored_mimetype_entry() {
        let odt = to_odt(&sample());
        assert_eq!(&odt[..4], b"PK\x03\x04");
        // Local header: name length at 26, extra length at 28, name at 30, data right after.
        assert_eq!(u16::from_le_bytes([odt[26], odt[27]]), 8);
        assert_eq!(u16::from_le_bytes([odt[28], odt[29]]), 0, "no extra field");
        assert_eq!(&odt[30..38], b"mimetype");
        assert_eq!(&odt[38..38 + ODT_MIME.len()], ODT_MIME.as_bytes());

        let mut archive = entries(&odt);
        let mut first = archive.by_index(0).unwrap();
        assert_eq!(first.name().unwrap(), "mimetype");
        assert_eq!(first.compression(), CompressionMethod::Stored);
        assert!(first.extra_data().is_none_or(|extra| extra.is_empty()));
        let mut mime = String::new();
        first.read_to_string(&mut mime).unwrap();
        assert_eq!(mime, "application/vnd.oasis.opendocument.text");
        drop(first);
        let names: Vec<String> = archive.file_names().map(|name| name.unwrap().into_owned()).collect();
        for name in ["META-INF/manifest.xml", "meta.xml", "styles.xml", "content.xml"] {
            assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn odt_xml_parts_are_well_formed() {
        let odt = to_odt(&sample());
        for name in ["META-INF/manifest.xml", "meta.xml", "styles.xml", "content.xml"] {
            parse(name, &entry(&odt, name));
        }
        let manifest = entry(&odt, "META-INF/manifest.xml");
        for path in ["content.xml", "styles.xml", "meta.xml"] {
            assert!(manifest.contains(&format!(r#"manifest:full-path="{path}""#)), "{manifest}");
        }
        assert!(entry(&odt, "meta.xml").contains("<dc:title>Convention de mise à disposition de l&apos;ENT</dc:title>"));
    }

    #[test]
    fn odt_content_has_headings_lists_tables_and_escaped_text() {
        let content = entry(&to_odt(&sample()), "content.xml");
        let text = parse("content.xml", &content);
        assert!(content.contains(r#"<text:h text:style-name="Heading_20_1" text:outline-level="1">Parties</text:h>"#));
        assert!(content.contains(r#"text:outline-level="1">Services &amp; données</text:h>"#));
        assert!(content.contains("d&apos;une part,<text:line-break/>et le collège"));
        assert!(content.contains("Cahier de textes &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(!content.contains("<script>"));
        assert!(text.contains(r#"Cahier de textes <script>alert("x")</script>"#), "the text reads back unchanged");
        assert!(content.contains("<text:list "));
        // The table has three columns, its short row padded; the fields table two.
        assert!(
            content.contains(r#"<table:table-column table:style-name="Column" table:number-columns-repeated="3"/>"#)
        );
        let stockage_row = content.split("Stockage").nth(1).unwrap().split("</table:table-row>").next().unwrap();
        assert_eq!(stockage_row.matches("<table:table-cell ").count(), 2);
        assert!(content.contains(r#"table:style-name="LabelColumn""#));
        assert!(content.contains("Référence\u{202f}: CONV-2025-0042"), "set in French typography");
        assert!(content.contains("\"Table_20_Contents\">0,50\u{a0}€</text:p>"), "{content}");
    }

    #[test]
    fn an_odt_as_written_keeps_its_spaces_and_a_french_one_sets_its_text_nodes_only() {
        let plain = to_odt_as(&sample(), Typography::AsWritten);
        let content = entry(&plain, "content.xml");
        assert!(content.contains("Référence : CONV-2025-0042") && !content.contains('\u{202f}'), "{content}");
        let french = entry(&to_odt(&sample()), "content.xml");
        assert_eq!(french.replace(['\u{202f}', '\u{a0}'], " "), content, "only spaces of the text change");
        parse("content.xml", &french);
    }

    #[test]
    fn odt_is_deterministic() {
        assert_eq!(to_odt(&sample()), to_odt(&sample()));
        assert_ne!(to_odt(&sample()), to_odt(&sample().with_reference("autre")));
    }

    #[test]
    fn spaces_tabs_and_control_characters_survive_as_valid_odf() {
        let mut x = String::new();
        push_text(&mut x, "  a  b\tc\n d\u{1}");
        assert_eq!(
            x,
            r#"<text:s text:c="2"/>a <text:s text:c="1"/>b<text:tab/>c<text:line-break/><text:s text:c="1"/>d�"#
        );
    }

    #[test]
    fn empty_tables_and_lists_are_left_out() {
        let doc = Document::new("T").section(
            Section::new("S")
                .table(Vec::<String>::new(), Vec::<Vec<String>>::new())
                .bullets(Vec::<String>::new())
                .fields(Vec::<(String, String)>::new()),
        );
        let content = entry(&to_odt(&doc), "content.xml");
        parse("content.xml", &content);
        assert!(!content.contains("<table:table "));
        assert!(!content.contains("<text:list "));
    }
}
