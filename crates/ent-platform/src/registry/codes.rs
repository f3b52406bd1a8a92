//! Validation of the French public identifiers the registry relies on.
//!
//! Every parser normalises its input (trims, upper-cases, drops the spaces people
//! type inside SIREN/SIRET) and returns a precise, French error message.

use std::fmt;

/// Why a code was refused; `Display` gives the message shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    /// Wrong length or characters, with the expected shape.
    Shape { kind: &'static str, value: String, expected: &'static str },
    /// The UAI check letter does not match its seven digits.
    UaiCheckLetter { value: String, expected: char },
    /// A SIREN/SIRET fails the Luhn check.
    Luhn { kind: &'static str, value: String },
    /// Well formed but not an existing département.
    UnknownDepartement { value: String },
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Shape { kind, value, expected } => {
                write!(f, "{kind} « {value} » invalide : attendu {expected}")
            }
            CodeError::UaiCheckLetter { value, expected } => {
                write!(f, "UAI « {value} » invalide : la lettre de contrôle devrait être « {expected} »")
            }
            CodeError::Luhn { kind, value } => {
                write!(f, "{kind} « {value} » invalide : la clé de contrôle (Luhn) est fausse")
            }
            CodeError::UnknownDepartement { value } => {
                write!(f, "code département « {value} » inconnu (01 à 95, 2A, 2B, 971 à 978, 986 à 988)")
            }
        }
    }
}

impl std::error::Error for CodeError {}

const UAI_LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

/// The check letter of a UAI whose seven leading digits are `n`.
pub fn uai_check_letter(n: u32) -> char {
    UAI_LETTERS[(n % 23) as usize] as char
}

/// A UAI: 7 digits and a check letter, case-insensitive; returned upper-case.
pub fn parse_uai(input: &str) -> Result<String, CodeError> {
    let value = input.trim().to_ascii_uppercase();
    let bytes = value.as_bytes();
    let shaped = bytes.len() == 8 && bytes[..7].iter().all(u8::is_ascii_digit) && bytes[7].is_ascii_uppercase();
    if !shaped {
        return Err(CodeError::Shape { kind: "UAI", value, expected: "7 chiffres suivis d'une lettre (ex. 0940176F)" });
    }
    let digits: u32 = value[..7].parse().expect("seven ascii digits");
    let expected = uai_check_letter(digits);
    if bytes[7] as char != expected {
        return Err(CodeError::UaiCheckLetter { value, expected });
    }
    Ok(value)
}

/// The Luhn check digit to append to `payload`. Leading zeros do not change it,
/// so the number can be handled as an integer.
pub fn luhn_check_digit(mut payload: u64) -> u64 {
    let mut sum = 0;
    let mut double = true; // the rightmost payload digit is doubled
    while payload > 0 {
        let mut d = payload % 10;
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
        payload /= 10;
    }
    (10 - sum % 10) % 10
}

/// Whether `digits` (ASCII digits, 19 at most) end with their Luhn check digit.
fn luhn_valid(digits: &str) -> bool {
    let n: u64 = digits.parse().expect("checked digits");
    luhn_check_digit(n / 10) == n % 10
}

fn parse_luhn_number(input: &str, kind: &'static str, len: usize, expected: &'static str) -> Result<String, CodeError> {
    let value: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Shape { kind, value, expected });
    }
    if !luhn_valid(&value) {
        return Err(CodeError::Luhn { kind, value });
    }
    Ok(value)
}

/// A SIREN: 9 digits with a valid Luhn key (spaces allowed in input).
pub fn parse_siren(input: &str) -> Result<String, CodeError> {
    parse_luhn_number(input, "SIREN", 9, "9 chiffres")
}

/// A SIRET: 14 digits with a valid Luhn key (spaces allowed in input).
///
/// La Poste's establishments (SIREN 356000000) use a different key; they are
/// not bodies we register, so the plain Luhn rule is applied.
pub fn parse_siret(input: &str) -> Result<String, CodeError> {
    parse_luhn_number(input, "SIRET", 14, "14 chiffres")
}

