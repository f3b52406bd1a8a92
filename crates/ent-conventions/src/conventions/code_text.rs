//! What the code writes into the convention models whose files keep their bytes, as the README
//! says of the académie's ceiling (« le paramètre vient du code », `model::ACADEMIE_CEILING_MODELS`):
//! the financial article of the tripartites' version 3 from edition 10
//! (`document::TRIPARTITE_CEILING_EDITION`; domain review 41, F4) and of the bipartite's version 3
//! from edition 11 (`document::BIPARTITE_ROUNDING_EDITION`). Each states the académie's money share
//! in the one wording [`SHARE_RULE`] holds — its base (what the collectivité pays the titulaire,
//! toutes taxes comprises, school year by school year), the annual ceiling in letters and figures
//! (`amounts`), its proration by twelfths (a month in force on its 15th, to the cent below), a
//! change by avenant, the payment — in the words of its parties ([`Terms`]); and the académie's
//! line of a tripartite's cost annex calls a share of more than 0 % a financial participation
//! within that ceiling ([`financial_item`]), not the contributions in kind its `item` describes
//! (the bipartite's file words it). An earlier edition renders the file's article.

use super::document::TTC_SHARES_EDITION;
use super::model::{self, Clause, ConventionModel, CostShare};
use std::sync::LazyLock;

/// The title of a tripartite's financial article ([`clause_text`]).
const FINANCIAL_ARTICLE: &str = "Article 5 – Dispositions financières";

/// The title of the bipartite's.
const BIPARTITE_FINANCIAL_ARTICLE: &str = "Article 4 – Dispositions financières";

/// How a financial article names the académie party and the schools: « de l'académie » /
/// « des services académiques » (`of`), who pays a titre de recettes (`pays`), the programme
/// they rely on (`relies`), « de l'établissement » / « de l'école » / « des écoles couvertes »
/// (`school`), « par l'académie » / « par les services académiques » (`by`, from
/// [`TTC_SHARES_EDITION`]).
struct Terms {
    of: &'static str,
    pays: &'static str,
    relies: &'static str,
    school: &'static str,
    by: &'static str,
}

/// The second degré's article 5 speaks of « l'académie » and « l'établissement ».
const SECOND_DEGRE: Terms = Terms {
    of: "de l'académie",
    pays: "l'académie le paie",
    relies: "elle relève",
    school: "de l'établissement",
    by: "par l'académie",
};

/// The premier degré's, of « les services académiques » and « l'école ».
const PREMIER_DEGRE: Terms = Terms {
    of: "des services académiques",
    pays: "les services académiques le paient",
    relies: "ils relèvent",
    school: "de l'école",
    by: "par les services académiques",
};

/// The bipartite's article 4, of « les services académiques » and « les écoles couvertes », as its
/// file words the base (`bipartite-commune-v3.yaml`).
const BIPARTITE: Terms = Terms { school: "des écoles couvertes", ..PREMIER_DEGRE };

/// The paragraph on the académie's money share, as the bipartite's article 4 words it (edition
/// 8), the proration rounded to the cent below as the « Caractéristiques » compute it
/// (`document::prorated_ceilings`); `{of}`, `{pays}`, `{relies}`, `{school}` are [`Terms`].
const SHARE_RULE: &str = "La participation {of} s'applique au montant toutes taxes comprises effectivement payé par la \
collectivité au titulaire du marché pour le service ENT {school}, année scolaire par année scolaire, du 1er septembre au \
31 août ; elle ne peut excéder, par année scolaire, {{ amounts.plafond_participation_academie | default(value=\"……\") }} \
toutes taxes comprises. Pour une année scolaire que la convention ne couvre pas en entier, ce plafond est réduit au \
prorata du nombre de mois de l'année scolaire couverts par la convention : il est égal à autant de douzièmes du plafond \
annuel que de mois couverts, arrondi au centime inférieur, un mois étant couvert lorsque la convention est en vigueur le \
15 de ce mois. Une modification de la part {of} ou du plafond par avenant s'applique aux paiements effectués par la \
collectivité à compter de la prise d'effet de l'avenant, les paiements antérieurs demeurant régis par les stipulations \
qu'il modifie ; le plafond de l'année scolaire au cours de laquelle l'avenant prend effet est la somme des douzièmes de \
l'ancien plafond pour les mois couverts dont le 15 précède cette prise d'effet et des douzièmes du nouveau plafond pour \
les autres mois couverts. Après la clôture de chaque année scolaire, la collectivité émet à l'encontre {of} un titre de \
recettes accompagné des justificatifs de la dépense (factures acquittées et état récapitulatif certifié par son \
comptable public) ; {pays} dans un délai de trente jours à compter de sa réception, sur les crédits du programme \
budgétaire dont {relies}. Aucune somme n'est due au-delà du plafond de l'année scolaire.";

