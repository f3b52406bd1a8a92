//! Cost sharing between the members of a groupement: pure functions, in cents,
//! whose results always sum exactly to the amount shared (largest remainder).
//!
//! A cost key mixes bases (pupils, écoles, accounts, equal parts) with weights
//! in percent summing to 100. The amount is first split between the bases by
//! weight, then each base's part between the members by their quantities.

use super::costs::Establishments;
use ent_kernel::error::{Checks, Problem};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a member's share is proportional to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Pupils declared in the application.
    Pupils,
    /// Écoles (collèges, lycées: what the members equip) declared in the application.
    Schools,
    /// Pupil, teacher and parent accounts.
    Accounts,
    /// The same part for every member.
    Equal,
}

impl Basis {
    /// The basis in words, its établissements named as `equipped` (« au prorata du nombre de
    /// collèges » for départements).
    pub fn label(self, equipped: Establishments) -> String {
        match self {
            Basis::Pupils => "au prorata du nombre d'élèves".into(),
            Basis::Schools => format!("au prorata du nombre {}", equipped.of_many()),
            Basis::Accounts => "au prorata du nombre de comptes ENT".into(),
            Basis::Equal => "à parts égales".into(),
        }
    }

    /// What a member declaring none of the basis lacks, « aucun élève déclaré » (« aucun
    /// collège déclaré »: its établissements named as `equipped`).
    pub fn none_declared(self, equipped: Establishments) -> &'static str {
        match self {
            Basis::Pupils => "aucun élève déclaré",
            Basis::Schools => equipped.none_declared(),
            Basis::Accounts => "aucun compte ENT déclaré",
            Basis::Equal => "",
        }
    }
}

/// One basis of a cost key and its weight, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPart {
    pub basis: Basis,
    /// Whole percent, 1 to 100; the parts of a key sum to 100.
    pub weight: u32,
}

/// A member's quantities as the cost key reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quantities {
    pub pupils: i64,
    pub schools: i64,
    pub accounts: i64,
}

impl Quantities {
    pub fn of(&self, basis: Basis) -> i64 {
        match basis {
            Basis::Pupils => self.pupils,
            Basis::Schools => self.schools,
            Basis::Accounts => self.accounts,
            Basis::Equal => 1,
        }
    }
}

/// Checks a cost key: at least one part, no basis twice, weights summing to 100.
pub fn check_key(key: &[KeyPart], field: &str, checks: &mut Checks) {
    if key.is_empty() {
        checks.fail(field, "indiquez au moins une base de répartition (élèves, écoles, comptes ou parts égales)");
        return;
    }
    for (i, part) in key.iter().enumerate() {
        if part.weight == 0 || part.weight > 100 {
            checks.fail(&format!("{field}[{i}].weight"), "pondération entre 1 et 100 %");
        }
        if key[..i].iter().any(|p| p.basis == part.basis) {
            checks.fail(&format!("{field}[{i}].basis"), "cette base figure déjà dans la clé");
        }
    }
    let total: u32 = key.iter().map(|p| p.weight).sum();
    if total != 100 {
        checks.fail(field, format!("les pondérations de la clé totalisent {total} % au lieu de 100 %"));
    }
}

/// A cost key in words, its établissements named as `equipped`.
pub fn describe(key: &[KeyPart], equipped: Establishments) -> String {
    describe_for(key, &[], equipped)
}

/// The proportional bases of `key` that none of `members` declares any of: their part is split
/// equally between the members ([`largest_remainder`] of all-zero weights), not in proportion.
pub fn empty_bases(key: &[KeyPart], members: &[Quantities]) -> Vec<KeyPart> {
    if members.is_empty() {
        return Vec::new();
    }
    key.iter().copied().filter(|p| p.basis != Basis::Equal && members.iter().all(|m| m.of(p.basis) <= 0)).collect()
}

/// [`describe`] as the key applies to `members`, who equip `equipped`: the part of an empty
/// basis ([`empty_bases`]) says that it is split equally, and why.
pub fn describe_for(key: &[KeyPart], members: &[Quantities], equipped: Establishments) -> String {
    let empty = empty_bases(key, members);
    let label = |p: &KeyPart| {
        if empty.contains(p) {
            format!(
                "{} ({} : cette part est répartie à parts égales)",
                p.basis.label(equipped),
                p.basis.none_declared(equipped)
            )
        } else {
            p.basis.label(equipped)
        }
    };
    match key {
        [only] => label(only),
        parts => parts.iter().map(|p| format!("{} % {}", p.weight, label(p))).collect::<Vec<_>>().join(", "),
    }
}

