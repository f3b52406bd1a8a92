//! Rendering an outbox message into an e-mail, and the transports that deliver
//! it: `.eml` files under the data directory (default) or SMTP.

use ent_kernel::config::{Config, ConsoleConfig, MailTransport, SmtpTls};
use ent_kernel::files::{private_dir, write_private};
use ent_kernel::naming;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// A template's three parts compiled into the binary: (name, subject, text, html).
macro_rules! mail_template {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../../templates/mail/", $name, ".subject")),
            include_str!(concat!("../../../../templates/mail/", $name, ".txt")),
            include_str!(concat!("../../../../templates/mail/", $name, ".html")),
        )
    };
}

/// The e-mail templates compiled into the binary: (name, subject, text, html).
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    mail_template!("test"),
    mail_template!("convention"),
    mail_template!("support"),
    mail_template!("groupement"),
    mail_template!("rgpd"),
    mail_template!("console"),
    mail_template!("tenant"),
    mail_template!("breach"),
];

/// The page every HTML body extends (`{% extends "layout.html" %}`): its blocks are
/// `title`, `body` and `signature` (after « Plan de contrôle ENT »).
const LAYOUT: &str = include_str!("../../../../templates/mail/layout.html");

/// The link line every text body includes (`{% include "link.txt" %}`): see [`with_link`].
const LINK_TEXT: &str = include_str!("../../../../templates/mail/link.txt");

fn tera() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        naming::register_filters(&mut tera);
        tera.add_raw_template("layout.html", LAYOUT)
            .unwrap_or_else(|e| panic!("the e-mail layout does not compile: {e:?}"));
        tera.add_raw_template("link.txt", LINK_TEXT)
            .unwrap_or_else(|e| panic!("the e-mail link line does not compile: {e:?}"));
        for (name, subject, text, html) in TEMPLATES {
            tera.add_raw_templates([
                (format!("{name}.subject"), *subject),
                (format!("{name}.txt"), *text),
                (format!("{name}.html"), *html),
            ])
            .unwrap_or_else(|e| panic!("e-mail template {name} does not compile: {e:?}"));
        }
        tera
    })
}

pub fn template_exists(name: &str) -> bool {
    TEMPLATES.iter().any(|(known, ..)| *known == name)
}

pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(name, ..)| *name).collect()
}

/// A rendered e-mail, before addressing.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders the three parts of a template with a JSON object as context.
pub fn render(template: &str, context: &serde_json::Value) -> Result<Rendered, String> {
    if !template_exists(template) {
        return Err(format!("modèle de courriel inconnu : {template}"));
    }
    let context = tera::Context::from_value(context.clone())
        .map_err(|e| format!("contexte du modèle {template} invalide : {e}"))?;
    let part = |suffix: &str| {
        tera()
            .render(&format!("{template}.{suffix}"), &context)
            .map_err(|e| format!("rendu du modèle {template}.{suffix} impossible : {}", chain(&e)))
    };
    Ok(Rendered { subject: part("subject")?.trim().to_string(), text: part("txt")?, html: part("html")? })
}

/// A notice's context with `page_link`, the console address of its `page` (the path of the
/// object the reader acts on, see `Notice::page`), when `console.public_url` is configured;
/// without it the templates say so and name the page instead of guessing a host.
pub fn with_link(console: &ConsoleConfig, context: &serde_json::Value) -> serde_json::Value {
    let mut context = context.clone();
    let link = context.get("page").and_then(serde_json::Value::as_str).and_then(|path| console.notice_link(path));
    if let (Some(link), Some(fields)) = (link, context.as_object_mut()) {
        fields.insert("page_link".into(), link.into());
    }
    context
}