/// The second degré's article 5 (`tripartite-second-degre-v3.yaml` with the ceiling): the
/// académie's share « dans la limite du plafond annuel fixé ci-après », [`SHARE_RULE`], the
/// contributions in kind, and the titre de recettes on a statement of costs left to the
/// établissement's share when the académie's is stated apart.
const SECOND_DEGRE_ARTICLE: &str = "Le coût du service ENT, comprenant l'abonnement, l'hébergement, la maintenance et le \
support de niveau 3, est réparti comme suit : {{ params.part_collectivite }} % à la charge de la collectivité, \
{{ params.part_academie }} % à la charge de l'académie{% if values.part_academie > 0 %}, dans la limite du plafond annuel \
fixé ci-après,{% endif %} et {{ params.part_etablissement }} % à la charge de l'établissement.

{% if values.part_academie > 0 %}{share_rule}{% endif %}

Les apports de l'académie au titre de l'identité, de l'accompagnement pédagogique, de la formation et du support de \
niveau 2, ainsi que ceux de l'établissement au titre de l'administration locale et du support de niveau 1, sont fournis \
en nature et ne donnent lieu à aucune facturation entre les parties.

Toute participation financière {% if values.part_academie > 0 %}de l'établissement{% else %}de l'académie ou de \
l'établissement{% endif %} fait l'objet d'un titre de recettes émis par la collectivité, sur présentation d'un état \
annuel des coûts constatés.";

/// How the services académiques' share opens the financial article of a convention of the premier
/// degré, a tripartite's or the bipartite's: the split, the share « dans la limite du plafond annuel
/// fixé ci-après » when it is more than 0 %, then [`SHARE_RULE`].
const SERVICES_ACADEMIQUES_SHARE: &str = "Le coût du service ENT, comprenant l'abonnement, l'hébergement, la \
maintenance et le support de niveau 3, est réparti comme suit : {{ params.part_collectivite }} % à la charge de la \
collectivité et {{ params.part_academie }} % à la charge des services académiques{% if values.part_academie > 0 %}, \
dans la limite du plafond annuel fixé ci-après{% endif %}.

{% if values.part_academie > 0 %}{share_rule}{% endif %}";

/// The premier degré's article 5 (`tripartite-premier-degre-v3.yaml` with the ceiling):
/// [`SERVICES_ACADEMIQUES_SHARE`], the contributions in kind, the école paying nothing.
const PREMIER_DEGRE_ARTICLE: &str = "{services_academiques_share}

Les apports des services académiques au titre de l'identité, de l'accompagnement pédagogique, de la formation et du \
support de niveau 2, ainsi que ceux de l'école au titre de l'administration locale et du support de niveau 1, sont \
fournis en nature et ne donnent lieu à aucune facturation entre les parties. L'école ne supporte aucune charge \
financière au titre de la présente convention.";

/// The bipartite's article 4 from edition 11 (`bipartite-commune-v3.yaml`, whose edition-8 wording
/// left the proration's rounding unsaid): [`SERVICES_ACADEMIQUES_SHARE`], then the contributions in
/// kind and the écoles paying nothing, as its file says them.
const BIPARTITE_ARTICLE: &str = "{services_academiques_share}

Les apports des services académiques au titre de l'identité, de l'accompagnement pédagogique, de la formation et du \
support de niveau 2 sont fournis en nature et ne donnent lieu à aucune facturation entre les parties. Les écoles ne \
supportent aucune charge financière au titre de la présente convention.";

