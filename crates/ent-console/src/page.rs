//! Rendering: the tera templates of `templates/console/` (embedded), the shell every
//! signed-in page shares (operator, person, roles, navigation filtered by role,
//! breadcrumbs, notices), and the French error pages.

use crate::ConsoleState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use ent_documents::documents::typography::french_markup;
use ent_kernel::config::ConsoleTheme;
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::{Action, Role};
use ent_kernel::naming;
use ent_platform::identity::sessions::Session;
use ent_platform::identity::{authz, Actor};
use serde::Serialize;
use std::sync::LazyLock;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/console/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "accessibility.html",
    "macros.html",
    "narrow.html",
    "list.html",
    "forms.html",
    "organisations.html",
    "organisation.html",
    "users.html",
    "user.html",
    "sign_in.html",
    "forgot.html",
    "reset.html",
    "home.html",
    "dashboard.html",
    "account.html",
    "error.html",
    "form_macros.html",
    "conventions.html",
    "convention_model.html",
    "convention_new.html",
    "convention.html",
    "convention_edit.html",
    "tenants.html",
    "tenant_new.html",
    "tenant.html",
    "tickets.html",
    "ticket_new.html",
    "ticket.html",
    "rgpd_home.html",
    "rgpd_register.html",
    "rgpd_fiche.html",
    "rgpd_diff.html",
    "rgpd_profile.html",
    "rgpd_log.html",
    "rgpd_contracts.html",
    "rgpd_entry.html",
    "rgpd_contract.html",
    "reports.html",
    "notifications.html",
    "groupement_macros.html",
    "groupements.html",
    "groupement_new.html",
    "groupement.html",
    "groupement_candidature.html",
    "groupement_quote_part.html",
    "groupement_bibliotheque.html",
];

static TERA: LazyLock<tera::Tera> = LazyLock::new(|| {
    let mut tera = tera::Tera::default();
    naming::register_filters(&mut tera);
    tera.add_raw_templates(TEMPLATES.iter().copied()).expect("the console templates parse");
    tera.autoescape_on(vec![".html"]);
    tera
});

/// French name of a role, as the header shows it.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Administrateur",
        Role::Dan => "DAN",
        Role::Collectivite => "Collectivité",
        Role::ChefEtablissement => "Chef d'établissement",
        Role::SupportN1 => "Support N1",
        Role::SupportN2 => "Support N2",
        Role::SupportN3 => "Support N3",
        Role::Dpo => "DPO",
        Role::Coordinateur => "Coordinateur",
        Role::Auditeur => "Auditeur",
        Role::Usager => "Usager",
    }
}

/// The navigation: label, address, and the action a role must allow to see it.
const NAV: &[(&str, &str, &Action)] = &[
    // « Accueil » for whom `/` opens no dashboard (`dashboard::home_label`).
    ("Tableau de bord", "/", &authz::SELF_READ),
    ("Organisations", "/organisations", &authz::ORGS_READ),
    ("Utilisateurs et rôles", "/utilisateurs", &crate::users::USERS_SCREEN),
    ("Conventions", "/conventions", &authz::CONVENTIONS_READ),
    ("ENT", "/ent", &authz::TENANTS_READ),
    ("Support", "/tickets", &authz::SUPPORT_READ),
    ("RGPD", "/rgpd", &authz::RGPD_READ),
    ("Groupements", "/groupements", &authz::GROUPEMENTS_READ),
    ("Mon compte", "/compte", &authz::SELF_READ),
];

#[derive(Serialize)]
struct Link {
    label: String,
    href: String,
    current: bool,
}

/// A notice shown above the page's content after an action.
#[derive(Serialize, Clone)]
pub struct Notice {
    /// `success`, `error` or `info` (DSFR alert kinds).
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn success(text: impl Into<String>) -> Notice {
        Notice { kind: "success", text: text.into() }
    }

    pub fn error(text: impl Into<String>) -> Notice {
        Notice { kind: "error", text: text.into() }
    }

