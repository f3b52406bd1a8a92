//! The figures of the règlement de la consultation (RC) and of the acte d'engagement (AE) that
//! the groupement's terms do not carry: named defaults, written into every RC and AE, that the
//! coordinator may amend in the exported ODT before publication (the README's « Documents d'un
//! groupement » lists them); the procedure, a term of the groupement ([`Procedure`]).

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};
use ent_kernel::clock::{french_date, french_moment, paris_instant, today_in_france};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::{naming, validate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// An award criterion (article R. 2152-7 du code de la commande publique) and its weight, in
/// points out of 100; a technical criterion's sub-criteria, each with its points.
pub struct Criterion {
    pub label: &'static str,
    pub points: u32,
    pub sub_criteria: &'static [(&'static str, u32)],
}

/// The award criteria, in decreasing weight: technical value judged on the mémoire technique,
/// then price judged on the DQE's total (the BPU's unit prices × the DQE's quantities).
pub const CRITERIA: &[Criterion] = &[
    Criterion {
        label: "Valeur technique, appréciée au vu du mémoire technique",
        points: 60,
        sub_criteria: &[
            ("adéquation de la solution aux besoins du CCTP et au SDET (services, ergonomie, accessibilité)", 20),
            ("hébergement, sécurité et protection des données à caractère personnel", 15),
            ("assistance, niveaux de service, reprise des données et réversibilité", 15),
            ("formation et accompagnement des utilisateurs", 10),
        ],
    },
    Criterion {
        label: "Prix, apprécié au vu du montant total HT du détail quantitatif estimatif (DQE)",
        points: 40,
        sub_criteria: &[],
    },
];

/// Days an offer binds its candidate, from the deadline for receiving offers.
pub const OFFER_VALIDITY_DAYS: u32 = 120;
/// Last day, before the deadline for offers, on which a candidate may ask a question.
pub const QUESTIONS_DAYS_BEFORE: u32 = 10;
/// Last day, before the deadline for offers, on which the coordinator answers every candidate.
pub const ANSWERS_DAYS_BEFORE: u32 = 6;
// The answers come after the last question.
const _: () = assert!(ANSWERS_DAYS_BEFORE < QUESTIONS_DAYS_BEFORE);
/// The fixed part of the yearly price revision, in percent (the rest follows the index).
pub const REVISION_FIXED_PERCENT: u32 = 15;
/// The index of the price revision: the one the IT services sector publishes.
pub const REVISION_INDEX: &str = "indice Syntec";

/// Days from the sending of the avis de marché (the launch of the consultation) to the deadline
/// for offers that article R. 2161-2 du code de la commande publique sets for an open call, before
/// the reduction [`OFFER_DAYS_ELECTRONIC`] enforces: what the RC and the refusals cite, never a
/// délai computed from.
pub const OFFER_DAYS: u64 = 35;
/// Days from the launch to the deadline for offers, at least, that an open call enforces: the
/// 35 days of article R. 2161-2 du code de la commande publique reduced to 30 because the
/// candidatures and offers are transmitted electronically (article R. 2161-3, 2° — the RC's
/// article 10 takes them on the buyer's profile only, article R. 2132-7). The other reductions of
/// R. 2161-3 (a prior information notice, an urgency) need facts the groupement does not hold.
/// A délai of days is « franc » (the sending day is not counted and the period runs to the end
/// of its last day: règlement (CEE, Euratom) n° 1182/71, article 3): the deadline falls on the
/// day after its last day at the earliest ([`first_offers_day`]).
pub const OFFER_DAYS_ELECTRONIC: u64 = 30;
/// Days from the launch to the deadline for offers below which a procédure adaptée is warned of,
/// never refused: no text sets a minimum (article R. 2151-1 leaves it to the buyer, the
/// complexity of the contract in mind). Three weeks, this platform's advice: the RC's article 11
/// closes the questions [`QUESTIONS_DAYS_BEFORE`] days before the deadline, so a candidate then
/// has eleven days to read the file and ask, and the offer (a mémoire technique on four
/// sub-criteria, a BPU/DQE) takes longer to write than a quotation.
pub const ADAPTED_ADVISED_DAYS: u64 = 21;

