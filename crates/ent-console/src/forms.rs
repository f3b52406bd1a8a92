//! What the console's capability forms share: the posted fields, a capability's
//! refusal turned into an error summary linked to the fields, and French moments.

use crate::auth::Signed;
use crate::form::FieldError;
use crate::page::{self, Notice, PageError};
use crate::ConsoleState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::FromRef;
use ent_kernel::store::Store;
use ent_platform::identity::authz;
use ent_platform::identity::Actor;
use ent_platform::registry::queries::get_org;
use ent_platform::registry::Org;
use serde::Serialize;

/// What a capability page works with: the console, the capability's context `T`, and
/// the signed-in person.
pub struct On<T> {
    pub console: ConsoleState,
    pub state: T,
    pub signed: Signed,
}

impl<S, T> FromRequestParts<S> for On<T>
where
    S: Send + Sync,
    ConsoleState: FromRef<S>,
    T: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let signed = Signed::from_request_parts(parts, state).await?;
        Ok(On { console: ConsoleState::from_ref(state), state: T::from_ref(state), signed })
    }
}

/// The fields of a form (or a query string), in order; a name may repeat (checkboxes).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name` when not empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim().to_string()).collect()
    }
}

/// Whether a form with search boxes (`form_macros.html`'s `search`) was posted to search:
/// its « Rechercher » button, or Enter (`etape=entree`) once a search box holds another
/// text than the page showed it with (`vue.{name}`). Enter anywhere else is the form's
/// main action.
pub fn searching(fields: &Fields) -> bool {
    match fields.get("etape") {
        "rechercher" => true,
        "entree" => fields
            .0
            .iter()
            .any(|(k, shown)| k.strip_prefix("vue.").is_some_and(|name| fields.get(name) != shown.trim())),
        _ => false,
    }
}

/// A form posted at a version that is no longer the stored one: the fields keep what was
/// typed with `newer` as their version, and the French conflict says that `what` (« cette
/// candidature a été modifiée ») changed meanwhile, so that saving again is a choice.
pub fn stale_version(fields: &mut Fields, newer: i64, what: &str) -> Problem {
    fields.0.retain(|(k, _)| k != "version");
    fields.0.push(("version".into(), newer.to_string()));
    Problem::conflict(format!(
        "{what} par quelqu'un d'autre pendant votre saisie. Vos saisies sont conservées ci-dessous : \
         vérifiez-les, puis enregistrez de nouveau pour remplacer la version la plus récente"
    ))
}

/// How a page answers after a form: the fields posted (kept in the form), the
/// capability's refusal if any, and the status.
pub struct Reply<'a> {
    pub fields: &'a Fields,
    pub refusal: Refusal,
    pub status: StatusCode,
}

