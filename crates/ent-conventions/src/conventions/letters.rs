//! Numbers and amounts in French words, as a legal act writes them: « vingt et un »,
//! « quatre-vingts », « deux cents », « deux cent mille », « mille » invariable, « un million »,
//! « douze mille trois cent quarante-cinq euros et soixante-sept centimes ». Traditional spelling
//! (hyphens below a hundred only), the one the editions of the text have been written in.

const UNITS: [&str; 20] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze", "treize",
    "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
];

/// The largest number written in words; beyond, figures.
pub const MAX_IN_LETTERS: u64 = 999_999_999_999;

/// `n` below a hundred in words; « quatre-vingts » takes its « s » when `final_s` (at the end of
/// the number, or before « millions »), not before « mille ».
fn below_100(n: usize, final_s: bool) -> String {
    // The tens from twenty (index 0) to ninety: seventy and ninety are said « soixante-dix »,
    // « quatre-vingt-dix », the tens before them and ten more.
    const TENS: [&str; 8] =
        ["vingt", "trente", "quarante", "cinquante", "soixante", "soixante", "quatre-vingt", "quatre-vingt"];
    if n < 20 {
        return UNITS[n].to_string();
    }
    let (ten, unit) = (n / 10, n % 10);
    let base = TENS[ten - 2];
    match (ten, unit) {
        (8, 0) if final_s => "quatre-vingts".into(),
        (7 | 9, _) => format!("{base}{}{}", if unit == 1 && ten == 7 { " et " } else { "-" }, UNITS[10 + unit]),
        (_, 0) => base.into(),
        (8, _) => format!("{base}-{}", UNITS[unit]),
        (_, 1) => format!("{base} et un"),
        _ => format!("{base}-{}", UNITS[unit]),
    }
}

/// `n` below a thousand in words; « cents » and « quatre-vingts » plural when `final_s`.
fn below_1000(n: usize, final_s: bool) -> String {
    match (n / 100, n % 100) {
        (0, rest) => below_100(rest, final_s),
        (1, 0) => "cent".into(),
        (1, rest) => format!("cent {}", below_100(rest, final_s)),
        (h, 0) => format!("{} cent{}", UNITS[h], if final_s { "s" } else { "" }),
        (h, rest) => format!("{} cent {}", UNITS[h], below_100(rest, final_s)),
    }
}

/// `n` in French words (« une » for a final « un » when `feminine`: « vingt et une », « cent
/// une »), up to [`MAX_IN_LETTERS`]; `None` beyond.
pub fn in_letters(n: u64, feminine: bool) -> Option<String> {
    if n > MAX_IN_LETTERS {
        return None;
    }
    if n == 0 {
        return Some(UNITS[0].into());
    }
    let group = |scale: u64| usize::try_from(n / scale % 1000).unwrap_or(0);
    let mut words = Vec::new();
    for (scale, noun) in [(1_000_000_000, "milliard"), (1_000_000, "million")] {
        match group(scale) {
            0 => {}
            // A noun: « deux cents millions », « quatre-vingts millions », « un million ».
            g => words.push(format!("{} {noun}{}", below_1000(g, true), if g > 1 { "s" } else { "" })),
        }
    }
    match group(1000) {
        0 => {}
        1 => words.push("mille".into()),
        // An adjective, invariable: « deux cent mille », « quatre-vingt mille ».
        g => words.push(format!("{} mille", below_1000(g, false))),
    }
    match group(1) {
        0 => {}
        g => words.push(below_1000(g, true)),
    }
    let words = words.join(" ");
    Some(match words.strip_suffix("un") {
        Some(head) if feminine && (head.is_empty() || head.ends_with(' ') || head.ends_with('-')) => {
            format!("{head}une")
        }
        _ => words,
    })
}