    pub fn info(text: impl Into<String>) -> Notice {
        Notice { kind: "info", text: text.into() }
    }

    /// The success notice of a page shown after an action (`?apres=after`): the text
    /// `notices` gives to `after`; none for another value (or an empty one).
    pub fn after(after: &str, notices: &[(&str, &str)]) -> Option<Notice> {
        notices.iter().find(|(key, _)| *key == after).map(|(_, text)| Notice::success(*text))
    }
}

/// What the layout shows around a page.
#[derive(Serialize)]
pub struct Shell {
    etat: bool,
    /// The integrity of the State theme's DSFR script (`None`: the neutral theme, no script).
    dsfr_integrity: Option<&'static str>,
    operator: String,
    assets: String,
    person: Option<String>,
    roles: Vec<String>,
    nav: Vec<Link>,
    breadcrumbs: Vec<Link>,
    csrf: String,
    notice: Option<Notice>,
    /// The page answers a refusal (a 4xx, or an error notice): its title says « Erreur : ».
    refused: bool,
}

impl Shell {
    /// The shell of a page at `path`, for the signed-in `session` (if any).
    pub fn new(state: &ConsoleState, session: Option<&Session>, path: &str) -> Shell {
        let nav = session
            .map(|s| {
                NAV.iter()
                    .filter(|(_, _, action)| authz::role_allows(&s.actor, action))
                    .map(|(label, href, _)| Link {
                        label: if *href == "/" { crate::dashboard::home_label(&s.actor) } else { label }.into(),
                        href: (*href).into(),
                        current: within(path, href),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let etat = state.config.console.theme == ConsoleTheme::Etat;
        Shell {
            etat,
            dsfr_integrity: crate::assets::integrity(crate::assets::DSFR_SCRIPT).filter(|_| etat),
            operator: state.config.console.operator_name.clone(),
            assets: format!("/assets/{}", crate::assets::VERSION),
            person: session.map(|s| format!("{} ({})", s.display_name, s.email)),
            roles: session.map(|s| roles_of(&s.actor)).unwrap_or_default(),
            nav,
            breadcrumbs: Vec::new(),
            csrf: session.map(|s| s.csrf_token.clone()).unwrap_or_default(),
            notice: None,
            refused: false,
        }
    }

    /// Breadcrumbs after « Accueil », the last one the current page.
    pub fn crumbs(mut self, trail: &[(&str, &str)]) -> Shell {
        self.breadcrumbs = std::iter::once(("Accueil", "/"))
            .chain(trail.iter().copied())
            .map(|(label, href)| Link { label: label.into(), href: href.into(), current: false })
            .collect();
        if let Some(last) = self.breadcrumbs.last_mut() {
            last.current = true;
        }
        self
    }

    pub fn notice(mut self, notice: Option<Notice>) -> Shell {
        self.notice = notice;
        self
    }

    /// The CSRF token of a form shown before sign-in (double-submit cookie).
    pub fn form_token(mut self, token: &str) -> Shell {
        self.csrf = token.to_string();
        self
    }
}

/// Whether the page at `path` belongs to the menu item `href` (its list's pages: an
/// organisation's page is the organisations'); the home page only at its own address.
fn within(path: &str, href: &str) -> bool {
    path == href || (href != "/" && path.strip_prefix(href).is_some_and(|rest| rest.starts_with('/')))
}

/// « DAN — Académie de Créteil », one per binding.
pub(crate) fn roles_of(actor: &Actor) -> Vec<String> {
    actor
        .bindings
        .iter()
        .map(|b| match &b.org {
            Some(org) => format!("{} — {}", role_label(b.role), org.name),
            None => role_label(b.role).to_string(),
        })
        .collect()
}

/// Renders template `name` with the shell and the page's values.
pub fn render(name: &str, shell: Shell, values: impl Serialize) -> Response {
    render_status(StatusCode::OK, name, shell, values)
}

/// The pages whose text is set with French typography, as the generated documents are (no-break
/// spaces before « : ; ! ? » and « % », inside « guillemets »: [`french_markup`], on text nodes
/// only): the page of a groupement and a member's quote-part. The other pages follow one by one,
/// each with its tests.
const TYPESET: [&str; 2] = ["groupement.html", "groupement_quote_part.html"];

pub fn render_status(status: StatusCode, name: &str, mut shell: Shell, values: impl Serialize) -> Response {
    shell.refused = status.is_client_error() || shell.notice.as_ref().is_some_and(|n| n.kind == "error");
    let rendered = tera::Context::from_serialize(values).and_then(|mut context| {
        context.insert("shell", &shell);
        TERA.render(name, &context)
    });
    let rendered = rendered.map(|html| if TYPESET.contains(&name) { french_markup(&html) } else { html });
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = ?e, "console template failed");
            ErrorPage::response(StatusCode::INTERNAL_SERVER_ERROR, "la page n'a pas pu être affichée")
        }
    }
}

/// A refusal on an address the person may not see, shown as `missing` (404, as if the
/// record did not exist: out of scope and non-existent look the same); a failure stays one.
pub fn as_missing(problem: Problem, missing: impl FnOnce() -> Problem) -> Problem {
    if problem.kind.status().is_server_error() {
        problem
    } else {
        missing()
    }
}

/// A 303 to `location`.
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An error a handler answers; [`crate::security::headers`] renders it with the request id.
#[derive(Clone, Debug)]
pub struct ErrorPage {
    pub detail: String,
}

impl ErrorPage {
    pub fn response(status: StatusCode, detail: impl Into<String>) -> Response {
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage { detail: detail.into() });
        response
    }
}

