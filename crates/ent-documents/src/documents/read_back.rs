//! Reading OpenDocument files back, for tests (here and in `entctl`'s, with the
//! `read-back` feature): the cells of a spreadsheet and the text of a text document,
//! parsed with quick-xml (which checks well-formedness). Panics on what it cannot read.

use quick_xml::events::Event;
use std::io::{Cursor, Read};

/// The XML of one part of an ODF package.
pub fn part(package: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(package)).expect("an ODF package is a zip");
    let mut xml = String::new();
    archive.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}")).read_to_string(&mut xml).expect("a part is UTF-8");
    xml
}

/// The media type stored first in the package.
pub fn mimetype(package: &[u8]) -> String {
    part(package, "mimetype")
}

fn entity(name: &str) -> char {
    match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        other => panic!("unexpected entity &{other};"),
    }
}

/// Every sheet of an `.ods` as (name, rows of cells); typed cells read as their
/// `office:value`, the others (text, dates) as their text, lines joined by `\n`.
pub fn ods_sheets(ods: &[u8]) -> Vec<(String, Vec<Vec<String>>)> {
    let xml = part(ods, "content.xml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut sheets, mut text_cell, mut paragraphs) = (Vec::<(String, Vec<Vec<String>>)>::new(), false, 0);
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("content.xml is not well-formed: {e}")) {
            Event::Eof => return sheets,
            Event::Start(e) if e.name().into_inner() == "table:table" => {
                let name =
                    e.try_get_attribute("table:name").ok().flatten().expect("a sheet has a name").value.into_owned();
                sheets.push((name, Vec::new()));
            }
            Event::Start(e) if e.name().into_inner() == "table:table-row" => last_sheet(&mut sheets).push(vec![]),
            Event::Start(e) if e.name().into_inner() == "table:table-cell" => {
                let value = e.try_get_attribute("office:value").expect("a well-formed cell");
                text_cell = value.is_none();
                paragraphs = 0;
                last_row(&mut sheets).push(value.map(|v| v.value.into_owned()).unwrap_or_default());
            }
            Event::Empty(e) if e.name().into_inner() == "table:table-cell" => last_row(&mut sheets).push(String::new()),
            Event::End(e) if e.name().into_inner() == "table:table-cell" => text_cell = false,
            Event::Start(e) if text_cell && e.name().into_inner() == "text:p" => {
                if paragraphs > 0 {
                    cell(&mut sheets).push('\n');
                }
                paragraphs += 1;
            }
            Event::Text(t) if text_cell => cell(&mut sheets).push_str(&t.xml10_content()),
            Event::GeneralRef(r) if text_cell => cell(&mut sheets).push(entity(&r.xml10_content())),
            _ => {}
        }
    }
}

/// The formulas of every sheet of an `.ods`, in the shape of [`ods_sheets`]: each cell's
/// `table:formula` (`of:=…`), empty for a cell without one.
pub fn ods_formulas(ods: &[u8]) -> Vec<Vec<Vec<String>>> {
    let xml = part(ods, "content.xml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut sheets: Vec<Vec<Vec<String>>> = Vec::new();
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("content.xml is not well-formed: {e}"));
        let (Event::Start(e) | Event::Empty(e)) = &event else {
            if matches!(event, Event::Eof) {
                return sheets;
            }
            continue;
        };
        match e.name().into_inner() {
            "table:table" => sheets.push(Vec::new()),
            "table:table-row" => sheets.last_mut().expect("a row is in a sheet").push(Vec::new()),
            "table:table-cell" => {
                let formula = e.try_get_attribute("table:formula").expect("a well-formed cell");
                let formula = formula.map(|f| {
                    f.normalized_value(quick_xml::XmlVersion::Explicit1_0).expect("an XML value").into_owned()
                });
                let row = sheets.last_mut().and_then(|s| s.last_mut()).expect("a cell is in a row");
                row.push(formula.unwrap_or_default());
            }
            _ => {}
        }
    }
}

fn last_sheet(sheets: &mut [(String, Vec<Vec<String>>)]) -> &mut Vec<Vec<String>> {
    &mut sheets.last_mut().expect("a row is in a sheet").1
}

fn last_row(sheets: &mut [(String, Vec<Vec<String>>)]) -> &mut Vec<String> {
    last_sheet(sheets).last_mut().expect("a cell is in a row")
}

fn cell(sheets: &mut [(String, Vec<Vec<String>>)]) -> &mut String {
    last_row(sheets).last_mut().expect("text is in a cell")
}

/// The text of an `.odt` (its paragraphs and headings, one per line).
pub fn odt_text(odt: &[u8]) -> String {
    let xml = part(odt, "content.xml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut text = String::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("content.xml is not well-formed: {e}")) {
            Event::Eof => return text,
            Event::End(e) if matches!(e.name().into_inner(), "text:p" | "text:h") => text.push('\n'),
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => text.push(entity(&r.xml10_content())),
            _ => {}
        }
    }
}