/// A département code: `01`–`95` (without `20`), `2A`, `2B`, `971`–`976`, and the codes the
/// INSEE gives the collectivités d'outre-mer that have schools of the Éducation nationale's
/// annuaire: `977` Saint-Barthélemy, `978` Saint-Martin, `986` Wallis-et-Futuna, `987`
/// Polynésie française, `988` Nouvelle-Calédonie.
///
/// The annuaire writes them on three characters (`094`, `02A`): the leading
/// zero is dropped.
pub fn parse_departement(input: &str) -> Result<String, CodeError> {
    let upper = input.trim().to_ascii_uppercase();
    let value = match upper.strip_prefix('0') {
        Some(rest) if rest.len() == 2 => rest.to_string(),
        _ => upper,
    };
    let known = match value.as_str() {
        "2A" | "2B" => true,
        v if v.len() == 2 && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = v.parse().expect("digits");
            (1..=95).contains(&n) && n != 20
        }
        v if v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = v.parse().expect("digits");
            (971..=978).contains(&n) || (986..=988).contains(&n)
        }
        _ => false,
    };
    if known {
        Ok(value)
    } else {
        Err(CodeError::UnknownDepartement { value })
    }
}

/// A commune INSEE code: 5 characters, a département prefix and digits
/// (`94034`, `2A004`, `97411`, `98818`).
pub fn parse_insee_commune(input: &str) -> Result<String, CodeError> {
    let value = input.trim().to_ascii_uppercase();
    let shape_error = || CodeError::Shape {
        kind: "code INSEE",
        value: value.clone(),
        expected: "5 caractères : département puis numéro de commune (ex. 94034, 2A004)",
    };
    if value.len() != 5 || !value.is_ascii() {
        return Err(shape_error());
    }
    let (dept, rest) = value.split_at(overseas_prefix_len(&value));
    if !rest.bytes().all(|b| b.is_ascii_digit()) || parse_departement(dept).is_err() {
        return Err(shape_error());
    }
    Ok(value)
}

/// The SIREN the INSEE numbers a commune under: `21`, its département on three digits
/// (`940`, `200` for Corse, `971`), its number in the département on three digits, the Luhn key
/// (Fresnes, 94034: 219400348). `None` where the rule gives none: outside the départements
/// (collectivités d'outre-mer, whose communes are numbered otherwise) or for a code
/// [`parse_insee_commune`] refuses. A commune created since the numbering (a commune nouvelle,
/// 200…) may hold another SIREN, which the registry then records on the commune.
pub fn commune_siren(insee: &str) -> Option<String> {
    let insee = parse_insee_commune(insee).ok()?;
    let (departement, number) = insee.split_at(overseas_prefix_len(&insee));
    let departement = match departement {
        "2A" | "2B" => "200".to_string(),
        d if d.len() == 2 => format!("{d}0"),
        d if ("971"..="976").contains(&d) => d.to_string(),
        _ => return None,
    };
    let payload: u64 = format!("21{departement}{number:0>3}").parse().ok()?;
    Some(format!("{payload}{}", luhn_check_digit(payload)))
}

/// The département a commune belongs to, from its INSEE code.
pub fn departement_of_commune(insee: &str) -> &str {
    &insee[..overseas_prefix_len(insee)]
}

/// The académie a département belongs to (Code_academie of the Éducation nationale's annuaire):
/// fixed by decree, so a row naming another is incoherent. `None` for a code
/// [`parse_departement`] refuses. The collectivités d'outre-mer: Saint-Barthélemy and
/// Saint-Martin are of the académie de Guadeloupe; Nouvelle-Calédonie (40), Polynésie
/// française (41) and Wallis-et-Futuna (42) have a vice-rectorat with its own code.
pub fn academie_of_departement(departement: &str) -> Option<&'static str> {
    let academie = match departement {
        "75" => "01",
        "04" | "05" | "13" | "84" => "02",
        "25" | "39" | "70" | "90" => "03",
        "24" | "33" | "40" | "47" | "64" => "04",
        "03" | "15" | "43" | "63" => "06",
        "21" | "58" | "71" | "89" => "07",
        "07" | "26" | "38" | "73" | "74" => "08",
        "59" | "62" => "09",
        "01" | "42" | "69" => "10",
        "11" | "30" | "34" | "48" | "66" => "11",
        "54" | "55" | "57" | "88" => "12",
        "16" | "17" | "79" | "86" => "13",
        "22" | "29" | "35" | "56" => "14",
        "67" | "68" => "15",
        "09" | "12" | "31" | "32" | "46" | "65" | "81" | "82" => "16",
        "44" | "49" | "53" | "72" | "85" => "17",
        "18" | "28" | "36" | "37" | "41" | "45" => "18",
        "08" | "10" | "51" | "52" => "19",
        "02" | "60" | "80" => "20",
        "19" | "23" | "87" => "22",
        "06" | "83" => "23",
        "77" | "93" | "94" => "24",
        "78" | "91" | "92" | "95" => "25",
        "2A" | "2B" => "27",
        "974" => "28",
        "972" => "31",
        "971" | "977" | "978" => "32",
        "973" => "33",
        "988" => "40",
        "987" => "41",
        "986" => "42",
        "976" => "43",
        "14" | "27" | "50" | "61" | "76" => "70",
        _ => return None,
    };
    Some(academie)
}