impl<'a> Reply<'a> {
    /// A page shown without any refusal.
    pub fn shown(fields: &'a Fields, notice: Option<Notice>) -> Reply<'a> {
        Reply { fields, refusal: Refusal { notice, errors: Vec::new() }, status: StatusCode::OK }
    }

    /// `problem` refused what `fields` asked.
    pub fn refused(fields: &'a Fields, problem: &Problem, id_of: impl Fn(&str) -> String) -> Reply<'a> {
        Reply { fields, refusal: Refusal::of(problem, id_of), status: problem.kind.status() }
    }
}

/// A capability's refusal as a page shows it: a French notice and the field errors.
#[derive(Serialize, Default)]
pub struct Refusal {
    pub notice: Option<Notice>,
    pub errors: Vec<FieldError>,
}

impl Refusal {
    /// `problem` shown as is: its detail as the notice, its field errors linked to the
    /// controls `id_of` names (fields without a control are listed in the summary only).
    pub fn of(problem: &Problem, id_of: impl Fn(&str) -> String) -> Refusal {
        let errors: Vec<FieldError> = problem
            .errors
            .iter()
            .map(|e| FieldError::new("", &e.field, e.message.clone()).at(&id_of(&e.field)))
            .collect();
        // Field errors are said by the form's error summary, the page's one alert.
        let notice = (problem.kind != ProblemKind::Validation || errors.is_empty())
            .then(|| Notice::error(format!("Action refusée : {}", problem.detail)));
        Refusal { notice, errors }
    }

    /// The messages by form control id (`{ "motif": "…" }`), for the templates that show
    /// each beside its control (`error.motif | default(value="")`).
    pub fn by_control(&self) -> serde_json::Map<String, serde_json::Value> {
        self.errors.iter().map(|e| (e.id.clone(), e.message.clone().into())).collect()
    }

    /// The errors said in the summary after their field's label (`label_of` a field's name,
    /// shortened by [`short_label`]), so that each link names what it is about.
    pub fn labelled<L: AsRef<str>>(mut self, label_of: impl Fn(&str) -> Option<L>) -> Refusal {
        self.errors = self
            .errors
            .into_iter()
            .map(|e| match label_of(&e.field) {
                Some(label) => e.labelled(short_label(label.as_ref())),
                None => e,
            })
            .collect();
        self
    }

    /// The errors in the order of `fields`, the form's controls from top to bottom (RGAA 11.10:
    /// the summary reads as the form does), whatever order the checks found them in; an error
    /// on a field not listed keeps its place after them.
    pub fn in_order_of<'f>(mut self, fields: impl IntoIterator<Item = &'f str>) -> Refusal {
        let order: Vec<&str> = fields.into_iter().collect();
        self.errors.sort_by_key(|e| order.iter().position(|f| *f == e.field).unwrap_or(order.len()));
        self
    }

    /// The errors linked to their controls on the page at `page` (another form, where they are
    /// corrected) rather than on the page that shows the summary.
    pub fn on_page(mut self, page: &str) -> Refusal {
        self.errors = self.errors.into_iter().map(|e| e.on_page(page)).collect();
        self
    }

    /// The message of the error on `field`, if any.
    pub fn message(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

/// An amount typed in euros (« 1 234,56 », « 1234.56 », « 12,5 € »: spaces of any kind, a comma
/// or a dot, two decimals at most) in cents; `None` for what reads as no amount.
pub fn cents(text: &str) -> Option<i64> {
    let cleaned: String =
        text.chars().filter(|c| !c.is_whitespace() && *c != '€').collect::<String>().replace(',', ".");
    let (units, decimals) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if decimals.len() > 2 || units.is_empty() || !decimals.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let decimals: i64 = if decimals.is_empty() { 0 } else { format!("{decimals:0<2}").parse().ok()? };
    units.checked_mul(100)?.checked_add(decimals)
}

/// Cents as a control shows an amount in euros for [`cents`] to read back: « 4321,09 ».
pub fn euros_typed(cents: i64) -> String {
    format!("{},{:02}", cents / 100, (cents % 100).abs())
}

/// A control's label as the error summary names it: up to its first parenthesis or colon
/// (« Connue le (obligatoire, heure de Paris) : début des 72 heures » → « Connue le »).
pub fn short_label(label: &str) -> &str {
    let end = [" (", " : "].iter().filter_map(|cut| label.find(cut)).min();
    end.map_or(label, |at| &label[..at])
}

/// The tail of a console form: on success the page `next` names (a redirection), a
/// failure as the error page, any other refusal shown by `again` (the form's page with
/// the fields posted and the refusal).
pub async fn answer<T>(
    done: Result<T, Problem>,
    next: impl FnOnce(T) -> String,
    again: impl AsyncFnOnce(Problem) -> Result<Response, PageError>,
) -> Result<Response, PageError> {
    match done {
        Ok(value) => Ok(page::redirect(&next(value))),
        Err(problem) if problem.kind.status().is_server_error() => Err(problem.into()),
        Err(problem) => again(problem).await,
    }
}

/// An option of a select (the `select` macro of `form_macros.html`).
#[derive(Debug, Serialize, PartialEq)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The organisation a chooser's field names (`id`) when the person may see it there: one it
/// reads, or one `public` lets anyone choose (académies, DSDEN). Else none, as for an id that
/// names nothing: a forged address tells nothing of an organisation out of scope.
pub async fn chosen_org(
    store: &Store,
    actor: &Actor,
    id: Option<String>,
    public: impl Fn(&Org) -> bool,
) -> Result<Option<Org>, Problem> {
    let Some(org) = (match id {
        Some(id) => get_org(store, &id).await?,
        None => None,
    }) else {
        return Ok(None);
    };
    Ok((public(&org) || authz::reads(store, actor, &org).await?).then_some(org))
}

/// The organisations `found` proposed in a select, each once (first found first), named with
/// their kind and code; `chosen` selected.
pub fn org_choices(found: impl IntoIterator<Item = Org>, chosen: Option<&Org>) -> Vec<Choice> {
    let mut seen = std::collections::HashSet::new();
    found
        .into_iter()
        .filter(|o| seen.insert(o.id.clone()))
        .map(|o| Choice {
            selected: chosen.is_some_and(|c| c.id == o.id),
            label: format!("{} ({} {})", o.name, o.kind.label(), o.code),
            value: o.id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_searches_only_when_a_search_box_changed() {
        let of = |pairs: &[(&str, &str)]| Fields(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        assert!(searching(&of(&[("etape", "rechercher")])));
        assert!(!searching(&of(&[("etape", "demander"), ("recherche", "a"), ("vue.recherche", "")])));
        assert!(searching(&of(&[("etape", "entree"), ("recherche", "Doisneau"), ("vue.recherche", "")])));
        assert!(!searching(&of(&[("etape", "entree"), ("recherche", "Doisneau "), ("vue.recherche", "Doisneau")])));
        let parties = [
            ("etape", "entree"),
            ("recherche.a", "x"),
            ("vue.recherche.a", "x"),
            ("recherche.b", "y"),
            ("vue.recherche.b", ""),
        ];
        assert!(searching(&of(&parties)));
    }

    #[test]
    fn errors_link_to_their_controls() {
        let problem = Problem::invalid_field("parties.collectivite", "partie obligatoire : la collectivité");
        let refusal = Refusal::of(&problem, |f| f.replace('.', "-"));
        assert_eq!(refusal.errors[0].id, "parties-collectivite");
        assert_eq!(refusal.message("parties.collectivite"), Some("partie obligatoire : la collectivité"));
        let conflict = Refusal::of(&Problem::conflict("déjà signée"), |f| f.to_string());
        assert_eq!(conflict.notice.map(|n| n.text), Some("Action refusée : déjà signée".to_string()));
        let labelled = Refusal::of(&problem, |f| f.to_string()).labelled(|_| Some("Collectivité (obligatoire)"));
        assert_eq!(labelled.errors[0].label.as_deref(), Some("Collectivité"));
        assert_eq!(short_label("Connue le (obligatoire, heure de Paris) : début"), "Connue le");
        let found = Problem::invalid(vec![
            ent_kernel::error::FieldError { field: "people_approx".into(), message: "nombre entier attendu".into() },
            ent_kernel::error::FieldError { field: "other".into(), message: "hors du formulaire".into() },
            ent_kernel::error::FieldError { field: "facts".into(), message: "champ obligatoire".into() },
        ]);
        let ordered = Refusal::of(&found, |f| f.to_string()).in_order_of(["title", "facts", "people_approx"]);
        let fields: Vec<&str> = ordered.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["facts", "people_approx", "other"]);
        let fields = Fields(vec![("a".into(), " 1 ".into()), ("o".into(), "x".into()), ("o".into(), "y".into())]);
        assert_eq!((fields.get("a"), fields.get("b"), fields.all("o").len()), ("1", "", 2));
    }
}
