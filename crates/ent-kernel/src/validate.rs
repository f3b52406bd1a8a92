//! Field checks shared by every write, whatever the way in (API, CLI, import):
//! e-mail addresses are RFC 5322 mailboxes as lettre parses them, one-line text
//! has no control character at all (nor a bidirectional override), multi-line text
//! keeps its line breaks and tabs only (no bidirectional control either); dates are ISO `AAAA-MM-JJ`; required text has a maximum length.

use chrono::NaiveDate;

use crate::clock::french_date;
use crate::error::{Checks, Problem};

/// The address, trimmed, if it parses as a bare RFC 5322 address (`local@domain`).
/// A DNS label (RFC 1123, a Kubernetes object name): lowercase ASCII letters, digits and
/// hyphens, at most `max` characters, neither starting nor ending with a hyphen.
pub fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1035 label (a Kubernetes Service name): a DNS label of at most 63 characters
/// that starts with a letter.
pub fn is_dns_1035_label(s: &str) -> bool {
    is_dns_label(s, 63) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A fully qualified host name: at least two DNS labels, 253 characters at most, not an IP address.
pub fn is_hostname(s: &str) -> bool {
    // A top-level label of digits only is an IP address, which no Ingress rule or certificate takes.
    let named_top = s.rsplit('.').next().is_some_and(|top| !top.bytes().all(|b| b.is_ascii_digit()));
    s.len() <= 253 && s.contains('.') && named_top && s.split('.').all(|l| is_dns_label(l, 63))
}

/// An e-mail address: an RFC 5322 mailbox of the dot-atom form (no quoted local part, which
/// could carry spaces or text an actor's name is read by, such as `"x pour user:y"@z.fr`).
pub fn email(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    let dot_atom = !trimmed.contains(['"', '\\']) && !trimmed.chars().any(char::is_whitespace);
    match trimmed.parse::<lettre::Address>() {
        Ok(address) if dot_atom && !value.chars().any(line_forbids) => Ok(address.to_string()),
        _ => Err(format!("adresse électronique invalide : « {} »", printable(trimmed))),
    }
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069):
/// invisible, they reorder what a page or a document shows around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The Unicode line and paragraph separators (U+2028, U+2029): line breaks to a browser, a
/// document or a JSON reader, though not control characters.
fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// What one-line text refuses: a control character (C0, DEL, C1: CR, LF and tab
/// included), a line or paragraph separator, or a bidirectional control.
pub fn line_forbids(c: char) -> bool {
    c.is_control() || is_separator(c) || is_bidi_control(c)
}

/// One-line text (names, subjects, numbers, hostnames): no control character,
/// CR, LF and tab included, nor a bidirectional control.
pub fn line(value: &str) -> Result<(), String> {
    if value.chars().any(line_forbids) {
        Err("caractère de contrôle interdit (retour à la ligne, tabulation, contrôle de sens d'écriture…) : \
             le texte tient sur une ligne"
            .into())
    } else {
        Ok(())
    }
}

/// The bytes a percent-encoded path or query string stands for (a `%` not followed by two
/// hexadecimal digits stays as it is).
fn percent_decoded(encoded: &str) -> Vec<u8> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%').then(|| encoded.get(i + 1..i + 3)).flatten();
        match escaped.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded
}

/// A request path (ids, codes, slugs), percent-encoded: once decoded, UTF-8 one-line text
/// ([`line`]). A NUL in an id would reach the database (PostgreSQL refuses it in text), a line
/// break the logs.
pub fn address_path(encoded: &str) -> Result<(), String> {
    let text = String::from_utf8(percent_decoded(encoded))
        .map_err(|_| "adresse invalide : encodage autre que UTF-8".to_string())?;
    line(&text).map_err(|_| "adresse invalide : caractère de contrôle (nul, retour à la ligne, tabulation…)".into())
}

/// A query string, percent-encoded: no NUL once decoded (PostgreSQL refuses one in text). The
/// rest is each parameter's own check: a search may hold a tab pasted from a spreadsheet.
pub fn address_query(encoded: &str) -> Result<(), String> {
    if percent_decoded(encoded).contains(&0) {
        Err("adresse invalide : caractère nul dans les paramètres".into())
    } else {
        Ok(())
    }
}

/// Whether a character may appear in multi-line text (descriptions, comments): line
/// breaks and tabs, but neither another control character nor a bidirectional control.
fn multiline_char(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\t') || is_separator(c) || !line_forbids(c)
}