/// Whether `uai` (as [`parse_uai`] returns it) is numbered in `departement`: its three leading
/// digits are the département's code (`094`, `974`), `620`/`720` for Corse-du-Sud and
/// Haute-Corse; the schools of Saint-Barthélemy and Saint-Martin may keep the Guadeloupe
/// numbering (`971`), those of Nouvelle-Calédonie and Polynésie française are numbered by their
/// vice-rectorat (`983`, `984`).
pub fn uai_in_departement(uai: &str, departement: &str) -> bool {
    let prefix = uai.get(..3).unwrap_or_default();
    let own = match departement {
        "2A" => "620",
        "2B" => "720",
        _ => departement,
    };
    prefix.strip_prefix('0') == Some(own)
        || prefix == own
        || matches!((departement, prefix), ("977" | "978", "971") | ("988", "983") | ("987", "984"))
}

/// Every département code [`parse_departement`] accepts, as it returns them (`01`, `2A`, `974`).
pub fn departements() -> impl Iterator<Item = String> {
    let metropole = (1..=95).filter(|n| *n != 20).map(|n| format!("{n:02}"));
    let corse = ["2A", "2B"].into_iter().map(str::to_string);
    let outre_mer = (971..=978).chain(986..=988).map(|n| n.to_string());
    metropole.chain(corse).chain(outre_mer)
}

/// The three leading digits of the UAIs numbered in `departement` ([`uai_in_departement`]):
/// `094` for `94`, `620` for `2A`, `977` and `971` for `977`.
pub fn uai_prefixes(departement: &str) -> Vec<String> {
    (0..1000).map(|n| format!("{n:03}")).filter(|p| uai_in_departement(&format!("{p}0000A"), departement)).collect()
}

