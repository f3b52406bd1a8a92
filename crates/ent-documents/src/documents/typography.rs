//! French typography: the no-break spaces a French reader expects, so that a line never
//! breaks between a word and its « ; : ! ? », inside « guillemets », in an amount or between a
//! number and its unit.
//!
//! - U+202F (narrow no-break space) before `; : ! ?` and `»`, after `«` (a guillemet missing its
//!   space gets one); before `;` `:` `!` `?` only an existing space is replaced, so `10:30`,
//!   `http://` or `a:b` never change;
//! - U+00A0 (no-break space, as [`super::euros`] writes amounts) as the thousands separator of
//!   `268 480,00`, between a number and its unit (`40 €`, `12,5 %`, `36 mois`, `2 Go`), between
//!   `€` and `HT`/`TTC`, after `n°`, `art.`, `article(s)`, `§` before a number or an upper-case
//!   letter (`art. L. 2113-6`).
//!
//! Addresses (`https://…`, `www.…`, `mailto:…`, e-mail addresses) are left whole. A space the
//! author wrote as a no-break one stays as written; the pass is idempotent.
//!
//! [`french`] works on plain text; [`french_markup`] on the text nodes of HTML or XML only:
//! never inside a tag, an attribute, a comment, nor in `<script>`, `<style>`, `<pre>`, `<code>`
//! or `<textarea>`; character references count as the character they stand for.

/// No-break space: thousands, units, abbreviations.
pub const NBSP: char = '\u{a0}';
/// Narrow no-break space: high punctuation and guillemets.
pub const NNBSP: char = '\u{202f}';

/// How a document's text is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Typography {
    /// French no-break spaces ([`french_markup`]): every document generated now.
    #[default]
    French,
    /// The spaces as written: the rendering of documents issued before the pass, whose bytes
    /// (and fingerprints) must not change (a convention of an earlier edition).
    AsWritten,
}

impl Typography {
    /// `markup` (a rendered HTML page or XML part) set this way.
    pub fn markup(self, markup: String) -> String {
        match self {
            Typography::French => french_markup(&markup),
            Typography::AsWritten => markup,
        }
    }
}

/// `text` (plain text) with French no-break spaces.
pub fn french(text: &str) -> String {
    let atoms: Vec<(char, &str)> = text.char_indices().map(|(at, c)| (c, &text[at..at + c.len_utf8()])).collect();
    typeset(&atoms)
}

/// `markup` with [`french`] applied to its text nodes only.
pub fn french_markup(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len() + markup.len() / 16);
    let mut rest = markup;
    while let Some(lt) = rest.find('<') {
        out.push_str(&text_node(&rest[..lt]));
        let (verbatim, after) = tag_and_raw_content(&rest[lt..]);
        out.push_str(verbatim);
        rest = after;
    }
    out.push_str(&text_node(rest));
    out
}

/// Elements whose content is not text to set.
const RAW: [&str; 5] = ["script", "style", "pre", "code", "textarea"];

/// At a `<`: the tag (or comment, or processing instruction) and, after an opening tag of a
/// [`RAW`] element, its content up to its closing tag; then what follows.
fn tag_and_raw_content(at: &str) -> (&str, &str) {
    if at.starts_with("<!--") {
        let end = at.find("-->").map_or(at.len(), |e| e + 3);
        return at.split_at(end);
    }
    let end = tag_end(at);
    let tag = &at[..end];
    let name: String = tag[1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
        .collect::<String>()
        .to_ascii_lowercase();
    if !RAW.contains(&name.as_str()) || tag.ends_with("/>") {
        return at.split_at(end);
    }
    let closing = format!("</{name}");
    let content_end = at[end..].to_ascii_lowercase().find(&closing).map_or(at.len(), |c| end + c);
    at.split_at(content_end)
}

/// The length of the tag starting `at` (its `>` included): the first `>` outside quotes.
fn tag_end(at: &str) -> usize {
    let mut quote = None;
    for (i, c) in at.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    at.len()
}

/// A text node set: its character references read as their characters, written back as they were.
fn text_node(text: &str) -> String {
    let mut atoms = Vec::with_capacity(text.len());
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let (decoded, len) = if c == '&' { reference(&text[at..]).unwrap_or((c, 1)) } else { (c, c.len_utf8()) };
        atoms.push((decoded, &text[at..at + len]));
        at += len;
    }
    typeset(&atoms)
}