/// The académie's line of the cost annex when it pays more than 0 % ([`financial_item`]), as
/// the bipartite's `financial_item` words it, citing the tripartite's article.
const FINANCIAL_ITEM: &str = "participation financière au coût du service (abonnement, hébergement, maintenance et \
support de niveau 3), dans la limite du plafond annuel fixé à l'article 5";

/// The second degré's établissement line of the cost annex for a share of more than 0 % from
/// [`TTC_SHARES_EDITION`]: what article 5 makes it pay.
const ETABLISSEMENT_FINANCIAL_ITEM: &str = "participation financière au coût du service (abonnement, hébergement, \
maintenance et support de niveau 3), dans les conditions fixées à l'article 5";

/// Its line at 0 % ([`in_kind_item`]).
const ETABLISSEMENT_IN_KIND: &str =
    "aucune charge financière (administration locale et support de niveau 1 fournis en nature)";

/// The model whose établissement may pay a share ([`financial_item`]).
const SECOND_DEGRE_ID: &str = "tripartite-second-degre";

/// What [`TTC_SHARES_EDITION`] changes in the financial articles (each found once in an article of
/// edition 11 that has it, [`edition_12`]): the cost shared is the cost toutes taxes comprises,
/// as the académie's share is computed on; the excess over the académie's ceiling is the
/// collectivité's; the second degré's établissement pays its share on the same base, by a titre de
/// recettes with the same vouchers, where edition 11 left its base and its payment unsaid.
const EDITION_12_WORDING: [(&str, &str); 3] = [
    ("Le coût du service ENT, comprenant", "Le coût toutes taxes comprises du service ENT, comprenant"),
    (
        "Aucune somme n'est due au-delà du plafond de l'année scolaire.",
        "Aucune somme n'est due {by} au-delà du plafond de l'année scolaire ; le surplus demeure à la charge de la \
         collectivité.",
    ),
    (
        "Toute participation financière {% if values.part_academie > 0 %}de l'établissement{% else %}de l'académie ou \
         de l'établissement{% endif %} fait l'objet d'un titre de recettes émis par la collectivité, sur présentation \
         d'un état annuel des coûts constatés.",
        "{% if values.part_etablissement > 0 %}La participation de l'établissement s'applique au montant toutes taxes \
         comprises effectivement payé par la collectivité au titulaire du marché pour le service ENT de \
         l'établissement, année scolaire par année scolaire, du 1er septembre au 31 août. Après la clôture de chaque \
         année scolaire, la collectivité émet à l'encontre de l'établissement un titre de recettes accompagné des \
         justificatifs de la dépense (factures acquittées et état récapitulatif certifié par son comptable public) ; \
         l'établissement le paie sur son budget dans un délai de trente jours à compter de sa réception.{% endif %}",
    ),
];

/// `article` (with its placeholders) as [`TTC_SHARES_EDITION`] words it ([`EDITION_12_WORDING`]).
fn edition_12(article: &str) -> String {
    EDITION_12_WORDING.iter().fold(article.to_string(), |text, (before, after)| text.replace(before, after))
}

/// `article` with [`SERVICES_ACADEMIQUES_SHARE`] and [`SHARE_RULE`] in the words of `terms`, as
/// [`TTC_SHARES_EDITION`] words them when `twelve` ([`edition_12`]).
fn worded(article: &str, terms: &Terms, twelve: bool) -> String {
    let shared =
        article.replace("{services_academiques_share}", SERVICES_ACADEMIQUES_SHARE).replace("{share_rule}", SHARE_RULE);
    let shared = if twelve { edition_12(&shared) } else { shared };
    shared
        .replace("{of}", terms.of)
        .replace("{pays}", terms.pays)
        .replace("{relies}", terms.relies)
        .replace("{school}", terms.school)
        .replace("{by}", terms.by)
}

/// An article the code writes in place of a file's: for the model `id`, the clause `title`, in a
/// text of edition `from` on.
struct Coded {
    id: &'static str,
    title: &'static str,
    from: i64,
    article: String,
}

