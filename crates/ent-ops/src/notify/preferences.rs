//! E-mail preferences: which optional mails a person receives, by category.
//!
//! Every mail of the outbox is either in a [`Category`] a person may switch off, or one that
//! must always go ([`category_of`] answers `None`): the sign-in and password links of the
//! console, the test message an administrator sends, the termination of a convention (a
//! notice to the parties), the life of an ENT (suspension, withdrawal, archiving, purge), the
//! alert that a ticket has no support designated (its governors are asked to name one, and the
//! requester is told they were). Nothing stored means « sent »: a row is kept only once the
//! person chose. [`enqueue_at`](super::enqueue_at) drops an opted-out recipient from the
//! mail (the others still get it); recipients are addressed by e-mail, matched to users
//! without regard to case.

use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::{timestamp, Flag, Store, Tx};
use ent_kernel::text_enum;
use ent_platform::audit::{self, Target};
use ent_platform::identity::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

/// A kind of optional mail, as the person chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// The support desk's notices (`support`): new tickets of a queue, answers, escalations,
    /// breaches; not the `unstaffed` alert to an ENT's governors, which always goes.
    Tickets,
    /// A convention to endorse or sign, a signature voided or still awaited (`convention`).
    ConventionsToSign,
    /// The life of a convention: refused, in force, expiring, expired (`convention`).
    ConventionsFollowUp,
    /// Notices of a groupement de commandes (`groupement`).
    Groupements,
    /// A register changed since its previous snapshot, to the DPO (`rgpd`).
    Rgpd,
}

text_enum!(pub Category from Self::ALL);

/// As its text ([`Category::as_str`]), the name of its box in the form.
impl Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Tickets,
        Category::ConventionsToSign,
        Category::ConventionsFollowUp,
        Category::Groupements,
        Category::Rgpd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Tickets => "tickets",
            Category::ConventionsToSign => "conventions-a-signer",
            Category::ConventionsFollowUp => "conventions-suivi",
            Category::Groupements => "groupements",
            Category::Rgpd => "rgpd",
        }
    }

    /// The category's name on the person's page.
    pub fn label(self) -> &'static str {
        match self {
            Category::Tickets => "Tickets de support",
            Category::ConventionsToSign => "Conventions à viser ou à signer",
            Category::ConventionsFollowUp => "Suivi des conventions",
            Category::Groupements => "Groupements de commandes",
            Category::Rgpd => "Registres RGPD",
        }
    }

    /// What the category's mails are about.
    pub fn hint(self) -> &'static str {
        match self {
            Category::Tickets => {
                "Nouveaux tickets de votre file, réponses, escalades, relances et dépassements d'échéance."
            }
            Category::ConventionsToSign => {
                "Convention soumise à votre visa ou à votre signature, signature annulée ou toujours attendue."
            }
            Category::ConventionsFollowUp => "Convention refusée, entrée en vigueur, arrivant à échéance ou expirée.",
            Category::Groupements => "Candidatures, décisions du coordonnateur, retraits et attribution du marché.",
            Category::Rgpd => "Changements d'un registre des traitements depuis son instantané précédent.",
        }
    }
}

/// The mails that always go, whatever the preferences: (name, why), for the person's page.
pub const MANDATORY: &[(&str, &str)] = &[
    (
        "Connexion et mot de passe",
        "Lien pour choisir votre mot de passe à l'invitation, lien de réinitialisation après « mot de passe oublié ».",
    ),
    ("Résiliation d'une convention", "Notification de la résiliation aux parties de la convention."),
    (
        "Violation de données notifiée par un sous-traitant",
        "Violation de données personnelles notifiée au responsable de traitement par le sous-traitant de son ENT \
         (article 33.2 du RGPD), puis ses compléments : les 72 heures de la notification à la CNIL courent dès \
         cette notification.",
    ),
    (
        "Vie d'un ENT",
        "Suspension, remise en service, retrait, archivage d'un ENT qui vous concerne, annonce de la purge de ses \
         données puis purge, perte puis retour de la couverture par une convention en vigueur.",
    ),
    (
        "Ticket sans support désigné",
        "Ticket ouvert sur un ENT dont vous êtes responsable et pour lequel aucun support n'est désigné, pour que \
         vous en désigniez un : le demandeur lit que vous en êtes averti.",
    ),
    ("Message d'essai", "Message envoyé par un administrateur pour vérifier l'envoi des courriels."),
];

