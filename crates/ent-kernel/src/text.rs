//! Names folded for search and ordering: lower case, accents off ([`fold`]), in Rust and in
//! SQL ([`fold_sql`]).

/// Lower-case, accent-free form of a name, used for search and ordering.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let plain = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' | 'ì' => 'i',
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ÿ' | 'ý' => 'y',
            'ñ' => 'n',
            'œ' => {
                out.push_str("oe");
                continue;
            }
            'æ' => {
                out.push_str("ae");
                continue;
            }
            '\'' | '’' | '-' => ' ',
            other => other,
        };
        out.push(plain);
    }
    out
}

/// `text` with its first letter in capitals (« Aucune école déclarée… »), the rest as it is.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// What [`fold`] changes, as SQL `REPLACE` arguments: the letters (accented ones in both
/// cases: SQLite's `LOWER`, and PostgreSQL's in the C locale, change ASCII letters only) and
/// what each becomes.
const FOLDED: &[(&str, &str)] = &[
    ("àâäáãÀÂÄÁÃ", "a"),
    ("çÇ", "c"),
    ("éèêëÉÈÊË", "e"),
    ("îïíìÎÏÍÌ", "i"),
    ("ôöóòõÔÖÓÒÕ", "o"),
    ("ùûüúÙÛÜÚ", "u"),
    ("ÿýŸÝ", "y"),
    ("ñÑ", "n"),
    ("œŒ", "oe"),
    ("æÆ", "ae"),
    ("'’-", " "),
];

/// SQL computing [`fold`] of the text `column`, to search a column stored without a folded
/// copy (a user's name): one `REPLACE` per letter of [`FOLDED`] around `LOWER`, over a few
/// thousand rows at most.
pub fn fold_sql(column: &str) -> String {
    let letters = FOLDED.iter().flat_map(|(letters, to)| letters.chars().map(move |c| (c, *to)));
    letters.fold(format!("LOWER({column})"), |sql, (from, to)| {
        let from = if from == '\'' { "''".to_string() } else { from.to_string() };
        format!("REPLACE({sql}, '{from}', '{to}')")
    })
}

/// What stands in a log line for an e-mail address ([`without_addresses`]).
pub const ADDRESS_MASKED: &str = "(adresse masquée)";

/// `text` (an error to log: an SMTP reply often quotes its recipient) with every word holding an
/// `@` replaced by [`ADDRESS_MASKED`]; words end at spaces, brackets, quotes and punctuation
/// that an address does not hold. Personal data stays out of the central log.
pub fn without_addresses(text: &str) -> String {
    let ends = |c: char| c.is_whitespace() || "<>«»\"'()[],;:".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(if word.contains('@') { ADDRESS_MASKED } else { word });
        word.clear();
    };
    for c in text.chars() {
        if ends(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalised_raises_the_first_letter_accented_ones_too() {
        assert_eq!(capitalised("école déclarée"), "École déclarée");
        assert_eq!(capitalised("aucun compte"), "Aucun compte");
        assert_eq!(capitalised("Déjà"), "Déjà");
        assert_eq!(capitalised(""), "");
    }

    #[test]
    fn fold_removes_accents_and_case() {
        assert_eq!(fold("L'Haÿ-les-Roses"), "l hay les roses");
        assert_eq!(fold("École Œuvre"), "ecole oeuvre");
    }

    #[test]
    fn fold_sql_replaces_what_fold_changes() {
        for (letters, to) in FOLDED {
            for letter in letters.chars() {
                assert_eq!(fold(&letter.to_string()), *to, "{letter}");
            }
        }
        let sql = fold_sql("u.display_name");
        assert!(sql.starts_with("REPLACE(REPLACE(") && sql.contains("LOWER(u.display_name)"), "{sql}");
        assert!(sql.contains(", '''', ' ')"), "a quote is doubled in its literal: {sql}");
    }

    #[test]
    fn addresses_are_masked_and_the_rest_of_an_error_kept() {
        let reply =
            "envoi SMTP impossible : 550 5.1.1 <dan@ac-creteil.fr>: Recipient address rejected (ent@fresnes.fr)";
        assert_eq!(
            without_addresses(reply),
            "envoi SMTP impossible : 550 5.1.1 <(adresse masquée)>: Recipient address rejected ((adresse masquée))"
        );
        assert_eq!(without_addresses("destinataire « a.b@c » invalide"), "destinataire « (adresse masquée) » invalide");
        assert_eq!(without_addresses("connexion refusée"), "connexion refusée");
    }
}