/// The character a reference (`&amp;`, `&#x27;`, `&#160;`) at the start of `text` stands for,
/// and its length; an unknown named one reads as a symbol none of the rules looks at.
fn reference(text: &str) -> Option<(char, usize)> {
    let end = text.char_indices().take(12).find(|(_, c)| *c == ';')?.0;
    let name = &text[1..end];
    let decoded = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => NBSP,
        _ => match name.strip_prefix('#') {
            Some(hex) if hex.starts_with(['x', 'X']) => char::from_u32(u32::from_str_radix(&hex[1..], 16).ok()?)?,
            Some(decimal) => char::from_u32(decimal.parse().ok()?)?,
            None if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => '\u{fffc}',
            None => return None,
        },
    };
    Some((decoded, end + 1))
}

/// What the pass writes at one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Keep,
    /// A space replaced by a no-break one.
    Replace(char),
    /// A no-break space written before the character.
    Prefix(char),
}

/// The atoms (each a character, and the source that wrote it) set: a replaced atom is
/// written as its new character, every other one as its source.
fn typeset(atoms: &[(char, &str)]) -> String {
    let chars: Vec<char> = atoms.iter().map(|(c, _)| *c).collect();
    let mut out = String::new();
    for ((_, source), edit) in atoms.iter().zip(edits(&chars)) {
        match edit {
            Edit::Keep => out.push_str(source),
            Edit::Replace(c) => out.push(c),
            Edit::Prefix(c) => {
                out.push(c);
                out.push_str(source);
            }
        }
    }
    out
}

fn edits(chars: &[char]) -> Vec<Edit> {
    let address = addresses(chars);
    let thousands = thousands_separators(chars, &address);
    (0..chars.len())
        .map(|i| {
            if chars[i] == ' ' {
                space(chars, i, thousands[i])
            } else if guillemet_needs_space(chars, i, &address) {
                Edit::Prefix(NNBSP)
            } else {
                Edit::Keep
            }
        })
        .collect()
}

/// What becomes of the ordinary space `chars[i]`.
fn space(chars: &[char], i: usize, thousands: bool) -> Edit {
    let (Some(&before), Some(&after)) = (i.checked_sub(1).and_then(|b| chars.get(b)), chars.get(i + 1)) else {
        return Edit::Keep;
    };
    if before.is_whitespace() {
        Edit::Keep
    } else if matches!(after, ';' | ':' | '!' | '?' | '»') || before == '«' {
        Edit::Replace(NNBSP)
    } else if thousands
        || (before.is_ascii_digit() && starts_with_word(&chars[i + 1..], UNITS))
        || (before == '€' && starts_with_word(&chars[i + 1..], &["HT", "TTC"]))
        || (ends_with_word(&chars[..i], ABBREVIATIONS) && (after.is_ascii_digit() || after.is_uppercase()))
    {
        Edit::Replace(NBSP)
    } else {
        Edit::Keep
    }
}

/// Units a number is kept with.
const UNITS: &[&str] = &[
    "€", "k€", "M€", "EUR", "euro", "euros", "%", "‰", "h", "min", "jour", "jours", "semaine", "semaines", "mois",
    "an", "ans", "année", "années", "heure", "heures", "minute", "minutes", "Ko", "Mo", "Go", "To", "Kio", "Mio",
    "Gio", "Tio", "mm", "cm", "km", "kg", "°C",
];

/// Abbreviations kept with the number (or the code: `art. L. 2113-6`) after them.
const ABBREVIATIONS: &[&str] =
    &["n°", "N°", "nº", "Nº", "art.", "Art.", "article", "Article", "articles", "Articles", "§"];

/// Whether `chars` starts with one of `words` followed by the end or a non-alphanumeric character.
fn starts_with_word(chars: &[char], words: &[&str]) -> bool {
    words.iter().any(|w| {
        let n = w.chars().count();
        chars.len() >= n
            && chars[..n].iter().copied().eq(w.chars())
            && chars.get(n).is_none_or(|c| !c.is_alphanumeric())
    })
}