/// The code's articles, the latest edition first for each model (parsed templates are cached by
/// their text, so each is built once).
static ARTICLES: LazyLock<[Coded; 6]> = LazyLock::new(|| {
    use super::document::{BIPARTITE_ROUNDING_EDITION, TRIPARTITE_CEILING_EDITION};
    let coded = |id, title, from, article, terms| Coded {
        id,
        title,
        from,
        article: worded(article, terms, from >= TTC_SHARES_EDITION),
    };
    let second = |from| coded(SECOND_DEGRE_ID, FINANCIAL_ARTICLE, from, SECOND_DEGRE_ARTICLE, &SECOND_DEGRE);
    let premier =
        |from| coded("tripartite-premier-degre", FINANCIAL_ARTICLE, from, PREMIER_DEGRE_ARTICLE, &PREMIER_DEGRE);
    let bipartite = |from| coded("bipartite-commune", BIPARTITE_FINANCIAL_ARTICLE, from, BIPARTITE_ARTICLE, &BIPARTITE);
    [
        second(TTC_SHARES_EDITION),
        second(TRIPARTITE_CEILING_EDITION),
        premier(TTC_SHARES_EDITION),
        premier(TRIPARTITE_CEILING_EDITION),
        bipartite(TTC_SHARES_EDITION),
        bipartite(BIPARTITE_ROUNDING_EDITION),
    ]
});

/// The version of the bipartite whose article 4 the code writes: the one whose file states the
/// ceiling (edition 8's wording, without the proration's rounding).
const CODED_BIPARTITE: (&str, u32) = ("bipartite-commune", 3);

/// Whether the code writes the financial article of `model`: a tripartite whose ceiling is the
/// code's (`model::has_code_ceiling`), or [`CODED_BIPARTITE`].
fn coded_model(model: &ConventionModel) -> bool {
    model::has_code_ceiling(model) || (model.id.as_str(), model.version) == CODED_BIPARTITE
}

/// The article the code writes for `clause` of `model` in a text of `edition`, if any.
fn coded(model: &ConventionModel, title: &str, edition: i64) -> Option<&'static Coded> {
    let coded = ARTICLES.iter().find(|c| c.id == model.id && c.title == title && edition >= c.from)?;
    coded_model(model).then_some(coded)
}

/// The template a text of `edition` renders `clause` of `model` from: the code's financial
/// article where it writes it ([`coded`]), else the file's.
pub fn clause_text<'a>(model: &ConventionModel, clause: &'a Clause, edition: i64) -> &'a str {
    match coded(model, &clause.title, edition) {
        Some(coded) => &coded.article,
        None => &clause.text,
    }
}

/// What the académie's `line` of the cost annex pays for when its share is more than 0 %, as a
/// text of `edition` of `model` states it, when the code words it: a tripartite whose article 5
/// it writes ([`coded`]).
pub fn financial_item(model: &ConventionModel, line: &CostShare, edition: i64) -> Option<&'static str> {
    let coded = coded(model, FINANCIAL_ARTICLE, edition).is_some();
    match line.party.as_str() {
        "academie" if coded => Some(FINANCIAL_ITEM),
        "etablissement" if coded && model.id == SECOND_DEGRE_ID && edition >= TTC_SHARES_EDITION => {
            Some(ETABLISSEMENT_FINANCIAL_ITEM)
        }
        _ => None,
    }
}