/// A capability's refusal or failure as an error page (internal details stay in the log).
pub struct PageError(pub Problem);

impl From<Problem> for PageError {
    fn from(problem: Problem) -> PageError {
        PageError(problem)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> PageError {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.kind.status();
        if status.is_server_error() {
            tracing::error!(detail = %self.0.detail, "console page failed");
            return ErrorPage::response(status, "une erreur inattendue est survenue ; elle a été journalisée");
        }
        ErrorPage::response(status, self.0.detail)
    }
}

/// The French title of an error status.
fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "Accès refusé",
        404 => "Page introuvable",
        405 => "Adresse de formulaire",
        406 => "Format indisponible",
        429 => "Trop de tentatives",
        s if s >= 500 => "Erreur du service",
        _ => "Demande refusée",
    }
}

/// The error page of `status`, with the request id to quote to support, in the shell of the
/// signed-in `session` when there is one (menu, account, sign-out: the way on from there).
pub fn render_error(
    state: &ConsoleState,
    session: Option<&Session>,
    status: StatusCode,
    error: &ErrorPage,
    request_id: &str,
) -> Response {
    let values = serde_json::json!({
        "title": title_of(status),
        "status": status.as_u16(),
        "detail": error.detail,
        "request_id": request_id,
    });
    let mut response = render_status(status, "error.html", Shell::new(state, session, ""), values);
    response.extensions_mut().remove::<ErrorPage>();
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_console_template_parses() {
        std::sync::LazyLock::force(&super::TERA);
    }

    /// A table wider than the screen scrolls in its `fr-table` box: the box must take the
    /// keyboard's focus and be named (RGAA 7.3, axe `scrollable-region-focusable`).
    #[test]
    fn every_scrolling_table_box_is_a_named_focusable_region() {
        for (name, text) in super::TEMPLATES {
            for tag in text.split("<div class=\"fr-table").skip(1).map(|rest| &rest[..rest.find('>').unwrap()]) {
                assert!(tag.contains("tabindex=\"0\" role=\"region\" aria-label=\""), "{name}: {tag}");
            }
        }
    }

    #[test]
    fn a_menu_item_is_current_on_its_pages_and_the_home_on_its_own() {
        assert!(super::within("/organisations/0190", "/organisations"));
        assert!(super::within("/organisations", "/organisations"));
        assert!(!super::within("/organisations-x", "/organisations"));
        assert!(super::within("/", "/") && !super::within("/compte", "/"));
    }
}