/// Whether `chars` ends with one of `words` preceded by the start or a non-alphanumeric character.
fn ends_with_word(chars: &[char], words: &[&str]) -> bool {
    words.iter().any(|w| {
        let n = w.chars().count();
        chars.len() >= n
            && chars[chars.len() - n..].iter().copied().eq(w.chars())
            && (chars.len() == n || !chars[chars.len() - n - 1].is_alphanumeric())
    })
}

/// Whether a narrow no-break space goes before `chars[i]`: a `»` right after text, or the first
/// character of the text right after a `«`; never inside an address.
fn guillemet_needs_space(chars: &[char], i: usize, address: &[bool]) -> bool {
    let Some(b) = i.checked_sub(1) else { return false };
    let (before, c) = (chars[b], chars[i]);
    if c.is_whitespace() || before.is_whitespace() || (address[b] && address[i]) {
        return false;
    }
    c == '»' || before == '«'
}

/// Which characters belong to an address (a word holding `://` or `@`, or starting `www.` or
/// `mailto:`, without the punctuation around it): the pass leaves them whole.
fn addresses(chars: &[char]) -> Vec<bool> {
    const OPENING: [char; 6] = ['«', '(', '[', '"', '\'', '“'];
    const CLOSING: [char; 12] = ['»', ')', ']', '"', '\'', '”', '.', ',', ';', ':', '!', '?'];
    let mut mask = vec![false; chars.len()];
    let mut start = 0;
    while start < chars.len() {
        let end = chars[start..].iter().position(|c| c.is_whitespace()).map_or(chars.len(), |p| start + p);
        let from = start + chars[start..end].iter().take_while(|c| OPENING.contains(c)).count();
        let to = end - chars[from..end].iter().rev().take_while(|c| CLOSING.contains(c)).count();
        let word: String = chars[from..to].iter().collect();
        if word.contains("://") || word.contains('@') || word.starts_with("www.") || word.starts_with("mailto:") {
            mask[from..to].iter_mut().for_each(|m| *m = true);
        }
        start = end + 1;
    }
    mask
}