/// What the second degré's établissement line of the cost annex says at 0 % from
/// [`TTC_SHARES_EDITION`] (its contributions in kind, as article 5 states them), where edition 11
/// read « participation éventuelle aux services optionnels choisis par l'établissement ».
pub fn in_kind_item(model: &ConventionModel, line: &CostShare, edition: i64) -> Option<&'static str> {
    let second_degre = model.id == SECOND_DEGRE_ID && coded(model, FINANCIAL_ARTICLE, edition).is_some();
    (line.party == "etablissement" && second_degre && edition >= TTC_SHARES_EDITION).then_some(ETABLISSEMENT_IN_KIND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conventions::model::load_models;

    /// `text` has each placeholder of [`worded`] replaced.
    fn assert_worded(text: &str) {
        for placeholder in ["{of}", "{pays}", "{relies}", "{school}", "{share_rule}", "{services_academiques_share}"] {
            assert!(!text.contains(placeholder), "{placeholder} left in {text}");
        }
    }

    /// Each tripartite whose ceiling is the code's has the article the code writes, and the
    /// code's article reads every placeholder in the words of its degree.
    #[test]
    fn the_code_writes_article_5_of_each_tripartite_whose_ceiling_it_adds() {
        let models = load_models(None).unwrap();
        let coded: Vec<&ConventionModel> = models.iter().filter(|m| model::has_code_ceiling(m)).collect();
        assert_eq!(coded.len(), 2);
        for m in coded {
            let clause = m.clauses.iter().find(|c| c.title == FINANCIAL_ARTICLE).expect("article 5");
            let text = clause_text(m, clause, super::super::document::TRIPARTITE_CEILING_EDITION);
            assert_ne!(text, clause.text, "{}", m.id);
            assert_worded(text);
            assert!(text.contains("arrondi au centime inférieur"), "{}", m.id);
            assert_eq!(clause_text(m, clause, 9), clause.text, "{}: edition 9 keeps the file's", m.id);
            let line = m.cost_sharing.iter().find(|c| c.party == "academie").unwrap();
            assert_eq!(financial_item(m, line, 9), None);
            assert!(financial_item(m, line, 10).unwrap().ends_with("fixé à l'article 5"));
        }
        let second = models.iter().find(|m| m.id == "tripartite-second-degre" && m.version == 3).unwrap();
        let clause = second.clauses.iter().find(|c| c.title == FINANCIAL_ARTICLE).unwrap();
        let text = clause_text(second, clause, 10);
        assert!(text.contains("l'académie le paie dans un délai de trente jours"), "{text}");
        assert!(text.contains("sur les crédits du programme budgétaire dont elle relève"), "{text}");
        let bipartite = models.iter().find(|m| m.id == "bipartite-commune" && m.version == 3).unwrap();
        let article = &bipartite.clauses[3];
        assert_eq!(clause_text(bipartite, article, 10), article.text, "edition 10: the bipartite's file words it");
        let line = bipartite.cost_sharing.iter().find(|c| c.party == "academie").unwrap();
        assert_eq!(financial_item(bipartite, line, 11), None, "the bipartite's file words its cost line");
    }

    /// From edition 12 each financial article shares the cost toutes taxes comprises and leaves the
    /// excess over the académie's ceiling to the collectivité, and the second degré's établissement
    /// pays its share on that base by a titre de recettes, its cost line saying so (at 0 %, its
    /// contributions in kind); each change of [`EDITION_12_WORDING`] is found in an article of
    /// edition 11 (which keeps its bytes: [`EDITION_10_ARTICLES`]).
    #[test]
    fn edition_12_shares_the_cost_toutes_taxes_comprises_and_leaves_the_excess_to_the_collectivite() {
        let models = load_models(None).unwrap();
        let coded = [
            ("tripartite-second-degre", FINANCIAL_ARTICLE, "par l'académie"),
            ("tripartite-premier-degre", FINANCIAL_ARTICLE, "par les services académiques"),
            ("bipartite-commune", BIPARTITE_FINANCIAL_ARTICLE, "par les services académiques"),
        ];
        let mut edition_11 = String::new();
        for (id, title, by) in coded {
            let m = models.iter().find(|m| m.id == id && m.version == 3).unwrap();
            let clause = m.clauses.iter().find(|c| c.title == title).unwrap();
            let text = clause_text(m, clause, TTC_SHARES_EDITION);
            edition_11.push_str(clause_text(m, clause, TTC_SHARES_EDITION - 1));
            assert_worded(text);
            assert!(!text.contains("{by}"), "{id}: {text}");
            assert!(text.starts_with("Le coût toutes taxes comprises du service ENT, comprenant"), "{id}: {text}");
            let excess = format!(
                "Aucune somme n'est due {by} au-delà du plafond de l'année scolaire ; le surplus demeure à la charge \
                 de la collectivité."
            );
            assert!(text.contains(&excess), "{id}: {text}");
        }
        for (before, _) in EDITION_12_WORDING {
            assert!(edition_11.contains(before), "« {before} » is in no article of edition 11");
        }
        let second = models.iter().find(|m| m.id == SECOND_DEGRE_ID && m.version == 3).unwrap();
        let text = clause_text(second, second.clauses.iter().find(|c| c.title == FINANCIAL_ARTICLE).unwrap(), 12);
        assert!(text.contains("{% if values.part_etablissement > 0 %}La participation de l'établissement"), "{text}");
        assert!(!text.contains("état annuel des coûts constatés"), "{text}");
        let line = second.cost_sharing.iter().find(|c| c.party == "etablissement").unwrap();
        assert_eq!(financial_item(second, line, 12), Some(ETABLISSEMENT_FINANCIAL_ITEM));
        assert_eq!(in_kind_item(second, line, 12), Some(ETABLISSEMENT_IN_KIND));
        assert_eq!((financial_item(second, line, 11), in_kind_item(second, line, 11)), (None, None), "edition 11");
    }

    /// The SHA-256 of the article 5 the code writes for each tripartite in edition 10, as it
    /// shipped: sharing its wording with the bipartite's article 4 changed none of its bytes.
    const EDITION_10_ARTICLES: [(&str, &str); 2] = [
        ("tripartite-second-degre", "88287eaeb5943fa5fe0dee081069400391f5a9cb5d304f8cc39dccec93f6795a"),
        ("tripartite-premier-degre", "60e1e9c21e9932a5f79d6abac2aad3cb812c27be14f10582f99bff8c0949f925"),
    ];

    #[test]
    fn the_tripartites_article_5_keeps_the_bytes_edition_10_shipped() {
        let models = load_models(None).unwrap();
        for (id, sha256) in EDITION_10_ARTICLES {
            let m = models.iter().find(|m| m.id == id && m.version == 3).unwrap();
            let clause = m.clauses.iter().find(|c| c.title == FINANCIAL_ARTICLE).unwrap();
            for edition in [10, 11] {
                let text = clause_text(m, clause, edition);
                assert_eq!(ent_documents::documents::sha256_hex(text.as_bytes()), sha256, "{id}, edition {edition}");
            }
        }
    }

    /// From edition 11 the code writes the bipartite's article 4 with the tripartites' wording: the
    /// share within the ceiling, the base of the écoles couvertes, the proration to the cent below,
    /// the payment by the services académiques; the écoles pay nothing, as the file says.
    #[test]
    fn the_code_writes_the_bipartite_s_article_4_from_edition_11() {
        let models = load_models(None).unwrap();
        let bipartite = models.iter().find(|m| m.id == "bipartite-commune" && m.version == 3).unwrap();
        let article = bipartite.clauses.iter().find(|c| c.title == BIPARTITE_FINANCIAL_ARTICLE).unwrap();
        let text = clause_text(bipartite, article, 11);
        assert_ne!(text, article.text);
        assert!(!article.text.contains("arrondi au centime inférieur"), "the file's edition-8 wording");
        for said in [
            "% à la charge des services académiques{% if values.part_academie > 0 %}, dans la limite du plafond annuel \
             fixé ci-après{% endif %}.",
            "pour le service ENT des écoles couvertes, année scolaire par année scolaire, du 1er septembre au 31 août",
            "arrondi au centime inférieur",
            "les services académiques le paient dans un délai de trente jours",
            "Les écoles ne supportent aucune charge financière au titre de la présente convention.",
        ] {
            assert!(text.contains(said), "« {said} » not in {text}");
        }
        assert_worded(text);
        for older in [1, 2] {
            let m = models.iter().find(|m| m.id == "bipartite-commune" && m.version == older).unwrap();
            let clause = m.clauses.iter().find(|c| c.title == BIPARTITE_FINANCIAL_ARTICLE).unwrap();
            assert_eq!(clause_text(m, clause, 11), clause.text, "version {older} keeps its file's");
        }
    }
}