/// Overseas INSEE codes (`97…`, `98…`) name their département or collectivité with three
/// characters, the others with two.
fn overseas_prefix_len(insee: &str) -> usize {
    if insee.starts_with("97") || insee.starts_with("98") {
        3
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communes_sirens_follow_their_insee_codes() {
        assert_eq!(commune_siren("94034").as_deref(), Some("219400348"));
        assert_eq!(commune_siren("92012").as_deref(), Some("219200128"));
        assert_eq!(commune_siren("2A004").as_deref(), Some("212000046"));
        assert_eq!(commune_siren("97101").map(|s| s.starts_with("21971001")), Some(true));
        for siren in ["94034", "2B033", "97411"].iter().filter_map(|c| commune_siren(c)) {
            assert!(parse_siren(&siren).is_ok(), "{siren}");
        }
        for none in ["98818", "97701", "9403", "ABCDE"] {
            assert_eq!(commune_siren(none), None, "{none}");
        }
    }

    #[test]
    fn the_departements_listed_are_those_that_parse() {
        let listed: Vec<String> = departements().collect();
        let numbers = (0..1000).flat_map(|n| [format!("{n:02}"), format!("{n:03}")]);
        let parsed: std::collections::BTreeSet<String> =
            numbers.chain(["2A", "2B"].map(String::from)).filter_map(|d| parse_departement(&d).ok()).collect();
        assert_eq!(listed.iter().cloned().collect::<std::collections::BTreeSet<_>>(), parsed);
        assert_eq!(listed.len(), parsed.len(), "each once");
        assert_eq!(uai_prefixes("94"), ["094"]);
        assert_eq!(uai_prefixes("2B"), ["720"]);
        assert_eq!(uai_prefixes("977"), ["971", "977"]);
    }

    #[test]
    fn real_uais_from_the_val_de_marne_sample_are_valid() {
        for uai in ["0940176F", "0940198E", "0940204L", "0940209S", "0941033m"] {
            assert_eq!(parse_uai(uai).unwrap(), uai.to_ascii_uppercase());
        }
    }

    #[test]
    fn corsican_uais_are_uais_of_2a_and_2b() {
        for (uai, departement) in [("6200001G", "2A"), ("7200001n", "2B")] {
            let parsed = parse_uai(uai).unwrap();
            assert_eq!(parsed, uai.to_ascii_uppercase());
            assert!(uai_in_departement(&parsed, departement), "{uai}");
            assert!(!uai_in_departement(&parsed, "62") && !uai_in_departement(&parsed, "72"), "{uai}");
        }
    }

    #[test]
    fn uai_check_letter_known_values() {
        assert_eq!(uai_check_letter(0), 'A');
        assert_eq!(uai_check_letter(22), 'Z');
        assert_eq!(uai_check_letter(23), 'A');
        // 0940001 = 23 * 40869 + 14 → 'R' (I, O and Q are skipped).
        assert_eq!(uai_check_letter(940_001), 'R');
        // Real UAI 0010001W.
        assert_eq!(uai_check_letter(10_001), 'W');
    }

    #[test]
    fn uai_with_wrong_letter_names_the_expected_one() {
        let err = parse_uai("0940176G").unwrap_err();
        assert_eq!(err, CodeError::UaiCheckLetter { value: "0940176G".into(), expected: 'F' });
        assert!(err.to_string().contains("« F »"));
    }

    #[test]
    fn uai_of_wrong_shape_is_refused() {
        for bad in ["", "094017F", "09401766F", "094017AF", "09401767"] {
            assert!(matches!(parse_uai(bad), Err(CodeError::Shape { .. })), "{bad}");
        }
    }

    #[test]
    fn siren_and_siret_follow_luhn() {
        assert_eq!(parse_siren("219 400 348").unwrap(), "219400348");
        assert_eq!(parse_siret("21940034800195").unwrap(), "21940034800195");
        assert!(matches!(parse_siren("219400349"), Err(CodeError::Luhn { .. })));
        assert!(matches!(parse_siret("21940034800196"), Err(CodeError::Luhn { .. })));
        assert!(matches!(parse_siren("21940034"), Err(CodeError::Shape { .. })));
        assert!(matches!(parse_siret("2194003480019A"), Err(CodeError::Shape { .. })));
    }

    #[test]
    fn departement_codes_cover_corsica_and_overseas() {
        assert_eq!(parse_departement("094").unwrap(), "94");
        assert_eq!(parse_departement("02a").unwrap(), "2A");
        assert_eq!(parse_departement("2B").unwrap(), "2B");
        assert_eq!(parse_departement("971").unwrap(), "971");
        assert_eq!(parse_departement("01").unwrap(), "01");
        // The collectivités d'outre-mer with schools: Saint-Barthélemy to Nouvelle-Calédonie.
        for com in ["977", "978", "986", "987", "988"] {
            assert_eq!(parse_departement(com).unwrap(), com);
        }
        for bad in ["20", "00", "96", "979", "984", "985", "989", "970", "2C", "9"] {
            assert!(parse_departement(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_departement_has_its_academie() {
        let departements = (1..=95).filter(|n| *n != 20).map(|n| format!("{n:02}"));
        let others = ["2A", "2B", "971", "972", "973", "974", "976", "977", "978", "986", "987", "988"];
        for dept in departements.chain(others.map(String::from)) {
            assert!(parse_departement(&dept).is_ok(), "{dept}");
            assert!(academie_of_departement(&dept).is_some(), "{dept}");
        }
        assert_eq!(academie_of_departement("94"), Some("24"));
        assert_eq!(academie_of_departement("69"), Some("10"));
        assert_eq!(academie_of_departement("2B"), Some("27"));
        assert_eq!(academie_of_departement("978"), Some("32"));
        assert_eq!(academie_of_departement("20"), None);
    }

    #[test]
    fn a_uai_is_numbered_in_its_departement() {
        for (uai, dept) in [("0940176F", "94"), ("6200999K", "2A"), ("7200001A", "2B"), ("9760999B", "976")] {
            assert!(uai_in_departement(uai, dept), "{uai} {dept}");
        }
        assert!(uai_in_departement("9781001X", "978") && uai_in_departement("9711001X", "978"));
        for (uai, dept) in [("0690001A", "94"), ("0940176F", "69"), ("6200999K", "2B"), ("9740001A", "976")] {
            assert!(!uai_in_departement(uai, dept), "{uai} {dept}");
        }
    }

    #[test]
    fn insee_codes_accept_corsica_and_overseas() {
        assert_eq!(parse_insee_commune("94034").unwrap(), "94034");
        assert_eq!(parse_insee_commune("2a004").unwrap(), "2A004");
        assert_eq!(parse_insee_commune("97411").unwrap(), "97411");
        assert_eq!(departement_of_commune("97411"), "974");
        assert_eq!(departement_of_commune("2A004"), "2A");
        // Saint-Martin (académie de Guadeloupe), Nouméa, Papeete, Wallis.
        for (insee, dept) in [("97801", "978"), ("98818", "988"), ("98735", "987"), ("98611", "986")] {
            assert_eq!(parse_insee_commune(insee).unwrap(), insee);
            assert_eq!(departement_of_commune(insee), dept);
        }
        for bad in ["9403", "940345", "2C004", "20004", "9A034", "97A11", "98411", "97901"] {
            assert!(parse_insee_commune(bad).is_err(), "{bad}");
        }
    }
}