/// Multi-line text: line breaks and tabs only, no other control character and no
/// bidirectional control (it would reorder what a register or an e-mail shows).
pub fn multiline(value: &str) -> Result<(), String> {
    if value.chars().all(multiline_char) {
        Ok(())
    } else {
        Err("caractère de contrôle interdit (contrôle de sens d'écriture, échappement…)".into())
    }
}

/// The value with its control characters (bidirectional ones included) shown as `\u{..}`,
/// for error messages.
pub fn printable(value: &str) -> String {
    value.chars().flat_map(|c| if line_forbids(c) { c.escape_unicode().collect() } else { vec![c] }).collect()
}

/// Every string of a JSON document (keys included) is multi-line text at worst;
/// returns the path of the first offending one (`/members/2/name`).
pub fn json_controls(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => multiline(s).err().map(|_| String::new()),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| json_controls(item).map(|path| format!("/{i}{path}")))
        }
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if multiline(key).is_err() {
                return Some(format!("/{}", printable(key)));
            }
            json_controls(item).map(|path| format!("/{key}{path}"))
        }),
        _ => None,
    }
}

/// A message of serde (JSON or YAML: `missing field`, `unknown field … expected one of`,
/// `invalid type`, a syntax error, `at line 3, column 1`) in French, the field names, values,
/// line and column kept; what it does not know stays as it is. The one place a rejected
/// body or file becomes words for the user (problem+json `detail`, CLI errors).
pub fn serde_in_french(message: &str) -> String {
    use regex::Regex;
    use std::sync::LazyLock;
    static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        [
            (r"Failed to (?:parse the request body as JSON|deserialize the JSON body into the target type): ", ""),
            (r"Failed to deserialize (?:query string|the path|path params)[^:]*: ", ""),
            (r"invalid digit found in string", "nombre invalide"),
            (r"number too large to fit in target type", "nombre trop grand"),
            (r"cannot parse integer from empty string", "nombre attendu"),
            (r"missing field `([^`]*)`", "champ obligatoire absent : « $1 »"),
            (
                r"unknown field `([^`]*)`, expected one of ([^\n]*?)(?P<at> at line|,? line \d|$)",
                "champ inconnu « $1 » (champs possibles : $2)$at",
            ),
            (
                r"unknown field `([^`]*)`, expected (`[^`]*`) or (`[^`]*`)",
                "champ inconnu « $1 » (champs possibles : $2, $3)",
            ),
            (r"unknown field `([^`]*)`, expected (`[^`]*`)", "champ inconnu « $1 » (champ possible : $2)"),
            (r"unknown field `([^`]*)`, there are no fields", "champ inconnu « $1 » (aucun champ attendu)"),
            (r"unknown field `([^`]*)`", "champ inconnu « $1 »"),
            (
                r"unknown variant `([^`]*)`, expected one of ([^\n]*?)(?P<at> at line|,? line \d|$)",
                "valeur inconnue « $1 » (valeurs possibles : $2)$at",
            ),
            (
                r"unknown variant `([^`]*)`, expected (`[^`]*`) or (`[^`]*`)",
                "valeur inconnue « $1 » (valeurs possibles : $2, $3)",
            ),
            (r"unknown variant `([^`]*)`, expected (`[^`]*`)", "valeur inconnue « $1 » (valeur possible : $2)"),
            (r"provided string was not [`']true[`'] or [`']false[`']", "true ou false attendu"),
            (r"duplicate field `([^`]*)`", "champ « $1 » en double"),
            (r"invalid type: ([^,]*), expected ", "type invalide ($1), attendu : "),
            (r"invalid value: ([^,]*), expected ", "valeur invalide ($1), attendu : "),
            (r"invalid length (\d+), expected ", "longueur invalide ($1), attendu : "),
            (r"key must be a string", "une clé doit être un texte entre guillemets"),
            (r"EOF while parsing an? \w+", "le texte s'arrête avant la fin du document"),
            (r"trailing characters", "caractères en trop après le document"),
            (r"trailing comma", "virgule en trop"),
            (r"expected value", "valeur attendue"),
            (r"expected `([^`]*)` or `([^`]*)`", "« $1 » ou « $2 » attendu"),
            (r"expected `([^`]*)`", "« $1 » attendu"),
            (r",? at line (\d+),? column (\d+)", " (ligne $1, colonne $2)"),
        ]
        .into_iter()
        .map(|(pattern, french)| (Regex::new(pattern).expect("a valid pattern"), french))
        .collect()
    });
    let mut text = message.to_string();
    for (pattern, french) in RULES.iter() {
        text = pattern.replace_all(&text, *french).into_owned();
    }
    text.replace("expected one of", "attendu l'un de")
}