/// The first day the deadline for offers of a consultation launched on `launched` by
/// `procedure` may fall on: the day after the launch for a procédure adaptée (never the same
/// day); for an open call, the day after the [`OFFER_DAYS_ELECTRONIC`] full days that follow the
/// launch.
pub fn first_offers_day(launched: NaiveDate, procedure: Procedure) -> NaiveDate {
    let days = match procedure {
        Procedure::AppelOffresOuvert => OFFER_DAYS_ELECTRONIC + 1,
        Procedure::ProcedureAdaptee => 1,
    };
    launched.checked_add_days(Days::new(days)).unwrap_or(launched)
}

/// The date and time limits for the receipt of offers as typed: RFC 3339 (any offset), or a
/// wall-clock time in Paris, `AAAA-MM-JJTHH:MM` (a `datetime-local` field; seconds allowed).
pub fn parse_offers_deadline(value: &str) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("date et heure limites de réception des offres obligatoires".into());
    }
    let at = DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
            .and_then(paris_instant)
    });
    let at = at.ok_or_else(|| {
        format!(
            "« {} » n'est pas une date et une heure : attendu AAAA-MM-JJTHH:MM (heure de Paris) ou RFC 3339",
            validate::printable(value)
        )
    })?;
    validate::within_days(today_in_france(at))?;
    Ok(at)
}

/// An offers deadline as stored: RFC 3339 in UTC, to the second.
pub fn stored_deadline(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Why the offers deadline `at` is refused for a consultation of `procedure` launched on
/// `launched`, now being `now`: passed, on the launch day or before, or (an open call) inside
/// the minimum délai ([`first_offers_day`]).
pub fn check_offers_deadline(
    at: DateTime<Utc>,
    launched: NaiveDate,
    now: DateTime<Utc>,
    procedure: Procedure,
) -> Result<(), String> {
    let (day, words) = (today_in_france(at), french_moment(&stored_deadline(at)));
    let launch = french_date(&launched.to_string());
    if at <= now {
        return Err(format!(
            "la date limite de réception des offres ({words}, heure de Paris) est passée : choisissez une date à venir"
        ));
    }
    let first = first_offers_day(launched, procedure);
    if day >= first {
        return Ok(());
    }
    let first_words = french_date(&first.to_string());
    Err(match procedure {
        Procedure::ProcedureAdaptee => format!(
            "la date limite de réception des offres ({words}) ne peut pas tomber le jour du lancement de la consultation \
             ({launch}) : les candidats doivent disposer du temps nécessaire pour préparer leur offre (article R. 2151-1 \
             du code de la commande publique) ; choisissez le {first_words} au plus tôt"
        ),
        Procedure::AppelOffresOuvert => format!(
            "la date limite de réception des offres ({words}) ne laisse pas aux candidats le délai minimal de l'appel \
             d'offres ouvert lancé le {launch} : trente-cinq jours à compter de l'envoi de l'avis de marché (article \
             R. 2161-2 du code de la commande publique), ramenés à {OFFER_DAYS_ELECTRONIC} jours, les offres étant \
             transmises par voie électronique (article R. 2161-3, 2°), jours francs ; choisissez le {first_words} au \
             plus tôt"
        ),
    })
}

/// What a procédure adaptée's offers deadline `at`, for a consultation launched on `launched`,
/// is warned of: fewer than [`ADAPTED_ADVISED_DAYS`] days (never refused); None otherwise and
/// for an open call (its minimum is enforced).
pub fn short_delay_warning(at: DateTime<Utc>, launched: NaiveDate, procedure: Procedure) -> Option<String> {
    let days = (today_in_france(at) - launched).num_days();
    if procedure != Procedure::ProcedureAdaptee || days >= ADAPTED_ADVISED_DAYS as i64 {
        return None;
    }
    Some(format!(
        "Délai de réception des offres court : {days} jour{} entre le lancement de la consultation et la date limite, \
         moins des {ADAPTED_ADVISED_DAYS} jours que la plateforme conseille pour une procédure adaptée (aucun texte ne \
         fixe de minimum, mais l'acheteur tient compte de la complexité de l'accord-cadre et du temps nécessaire aux \
         candidats pour préparer leur offre : article R. 2151-1 du code de la commande publique ; les questions sont \
         closes {QUESTIONS_DAYS_BEFORE} jours avant la date limite, article 11 du règlement de la consultation).",
        if days > 1 { "s" } else { "" }
    ))
}

/// Days between the sending of the rejection notices to the candidates not retained and the
/// signature of the accord-cadre, at least (article R. 2182-1), the notices sent electronically.
pub const STANDSTILL_DAYS: u64 = 11;
/// [`STANDSTILL_DAYS`] when the notices were not sent electronically.
pub const STANDSTILL_DAYS_BY_POST: u64 = 16;

/// The open call for tenders, as the DECP names it.
pub const OPEN_CALL: &str = "Appel d'offres ouvert";
/// The procédure adaptée, as the DECP names it: no minimum delay.
pub const ADAPTED: &str = "Procédure adaptée";

/// The procedure of the consultation, a term of the groupement chosen before the launch: the
/// RC, the AE and the CCAP print it with its articles, the award's délais are its own and the
/// DECP declares it ([`super::decp::documented`] refuses another).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    /// Appel d'offres ouvert (articles L. 2124-2, R. 2124-2 and R. 2161-2 to R. 2161-5), the
    /// default: what the convention constitutive's commission d'appel d'offres presupposes.
    #[default]
    AppelOffresOuvert,
    /// Procédure adaptée (articles L. 2123-1, R. 2123-1, 1° and R. 2123-4): only when the
    /// estimated value of the need is below the European thresholds, which the buyer answers for.
    ProcedureAdaptee,
}