/// Splits `total` cents proportionally to `weights`, by the largest remainder:
/// each gets the floor of its exact part, then the cents left go one by one to
/// the largest fractional remainders (ties to the earlier index). The result
/// sums exactly to `total`. All-zero weights split equally.
pub fn largest_remainder(total: i64, weights: &[i64]) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    let (weights, sum): (Vec<i128>, i128) = if sum == 0 {
        (vec![1; weights.len()], weights.len() as i128)
    } else {
        (weights.iter().map(|w| i128::from((*w).max(0))).collect(), sum)
    };
    let total = i128::from(total);
    let mut shares: Vec<i128> = weights.iter().map(|w| (total * w).div_euclid(sum)).collect();
    let remainders: Vec<i128> = weights.iter().map(|w| (total * w).rem_euclid(sum)).collect();
    let left = total - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]).then(a.cmp(b)));
    for i in order.into_iter().take(left as usize) {
        shares[i] += 1;
    }
    shares.into_iter().map(|s| s as i64).collect()
}

/// Each member's share of `total` cents under `key` (whose weights sum to 100).
pub fn split(total: i64, key: &[KeyPart], members: &[Quantities]) -> Vec<i64> {
    let mut shares = vec![0i64; members.len()];
    if members.is_empty() {
        return shares;
    }
    let weights: Vec<i64> = key.iter().map(|p| i64::from(p.weight)).collect();
    for (part, amount) in key.iter().zip(largest_remainder(total, &weights)) {
        let quantities: Vec<i64> = members.iter().map(|m| m.of(part.basis)).collect();
        for (share, add) in shares.iter_mut().zip(largest_remainder(amount, &quantities)) {
            *share += add;
        }
    }
    shares
}

/// A share spread over the contract's years (12 months each, the last one
/// shorter when the duration is not a whole number of years), summing exactly.
pub fn per_year(share: i64, duration_months: u32) -> Vec<i64> {
    let weights: Vec<i64> = super::costs::contract_years(duration_months).into_iter().map(i64::from).collect();
    largest_remainder(share, &weights)
}