/// The first and last days a date entered on the platform may name. Dates are stored and
/// compared as `YYYY-MM-DD` text (lists filtered by a day, a deadline passed, the overlap of two
/// conventions): a year of five digits would sort before the others; none is meant anyway.
pub const DAYS: (NaiveDate, NaiveDate) =
    (NaiveDate::from_ymd_opt(2000, 1, 1).expect("a day"), NaiveDate::from_ymd_opt(2099, 12, 31).expect("a day"));

/// `day` if it lies within [`DAYS`]; the message says the bounds otherwise.
pub fn within_days(day: NaiveDate) -> Result<NaiveDate, String> {
    let (first, last) = DAYS;
    if (first..=last).contains(&day) {
        return Ok(day);
    }
    Err(format!(
        "le {} ne tombe pas entre le {} et le {} : une date se saisit dans ces années",
        french_date(&day.to_string()),
        french_date(&first.to_string()),
        french_date(&last.to_string())
    ))
}

/// An ISO date (`AAAA-MM-JJ`) of any year; an empty one is said missing, not invalid.
fn iso_date(value: &str) -> Result<NaiveDate, String> {
    if value.trim().is_empty() {
        return Err("date obligatoire : attendu AAAA-MM-JJ".into());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("date « {} » invalide : attendu AAAA-MM-JJ", printable(value)))
}

/// A date a user enters: ISO (`AAAA-MM-JJ`, an empty one said missing) and within [`DAYS`].
pub fn date(value: &str) -> Result<NaiveDate, String> {
    within_days(iso_date(value)?)
}

/// A date a user enters (see [`date`]), an invalid `field` otherwise.
pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate, Problem> {
    date(value).map_err(|message| Problem::invalid_field(field, message))
}

/// An ISO date of any year, an invalid `field` otherwise: a date read back from the store (a
/// term renewed past [`DAYS`] included), or a filter's day that a later one only widens.
pub fn parse_any_date(field: &str, value: &str) -> Result<NaiveDate, Problem> {
    iso_date(value).map_err(|message| Problem::invalid_field(field, message))
}

/// Whether `c` is a format character (Unicode general category Cf: soft hyphen, zero-width
/// space and joiners, word joiner, bidirectional marks and controls, byte order mark, tags…):
/// it shows nothing by itself.
pub fn is_format(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}' | '\u{8e2}'
        | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}')
}