/// A tera error and its causes on one line (the useful part is in the causes).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors already print their cause.
        if !text.contains(&cause_text) {
            text.push_str(" : ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Builds the e-mail of outbox message `id` to its one recipient `to`, the only address it
/// carries (no Cc, no Bcc: a notice's recipients never see each other's addresses). Its
/// Message-ID derives from the outbox id, so a receiver can tell a resend from a new message.
pub fn build_message(id: &str, from: &str, to: &str, rendered: Rendered) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("expéditeur « {from} » invalide : {e}"))?;
    let domain = from.email.domain().to_string();
    let recipient: Mailbox = to.parse().map_err(|e| format!("destinataire « {to} » invalide : {e}"))?;
    Message::builder()
        .from(from)
        .to(recipient)
        .subject(rendered.subject)
        .message_id(Some(format!("<{id}@{domain}>")))
        .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
        .map_err(|e| format!("construction du courriel impossible : {e}"))
}

/// Where e-mails go.
pub enum Mailer {
    /// One `<id>.eml` file per message in this directory.
    Files(PathBuf),
    /// The transport, and the longest one message may take ([`message_timeout`]).
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Duration),
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        match config.mail.transport {
            MailTransport::File => Ok(Mailer::Files(mail_dir(config))),
            MailTransport::Smtp => Ok(Mailer::Smtp(smtp_transport(config)?, message_timeout(config))),
        }
    }

    /// Delivers one message; the error is kept in the outbox, so it is French.
    pub async fn send(&self, id: &str, message: Message) -> Result<(), SendError> {
        match self {
            Mailer::Files(dir) => write_eml(dir, id, &message.formatted()).await.map_err(|e| SendError {
                error: format!("écriture du fichier .eml impossible : {e}"),
                login_refused: false,
                unanswered: false,
            }),
            Mailer::Smtp(transport, longest) => match tokio::time::timeout(*longest, transport.send(message)).await {
                Ok(sent) => sent.map(|_| ()).map_err(|e| SendError {
                    error: format!("envoi SMTP impossible : {}", chain(&e)),
                    login_refused: e.status().is_some_and(|code| refuses_login(code.into())),
                    unanswered: false,
                }),
                Err(_) => Err(SendError {
                    error: format!(
                        "envoi SMTP impossible : le serveur n'a pas achevé l'échange en {} s",
                        longest.as_secs()
                    ),
                    login_refused: false,
                    unanswered: true,
                }),
            },
        }
    }
}

/// Why a message was not handed over.
pub struct SendError {
    pub error: String,
    /// The SMTP server refused the credentials: no message goes through until the
    /// configuration changes (not the message's fault).
    pub login_refused: bool,
    /// The exchange was cut at [`message_timeout`]: the server accepted the connection, then
    /// did not answer in time (hung, or overloaded). The pass stops trying it after a few.
    pub unanswered: bool,
}

/// SMTP replies that refuse the login (RFC 4954): 530 authentication required, 534 mechanism
/// too weak, 535 credentials invalid, 538 encryption required.
pub fn refuses_login(code: u16) -> bool {
    matches!(code, 530 | 534 | 535 | 538)
}

/// The longest one message may take over SMTP: `smtp.timeout_seconds` to connect, then as much
/// for the whole exchange (greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA). lettre bounds the
/// connection only, not a server that accepts it and then never answers: the whole exchange is
/// cut at this, the message retried after its backoff, and the outbox's lease counts on it.
pub fn message_timeout(config: &Config) -> Duration {
    Duration::from_secs(2u64.saturating_mul(config.mail.smtp.timeout_seconds).min(86_400))
}

/// The directory of the file transport.
pub fn mail_dir(config: &Config) -> PathBuf {
    config.data_dir.join("mail")
}

fn smtp_transport(config: &Config) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let smtp = &config.mail.smtp;
    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(TlsParameters::new(smtp.host.clone())?),
        SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(smtp.host.clone())?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(smtp.timeout_seconds)));
    if let Some(username) = &smtp.username {
        let password = smtp.password.clone().unwrap_or_default();
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(builder.build())
}