impl Procedure {
    /// The name the DECP gives it ([`OPEN_CALL`], [`ADAPTED`]).
    pub fn decp(self) -> &'static str {
        match self {
            Procedure::AppelOffresOuvert => OPEN_CALL,
            Procedure::ProcedureAdaptee => ADAPTED,
        }
    }

    /// Its name inside a sentence: « appel d'offres ouvert ».
    pub fn name(self) -> &'static str {
        match self {
            Procedure::AppelOffresOuvert => "appel d'offres ouvert",
            Procedure::ProcedureAdaptee => "procédure adaptée",
        }
    }

    /// Its name with its indefinite article: « un appel d'offres ouvert ».
    pub fn with_article(self) -> &'static str {
        match self {
            Procedure::AppelOffresOuvert => "un appel d'offres ouvert",
            Procedure::ProcedureAdaptee => "une procédure adaptée",
        }
    }

    /// The articles of the code de la commande publique it is passed under.
    pub fn articles(self) -> &'static str {
        match self {
            Procedure::AppelOffresOuvert => "articles L. 2124-2, R. 2124-2 et R. 2161-2 à R. 2161-5",
            Procedure::ProcedureAdaptee => "articles L. 2123-1, R. 2123-1, 1°, et R. 2123-4",
        }
    }

    /// The templates' `procedure`: whether it is the open call, its name and its articles.
    pub fn context(self) -> serde_json::Value {
        json!({
            "open": self == Procedure::AppelOffresOuvert,
            "name": self.name(),
            "articles": self.articles(),
        })
    }
}

/// The first day an accord-cadre awarded by `procedure` after a consultation launched on
/// `launched` may be notified (it is signed, then notified) before its offers deadline is known:
/// the deadline on its first lawful day ([`first_offers_day`]: the open call's
/// [`OFFER_DAYS_ELECTRONIC`] full days, the procédure adaptée's day after the launch), then what
/// follows it ([`notification_after_deadline`]). The same rule as the deadline's: the planning
/// (`award_planned_date`) and the award of a consultation launched before the deadline was
/// recorded are checked with it.
pub fn earliest_notification(launched: NaiveDate, procedure: Procedure, by_post: bool) -> NaiveDate {
    notification_after_deadline(first_offers_day(launched, procedure), procedure, by_post)
}

/// The first day an accord-cadre may be notified once the offers deadline of its consultation
/// is known (`deadline`, its day in Paris): the day after it for a procédure adaptée (no offer is
/// judged before they are all in); for an open call, the rejection notices sent on that day at
/// the earliest, then the standstill ([`STANDSTILL_DAYS`], or [`STANDSTILL_DAYS_BY_POST`]).
pub fn notification_after_deadline(deadline: NaiveDate, procedure: Procedure, by_post: bool) -> NaiveDate {
    let days = match (procedure, by_post) {
        (Procedure::ProcedureAdaptee, _) => 1,
        (Procedure::AppelOffresOuvert, false) => STANDSTILL_DAYS,
        (Procedure::AppelOffresOuvert, true) => STANDSTILL_DAYS_BY_POST,
    };
    deadline.checked_add_days(Days::new(days)).unwrap_or(deadline)
}