/// Which spaces separate the thousands of a number: `1 234`, `268 480,00`, `12 345 678`
/// (groups of three digits after a first group of one to three, not inside a longer number).
fn thousands_separators(chars: &[char], address: &[bool]) -> Vec<bool> {
    let is_separator = |c: char| matches!(c, ' ' | NBSP | NNBSP);
    let digits_from = |at: usize| chars[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut marks = vec![false; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            && !address[i]
            && i.checked_sub(1).is_none_or(|b| !(chars[b].is_alphanumeric() || matches!(chars[b], ',' | '.')));
        if !starts_number {
            i += 1;
            continue;
        }
        let first = digits_from(i);
        let mut end = i + first;
        if first <= 3 {
            while end + 4 <= chars.len() && is_separator(chars[end]) && digits_from(end + 1) == 3 {
                marks[end] = true;
                end += 4;
            }
        }
        i = end;
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with its no-break spaces shown: `_` for U+00A0, `^` for U+202F.
    fn shown(text: &str) -> String {
        text.replace(NBSP, "_").replace(NNBSP, "^")
    }

    fn set(text: &str) -> String {
        shown(&french(text))
    }

    #[test]
    fn high_punctuation_and_guillemets_take_a_narrow_no_break_space() {
        assert_eq!(set("Référence : X ; oui ! non ?"), "Référence^: X^; oui^! non^?");
        assert_eq!(set("« ENT » et «ENT»"), "«^ENT^» et «^ENT^»");
        assert_eq!(set("dit : « fin »."), "dit^: «^fin^».");
    }

    #[test]
    fn amounts_and_units_take_a_no_break_space() {
        assert_eq!(set("268 480,00 € HT"), "268_480,00_€_HT");
        assert_eq!(set("40 € et 12,5 % sur 36 mois, 2 Go, 10 h"), "40_€ et 12,5_% sur 36_mois, 2_Go, 10_h");
        assert_eq!(set("40 euros, 3 points"), "40_euros, 3 points", "a unit, not any noun");
        assert_eq!(set("1 234 567 élèves"), "1_234_567 élèves");
        assert_eq!(set("12 345 678,5"), "12_345_678,5");
    }

    #[test]
    fn abbreviations_keep_their_number() {
        assert_eq!(
            set("n° 12, N° 3, art. 28, l'article R. 2192-10, § 4"),
            "n°_12, N°_3, art._28, l'article_R. 2192-10, §_4"
        );
        assert_eq!(set("(art. 28 RGPD)"), "(art._28 RGPD)");
        assert_eq!(set("articles L. 2113-6 et L. 2113-7"), "articles_L. 2113-6 et L. 2113-7");
    }

    #[test]
    fn what_is_not_french_prose_is_left_alone() {
        for text in [
            "10:30",
            "le 5 décembre 2026 à 10:30",
            "https://ent.example.fr/a?b=c;d",
            "voir http://x.fr/p?q=1:2 puis",
            "a:b",
            "2026 2027",
            "1234 567",
            "01 23 45 67 89",
            "0,5 123",
            "Bart. 3",
            "mailto:dpo@ac-creteil.fr",
            "dpo@example.fr",
            "12 moissons",
        ] {
            assert_eq!(french(text), text, "{text}");
        }
        assert_eq!(set("« http:// »"), "«^http://^»", "the address whole, its guillemets spaced");
        assert_eq!(set("«https://x.fr/»"), "«^https://x.fr/^»");
        assert_eq!(set(" : en tête"), " : en tête", "a space opening the text stays");
    }

    #[test]
    fn an_existing_no_break_space_is_kept_as_written() {
        assert_eq!(set("Motif\u{a0}: x"), "Motif_: x");
        assert_eq!(french("1\u{a0}234,00\u{a0}€"), "1\u{a0}234,00\u{a0}€");
    }

    #[test]
    fn the_pass_is_idempotent() {
        let texts =
            ["Référence : « 268 480,00 € » ; n° 12 ! art. 3 ?", "«a» «b»", "<p>a : b</p>", "1 234 567 et 1 234"];
        for text in texts {
            let once = french(text);
            assert_eq!(french(&once), once, "{text}");
            let markup = french_markup(text);
            assert_eq!(french_markup(&markup), markup, "{text}");
        }
    }

    #[test]
    fn markup_is_set_in_its_text_nodes_only() {
        let html = concat!(
            "<!DOCTYPE html>\n<html lang=\"fr\"><head><title>Note : 2</title>",
            "<style>p { margin : 0 ; }</style><script>let a = b ? c : d ;</script></head>",
            "<body><p class=\"a : b\" title='x ; y'>Prix : 40 €</p><!-- a : b -->",
            "<pre>x : y</pre><code>a ; b</code><a href=\"https://x.fr/?a=1 ;\">https://x.fr/ :</a></body></html>"
        );
        let set = shown(&french_markup(html));
        assert_eq!(
            set,
            concat!(
                "<!DOCTYPE html>\n<html lang=\"fr\"><head><title>Note^: 2</title>",
                "<style>p { margin : 0 ; }</style><script>let a = b ? c : d ;</script></head>",
                "<body><p class=\"a : b\" title='x ; y'>Prix^: 40_€</p><!-- a : b -->",
                "<pre>x : y</pre><code>a ; b</code><a href=\"https://x.fr/?a=1 ;\">https://x.fr/^:</a></body></html>"
            )
        );
    }

    #[test]
    fn character_references_read_as_their_characters_and_stay_written() {
        assert_eq!(
            shown(&french_markup("<p>l&#x27;art. 3 &amp; n° 4 ; https:&#x2F;&#x2F;x.fr&#x2F;a ;b</p>")),
            "<p>l&#x27;art._3 &amp; n°_4^; https:&#x2F;&#x2F;x.fr&#x2F;a^;b</p>"
        );
        assert_eq!(
            shown(&french_markup("<text:p>d&apos;un « tiers »</text:p>")),
            "<text:p>d&apos;un «^tiers^»</text:p>"
        );
        assert_eq!(french_markup("a &unknown; b & c"), "a &unknown; b & c");
    }

    #[test]
    fn the_typography_choice_keeps_or_sets_the_markup() {
        let page = "<p>Référence : 1</p>".to_string();
        assert_eq!(Typography::AsWritten.markup(page.clone()), page);
        assert_eq!(shown(&Typography::French.markup(page)), "<p>Référence^: 1</p>");
    }
}
