//! ODS exports (filled after merging the shared `documents::ods` writer).

use super::derive::Register;

pub fn register(_r: &Register) -> Vec<u8> {
    Vec::new()
}

pub fn table(_title: &str, _header: &[&str], _rows: &[Vec<String>]) -> Vec<u8> {
    Vec::new()
}