/// An amount of `cents` in words: « douze mille trois cent quarante-cinq euros et soixante-sept
/// centimes », « un euro », « un million d'euros », « un centime », « zéro euro »; `None` when
/// negative or beyond [`MAX_IN_LETTERS`] euros.
pub fn euros_in_letters(cents: i64) -> Option<String> {
    let cents = u64::try_from(cents).ok()?;
    let (euros, cents) = (cents / 100, cents % 100);
    let euros_text = match euros {
        0 => None,
        1 => Some("un euro".to_string()),
        n => {
            let words = in_letters(n, false)?;
            // « d'euros » after a noun of number: « deux millions d'euros ».
            let noun = ["million", "millions", "milliard", "milliards"].iter().any(|m| words.ends_with(m));
            Some(format!("{words} {}", if noun { "d'euros" } else { "euros" }))
        }
    };
    let cents_text = match cents {
        0 => None,
        1 => Some("un centime".to_string()),
        n => Some(format!("{} centimes", in_letters(n, false)?)),
    };
    Some(match (euros_text, cents_text) {
        (Some(euros), Some(cents)) => format!("{euros} et {cents}"),
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => "zéro euro".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::{euros_in_letters, in_letters, MAX_IN_LETTERS};

    fn words(n: u64) -> String {
        in_letters(n, false).unwrap()
    }

    #[test]
    fn numbers_read_as_a_legal_act_writes_them() {
        let cases = [
            (0, "zéro"),
            (1, "un"),
            (21, "vingt et un"),
            (71, "soixante et onze"),
            (80, "quatre-vingts"),
            (81, "quatre-vingt-un"),
            (91, "quatre-vingt-onze"),
            (100, "cent"),
            (101, "cent un"),
            (180, "cent quatre-vingts"),
            (200, "deux cents"),
            (201, "deux cent un"),
            (1000, "mille"),
            (1001, "mille un"),
            (2000, "deux mille"),
            (21_000, "vingt et un mille"),
            (80_000, "quatre-vingt mille"),
            (200_000, "deux cent mille"),
            (12_345, "douze mille trois cent quarante-cinq"),
            (1_000_000, "un million"),
            (2_000_000, "deux millions"),
            (80_000_000, "quatre-vingts millions"),
            (200_000_000, "deux cents millions"),
            (1_200_000, "un million deux cent mille"),
            (1_000_000_000, "un milliard"),
            (MAX_IN_LETTERS, "neuf cent quatre-vingt-dix-neuf milliards neuf cent quatre-vingt-dix-neuf millions neuf cent quatre-vingt-dix-neuf mille neuf cent quatre-vingt-dix-neuf"),
        ];
        for (n, said) in cases {
            assert_eq!(words(n), said, "{n}");
        }
        assert_eq!(in_letters(MAX_IN_LETTERS + 1, false), None);
        assert_eq!(in_letters(21, true).unwrap(), "vingt et une");
        assert_eq!(in_letters(1, true).unwrap(), "une");
        assert_eq!(in_letters(81, true).unwrap(), "quatre-vingt-une");
        assert_eq!(in_letters(1001, true).unwrap(), "mille une");
        assert_eq!(in_letters(11, true).unwrap(), "onze", "no « une » inside a word");
    }

    #[test]
    fn amounts_read_in_euros_and_centimes() {
        let cases = [
            (1, "un centime"),
            (2, "deux centimes"),
            (0, "zéro euro"),
            (100, "un euro"),
            (2_100, "vingt et un euros"),
            (8_000, "quatre-vingts euros"),
            (7_100, "soixante et onze euros"),
            (9_100, "quatre-vingt-onze euros"),
            (10_000, "cent euros"),
            (20_000, "deux cents euros"),
            (100_000, "mille euros"),
            (101, "un euro et un centime"),
            (1_234_567, "douze mille trois cent quarante-cinq euros et soixante-sept centimes"),
            (100_000_000, "un million d'euros"),
            (200_000_000, "deux millions d'euros"),
            (100_000_100, "un million un euros"),
            (2_000_000, "vingt mille euros"),
        ];
        for (cents, said) in cases {
            assert_eq!(euros_in_letters(cents).unwrap(), said, "{cents}");
        }
        assert_eq!(euros_in_letters(-1), None);
    }
}