/// The category of a mail of `template` with `context` (its `event` field), or `None` for a
/// mail that must always go. An unknown template is no category: never silently dropped.
pub fn category_of(template: &str, context: &serde_json::Value) -> Option<Category> {
    let event = context.get("event").and_then(|e| e.as_str()).unwrap_or_default();
    match template {
        "support" => match event {
            // An operational alert to the ENT's governors, not a ticket's notice: they are
            // asked to designate an N1, and the requester reads that they were told.
            "unstaffed" => None,
            _ => Some(Category::Tickets),
        },
        "convention" => match event {
            "submitted" | "signatures_voided" | "signature_withdrawn" | "signature_pending" => {
                Some(Category::ConventionsToSign)
            }
            // Notices with legal effect: always sent.
            "terminated" | "non_renewal" => None,
            _ => Some(Category::ConventionsFollowUp),
        },
        "groupement" => Some(Category::Groupements),
        "rgpd" => Some(Category::Rgpd),
        // An ENT suspended, withdrawn, archived, its purge announced, its data purged, left
        // without a convention in force or covered again: notices with operational and legal
        // effect, always sent.
        "tenant" => None,
        // A breach a processor notifies to the controller (art. 33.2 RGPD), whose 72 hours to
        // notify the CNIL run from it: always sent.
        "breach" => None,
        // `console` (invitation and password links), `test`: always.
        _ => None,
    }
}

/// One category as the person sees it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Preference {
    /// `tickets`, `conventions-a-signer`, `conventions-suivi`, `groupements` or `rgpd`.
    #[schemars(with = "String")]
    pub category: Category,
    pub label: &'static str,
    pub hint: &'static str,
    /// Whether the person receives this category's mails.
    pub enabled: bool,
}

/// A mail sent whatever the preferences.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlwaysSent {
    pub label: &'static str,
    pub why: &'static str,
}

/// The e-mail preferences of a person (`GET /api/v1/me/notification-preferences`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MailPreferences {
    /// The optional mails, each sent unless switched off.
    pub categories: Vec<Preference>,
    /// The mails that always go.
    pub always_sent: Vec<AlwaysSent>,
}

/// The categories to change (`PUT /api/v1/me/notification-preferences`): `true` to receive
/// them, `false` to stop; a category absent or `null` is left as it is. Each value is
/// written as such (an idempotent upsert): sending the same body twice changes nothing.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailChoices {
    #[serde(default)]
    pub tickets: Option<bool>,
    #[serde(default, rename = "conventions-a-signer")]
    pub conventions_to_sign: Option<bool>,
    #[serde(default, rename = "conventions-suivi")]
    pub conventions_follow_up: Option<bool>,
    #[serde(default)]
    pub groupements: Option<bool>,
    #[serde(default)]
    pub rgpd: Option<bool>,
}

impl MailChoices {
    /// The categories named, with their value.
    pub fn choices(&self) -> Vec<(Category, bool)> {
        [
            (Category::Tickets, self.tickets),
            (Category::ConventionsToSign, self.conventions_to_sign),
            (Category::ConventionsFollowUp, self.conventions_follow_up),
            (Category::Groupements, self.groupements),
            (Category::Rgpd, self.rgpd),
        ]
        .into_iter()
        .filter_map(|(category, sent)| sent.map(|sent| (category, sent)))
        .collect()
    }
}

/// The preferences of `user_id` with the mails that always go.
pub async fn preferences_of(store: &Store, user_id: &str) -> Result<MailPreferences, Problem> {
    let categories = of_user(&mut *store.conn().await?, user_id).await?;
    let always_sent = MANDATORY.iter().map(|(label, why)| AlwaysSent { label, why }).collect();
    Ok(MailPreferences { categories, always_sent })
}

#[derive(sqlx::FromRow)]
struct Stored {
    #[sqlx(try_from = "String")]
    category: Category,
    #[sqlx(try_from = "Flag")]
    enabled: bool,
}

