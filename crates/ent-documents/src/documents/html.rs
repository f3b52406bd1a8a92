//! HTML rendering: a standalone A4-printable page from `templates/documents/document.html`.
//!
//! The template gets a view of the document in which every text is already split
//! into lines and every table row padded, so it only loops and prints; tera
//! escapes every value (autoescape is on for `.html` templates).

use super::{padded, table_width, Block, Document};
use serde::Serialize;
use std::sync::OnceLock;

const TEMPLATE: &str = "documents/document.html";

fn tera() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        tera.add_raw_template(TEMPLATE, include_str!("../../../../templates/documents/document.html"))
            .unwrap_or_else(|e| panic!("template {TEMPLATE} does not compile: {e:?}"));
        tera
    })
}

/// A text as its lines; the template joins them with `<br>`.
type Lines<'a> = Vec<&'a str>;

fn lines(text: &str) -> Lines<'_> {
    text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).collect()
}

#[derive(Serialize)]
struct DocumentView<'a> {
    title: Lines<'a>,
    subtitle: Option<Lines<'a>>,
    reference: Option<&'a str>,
    sections: Vec<SectionView<'a>>,
}

#[derive(Serialize)]
struct SectionView<'a> {
    heading: Lines<'a>,
    blocks: Vec<BlockView<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum BlockView<'a> {
    Paragraph { lines: Lines<'a> },
    Bullets { items: Vec<Lines<'a>> },
    Table { header: Vec<Lines<'a>>, rows: Vec<Vec<Lines<'a>>> },
    Fields { pairs: Vec<(Lines<'a>, Lines<'a>)> },
}

impl<'a> BlockView<'a> {
    fn of(block: &'a Block) -> Self {
        match block {
            Block::Paragraph(text) => BlockView::Paragraph { lines: lines(text) },
            Block::Bullets(items) => BlockView::Bullets { items: items.iter().map(|item| lines(item)).collect() },
            Block::Table { header, rows } => {
                let width = table_width(header, rows);
                let header = if header.is_empty() { Vec::new() } else { padded(header, width).map(lines).collect() };
                let rows = rows.iter().map(|row| padded(row, width).map(lines).collect()).collect();
                BlockView::Table { header, rows }
            }
            Block::Fields(pairs) => {
                BlockView::Fields { pairs: pairs.iter().map(|(label, value)| (lines(label), lines(value))).collect() }
            }
        }
    }
}

/// Renders `doc` as a complete HTML5 page, in French, styled for A4 printing.
/// Deterministic: the same document always gives the same bytes.
pub fn to_html(doc: &Document) -> String {
    let view = DocumentView {
        title: lines(&doc.title),
        subtitle: doc.subtitle.as_deref().map(lines),
        reference: doc.reference.as_deref(),
        sections: doc
            .sections
            .iter()
            .map(|section| SectionView {
                heading: lines(&section.heading),
                blocks: section.blocks.iter().map(BlockView::of).collect(),
            })
            .collect(),
    };
    let context = tera::Context::from_serialize(&view).expect("the document view serialises");
    // The template is fixed and its context is built above: a failure is a bug in this module.
    tera().render(TEMPLATE, &context).unwrap_or_else(|e| panic!("template {TEMPLATE} does not render: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::super::{sample, Section};
    use super::*;

    #[test]
    fn html_is_a_french_a4_page_with_every_block() {
        let html = to_html(&sample());
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"), "{html}");
        assert!(html.contains("@page { size: A4; margin: 2cm; }"));
        assert!(html.contains("<h2>Parties</h2>"));
        assert!(html.contains("d&#x27;une part,<br>et le collège"), "line breaks become <br>: {html}");
        assert!(html.contains("<dt>UAI</dt>"));
        assert!(html.contains("<dd>0011234A</dd>"));
        assert!(html.contains("<li>Messagerie</li>"));
        assert!(html.contains("<th>Prix</th>"));
        assert!(html.contains("<td>Stockage</td><td></td><td></td>"), "short rows are padded: {html}");
        assert!(html.contains("Référence : CONV-2025-0042"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn html_escapes_every_text_value() {
        let nasty = "<script>alert(\"x\")</script> & <b>";
        let doc = Document::new(nasty).with_subtitle(nasty).with_reference(nasty).section(
            Section::new(nasty).paragraph(nasty).bullets([nasty]).table([nasty], [[nasty]]).fields([(nasty, nasty)]),
        );
        let html = to_html(&doc);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains(" & "), "{html}");
        let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2F;script&gt; &amp; &lt;b&gt;";
        // title (twice: <title> and <h1>), subtitle, reference, heading, paragraph, bullet, th, td, dt, dd
        assert_eq!(html.matches(escaped).count(), 11, "{html}");
    }

    #[test]
    fn html_is_deterministic() {
        assert_eq!(to_html(&sample()), to_html(&sample().clone()));
    }

    #[test]
    fn empty_table_header_has_no_thead() {
        let doc = Document::new("T").section(Section::new("S").table(Vec::<String>::new(), [["a", "b"]]));
        let html = to_html(&doc);
        assert!(!html.contains("<thead>"), "{html}");
        assert!(html.contains("<td>a</td><td>b</td>"), "{html}");
    }
}
