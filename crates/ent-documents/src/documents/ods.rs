//! OpenDocument Spreadsheet: sheets of rows of typed cells, zipped here like
//! the ODT. Deterministic: the same spreadsheet always gives the same bytes.
//! Text cells and the title are set in French typography ([`french`]); sheet
//! names (which formulas cite) and typed values are not.

use super::odt::{escape, odf_namespaces, package};
use super::typography::french;
use super::{euros, grouped};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Media type of [`to_ods`]'s output.
pub const ODS_MIME: &str = "application/vnd.oasis.opendocument.spreadsheet";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spreadsheet {
    pub title: String,
    pub sheets: Vec<Sheet>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sheet {
    /// Shown on the tab; characters spreadsheets refuse (`[]*?:/\`) are replaced, 31 characters at most.
    pub name: String,
    /// Column widths in centimetres; columns beyond the list get 4 cm.
    pub column_widths_cm: Vec<f32>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// Bold text, for headings and column titles.
    Header(String),
    Integer(i64),
    Number(f64),
    /// An amount in euro cents, shown in euros with two decimals.
    Euros(i64),
    /// An ISO date `YYYY-MM-DD`.
    Date(String),
    /// An OpenFormula expression computing an amount in euros (`of:=[.C2]*[.D2]`), with the
    /// value it has when computed here (cents) so that readers that do not recalculate see it.
    EurosFormula {
        formula: String,
        cents: i64,
    },
    /// An OpenFormula expression computing a count (`of:=SUM([.E2:.E9])`), with the value it has
    /// when computed here, shown as [`Cell::Integer`], for readers that do not recalculate.
    IntegerFormula {
        formula: String,
        value: i64,
    },
    /// An OpenFormula expression computing a decimal number, with the value it has when computed
    /// here, shown as [`Cell::Number`], for readers that do not recalculate.
    NumberFormula {
        formula: String,
        value: f64,
    },
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn header(s: impl Into<String>) -> Cell {
        Cell::Header(s.into())
    }
}

const NAMESPACES: &str = odf_namespaces!(r#"xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" "#);

/// Renders the spreadsheet as an `.ods` file.
pub fn to_ods(book: &Spreadsheet) -> Vec<u8> {
    let parts = [
        ("META-INF/manifest.xml", manifest()),
        ("meta.xml", meta(book)),
        ("styles.xml", styles()),
        ("content.xml", content(book)),
    ];
    package(ODS_MIME, &parts)
}

fn manifest() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.3" manifest:media-type="{ODS_MIME}"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
 <manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>
 <manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"#
    )
}

/// The print layout of every sheet: A4 landscape, scaled to the page width (as many pages
/// down as needed), the first row repeated on each page (see [`content`]).
fn styles() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-styles {NAMESPACES}><office:automatic-styles><style:page-layout style:name="pmLandscape"><style:page-layout-properties fo:page-width="29.7cm" fo:page-height="21cm" style:print-orientation="landscape" fo:margin="1cm" style:scale-to-X="1" style:scale-to-Y="0" style:print="headers grid"/></style:page-layout></office:automatic-styles><office:master-styles><style:master-page style:name="Paysage" style:page-layout-name="pmLandscape"/></office:master-styles></office:document-styles>"#
    )
}

fn meta(book: &Spreadsheet) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta {NAMESPACES}><office:meta><meta:generator>entcp (plan de contrôle ENT)</meta:generator><dc:title>{}</dc:title></office:meta></office:document-meta>"#,
        escape(&french(&book.title.replace('\n', " ")))
    )
}

/// Width in hundredths of a millimetre, so that equal widths share one column style.
fn width_key(cm: f32) -> u32 {
    (cm.clamp(0.5, 50.0) * 1000.0).round() as u32
}

fn widths(sheet: &Sheet) -> Vec<u32> {
    let columns = sheet.rows.iter().map(Vec::len).max().unwrap_or(0).max(sheet.column_widths_cm.len());
    (0..columns).map(|i| width_key(sheet.column_widths_cm.get(i).copied().unwrap_or(4.0))).collect()
}