/// Every category for `user_id`, sent unless the person switched it off.
pub async fn of_user(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<Preference>, Problem> {
    let stored: Vec<Stored> =
        sqlx::query_as("SELECT category, enabled FROM notification_preferences WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(Category::ALL
        .into_iter()
        .map(|category| Preference {
            category,
            label: category.label(),
            hint: category.hint(),
            enabled: stored.iter().find(|s| s.category == category).is_none_or(|s| s.enabled),
        })
        .collect())
}

/// Records the choices of `user_id` (each `(category, sent)`), one upsert per category, and
/// audits those that changed. Only the categories named are written: two forms saved at
/// once, each changing its own category, both count.
pub async fn set(
    store: &Store,
    actor: &Actor,
    user_id: &str,
    choices: &[(Category, bool)],
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let mut tx = store.begin_write().await?;
    let user: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT email, org_id FROM users WHERE id = $1").bind(user_id).fetch_optional(&mut *tx).await?;
    let (email, org_id) = user.ok_or_else(|| Problem::not_found("utilisateur introuvable"))?;
    let before = of_user(&mut tx, user_id).await?;
    let mut changed = serde_json::Map::new();
    for (category, enabled) in choices {
        if before.iter().any(|p| p.category == *category && p.enabled == *enabled) {
            continue;
        }
        upsert(&mut tx, user_id, *category, *enabled, now).await?;
        changed.insert(category.as_str().into(), (*enabled).into());
    }
    if !changed.is_empty() {
        let target = Target::new("user", user_id, org_id.as_deref());
        let summary = serde_json::json!({ "user": email, "sent": changed });
        audit::record(&mut tx, store.backend(), actor, "notifications.preferences", &target, summary, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn upsert(
    tx: &mut Tx,
    user_id: &str,
    category: Category,
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query(
        "INSERT INTO notification_preferences (user_id, category, enabled, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, category) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(category.as_str())
    .bind(i64::from(enabled))
    .bind(timestamp(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `recipients` without those who switched `category` off (compared without regard to case).
pub async fn keep_wanted(
    conn: &mut AnyConnection,
    category: Category,
    recipients: &[String],
) -> Result<Vec<String>, Problem> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let listed = (0..recipients.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT LOWER(u.email) FROM notification_preferences p JOIN users u ON u.id = p.user_id \
         WHERE p.category = $1 AND p.enabled = 0 AND LOWER(u.email) IN ({listed})"
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql).bind(category.as_str());
    for recipient in recipients {
        query = query.bind(recipient.trim().to_lowercase());
    }
    let out: Vec<String> = query.fetch_all(&mut *conn).await?;
    Ok(recipients.iter().filter(|r| !out.contains(&r.trim().to_lowercase())).cloned().collect())
}

/// The choices a form sends: for each category shown (`avant-<catégorie>` holds the value the
/// page showed), sent when its box `<catégorie>` is ticked. Only the categories whose value
/// differs from the one shown are returned, so a form saved late does not undo another.
pub fn choices_from_form(fields: &[(String, String)]) -> Vec<(Category, bool)> {
    let value = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    Category::ALL
        .into_iter()
        .filter_map(|category| {
            let shown = value(&format!("avant-{}", category.as_str()))? == "1";
            let ticked = value(category.as_str()) == Some("1");
            (shown != ticked).then_some((category, ticked))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_in_links_test_mails_terminations_and_tenant_notices_have_no_category() {
        assert_eq!(category_of("console", &json!({ "event": "reset" })), None);
        assert_eq!(category_of("console", &json!({ "event": "invitation" })), None);
        assert_eq!(category_of("test", &json!({})), None);
        assert_eq!(category_of("convention", &json!({ "event": "terminated" })), None);
        assert_eq!(category_of("support", &json!({ "event": "unstaffed" })), None);
        let events = [
            "suspended",
            "reactivated",
            "decommissioning",
            "archived",
            "purge_planned",
            "purged",
            "convention_lapsed",
            "convention_restored",
        ];
        for event in events {
            assert_eq!(category_of("tenant", &json!({ "event": event })), None, "{event}");
        }
        // The person's page says so of every one of them.
        let (_, why) = MANDATORY.iter().find(|(name, _)| *name == "Vie d'un ENT").unwrap();
        for said in ["Suspension", "archivage", "purge", "couverture par une convention en vigueur"] {
            assert!(why.contains(said), "{said}: {why}");
        }
    }

    #[test]
    fn every_other_template_of_the_outbox_has_its_category() {
        assert_eq!(category_of("support", &json!({ "event": "created" })), Some(Category::Tickets));
        assert_eq!(category_of("convention", &json!({ "event": "submitted" })), Some(Category::ConventionsToSign));
        assert_eq!(category_of("convention", &json!({ "event": "expiring" })), Some(Category::ConventionsFollowUp));
        assert_eq!(category_of("groupement", &json!({ "event": "applied" })), Some(Category::Groupements));
        assert_eq!(category_of("rgpd", &json!({})), Some(Category::Rgpd));
        let mut templates = super::super::mailer::template_names();
        templates.sort_unstable();
        let known = ["breach", "console", "convention", "groupement", "rgpd", "support", "tenant", "test"];
        assert_eq!(templates, known, "a new template needs its category in `category_of`");
    }

    #[test]
    fn a_form_changes_only_the_categories_whose_box_moved() {
        let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let fields = form(&[
            ("avant-tickets", "1"),
            ("avant-rgpd", "0"),
            ("rgpd", "1"),
            ("avant-groupements", "1"),
            ("groupements", "1"),
        ]);
        assert_eq!(choices_from_form(&fields), vec![(Category::Tickets, false), (Category::Rgpd, true)]);
        assert_eq!(choices_from_form(&form(&[("tickets", "0")])), vec![], "a category not shown is left alone");
    }

    #[test]
    fn an_api_body_names_the_categories_it_changes_and_nothing_else() {
        let body: MailChoices = serde_json::from_value(json!({ "rgpd": false, "tickets": null })).unwrap();
        assert_eq!(body.choices(), vec![(Category::Rgpd, false)]);
        assert!(serde_json::from_value::<MailChoices>(json!({ "inconnue": true })).is_err());
    }

    #[test]
    fn categories_read_back_from_their_text() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(category));
        }
    }
}