/// The thresholds of the formalised procedures for supplies and services in force from `since`
/// (`YYYY-MM-DD`, its first day): their amounts HT in cents, one per category of buyer
/// ([`Buyer`]), and the act that set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub since: &'static str,
    /// The State's central authorities (« autorités publiques centrales »).
    pub central_cents: i64,
    /// The other pouvoirs adjudicateurs: collectivités territoriales, their groupements.
    pub other_cents: i64,
    pub source: &'static str,
}

/// The thresholds of the formalised procedures for supplies and services (article L. 2124-1 du
/// code de la commande publique and its annexe n° 2, the avis relatif aux seuils de procédure),
/// oldest first: the State's central authorities' and the other pouvoirs adjudicateurs' of
/// directive 2014/24/UE. The Commission revises them every two years by a règlement délégué in
/// force on 1 January: the next revision is one line here.
pub const FORMALISED_THRESHOLDS: &[Thresholds] = &[
    Thresholds {
        since: "2022-01-01",
        central_cents: 14_000_000,
        other_cents: 21_500_000,
        source: "règlement délégué (UE) 2021/1952",
    },
    Thresholds {
        since: "2024-01-01",
        central_cents: 14_300_000,
        other_cents: 22_100_000,
        source: "règlement délégué (UE) 2023/2497",
    },
    Thresholds {
        since: "2026-01-01",
        central_cents: 14_000_000,
        other_cents: 21_600_000,
        source: "règlement délégué (UE) 2025/2152",
    },
];

/// The category of buyer whose threshold a groupement applies: the State's central authorities
/// when the State conducts or joins it (an académie, a DSDEN: its services), named by the
/// organisation that makes it so; the other pouvoirs adjudicateurs otherwise. A groupement
/// applies the lowest threshold of its coordinator and members ([`Buyer::of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buyer {
    /// `by`: how the organisation of the State is named in a sentence, with its part
    /// (« l'académie de Créteil, coordonnateur du groupement »).
    Central {
        by: String,
    },
    Other,
}

impl Buyer {
    /// Whether an organisation of `kind` is one of the State's central authorities: the
    /// rectorat of an académie, a DSDEN (the académie's services in a département).
    pub fn is_central(kind: OrgKind) -> bool {
        matches!(kind, OrgKind::Academie | OrgKind::Dsden)
    }

    /// The category of a groupement coordinated by `coordinator` whose members are `members`:
    /// central as soon as one of them is (the lowest threshold applies), the coordinator named first.
    pub fn of<'a>(coordinator: (OrgKind, &str), members: impl IntoIterator<Item = (OrgKind, &'a str)>) -> Buyer {
        let part = |(kind, name): (OrgKind, &str), role: &str| {
            Buyer::is_central(kind).then(|| Buyer::Central {
                by: format!("{}, {role} du groupement", naming::of_org(kind, &naming::display_name(name)).article),
            })
        };
        part(coordinator, "coordonnateur")
            .or_else(|| members.into_iter().find_map(|m| part(m, "membre")))
            .unwrap_or(Buyer::Other)
    }

    /// The category as a sentence names it, after « des marchés de fournitures et de services ».
    pub fn category(&self) -> String {
        match self {
            Buyer::Central { by } => {
                format!("des autorités publiques centrales, l'État conduisant ou rejoignant le groupement ({by})")
            }
            Buyer::Other => "des pouvoirs adjudicateurs autres que les autorités publiques centrales (collectivités \
                             territoriales, leurs établissements publics et leurs groupements)"
                .into(),
        }
    }
}

/// The threshold a buyer applies: its amount HT in cents, from `since`, set by `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    pub since: &'static str,
    pub cents: i64,
    pub source: &'static str,
    pub buyer: Buyer,
}

impl Threshold {
    /// « seuil des procédures formalisées pour les marchés de fournitures et de services des
    /// autorités publiques centrales (…), 140 000,00 € HT pour une consultation lancée à compter
    /// du 1er janvier 2026 »: the refusals' words, [`Threshold::source`] cited after them.
    pub fn words(&self) -> String {
        format!(
            "seuil des procédures formalisées pour les marchés de fournitures et de services {}, {} HT pour une \
             consultation lancée à compter du {}",
            self.buyer.category(),
            super::costs::euros(self.cents),
            french_date(self.since),
        )
    }
}