/// The checked key of a request, or its validation problem.
pub fn validated(key: &[KeyPart]) -> Result<(), Problem> {
    let mut checks = Checks::default();
    check_key(key, "cost_key", &mut checks);
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pupils: i64, schools: i64, accounts: i64) -> Quantities {
        Quantities { pupils, schools, accounts }
    }

    #[test]
    fn largest_remainder_sums_exactly_and_favours_the_largest_remainders() {
        assert_eq!(largest_remainder(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(largest_remainder(10, &[1, 2]), vec![3, 7]);
        assert_eq!(largest_remainder(7, &[0, 0]), vec![4, 3], "all-zero weights split equally");
        assert_eq!(largest_remainder(0, &[5, 9]), vec![0, 0]);
        assert!(largest_remainder(5, &[]).is_empty());
        // 2/3 and 1/3 of 1 cent: the larger remainder wins.
        assert_eq!(largest_remainder(1, &[1, 2]), vec![0, 1]);
    }

    #[test]
    fn shares_sum_exactly_to_awkward_totals() {
        let members: Vec<Quantities> = (1..=25).map(|i| q(i * 37 % 311 + 1, i % 7 + 1, i * 13)).collect();
        let key = [
            KeyPart { basis: Basis::Pupils, weight: 50 },
            KeyPart { basis: Basis::Schools, weight: 20 },
            KeyPart { basis: Basis::Accounts, weight: 17 },
            KeyPart { basis: Basis::Equal, weight: 13 },
        ];
        for total in [1, 99, 123_456_789, 100_000_000_001, 7] {
            let shares = split(total, &key, &members);
            assert_eq!(shares.iter().sum::<i64>(), total, "total {total}");
            assert!(shares.iter().all(|s| *s >= 0));
        }
    }

    #[test]
    fn a_single_basis_is_proportional() {
        let key = [KeyPart { basis: Basis::Pupils, weight: 100 }];
        assert_eq!(split(100_000, &key, &[q(100, 1, 0), q(300, 1, 0)]), vec![25_000, 75_000]);
        let equal = [KeyPart { basis: Basis::Equal, weight: 100 }];
        assert_eq!(split(100, &equal, &[q(1, 1, 1), q(900, 9, 9), q(0, 0, 0)]), vec![34, 33, 33]);
    }

    #[test]
    fn a_mixed_key_weighs_its_bases() {
        // 60 % per pupil (1:3), 40 % equal: 600 → 150/450, 400 → 200/200.
        let key = [KeyPart { basis: Basis::Pupils, weight: 60 }, KeyPart { basis: Basis::Equal, weight: 40 }];
        assert_eq!(split(1000, &key, &[q(10, 1, 1), q(30, 1, 1)]), vec![350, 650]);
    }

    #[test]
    fn keys_must_sum_to_100_without_repeating_a_basis() {
        let mut checks = Checks::default();
        check_key(
            &[KeyPart { basis: Basis::Pupils, weight: 60 }, KeyPart { basis: Basis::Equal, weight: 30 }],
            "cost_key",
            &mut checks,
        );
        let err = checks.finish().unwrap_err();
        assert!(err.detail.contains("90 %"), "{}", err.detail);
        let twice = [KeyPart { basis: Basis::Pupils, weight: 50 }, KeyPart { basis: Basis::Pupils, weight: 50 }];
        assert!(validated(&twice).unwrap_err().errors.iter().any(|e| e.field == "cost_key[1].basis"));
        assert!(validated(&[]).is_err());
        assert!(validated(&[KeyPart { basis: Basis::Accounts, weight: 100 }]).is_ok());
    }

    #[test]
    fn a_share_spreads_over_the_years_exactly() {
        assert_eq!(per_year(100_000, 36), vec![33_334, 33_333, 33_333]);
        assert_eq!(per_year(1000, 18), vec![667, 333], "a last half-year weighs half");
        assert_eq!(per_year(5, 0), vec![5]);
    }

    #[test]
    fn a_basis_nobody_declares_is_split_equally_and_says_so() {
        let key = [KeyPart { basis: Basis::Pupils, weight: 70 }, KeyPart { basis: Basis::Equal, weight: 30 }];
        let none = [q(0, 11, 0), q(0, 42, 0)];
        assert_eq!(split(1_080_000, &key, &none), vec![540_000, 540_000], "no division by zero: equal parts");
        assert_eq!(empty_bases(&key, &none), vec![key[0]]);
        assert_eq!(
            describe_for(&key, &none, Establishments::Ecoles),
            "70 % au prorata du nombre d'élèves (aucun élève déclaré : cette part est répartie à parts égales), \
             30 % à parts égales"
        );
        let some = [q(0, 11, 0), q(120, 42, 0)];
        assert!(empty_bases(&key, &some).is_empty());
        assert_eq!(describe_for(&key, &some, Establishments::Ecoles), describe(&key, Establishments::Ecoles));
        assert!(empty_bases(&key, &[]).is_empty(), "no member, nothing to split");
    }

    #[test]
    fn describes_keys_in_french() {
        let equal = [KeyPart { basis: Basis::Equal, weight: 100 }];
        assert_eq!(describe(&equal, Establishments::Ecoles), "à parts égales");
        let mixed = [KeyPart { basis: Basis::Pupils, weight: 70 }, KeyPart { basis: Basis::Schools, weight: 30 }];
        assert_eq!(
            describe(&mixed, Establishments::Ecoles),
            "70 % au prorata du nombre d'élèves, 30 % au prorata du nombre d'écoles"
        );
        assert_eq!(
            describe(&mixed, Establishments::Colleges),
            "70 % au prorata du nombre d'élèves, 30 % au prorata du nombre de collèges"
        );
    }

    #[test]
    fn a_school_basis_names_what_the_members_equip() {
        let key = [KeyPart { basis: Basis::Schools, weight: 100 }];
        let none = [q(10, 0, 0)];
        for (equipped, words) in [
            (Establishments::Ecoles, "nombre d'écoles (aucune école déclarée"),
            (Establishments::Colleges, "nombre de collèges (aucun collège déclaré"),
            (Establishments::Lycees, "nombre de lycées (aucun lycée déclaré"),
            (Establishments::Mixed, "nombre d'établissements (aucun établissement déclaré"),
        ] {
            let described = describe_for(&key, &none, equipped);
            assert!(described.contains(words), "{described}");
        }
    }
}