fn content(book: &Spreadsheet) -> String {
    let all_widths: BTreeSet<u32> = book.sheets.iter().flat_map(widths).collect();
    let mut x = String::new();
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(x, "\n<office:document-content {NAMESPACES}><office:automatic-styles>");
    for w in &all_widths {
        let _ = write!(
            x,
            r#"<style:style style:name="co{w}" style:family="table-column"><style:table-column-properties style:column-width="{}.{:03}cm"/></style:style>"#,
            w / 1000,
            w % 1000
        );
    }
    x.push_str(concat!(
        r#"<number:number-style style:name="N2"><number:number number:decimal-places="2" number:min-decimal-places="2" number:min-integer-digits="1" number:grouping="true"/></number:number-style>"#,
        r#"<number:number-style style:name="N0"><number:number number:decimal-places="0" number:min-integer-digits="1" number:grouping="true"/></number:number-style>"#,
        r#"<number:number-style style:name="N9"><number:number number:decimal-places="2" number:min-decimal-places="0" number:min-integer-digits="1" number:grouping="true"/></number:number-style>"#,
        r#"<number:date-style style:name="D1"><number:day number:style="long"/><number:text>/</number:text><number:month number:style="long"/><number:text>/</number:text><number:year number:style="long"/></number:date-style>"#,
        r#"<style:style style:name="ceT" style:family="table-cell"><style:table-cell-properties fo:wrap-option="wrap" style:vertical-align="top"/></style:style>"#,
        r##"<style:style style:name="ceH" style:family="table-cell"><style:table-cell-properties fo:wrap-option="wrap" style:vertical-align="top" fo:background-color="#dde4ee"/><style:text-properties fo:font-weight="bold"/></style:style>"##,
        r#"<style:style style:name="ceE" style:family="table-cell" style:data-style-name="N2"/>"#,
        r#"<style:style style:name="ceI" style:family="table-cell" style:data-style-name="N0"/>"#,
        r#"<style:style style:name="ceN" style:family="table-cell" style:data-style-name="N9"/>"#,
        r#"<style:style style:name="ceD" style:family="table-cell" style:data-style-name="D1"/>"#,
        r#"<style:style style:name="ta1" style:family="table" style:master-page-name="Paysage"><style:table-properties table:display="true"/></style:style>"#,
        "</office:automatic-styles><office:body><office:spreadsheet>"
    ));
    let mut used = BTreeSet::new();
    for sheet in &book.sheets {
        let name = sheet_name(&sheet.name, &mut used);
        let _ = write!(x, r#"<table:table table:name="{}" table:style-name="ta1">"#, escape(&name));
        for w in widths(sheet) {
            let _ = write!(x, r#"<table:table-column table:style-name="co{w}"/>"#);
        }
        for (i, row) in sheet.rows.iter().enumerate() {
            // The first row (the column titles or the sheet's title) is printed on every page.
            if i == 0 {
                x.push_str("<table:table-header-rows>");
            }
            x.push_str("<table:table-row>");
            if row.is_empty() {
                x.push_str("<table:table-cell/>");
            }
            row.iter().for_each(|cell| push_cell(&mut x, cell));
            x.push_str("</table:table-row>");
            if i == 0 {
                x.push_str("</table:table-header-rows>");
            }
        }
        x.push_str("</table:table>");
    }
    x.push_str("</office:spreadsheet></office:body></office:document-content>");
    x
}

fn push_cell(x: &mut String, cell: &Cell) {
    match cell {
        Cell::Empty => x.push_str("<table:table-cell/>"),
        Cell::Text(t) => push_text_cell(x, "ceT", t),
        Cell::Header(t) => push_text_cell(x, "ceH", t),
        Cell::Integer(n) => push_integer(x, "", *n),
        Cell::IntegerFormula { formula, value } => {
            push_integer(x, &format!(r#" table:formula="{}""#, escape(formula)), *value)
        }
        Cell::Number(n) => push_number(x, "", *n),
        Cell::NumberFormula { formula, value } => {
            push_number(x, &format!(r#" table:formula="{}""#, escape(formula)), *value)
        }
        Cell::Euros(cents) => push_euros(x, "", *cents),
        Cell::EurosFormula { formula, cents } => {
            push_euros(x, &format!(r#" table:formula="{}""#, escape(formula)), *cents)
        }
        Cell::Date(d) => {
            let shown = match d.split('-').collect::<Vec<_>>()[..] {
                [y, m, day] => format!("{day}/{m}/{y}"),
                _ => d.clone(),
            };
            let _ = write!(
                x,
                r#"<table:table-cell table:style-name="ceD" office:value-type="date" office:date-value="{}"><text:p>{}</text:p></table:table-cell>"#,
                escape(d),
                escape(&shown)
            );
        }
    }
}

/// A decimal number as a French reader writes it: its whole part in groups of three (as
/// [`grouped`]), a decimal comma (`1 234,5`).
fn number_shown(n: f64) -> String {
    let text = n.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let sign = if n < 0.0 { "-" } else { "" };
    let whole = whole.parse::<u64>().map(grouped).unwrap_or_else(|_| whole.to_string());
    match fraction {
        "" => format!("{sign}{whole}"),
        fraction => format!("{sign}{whole},{fraction}"),
    }
}

/// A decimal number (with `formula`, its attribute, or none): its value as is, shown as
/// [`number_shown`] writes it.
fn push_number(x: &mut String, formula: &str, n: f64) {
    let _ = write!(
        x,
        r#"<table:table-cell table:style-name="ceN"{formula} office:value-type="float" office:value="{n}"><text:p>{}</text:p></table:table-cell>"#,
        number_shown(n)
    );
}

/// A count (with `formula`, its attribute, or none): its value as is, shown in groups of three.
fn push_integer(x: &mut String, formula: &str, n: i64) {
    let sign = if n < 0 { "-" } else { "" };
    let shown = format!("{sign}{}", grouped(n.unsigned_abs()));
    let _ = write!(
        x,
        r#"<table:table-cell table:style-name="ceI"{formula} office:value-type="float" office:value="{n}"><text:p>{shown}</text:p></table:table-cell>"#
    );
}

/// An amount: its value in euros, shown as [`euros`] writes it.
fn push_euros(x: &mut String, formula: &str, cents: i64) {
    let (sign, abs) = if cents < 0 { ("-", cents.unsigned_abs()) } else { ("", cents.unsigned_abs()) };
    let value = format!("{sign}{}.{:02}", abs / 100, abs % 100);
    let _ = write!(
        x,
        r#"<table:table-cell table:style-name="ceE"{formula} office:value-type="currency" office:currency="EUR" office:value="{value}"><text:p>{}</text:p></table:table-cell>"#,
        euros(cents)
    );
}

fn push_text_cell(x: &mut String, style: &str, text: &str) {
    let _ = write!(x, r#"<table:table-cell table:style-name="{style}" office:value-type="string">"#);
    for line in text.split('\n') {
        let _ = write!(x, "<text:p>{}</text:p>", escape(&french(line)));
    }
    x.push_str("</table:table-cell>");
}

/// A valid, unique sheet name.
fn sheet_name(wanted: &str, used: &mut BTreeSet<String>) -> String {
    let clean: String = wanted
        .chars()
        .map(|c| if matches!(c, '[' | ']' | '*' | '?' | ':' | '/' | '\\' | '\'') { '-' } else { c })
        .take(31)
        .collect();
    let base = if clean.trim().is_empty() { "Feuille".to_string() } else { clean.trim().to_string() };
    let mut name = base.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        let suffix = format!(" ({n})");
        name = format!("{}{suffix}", base.chars().take(31 - suffix.chars().count()).collect::<String>());
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::read_back::{ods_sheets, part};

    fn book() -> Spreadsheet {
        Spreadsheet {
            title: "Registre & test".into(),
            sheets: vec![
                Sheet {
                    name: "Liste des traitements".into(),
                    column_widths_cm: vec![6.0, 3.0],
                    rows: vec![
                        vec![Cell::header("Nom"), Cell::header("Comptes")],
                        vec![Cell::text("Messagerie <interne>\nligne 2"), Cell::Integer(1200)],
                        vec![],
                        vec![Cell::Euros(-123456), Cell::Date("2026-11-23".into()), Cell::Number(0.5), Cell::Empty],
                    ],
                },
                Sheet { name: "Liste des traitements".into(), column_widths_cm: vec![], rows: vec![] },
            ],
        }
    }

    #[test]
    fn ods_starts_with_its_stored_mimetype() {
        let ods = to_ods(&book());
        assert_eq!(&ods[30..38], b"mimetype");
        assert_eq!(&ods[38..38 + ODS_MIME.len()], ODS_MIME.as_bytes());
    }

    #[test]
    fn ods_cells_read_back_with_types_and_unique_sheet_names() {
        let sheets = ods_sheets(&to_ods(&book()));
        assert_eq!(sheets.len(), 2);
        assert_eq!(sheets[0].0, "Liste des traitements");
        assert_eq!(sheets[1].0, "Liste des traitements (2)");
        let rows = &sheets[0].1;
        assert_eq!(rows[0], ["Nom", "Comptes"]);
        assert_eq!(rows[1], ["Messagerie <interne>\nligne 2", "1200"]);
        assert_eq!(rows[2], [""]);
        assert_eq!(rows[3], ["-1234.56", "23/11/2026", "0.5", ""]);
    }

    // A count shows as a French reader writes it (« 8 410 », as amounts), its value unchanged:
    // the text a reader that does not format shows, and the grouping style a spreadsheet applies.
    #[test]
    fn numbers_show_in_groups_of_three_with_their_value_as_is() {
        let content = part(&to_ods(&book()), "content.xml");
        let count =
            "table:style-name=\"ceI\" office:value-type=\"float\" office:value=\"1200\"><text:p>1\u{a0}200</text:p>";
        assert!(content.contains(count), "{content}");
        assert!(content.contains(r#"office:value="0.5"><text:p>0,5</text:p>"#), "{content}");
        assert!(content.contains(r#"<number:number-style style:name="N0"><number:number number:decimal-places="0" number:min-integer-digits="1" number:grouping="true"/>"#));
        assert_eq!(number_shown(1234567.25), "1\u{a0}234\u{a0}567,25");
        assert_eq!(number_shown(-8410.0), "-8\u{a0}410");
    }

    #[test]
    fn ods_text_cells_are_set_in_french_typography_but_not_sheet_names_nor_values() {
        let book = Spreadsheet {
            title: "Registre : 2026".into(),
            sheets: vec![Sheet {
                name: "Coûts 2 000 €".into(),
                column_widths_cm: vec![],
                rows: vec![vec![Cell::header("Total : 40 €"), Cell::text("n° 3 ; « oui »"), Cell::Euros(123456)]],
            }],
        };
        let ods = to_ods(&book);
        let sheets = ods_sheets(&ods);
        assert_eq!(sheets[0].0, "Coûts 2 000 €", "a sheet name is what formulas cite");
        assert_eq!(sheets[0].1[0], ["Total\u{202f}: 40\u{a0}€", "n°\u{a0}3\u{202f}; «\u{202f}oui\u{202f}»", "1234.56"]);
        let content = part(&ods, "content.xml");
        assert!(content.contains("office:value=\"1234.56\"><text:p>1\u{a0}234,56\u{a0}€</text:p>"), "{content}");
        assert!(part(&ods, "meta.xml").contains("<dc:title>Registre\u{202f}: 2026</dc:title>"));
    }

    #[test]
    fn ods_is_deterministic() {
        assert_eq!(to_ods(&book()), to_ods(&book()));
    }

    #[test]
    fn ods_prints_landscape_fitted_to_the_width_with_its_first_row_repeated_and_keeps_formulas() {
        let mut b = book();
        b.sheets[0].rows.push(vec![Cell::EurosFormula { formula: "of:=[.B2]*2".into(), cents: 240000 }]);
        let ods = to_ods(&b);
        let (styles, content) = (part(&ods, "styles.xml"), part(&ods, "content.xml"));
        assert!(
            styles.contains(r#"style:print-orientation="landscape""#) && styles.contains(r#"style:scale-to-X="1""#)
        );
        assert!(content.contains(r#"<table:table table:name="Liste des traitements" table:style-name="ta1"><table:table-column table:style-name="co6000"/><table:table-column table:style-name="co3000"/><table:table-column table:style-name="co4000"/><table:table-column table:style-name="co4000"/><table:table-header-rows><table:table-row>"#), "{content}");
        assert!(content.contains(
            r#"table:formula="of:=[.B2]*2" office:value-type="currency" office:currency="EUR" office:value="2400.00""#
        ));
        assert_eq!(ods_sheets(&ods)[0].1[4], ["2400.00"]);
    }

    // A count computed by a formula keeps it, with its value cached and shown as a count.
    #[test]
    fn a_count_formula_keeps_its_formula_and_caches_its_value() {
        let mut b = book();
        b.sheets[0].rows.push(vec![Cell::IntegerFormula { formula: "of:=SUM([.C2:.C3])".into(), value: 1250 }]);
        let content = part(&to_ods(&b), "content.xml");
        let cell = r#"<table:table-cell table:style-name="ceI" table:formula="of:=SUM([.C2:.C3])" office:value-type="float" office:value="1250"><text:p>1"#;
        assert!(content.contains(&format!("{cell}\u{a0}250</text:p></table:table-cell>")), "{content}");
    }

    // A decimal computed by a formula keeps it, quotes escaped, with its value cached and shown
    // with a decimal comma.
    #[test]
    fn a_decimal_formula_keeps_its_formula_and_caches_its_value() {
        let mut b = book();
        let formula = "of:=ROUND([$'Quantités'.J5]*30/12;2)".to_string();
        b.sheets[0].rows.push(vec![Cell::NumberFormula { formula, value: 1234.5 }]);
        let content = part(&to_ods(&b), "content.xml");
        let cell = r#"<table:table-cell table:style-name="ceN" table:formula="of:=ROUND([$&apos;Quantités&apos;.J5]*30/12;2)" office:value-type="float" office:value="1234.5"><text:p>1"#;
        assert!(content.contains(&format!("{cell}\u{a0}234,5</text:p></table:table-cell>")), "{content}");
    }
}