/// The threshold `buyer` applies to a consultation launched on `day` (when the value of the need
/// is estimated: article R. 2121-1): of the latest revision whose first day is not after it, else
/// the oldest.
pub fn formalised_threshold(day: NaiveDate, buyer: Buyer) -> Threshold {
    let day = day.to_string();
    let in_force = FORMALISED_THRESHOLDS.iter().rev().find(|t| t.since <= day.as_str());
    let t = in_force.unwrap_or(&FORMALISED_THRESHOLDS[0]);
    let cents = match buyer {
        Buyer::Central { .. } => t.central_cents,
        Buyer::Other => t.other_cents,
    };
    Threshold { since: t.since, cents, source: t.source, buyer }
}

/// The fixed part of the revision formula as the AE prints it: « 0,15 ».
pub fn revision_fixed() -> String {
    format!("0,{:02}", REVISION_FIXED_PERCENT)
}

/// The indexed part of the revision formula as the AE prints it: « 0,85 ».
pub fn revision_indexed() -> String {
    format!("0,{:02}", 100 - REVISION_FIXED_PERCENT)
}

/// The RC's and AE's variables: the criteria and the defaults above.
pub fn context() -> serde_json::Value {
    let criteria: Vec<_> = CRITERIA
        .iter()
        .map(|c| {
            let subs: Vec<_> =
                c.sub_criteria.iter().map(|(label, points)| json!({ "label": label, "points": points })).collect();
            json!({ "label": c.label, "points": c.points, "sub_criteria": subs })
        })
        .collect();
    json!({
        "criteria": criteria,
        "offer_validity_days": OFFER_VALIDITY_DAYS,
        "questions_days_before": QUESTIONS_DAYS_BEFORE,
        "answers_days_before": ANSWERS_DAYS_BEFORE,
        "revision_fixed": revision_fixed(),
        "revision_indexed": revision_indexed(),
        "revision_index": REVISION_INDEX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_criteria_weigh_100_points_and_each_sums_its_sub_criteria() {
        assert_eq!(CRITERIA.iter().map(|c| c.points).sum::<u32>(), 100);
        for c in CRITERIA.iter().filter(|c| !c.sub_criteria.is_empty()) {
            assert_eq!(c.sub_criteria.iter().map(|(_, p)| p).sum::<u32>(), c.points, "{}", c.label);
        }
    }

    #[test]
    fn an_open_call_is_notified_after_the_offer_delay_and_the_standstill() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        const OPEN: Procedure = Procedure::AppelOffresOuvert;
        // 5 December + 30 full days: offers on 5 January at the earliest; + 11 days: signed and
        // notified on 16 January (21 January, the rejections sent by post).
        assert_eq!(earliest_notification(day("2026-12-05"), OPEN, false), day("2027-01-16"));
        assert_eq!(earliest_notification(day("2026-12-05"), OPEN, true), day("2027-01-21"));
        // A procédure adaptée: offers the day after the launch at the earliest, notified the next day.
        assert_eq!(earliest_notification(day("2026-12-05"), Procedure::ProcedureAdaptee, false), day("2026-12-07"));
        // One rule with the deadline's: the first deadline, then what follows it.
        for p in [OPEN, Procedure::ProcedureAdaptee] {
            let deadline = first_offers_day(day("2026-12-05"), p);
            assert_eq!(
                earliest_notification(day("2026-12-05"), p, false),
                notification_after_deadline(deadline, p, false)
            );
        }
    }

    #[test]
    fn an_offers_deadline_is_after_the_launch_day_and_for_an_open_call_after_30_full_days() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let at = |s: &str| parse_offers_deadline(s).unwrap();
        let (launch, now) = (day("2026-10-15"), at("2026-10-15T11:00"));
        const OPEN: Procedure = Procedure::AppelOffresOuvert;
        const ADAPTED: Procedure = Procedure::ProcedureAdaptee;
        // A Paris wall-clock time, summer and winter, or RFC 3339.
        assert_eq!(stored_deadline(at("2026-10-15T12:00")), "2026-10-15T10:00:00Z");
        assert_eq!(stored_deadline(at("2026-11-15T12:00")), "2026-11-15T11:00:00Z");
        assert_eq!(stored_deadline(at("2026-11-15T12:00:00+01:00")), "2026-11-15T11:00:00Z");
        assert!(parse_offers_deadline("15/11/2026").is_err() && parse_offers_deadline(" ").is_err());
        assert_eq!(first_offers_day(launch, OPEN), day("2026-11-15"));
        assert_eq!(first_offers_day(launch, ADAPTED), day("2026-10-16"));
        assert!(check_offers_deadline(at("2026-11-15T00:00"), launch, now, OPEN).is_ok());
        let short = check_offers_deadline(at("2026-11-14T23:59"), launch, now, OPEN).unwrap_err();
        assert!(short.contains("R. 2161-3, 2°") && short.contains("le 15 novembre 2026 au plus tôt"), "{short}");
        let same_day = check_offers_deadline(at("2026-10-15T18:00"), launch, now, ADAPTED).unwrap_err();
        assert!(same_day.contains("jour du lancement"), "{same_day}");
        assert!(check_offers_deadline(at("2026-10-16T09:00"), launch, now, ADAPTED).is_ok());
        assert!(check_offers_deadline(at("2026-10-15T10:00"), launch, now, ADAPTED).unwrap_err().contains("passée"));
        // Warned under three weeks, a procédure adaptée only.
        assert!(short_delay_warning(at("2026-11-04T12:00"), launch, ADAPTED).is_some());
        assert_eq!(short_delay_warning(at("2026-11-05T12:00"), launch, ADAPTED), None);
        assert_eq!(short_delay_warning(at("2026-10-16T12:00"), launch, OPEN), None);
        // Notified the day after the deadline (MAPA), after the standstill from it (open call).
        assert_eq!(notification_after_deadline(day("2027-01-04"), OPEN, false), day("2027-01-15"));
        assert_eq!(notification_after_deadline(day("2027-01-04"), OPEN, true), day("2027-01-20"));
        assert_eq!(notification_after_deadline(day("2027-01-04"), ADAPTED, false), day("2027-01-05"));
    }

    #[test]
    fn the_rc_states_the_offer_delay_the_award_enforces() {
        assert_eq!((OFFER_DAYS, OFFER_DAYS_ELECTRONIC), (35, 30));
        let rc = include_str!("../../../../templates/documents/groupements/rc.txt");
        assert!(rc.contains("au moins trente-cinq jours après l'envoi de l'avis de marché (article R. 2161-2"));
        assert!(rc.contains("délai ramené à trente jours, les offres étant transmises par voie électronique"));
    }

    #[test]
    fn the_threshold_in_force_is_the_latest_begun_for_the_category_of_buyer() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let central = || Buyer::Central { by: "l'académie de Créteil, coordonnateur du groupement".into() };
        assert_eq!(formalised_threshold(day("2025-12-31"), Buyer::Other).cents, 22_100_000);
        assert_eq!(formalised_threshold(day("2026-01-01"), Buyer::Other).cents, 21_600_000);
        assert_eq!(formalised_threshold(day("2020-06-01"), Buyer::Other).cents, 21_500_000);
        assert_eq!(formalised_threshold(day("2025-12-31"), central()).cents, 14_300_000);
        assert_eq!(formalised_threshold(day("2026-01-01"), central()).cents, 14_000_000);
        let words = formalised_threshold(day("2026-12-06"), central()).words();
        assert!(
            words.contains("autorités publiques centrales") && words.contains("140\u{a0}000,00\u{a0}€ HT"),
            "{words}"
        );
        assert!(words.contains("l'académie de Créteil, coordonnateur du groupement"), "{words}");
        let sorted = FORMALISED_THRESHOLDS.windows(2).all(|w| w[0].since < w[1].since);
        assert!(sorted, "oldest first");
    }

    #[test]
    fn a_groupement_applies_the_lowest_threshold_of_its_coordinator_and_members() {
        let epci = (OrgKind::Epci, "Grand-Orly Seine Bièvre");
        assert_eq!(Buyer::of(epci, [(OrgKind::Commune, "Cachan")]), Buyer::Other);
        let by_academie = Buyer::of((OrgKind::Academie, "Académie de Créteil"), [(OrgKind::Commune, "Cachan")]);
        assert_eq!(by_academie, Buyer::Central { by: "l'académie de Créteil, coordonnateur du groupement".into() });
        let joined = Buyer::of(epci, [(OrgKind::Commune, "Cachan"), (OrgKind::Dsden, "DSDEN du Val-de-Marne")]);
        assert!(matches!(&joined, Buyer::Central { by } if by.ends_with("membre du groupement")), "{joined:?}");
    }

    #[test]
    fn the_revision_formula_parts_add_up_to_one() {
        let c = context();
        assert_eq!((c["revision_fixed"].as_str(), c["revision_indexed"].as_str()), (Some("0,15"), Some("0,85")));
    }
}