/// Removes the `.eml` files of the messages `ids` from `dir` (those the file transport
/// wrote); returns how many were there. A file that cannot be removed is logged.
pub async fn remove_eml(dir: &Path, ids: &[String]) -> usize {
    let (dir, ids) = (dir.to_path_buf(), ids.to_vec());
    let removed = tokio::task::spawn_blocking(move || {
        ids.iter()
            .filter(|id| match std::fs::remove_file(dir.join(format!("{id}.eml"))) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::warn!(outbox_id = %id, error = %e, "outbox purge: .eml file not removed");
                    false
                }
            })
            .count()
    })
    .await;
    removed.unwrap_or(0)
}

/// Writes the file under a temporary name first, so a reader never sees half of it.
async fn write_eml(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, id, bytes) = (dir.to_path_buf(), id.to_string(), bytes.to_vec());
    tokio::task::spawn_blocking(move || {
        private_dir(&dir)?;
        let partial = dir.join(format!(".{id}.eml.part"));
        write_private(&partial, &bytes)?;
        std::fs::rename(&partial, dir.join(format!("{id}.eml")))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_template_renders_in_french_and_escapes_html() {
        let rendered = render("test", &serde_json::json!({ "requested_by": "<Ana>" })).unwrap();
        assert_eq!(rendered.subject, "Message de test du plan de contrôle ENT");
        assert!(rendered.text.contains("à la demande de <Ana>"));
        assert!(rendered.html.contains("à la demande de &lt;Ana&gt;"));
        let without = render("test", &serde_json::json!({})).unwrap();
        assert!(!without.text.contains("à la demande"));
    }

    #[test]
    fn unknown_templates_and_bad_addresses_are_errors() {
        assert!(render("inconnu", &serde_json::json!({})).is_err());
        let rendered = render("test", &serde_json::json!({})).unwrap();
        let err = build_message("x", "a@b.fr", "pas une adresse", rendered).unwrap_err();
        assert!(err.contains("destinataire"), "{err}");
    }

    #[test]
    fn the_message_id_derives_from_the_outbox_id() {
        let rendered = render("test", &serde_json::json!({})).unwrap();
        let message = build_message("abc", "ENT <ne-pas-repondre@ent.fr>", "x@y.fr", rendered).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Message-ID: <abc@ent.fr>"), "{text}");
        assert!(text.contains("To: x@y.fr\r\n"), "{text}");
        assert!(!text.contains("Cc:") && !text.contains("Bcc:"), "{text}");
        assert_eq!(message.envelope().to(), ["x@y.fr".parse::<lettre::Address>().unwrap()], "the envelope too");
    }

    #[test]
    fn a_ticket_resolved_unanswered_or_closed_with_its_purged_tenant_says_so_to_the_requester() {
        let ticket = |event: &str| {
            serde_json::json!({ "event": event, "reference": "ENT-7", "subject": "Notes", "priority": "P3",
                                "level": "N1", "days": 15, "tenant": "fresnes-ecole" })
        };
        let unanswered = render("support", &ticket("unanswered")).unwrap();
        assert_eq!(unanswered.subject, "Ticket résolu sans votre réponse : ENT-7 « Notes »");
        assert!(unanswered.text.contains("depuis 15 jours") && unanswered.text.contains("sera rouvert"));
        assert!(unanswered.html.contains("résolu sans réponse du demandeur"), "{}", unanswered.html);
        let purged = render("support", &ticket("purged")).unwrap();
        assert_eq!(purged.subject, "Ticket clos : données de l'ENT purgées : ENT-7 « Notes »");
        assert!(purged.text.contains("les données de l'ENT fresnes-ecole ont été purgées"), "{}", purged.text);
        assert!(purged.html.contains("ont été purgées"), "{}", purged.html);
    }

    #[test]
    fn a_requester_is_told_their_ticket_is_registered_and_a_level_its_deadline() {
        let ticket = |event: &str| {
            serde_json::json!({ "event": event, "reference": "ENT-7", "subject": "Notes", "priority": "P1",
                                "level": "N2", "tenant": "mistral-ent", "from": "N1", "body": "Bloquant.",
                                "due": "7 décembre 2026 à 09 h 30", "due_of": "Première réponse", "warning": null })
        };
        let received = render("support", &ticket("received")).unwrap();
        assert_eq!(received.subject, "Ticket enregistré : ENT-7 « Notes »");
        assert!(received.text.contains("sur l'ENT mistral-ent est enregistré"), "{}", received.text);
        assert!(received.text.contains("au plus tard le 7 décembre 2026 à 09 h 30"), "{}", received.text);
        assert!(received.html.contains("est enregistré"), "{}", received.html);
        let escalated = render("support", &ticket("escalated")).unwrap();
        assert!(
            escalated.text.contains("Première réponse attendue au plus tard le 7 décembre 2026 à 09 h 30"),
            "{}",
            escalated.text
        );
        assert!(escalated.html.contains("Première réponse attendue au plus tard le"), "{}", escalated.html);
        let created = render("support", &ticket("created")).unwrap();
        assert!(
            created.text.contains("pour l'ENT mistral-ent") && !created.text.contains("tenant"),
            "{}",
            created.text
        );
    }

    #[test]
    fn the_requesters_message_is_theirs_to_the_support_and_the_supports_reply_theirs_to_the_requester() {
        let ticket = |event: &str| serde_json::json!({ "event": event, "reference": "ENT-7", "subject": "Notes", "body": "Depuis lundi." });
        let message = render("support", &ticket("reply")).unwrap();
        assert_eq!(message.subject, "Message du demandeur : ENT-7 « Notes »", "as the history titles it");
        assert!(
            message.text.contains("Le demandeur a écrit sur le ticket ENT-7") && message.text.contains("Depuis lundi.")
        );
        assert!(message.html.contains("Le demandeur a écrit sur le ticket"), "{}", message.html);
        let reply = render("support", &ticket("comment")).unwrap();
        assert_eq!(reply.subject, "Réponse du support : ENT-7 « Notes »");
    }

    #[test]
    fn a_notice_links_its_page_only_where_the_console_address_is_configured() {
        let notice = serde_json::json!({ "event": "reminder", "reference": "ENT-1", "subject": "s", "priority": "P2",
                                         "level": "N1", "days": 3, "page": "/tickets/ENT-1" });
        let mut console = ConsoleConfig { public_url: "https://ent.ac-creteil.fr/".into(), ..ConsoleConfig::default() };
        let linked = render("support", &with_link(&console, &notice)).unwrap();
        assert!(linked
            .text
            .contains("Ouvrir dans le plan de contrôle ENT : https://ent.ac-creteil.fr/tickets/ENT-1\n"));
        let html = linked.html.replace("&#x2F;", "/");
        assert!(html.contains(r#"<a href="https://ent.ac-creteil.fr/tickets/ENT-1">"#), "{}", linked.html);
        console.public_url_derived = true;
        let guessed = render("support", &with_link(&console, &notice)).unwrap();
        assert!(!guessed.text.contains("https://"), "{}", guessed.text);
        assert!(guessed.text.contains("n'est pas configurée sur ce serveur"));
        assert!(guessed.text.contains("page /tickets/ENT-1."));
        let plain = render("test", &with_link(&console, &serde_json::json!({}))).unwrap();
        assert!(!plain.text.contains("configurée") && !plain.html.contains("configurée"), "no page, no line");
    }

    #[test]
    fn a_breach_a_processor_notifies_renders_in_french_with_the_controllers_deadline() {
        let context = |event: &str| {
            serde_json::json!({ "event": event, "processor": "le Département du Val-de-Marne",
                "processor_capitalised": "Le Département du Val-de-Marne",
                "processor_of": "du Département du Val-de-Marne", "controller": "le Collège des Essais",
                "controller_of": "du Collège des Essais", "reference": "VIOL-2026-000003",
                "processor_reference": "VIOL-2026-000001", "notified_at": "1er septembre 2026 à 10 h 00",
                "cnil_deadline": "4 septembre 2026 à 10 h 00", "changed": "mesures",
                "title": "Notes <exposées>", "facts": "Carnet lisible\npar tous", "occurred_at": null,
                "processor_aware_at": "1er septembre 2026 à 08 h 30", "data_categories": "évaluations",
                "people_categories": "", "people_approx": "600", "records_approx": "4 200",
                "consequences": "atteinte", "measures": "droits corrigés", "risk": "risque",
                "page": "/rgpd/c/violations/e" })
        };
        let reported = render("breach", &context("reported")).unwrap();
        assert_eq!(
            reported.subject,
            "Violation de données personnelles notifiée par le Département du Val-de-Marne : Notes <exposées>"
        );
        for said in [
            "Le Département du Val-de-Marne, sous-traitant de l'ENT du Collège des Essais (article 28 du RGPD), \
             notifie le 1er septembre 2026 à 10 h 00 au responsable de traitement",
            "sous la référence VIOL-2026-000003 (référence du sous-traitant : VIOL-2026-000001)",
            "de la notifier à la CNIL au plus tard le 4 septembre 2026 à 10 h 00, dans les 72 heures",
            "- Survenue : date inconnue\n",
            "- Catégories de personnes concernées : non renseignées\n",
            "page /rgpd/c/violations/e.",
        ] {
            assert!(reported.text.contains(said), "« {said} » in {}", reported.text);
        }
        assert!(reported.html.contains("Notes &lt;exposées&gt;"), "{}", reported.html);
        assert!(reported.html.contains("Carnet lisible<br>par tous"), "{}", reported.html);
        let completed = render("breach", &context("completed")).unwrap();
        assert_eq!(
            completed.subject,
            "Complément de notification du Département du Val-de-Marne : violation de données VIOL-2026-000003"
        );
        assert!(completed.text.contains("Éléments complétés : mesures. L'entrée du registre n'est pas modifiée"));
    }

    #[test]
    fn every_tenant_notice_renders_in_french_with_its_reason_and_dates() {
        let cases = [
            ("suspended", "Suspendu : ENT doisneau", "n'y accèdent plus"),
            ("reactivated", "De nouveau en service : ENT doisneau", "y accèdent à nouveau"),
            ("decommissioning", "Retiré du service : ENT doisneau", "arrêtés définitivement"),
            ("archived", "Archivé : ENT doisneau", "entre le 1er décembre 2026 et le 30 janvier 2027</strong>"),
            (
                "purge_planned",
                "Purge des données à partir du 1er décembre 2026 : ENT doisneau",
                "au plus tard jusqu'au 30 janvier 2027. Après la purge, la plateforme ne peut plus les restaurer.",
            ),
            (
                "purged",
                "Données supprimées : ENT doisneau",
                "archivé le 1er septembre 2026, sa durée de conservation a pris fin le 1er décembre 2026. Les sauvegardes",
            ),
            (
                "convention_lapsed",
                "Sans convention en vigueur : ENT doisneau",
                "constaté le 1er septembre 2029</strong>)",
            ),
            (
                "convention_restored",
                "De nouveau couvert par une convention : ENT doisneau",
                "(absence de convention constatée le 1er septembre 2029)",
            ),
        ];
        for (event, subject, said) in cases {
            let context = serde_json::json!({ "event": event, "slug": "doisneau", "hostname": "doisneau.ent.fr",
                "organisation": "École Robert Doisneau", "page": "/ent/doisneau", "reason": "impayés <2026>",
                "purge_on": "1er décembre 2026", "purge_by": "30 janvier 2027", "archived_on": "1er septembre 2026",
                "since": "1er septembre 2029", "uncovered": "École Robert Doisneau (0940176F)" });
            let rendered = render("tenant", &context).unwrap();
            assert_eq!(rendered.subject, subject);
            let text_said = said.replace("</strong>", "");
            assert!(rendered.text.contains(&text_said) && rendered.html.contains(said), "{event}: {}", rendered.text);
            assert!(rendered.text.contains("École Robert Doisneau") && rendered.text.contains("doisneau.ent.fr"));
            assert!(rendered.text.contains("Motif : impayés <2026>\n"), "{event}: {}", rendered.text);
            assert!(rendered.html.contains("Motif&nbsp;: impayés &lt;2026&gt;"), "{event}: {}", rendered.html);
            assert!(rendered.text.contains("page /ent/doisneau."), "{event}: {}", rendered.text);
        }
        let without = serde_json::json!({ "event": "reactivated", "slug": "doisneau", "hostname": "doisneau.ent.fr",
            "organisation": "École Robert Doisneau" });
        let rendered = render("tenant", &without).unwrap();
        assert!(!rendered.text.contains("Motif") && !rendered.html.contains("Motif"), "{}", rendered.text);
    }

    #[test]
    fn a_purge_notice_promises_no_recovery_nor_deletion_the_platform_does_not_make() {
        let context = |event: &str| {
            serde_json::json!({ "event": event, "slug": "doisneau", "hostname": "doisneau.ent.fr",
                "organisation": "École Robert Doisneau", "purge_on": "1er décembre 2026", "purge_by": "30 janvier 2027",
                "archived_on": "1er septembre 2026" })
        };
        for event in ["archived", "purge_planned"] {
            let text = render("tenant", &context(event)).unwrap().text;
            assert!(!text.contains("Récupérez") && !text.contains("récupérez"), "{event}: {text}");
            assert!(text.contains("entre le 1er décembre 2026 et le 30 janvier 2027"), "{event}: {text}");
            let copy = "Pour en obtenir une copie avant le 1er décembre 2026, adressez-vous à la collectivité qui \
                        finance l'ENT ; un ticket de support ouvert sur cet ENT, par le chef d'un établissement qu'il \
                        sert ou par le support, retient la purge jusqu'à sa clôture";
            assert!(text.contains(copy), "{event}: {text}");
            // Who restitutes the data (the convention's collectivité), and the école named with its article.
            let mut context = context(event);
            context["served"] = "du Collège des Essais".into();
            context["restitution"] = serde_json::json!({ "to": "au Département du Val-de-Marne",
                "said": "Comme le prévoit l'article 9 de la convention CONV-2026-000001, il fait restituer les données" });
            let rendered = render("tenant", &context).unwrap();
            for said in [
                "au service du Collège des Essais,",
                "adressez-vous au Département du Val-de-Marne ; un ticket",
                "jusqu'au 30 janvier 2027. Comme le prévoit l'article 9 de la convention CONV-2026-000001, il fait \
                 restituer les données.",
            ] {
                assert!(rendered.text.contains(said), "{event}: {said} in {}", rendered.text);
            }
            let html_said = "adressez-vous au Département du Val-de-Marne&nbsp;; un ticket";
            assert!(rendered.html.contains(html_said), "{event}: {}", rendered.html);
            assert!(!rendered.text.contains("DAN"), "{event}: the DAN restitutes nothing: {}", rendered.text);
            // Its recipients (a collectivité, a DAN, a DPO) cannot all open a ticket: none is told to.
            assert!(!text.contains("ouvrez un ticket"), "{event}: {text}");
        }
        let purged = render("tenant", &context("purged")).unwrap().text;
        assert!(!purged.contains("définitivement") && !purged.contains("rien ne peut"), "{purged}");
        assert!(purged.contains("sont supprimées de la plateforme"), "{purged}");
        assert!(purged.contains("sauvegardes de l'hébergeur sont effacées selon leur propre durée"), "{purged}");
        assert!(!purged.contains("restaient"), "{purged}");
        let mut over = context("purged");
        over["held_over"] = "tickets de support ouverts".into();
        over["hold_days"] = 60.into();
        let rendered = render("tenant", &over).unwrap();
        let said = "La purge a été faite alors que restaient : tickets de support ouverts ; le report de 60 jours";
        assert!(rendered.text.contains(said), "{}", rendered.text);
        assert!(
            rendered.html.contains("restaient&nbsp;: tickets de support ouverts&nbsp;; le report"),
            "{}",
            rendered.html
        );
    }
}
