//! CSV exports: `;`-separated, every cell neutralised against formula
//! injection (OWASP "CSV injection") before it reaches a spreadsheet.

use std::borrow::Cow;

/// A cell that a spreadsheet would read as a formula (`=`, `+`, `-`, `@` first, or after
/// white space a spreadsheet may trim: spaces, no-break spaces, line breaks; or a leading
/// tab or CR) is prefixed with `'`, which spreadsheets show as text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let starts_blank = cell.starts_with(['\t', '\r', '\n']);
    let first_shown = cell.trim_start_matches(char::is_whitespace).chars().next();
    if starts_blank || matches!(first_shown, Some('=' | '+' | '-' | '@')) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A header row and data rows as CSV; with `bom`, UTF-8 with BOM (for spreadsheets
/// that otherwise guess the encoding).
pub fn write<R, C>(header: &[&str], rows: R, bom: bool) -> Vec<u8>
where
    R: IntoIterator<Item = Vec<C>>,
    C: AsRef<str>,
{
    let mut out = if bom { "\u{feff}".as_bytes().to_vec() } else { Vec::new() };
    {
        let mut w = csv::WriterBuilder::new().delimiter(b';').from_writer(&mut out);
        w.write_record(header.iter().map(|h| neutralise(h).into_owned())).expect("in-memory CSV");
        for row in rows {
            w.write_record(row.iter().map(|c| neutralise(c.as_ref()).into_owned())).expect("in-memory CSV");
        }
        w.flush().expect("in-memory CSV");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_formulas_are_prefixed_with_a_quote() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\";\"clic\")", "'=HYPERLINK(\"http://x\";\"clic\")"),
            ("+33 1 23", "'+33 1 23"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("\u{a0}=cmd|x", "'\u{a0}=cmd|x"),
            (" =1+1", "' =1+1"),
            ("\n=2+2", "'\n=2+2"),
            ("\u{2003}@SUM(A1)", "'\u{2003}@SUM(A1)"),
            (" École", " École"),
            ("École", "École"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutralise(cell), shown);
        }
    }

    #[test]
    fn every_cell_of_a_written_file_is_neutralised() {
        let rows = vec![vec!["=1+1".to_string(), "ok".to_string()]];
        let out = String::from_utf8(write(&["a", "b"], rows, true)).unwrap();
        assert_eq!(out, "\u{feff}a;b\n'=1+1;ok\n");
    }
}
