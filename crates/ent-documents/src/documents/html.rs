//! HTML rendering: a standalone A4-printable page from `templates/documents/document.html`.
//!
//! The template gets a view of the document in which every text is already split
//! into lines and every table row padded, so it only loops and prints; tera
//! escapes every value (autoescape is on for `.html` templates).

use super::{padded, table_width, Block, Document, Typography};
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

/// Renders `doc` as a complete HTML5 page, in French typography, styled for A4 printing.
/// Deterministic: the same document always gives the same bytes.
pub fn to_html(doc: &Document) -> String {
    to_html_as(doc, Typography::French)
}

/// [`to_html`] with its text set as `typography` says (the page's text nodes only).
pub fn to_html_as(doc: &Document, typography: Typography) -> String {
    typography.markup(page(doc))
}

fn page(doc: &Document) -> String {
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

/// The body of a page [`to_html`] rendered, made to sit in another page under a heading of
/// level 2: its headings two levels down (h1 → h3, h2 → h4), its tables' column headers
/// scoped and captioned by their section's heading, and the « - » lines of its paragraphs
/// real lists. The page itself (a signed convention's, whose fingerprint is that of its
/// bytes) is never changed: this is how a console page shows it. Works line by line on the
/// template's markup, where a text never holds a line break (see `document.html`).
pub fn embedded(html: &str) -> String {
    let start = html.find("<body>").map_or(0, |at| at + "<body>".len());
    let end = html.rfind("</body>").unwrap_or(html.len());
    let mut heading = "";
    let mut out = String::with_capacity(end.saturating_sub(start) + 256);
    for line in html.get(start..end).unwrap_or_default().lines() {
        let embedded = if let Some(text) = inner(line, "<h1>", "</h1>") {
            format!("<h3>{text}</h3>")
        } else if let Some(text) = inner(line, "<h2>", "</h2>") {
            heading = text;
            format!("<h4>{text}</h4>")
        } else if line == "<table>" {
            format!("<table>\n<caption>{heading}</caption>")
        } else if line.starts_with("<thead>") {
            line.replace("<th>", "<th scope=\"col\">")
        } else if let Some(text) = inner(line, "<p>", "</p>") {
            with_lists(text)
        } else {
            line.to_string()
        };
        out.push_str(&embedded);
        out.push('\n');
    }
    out
}

/// What `line` holds between `open` and `close` when it is exactly that element.
fn inner<'a>(line: &'a str, open: &str, close: &str) -> Option<&'a str> {
    line.strip_prefix(open)?.strip_suffix(close)
}

/// A paragraph's lines (`<br>` apart): its runs of « - » lines as a list, the other lines
/// as paragraphs.
fn with_lists(text: &str) -> String {
    let mut out = String::new();
    let (mut lines, mut items): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let flush = |out: &mut String, lines: &mut Vec<&str>, items: &mut Vec<&str>| {
        if !lines.is_empty() {
            out.push_str(&format!("<p>{}</p>", lines.join("<br>")));
            lines.clear();
        }
        if !items.is_empty() {
            let listed: String = items.iter().map(|item| format!("<li>{item}</li>")).collect();
            out.push_str(&format!("<ul>{listed}</ul>"));
            items.clear();
        }
    };
    for line in text.split("<br>") {
        match line.strip_prefix("- ") {
            Some(item) => {
                if !lines.is_empty() {
                    flush(&mut out, &mut lines, &mut items);
                }
                items.push(item);
            }
            None => {
                if !items.is_empty() {
                    flush(&mut out, &mut lines, &mut items);
                }
                lines.push(line);
            }
        }
    }
    flush(&mut out, &mut lines, &mut items);
    out
}

#[cfg(test)]
mod tests {
    use super::super::{sample, Section};
    use super::*;

    #[test]
    fn an_embedded_document_sits_under_a_level_2_heading_with_scoped_tables_and_real_lists() {
        let doc = Document::new("Convention")
            .section(Section::new("Engagements").paragraph("Ils s'engagent à :\n- alimenter\n- permettre\nFin."))
            .section(Section::new("Tarifs").table(["Service", "Prix"], [["Stockage", "3"]]));
        let page = to_html(&doc);
        let body = embedded(&page);
        assert!(!body.contains("<h1>") && !body.contains("<h2>") && !body.contains("<body>"), "{body}");
        assert!(body.contains("<h3>Convention</h3>") && body.contains("<h4>Engagements</h4>"), "{body}");
        assert!(
            body.contains(
                "<p>Ils s&#x27;engagent à\u{202f}:</p><ul><li>alimenter</li><li>permettre</li></ul><p>Fin.</p>"
            ),
            "{body}"
        );
        assert!(body.contains("<caption>Tarifs</caption>"), "{body}");
        assert!(body.contains("<th scope=\"col\">Service</th><th scope=\"col\">Prix</th>"), "{body}");
        assert!(page.contains("<h1>Convention</h1>") && page.contains("- alimenter"), "the document is unchanged");
    }

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
        assert!(html.contains("Référence\u{202f}: CONV-2025-0042"), "set in French typography: {html}");
        assert!(html.contains("<td>0,50\u{a0}€</td>"), "{html}");
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn a_page_as_written_keeps_its_spaces_and_a_french_one_differs_in_its_text_spaces_only() {
        let plain = to_html_as(&sample(), Typography::AsWritten);
        assert!(plain.contains("Référence : CONV-2025-0042"), "{plain}");
        assert!(!plain.contains(['\u{202f}', '\u{a0}']), "{plain}");
        let french = to_html(&sample());
        assert_eq!(french.replace(['\u{202f}', '\u{a0}'], " "), plain);
        assert!(french.contains("@page { size: A4; margin: 2cm; }"), "the style sheet is left alone");
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