/// Characters that draw nothing on their own: the fillers (Hangul, braille blank, Khmer
/// inherent vowels, the combining grapheme joiner), the variation selectors, and the
/// combining marks of the common blocks (a mark alone has no letter to sit on).
fn draws_nothing(c: char) -> bool {
    matches!(c,
        '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' | '\u{2800}' | '\u{17b4}' | '\u{17b5}' | '\u{34f}'
        | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' | '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}'
        | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Whether `value` shows nothing: empty once its white space, its format characters
/// ([`is_format`]) and the characters that draw nothing alone are taken out.
pub fn is_blank(value: &str) -> bool {
    value.chars().all(|c| c.is_whitespace() || is_format(c) || draws_nothing(c))
}

/// Text of `max` characters at most (it may be empty); the message gives the count typed.
pub fn at_most(value: &str, max: usize) -> Result<(), String> {
    let count = value.chars().count();
    if count > max {
        return Err(format!("{max} caractères au plus ({count} saisis)"));
    }
    Ok(())
}

/// Required text of `max` characters at most; returns it trimmed. The message says which
/// rule failed: missing (nothing but white space or invisible characters, see
/// [`is_blank`]), or too long (with the count typed).
pub fn text(value: &str, max: usize) -> Result<String, String> {
    let text = value.trim();
    if text.is_empty() {
        return Err("champ obligatoire".into());
    }
    if is_blank(text) {
        return Err("champ obligatoire : seuls des caractères invisibles ont été saisis".into());
    }
    at_most(value, max)?;
    Ok(text.to_string())
}

impl Checks {
    /// Records an error unless `value` is an ISO date within [`DAYS`] (see [`date`]).
    pub fn date(&mut self, field: &str, value: &str) -> Option<NaiveDate> {
        self.check(field, date(value))
    }

    /// Records an error unless `value` is required text of `max` characters at most (see
    /// [`text`]); returns it trimmed.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        self.check(field, text(value, max)).unwrap_or_else(|| value.trim().to_string())
    }

    /// Records an error unless `value` is a valid address; returns it trimmed.
    pub fn email(&mut self, field: &str, value: &str) -> Option<String> {
        self.check(field, email(value))
    }

    /// Records an error if `value` is longer than `max` characters (see [`at_most`]).
    pub fn at_most(&mut self, field: &str, value: &str, max: usize) {
        self.check(field, at_most(value, max));
    }

    /// Records an error if one-line `value` holds a control character.
    pub fn line(&mut self, field: &str, value: &str) {
        self.check(field, line(value));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_is_one_line_utf8_and_a_query_holds_no_nul_once_decoded() {
        assert!(address_path("/api/v1/tenants/ecole-1").is_ok());
        assert!(address_path("/api/v1/orgs/100%25").is_ok());
        assert!(address_path("/api/v1/support/tickets/%0A").is_err());
        assert!(address_path("/api/v1/orgs/%E2%80%AE").is_err());
        assert!(address_path("/api/v1/support/tickets/%FF").is_err());
        assert!(address_query("q=Cr%C3%A9teil&limit=5").is_ok());
        assert!(address_query("recherche=0940176F%09&q=a+b%2Fc%").is_ok());
        assert!(address_query("cursor=%00").is_err());
    }

    use super::*;

    #[test]
    fn dates_are_iso_and_text_is_required_and_bounded() {
        assert_eq!(parse_date("d", "2026-09-01").unwrap(), NaiveDate::from_ymd_opt(2026, 9, 1).unwrap());
        for bad in ["01/09/2026", "2026-02-30", "2026-9", ""] {
            let p = parse_date("d", bad).unwrap_err();
            assert!(p.detail.contains("attendu AAAA-MM-JJ") && p.errors[0].field == "d", "{bad:?}");
        }
        let mut checks = Checks::default();
        assert_eq!(checks.date("d", "2026-13-01"), None);
        assert_eq!(checks.text("t", "  ok  ", 6), "ok");
        assert_eq!(checks.text("t", "   ", 6), "");
        assert_eq!(checks.text("t", "seven!!", 6), "seven!!");
        let errors = checks.finish().unwrap_err().errors;
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["d", "t", "t"]);
        assert_eq!(errors[1].message, "champ obligatoire");
        assert_eq!(errors[2].message, "6 caractères au plus (7 saisis)");
        assert_eq!(date("").unwrap_err(), "date obligatoire : attendu AAAA-MM-JJ");
    }

    #[test]
    fn an_entered_date_lies_between_2000_and_2099_and_a_stored_one_may_not() {
        assert!(date("2000-01-01").is_ok() && date("2099-12-31").is_ok());
        for far in ["2100-01-01", "1999-12-31", "9999-12-01"] {
            let p = parse_date("deadline", far).unwrap_err();
            assert_eq!(p.errors[0].field, "deadline", "{far}");
            assert!(p.errors[0].message.contains("entre le 1er janvier 2000 et le 31 décembre 2099"), "{far}: {p:?}");
        }
        assert_eq!(
            date("2100-01-01").unwrap_err(),
            "le 1er janvier 2100 ne tombe pas entre le 1er janvier 2000 et le 31 décembre 2099 : une date se saisit \
             dans ces années"
        );
        assert_eq!(parse_any_date("end_date", "2100-01-01").unwrap(), NaiveDate::from_ymd_opt(2100, 1, 1).unwrap());
    }

    #[test]
    fn required_text_made_only_of_invisible_characters_is_missing() {
        let fillers = ["\u{3164}\u{3164}", "\u{2800}", "\u{115f}\u{1160}", "\u{ffa0}", "\u{34f}", "\u{17b4}\u{17b5}"];
        let marks = ["\u{301}\u{308}", "\u{fe0f}\u{fe0f}", "\u{e0100}", "\u{20dd}"];
        let formats = ["\u{200b}\u{200b}", "\u{ad}", " \u{feff}\u{a0}\u{2060} ", "\u{200d}\u{e0041}"];
        for blank in formats.into_iter().chain(fillers).chain(marks) {
            assert!(is_blank(blank), "{blank:?}");
            let refused = text(blank, 200).unwrap_err();
            assert!(refused.starts_with("champ obligatoire"), "{blank:?}: {refused}");
        }
        // Visible text around invisible characters is kept as typed.
        assert_eq!(text("e\u{301}t\u{ad}\u{e9}", 20).unwrap(), "e\u{301}t\u{ad}\u{e9}");
        assert_eq!(text(" \u{200b}ok ", 20).unwrap(), "\u{200b}ok");
        assert!(!is_blank("\u{1f468}\u{200d}\u{1f469}"));
        // Letters carrying marks or selectors, and scripts joined by ZWJ/ZWNJ, show something.
        for shown in ["\u{2764}\u{fe0f}", "\u{928}\u{94d}\u{200d}", "\u{645}\u{6cc}\u{200c}\u{62e}", "\u{1100}\u{1161}"]
        {
            assert!(!is_blank(shown), "{shown:?}");
        }
        assert_eq!(at_most("abc", 2).unwrap_err(), "2 caractères au plus (3 saisis)");
        assert!(at_most("", 0).is_ok());
    }

    #[test]
    fn addresses_are_rfc_5322_mailboxes_without_controls() {
        assert_eq!(email(" direction@ecole.fr ").unwrap(), "direction@ecole.fr");
        for bad in [
            "ce.0941234X@ac-creteil.fr\r\nBcc: x@y.fr",
            "a@b.fr\n",
            "pas-une-adresse",
            "a@",
            "@b.fr",
            "a b@c.fr",
            "Nom <a@b.fr>",
            "a@b@c.fr",
            "\"elu pour user:maire\"@fresnes.fr",
            "\"a\\\"b\"@c.fr",
            "",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(email("a@b.fr\r\nX").unwrap_err().contains("\\u{d}"));
        assert!(email("ce.0940176f\u{202e}@ac-creteil.fr").unwrap_err().contains("\\u{202e}"));
    }

    #[test]
    fn one_line_text_refuses_every_control_and_multi_line_keeps_breaks() {
        assert!(line("Délibération n° 2024-12").is_ok());
        assert!(line("École Jean-Moulin – אבג").is_ok());
        for bad in [
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{0}b",
            "a\u{1b}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{9f}b",
            "a\u{202a}b",
            "a\u{202e}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{2028}b",
            "a\u{2029}b",
        ] {
            assert!(line(bad).is_err(), "{bad:?} accepted");
        }
        assert!(multiline("ligne 1\u{2028}ligne 2").is_ok(), "a line break of its own kind");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert!(multiline("ligne 1\r\nligne 2\tfin").is_ok());
        assert!(multiline("a\u{1b}[31m").is_err());
        assert!(multiline("a\u{7f}").is_err());
        for bidi in ['\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}'] {
            assert!(multiline(&format!("facture{bidi}fdp.exe")).is_err(), "{bidi:?}");
        }
    }

    #[test]
    fn the_first_control_of_a_json_body_is_located() {
        let body = serde_json::json!({ "name": "ok", "members": [{ "n": "x" }, { "n": "a\u{0}" }] });
        assert_eq!(json_controls(&body).as_deref(), Some("/members/1/n"));
        assert_eq!(json_controls(&serde_json::json!({ "text": "a\nb\tc" })), None);
    }

    #[test]
    fn serde_messages_read_in_french_with_their_field_line_and_column() {
        let cases = [
            ("missing field `siren`", "champ obligatoire absent : « siren »"),
            (
                "unknown field `start_dat`, expected one of model, version, start_date at line 3, column 1",
                "champ inconnu « start_dat » (champs possibles : model, version, start_date) (ligne 3, colonne 1)",
            ),
            (
                "unknown field `hostnme`, expected one of `organisation`, `hostname` at line 1 column 40",
                "champ inconnu « hostnme » (champs possibles : `organisation`, `hostname`) (ligne 1, colonne 40)",
            ),
            (
                "missing field `deliberation_date` at line 2, column 1",
                "champ obligatoire absent : « deliberation_date » (ligne 2, colonne 1)",
            ),
            (
                "Failed to parse the request body as JSON: key must be a string at line 1 column 2",
                "une clé doit être un texte entre guillemets (ligne 1, colonne 2)",
            ),
            ("invalid type: string \"x\", expected u32", "type invalide (string \"x\"), attendu : u32"),
            ("unknown variant `lundi`, expected `mardi`", "valeur inconnue « lundi » (valeur possible : `mardi`)"),
            (
                "unknown variant `foo`, expected `level` or `tenant`",
                "valeur inconnue « foo » (valeurs possibles : `level`, `tenant`)",
            ),
            (
                "unknown field `reason`, expected `to` or `override_reason`",
                "champ inconnu « reason » (champs possibles : `to`, `override_reason`)",
            ),
            ("dry_run: provided string was not `true` or `false`", "dry_run: true ou false attendu"),
        ];
        for (english, french) in cases {
            assert_eq!(serde_in_french(english), french);
        }
    }
}
