//! Kubernetes quantities compared by value: the API server returns them canonicalised
//! (`1024Mi` → `1Gi`, `1000m` → `1`, `0.5` → `500m`), so the watch's drift check
//! (`reconcile::holds`) would otherwise see every rendered resource as changed.

/// A quantity's exact value: `mantissa × 10^exponent`, trailing zeros moved into the
/// exponent (one spelling per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
}

/// Parses a quantity: a signed decimal number (`1`, `0.5`, `.5`) then a binary suffix
/// (`Ki` … `Ei`), a decimal one (`n` `u` `m` `k` `M` `G` `T` `P` `E`) or a decimal exponent
/// (`e3`, `E-2`). `None` when `text` is not one (or too large to compare exactly).
pub fn parse(text: &str) -> Option<Quantity> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (mantissa, exponent) = decimal(number)?;
    let (power_of_two, power_of_ten) = multiplier(suffix)?;
    let mantissa = mantissa.checked_mul(1i128.checked_shl(power_of_two)?)?;
    Some(normalise(mantissa, exponent.checked_add(power_of_ten)?))
}

/// Whether two texts are quantities of the same value.
pub fn same_value(a: &str, b: &str) -> bool {
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a == b)
}

/// A quantity's value as a whole number, rounded up (bytes, for a storage size); `None`
/// when `text` is not a quantity or the value is too large.
pub fn whole(text: &str) -> Option<i128> {
    let q = parse(text)?;
    let power = 10i128.checked_pow(q.exponent.unsigned_abs())?;
    if q.exponent >= 0 {
        return q.mantissa.checked_mul(power);
    }
    Some(q.mantissa.div_euclid(power) + i128::from(q.mantissa.rem_euclid(power) != 0))
}

/// A number of bytes as a quantity: in `Gi` when it is a whole number of them.
pub fn bytes_text(bytes: i128) -> String {
    const GI: i128 = 1 << 30;
    if bytes % GI == 0 {
        format!("{}Gi", bytes / GI)
    } else {
        bytes.to_string()
    }
}

/// A signed decimal number as `mantissa × 10^exponent`.
fn decimal(number: &str) -> Option<(i128, i32)> {
    let (negative, digits) = match number.as_bytes().first() {
        Some(b'-') => (true, &number[1..]),
        Some(b'+') => (false, &number[1..]),
        _ => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        let digit = c.to_digit(10)?;
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(digit))?;
    }
    let exponent = -i32::try_from(fraction.len()).ok()?;
    Some((if negative { -mantissa } else { mantissa }, exponent))
}

/// A suffix as (power of two, power of ten).
fn multiplier(suffix: &str) -> Option<(u32, i32)> {
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if let Some(i) = binary.iter().position(|s| *s == suffix) {
        return Some((10 * (i as u32 + 1), 0));
    }
    let ten = match suffix {
        "" => 0,
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            exponent.parse().ok()?
        }
    };
    Some((0, ten))
}

fn normalise(mut mantissa: i128, mut exponent: i32) -> Quantity {
    if mantissa == 0 {
        return Quantity { mantissa: 0, exponent: 0 };
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    Quantity { mantissa, exponent }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_numbers_rounded_up_and_written_in_gi_when_they_can() {
        assert_eq!(whole("40Gi"), Some(40 << 30));
        assert_eq!(whole("1G"), Some(1_000_000_000));
        assert_eq!(whole("1.5"), Some(2));
        assert_eq!(whole("500m"), Some(1));
        assert_eq!(whole("Gi"), None);
        assert_eq!(bytes_text(42 << 30), "42Gi");
        assert_eq!(bytes_text(1_000_000_000), "1000000000");
    }

    #[test]
    fn spellings_of_one_value_are_equal() {
        for (a, b) in [
            ("1024Mi", "1Gi"),
            ("1000m", "1"),
            ("500m", "0.5"),
            ("2", "2000m"),
            ("1Ki", "1024"),
            ("1.5Gi", "1536Mi"),
            ("1e3", "1k"),
            ("1E3", "1000"),
            ("12e-1", "1200m"),
            ("1M", "1000k"),
            ("+2", "2"),
            ("0", "0m"),
            (".5", "500m"),
            ("1Ei", "1024Pi"),
            ("1n", "0.001u"),
        ] {
            assert!(same_value(a, b), "{a} = {b}");
            assert!(same_value(b, a), "{b} = {a}");
        }
    }

    #[test]
    fn different_values_and_non_quantities_differ() {
        for (a, b) in [
            ("1Gi", "1G"),
            ("500m", "0.6"),
            ("2", "3"),
            ("1Mi", "1M"),
            ("-1", "1"),
            ("portail", "portail"),
            ("", ""),
            ("1Xi", "1Xi"),
            ("1e", "1e"),
            (".", "."),
            ("1.2.3", "1.2.3"),
            ("1EEi", "1EEi"),
        ] {
            assert!(!same_value(a, b), "{a} ≠ {b}");
        }
        assert_eq!(parse("1E"), Some(normalise(1, 18)), "E alone is exa");
        assert_eq!(parse("99999999999999999999999999999999999999999Ei"), None, "too large: not compared");
    }
}
