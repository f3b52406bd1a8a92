//! « Organisations »: the search of the organisations in the caller's scope (name,
//! UAI, SIREN or code, commune, type; paginated and sortable), an organisation's page
//! (codes, covering parents, funding collectivité, members of an EPCI, its
//! conventions and tenants), its contact details edited with the version check, and
//! the communes of an EPCI added or removed. Every check is the API's: `authorize`
//! on each organisation touched, the registry capability for the write (audited).

use crate::auth::Signed;
use crate::form::{errors_of, FieldError};
use crate::forms::Fields;
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::page::{self, Notice, PageError, Shell};
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use ent_conventions::conventions::{seen_condition, Status as ConventionStatus};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::{Action, OrgKind};
use ent_kernel::naming;
use ent_kernel::store::Condition;
use ent_platform::identity::authz::{
    self, CONVENTIONS_READ, CONVENTIONS_WRITE, ORGS_MEMBERS_WRITE, ORGS_READ, ORGS_UPDATE, TENANTS_WRITE,
};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::codes::parse_insee_commune;
use ent_platform::registry::manage::{self, OrgPatch};
use ent_platform::registry::queries::{self, ORG_COLUMNS};
use ent_platform::registry::routes::not_detached_by_you;
use ent_platform::registry::{name_search, Org, OrgRef};
use ent_tenants::tenants::Status as TenantStatus;
use serde::{Deserialize, Serialize};

/// The pages of this screen.
pub fn routes<S>() -> Vec<ConsoleRoute<S>>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
{
    use Access::Signed;
    vec![
        route(Method::GET, "/organisations", Signed(&ORGS_READ), get(search)),
        route(Method::GET, "/organisations/{org}", Signed(&ORGS_READ), get(show)),
        route(Method::POST, "/organisations/{org}/contact", Signed(&ORGS_UPDATE), post(edit_contact)),
        route(
            Method::POST,
            "/organisations/{org}/membres/ajouter",
            Signed(&ORGS_MEMBERS_WRITE),
            post(change_member::<true>),
        ),
        route(
            Method::POST,
            "/organisations/{org}/membres/retirer",
            Signed(&ORGS_MEMBERS_WRITE),
            post(change_member::<false>),
        ),
    ]
}

const KINDS: &[(&str, &str)] = &[
    ("academie", "Académie"),
    ("dsden", "DSDEN"),
    ("region", "Région"),
    ("departement", "Département"),
    ("commune", "Commune"),
    ("epci", "EPCI"),
    ("syndicat_mixte", "Syndicat mixte"),
    ("etablissement", "Établissement"),
    ("editeur", "Éditeur"),
    ("hebergeur", "Hébergeur"),
];

/// The organisation search.
pub const SEARCH: ListSpec = ListSpec {
    columns: &[
        Column { key: "nom", label: "Nom", order_by: Some("sort_name") },
        Column { key: "type", label: "Type", order_by: Some("kind") },
        Column { key: "code", label: "Code (UAI, INSEE, SIREN…)", order_by: Some("code") },
        Column { key: "commune", label: "Commune (INSEE)", order_by: Some("commune_code") },
        Column { key: "departement", label: "Département", order_by: Some("departement_code") },
    ],
    filters: &[
        Filter { key: "type", label: "Type", choices: KINDS },
        Filter { key: "commune", label: "Commune (code INSEE)", choices: &[] },
    ],
    default_sort: "nom",
    tie_break: "id",
    search: Some("Nom, UAI, SIREN ou code"),
    keyset: false,
};

/// The condition of the search's parameters (scope aside); a malformed commune code
/// is said in French.
fn search_condition(params: &ListParams) -> Result<Condition, String> {
    let mut cond = Condition::default();
    if let Some(kind) = params.filter("type") {
        cond.push("kind = ?", &[kind]);
    }
    if let Some(commune) = params.filter("commune") {
        let code = parse_insee_commune(commune).map_err(|e| format!("Commune : {e}"))?;
        cond.push("commune_code = ?", &[&code]);
    }
    if let Some(q) = &params.q {
        let code = q.trim().to_ascii_uppercase().replace(' ', "");
        let (sql, values) = name_search("sort_name", q, "code = ? OR siren = ?", &[&code, &code]);
        cond.push(&sql, &values.iter().map(String::as_str).collect::<Vec<_>>());
    }
    Ok(cond)
}

/// `/organisations`: the organisations of the caller's scope matching the search.
pub async fn search(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let params = ListParams::parse(&SEARCH, &pairs);
    let (mut cond, notice) = match search_condition(&params) {
        Ok(cond) => (cond, None),
        Err(text) => (Condition::never(), Some(Notice::error(text))),
    };
    if let Some(scope) = authz::scope(&signed.0.actor, &ORGS_READ).condition() {
        cond.and(scope);
    }
    let listed = list::fetch::<Org>(&state.store, &SEARCH, &params, ORG_COLUMNS, "orgs", &cond).await?;
    let rows = listed
        .page
        .items
        .iter()
        .map(|o| {
            vec![
                Cell::link(o.name.clone(), format!("/organisations/{}", o.id)),
                Cell::text(o.kind.label()),
                Cell::text(o.code.clone()),
                Cell::text(o.commune_code.clone().unwrap_or_default()),
                Cell::text(o.departement_code.clone().unwrap_or_default()),
            ]
        })
        .collect();
    let view = ListView::new("organisations", "/organisations", "Organisations", &SEARCH, &params, &listed, rows);
    let shell = Shell::new(&state, Some(&signed.0), "/organisations")
        .crumbs(&[("Organisations", "/organisations")])
        .notice(notice);
    Ok(page::render("organisations.html", shell, serde_json::json!({ "title": "Organisations", "list": view })))
}

/// The organisation `key` names if the caller may read it; out of scope answers
/// the same 404 as an organisation that does not exist.
/// `key` is read as the API reads an organisation's key (`Caller::resolve`: its id, `kind:code`,
/// or a bare code such as a UAI, an ambiguous one narrowed to what the caller reads).
async fn readable(state: &ConsoleState, signed: &Signed, key: &str) -> Result<Org, Problem> {
    let missing = || Problem::not_found("aucune organisation à cette adresse");
    let caller = Caller { actor: signed.0.actor.clone(), action: &ORGS_READ };
    caller.resolve(&state.store, key).await.map_err(|p| page::as_missing(p, missing))
}

/// A convention or tenant listed on an organisation's page.
#[derive(Serialize, sqlx::FromRow)]
struct Linked {
    id: String,
    label: String,
    status: String,
}

impl Linked {
    /// The record with its status in French (`label_of` the stored code; the code when none).
    fn in_french(self, label_of: impl Fn(&str) -> Option<&'static str>) -> Linked {
        let status = label_of(&self.status).map_or(self.status, str::to_string);
        Linked { status, ..self }
    }
}

/// What the contact form shows: the values typed (or stored) and its errors.
#[derive(Serialize, Default)]
struct ContactForm {
    name: String,
    email: String,
    country: String,
    version: i64,
    errors: Vec<FieldError>,
}

impl ContactForm {
    fn of(org: &Org) -> ContactForm {
        ContactForm {
            name: org.name.clone(),
            email: org.email.clone().unwrap_or_default(),
            country: org.country.clone(),
            version: org.version,
            errors: Vec::new(),
        }
    }
}

/// What the membership forms show after a refusal.
#[derive(Serialize, Default)]
struct MemberForm {
    commune: String,
    errors: Vec<FieldError>,
}

/// Rows of `sql` (`$1` the organisation's id).
async fn linked(state: &ConsoleState, sql: &str, org: &Org) -> Result<Vec<Linked>, Problem> {
    Ok(sqlx::query_as(sql).bind(&org.id).fetch_all(state.store.pool()).await?)
}

/// The conventions `org` is party to or covered by that `actor` sees (each party its own:
/// [`ent_conventions::conventions::seen_condition`]).
async fn conventions_of(state: &ConsoleState, actor: &Actor, org: &Org) -> Result<Vec<Linked>, Problem> {
    let mut cond = Condition::default();
    cond.push(
        "(c.id IN (SELECT convention_id FROM convention_parties WHERE org_id = ?) \
         OR c.id IN (SELECT convention_id FROM convention_schools WHERE org_id = ?))",
        &[&org.id, &org.id],
    );
    if let Some(seen) = seen_condition(actor, &CONVENTIONS_READ) {
        cond.and(seen);
    }
    let sql = format!(
        "SELECT c.id, c.reference || ' — ' || c.title AS label, c.status FROM conventions c WHERE {} \
         ORDER BY c.reference LIMIT 100",
        cond.sql()
    );
    let query = cond.bind(sqlx::query(&sql)).try_map(|row| <Linked as sqlx::FromRow<_>>::from_row(&row));
    let found = query.fetch_all(state.store.pool()).await?;
    Ok(found.into_iter().map(|c| c.in_french(|s| ConventionStatus::parse(s).map(ConventionStatus::label))).collect())
}

/// The tenants serving `org`, their status in French.
async fn tenants_of(state: &ConsoleState, org: &Org) -> Result<Vec<Linked>, Problem> {
    let found = linked(state, TENANTS_OF, org).await?;
    Ok(found.into_iter().map(|t| t.in_french(|s| TenantStatus::parse(s).map(TenantStatus::label))).collect())
}
const TENANTS_OF: &str = "SELECT slug AS id, hostname AS label, status FROM tenants WHERE org_id = $1 ORDER BY slug";

/// Organisations named on a page, each with `link`: whether the viewer may open its page
/// (the read rule of [`readable`]); one out of scope is shown by its name only, never as a
/// link that answers « Page introuvable ».
async fn openable(
    state: &ConsoleState,
    actor: &Actor,
    orgs: impl IntoIterator<Item = OrgRef>,
) -> Result<Vec<serde_json::Value>, Problem> {
    let mut shown = Vec::new();
    for named in orgs {
        let link = match queries::get_org(&state.store, &named.id).await? {
            Some(org) => authz::reads(&state.store, actor, &org).await?,
            None => false,
        };
        // « Département du Val-de-Marne », as the documents designate it.
        let designation = naming::of_org(named.kind, &naming::display_name(&named.name)).official;
        shown.push(serde_json::json!({ "id": named.id, "name": named.name, "code": named.code, "link": link,
                                       "designation": designation }));
    }
    Ok(shown)
}

/// The member communes of a group, each [`openable`] (a link only to those the viewer may
/// open), with its delegation flag.
async fn members_shown(
    state: &ConsoleState,
    actor: &Actor,
    members: Vec<(OrgRef, bool)>,
) -> Result<Vec<serde_json::Value>, Problem> {
    let (communes, delegated): (Vec<OrgRef>, Vec<bool>) = members.into_iter().unzip();
    let shown = openable(state, actor, communes).await?;
    Ok(shown.into_iter().zip(delegated).map(|(o, d)| serde_json::json!({ "org": o, "delegated": d })).collect())
}

async fn render(
    state: &ConsoleState,
    signed: &Signed,
    org: Org,
    status: StatusCode,
    notice: Option<Notice>,
    contact: ContactForm,
    member: MemberForm,
) -> Result<Response, PageError> {
    let actor = &signed.0.actor;
    let relatives = queries::Relatives::of(&state.store, &org).await?;
    let members =
        if org.kind.groups_communes() { queries::members_of_group(&state.store, &org.id).await? } else { Vec::new() };
    // A private school's record is kept by its own roles: the DAN reads it, no form.
    let may_edit = authz::keeps_record(actor, &ORGS_UPDATE, &org)
        && authz::authorize(&state.store, actor, &ORGS_UPDATE, &org).await.is_ok();
    // Conventions (parties, amounts) only to the roles that may read them here.
    let conventions = if authz::authorize(&state.store, actor, &CONVENTIONS_READ, &org).await.is_ok() {
        Some(conventions_of(state, actor, &org).await?)
    } else {
        None
    };
    let may_manage_members =
        org.kind.groups_communes() && authz::authorize(&state.store, actor, &ORGS_MEMBERS_WRITE, &org).await.is_ok();
    let conventions_listed = conventions.as_ref().map(Vec::len);
    let tenants = tenants_of(state, &org).await?;
    let next_steps = next_steps(state, actor, &org, conventions_listed, tenants.len()).await?;
    let path = format!("/organisations/{}", org.id);
    let shell = Shell::new(state, Some(&signed.0), &path)
        .crumbs(&[("Organisations", "/organisations"), (&org.name, &path)])
        .notice(notice);
    let values = serde_json::json!({
        "title": org.name,
        // « du Collège Paul Bert », « de la Commune de Fresnes »: after « Codes et rattachements ».
        "of_org": naming::of_org(org.kind, &naming::display_name(&org.name)).of,
        "this_org": this_org(&org),
        "next_steps": next_steps,
        "org": org,
        "kind": org.kind.label(),
        "etab_type": org.etab_type.map(|t| t.label()),
        "parents": openable(state, actor, relatives.covering_parents(&org)).await?,
        "funding": openable(state, actor, relatives.funding(&org)).await?.pop(),
        "members": members_shown(state, actor, members).await?,
        "group": org.kind.groups_communes(),
        "conventions": conventions,
        "tenants": tenants,
        "may_edit": may_edit,
        "hand_made": org.kind.is_siren_identified(),
        "may_manage_members": may_manage_members,
        "contact": contact,
        "member": member,
    });
    Ok(page::render_status(status, "organisation.html", shell, values))
}

/// The organisation as the page's sentences point to it: « cette école », « cet établissement »,
/// « cette commune », « cette organisation ».
fn this_org(org: &Org) -> &'static str {
    match (org.kind, org.etab_type) {
        (OrgKind::Etablissement, Some(t)) if t.is_ecole() => "cette école",
        (OrgKind::Etablissement, _) => "cet établissement",
        (OrgKind::Commune, _) => "cette commune",
        _ => "cette organisation",
    }
}

/// The next steps of a school's onboarding the viewer may take from its page: drafting its
/// convention while none is listed (`conventions_listed`, of those the viewer reads; the model
/// page then offers the models that may cover it) and requesting its ENT while it has none, each
/// only to whom may do it there (the pages' own checks still decide).
async fn next_steps(
    state: &ConsoleState,
    actor: &Actor,
    org: &Org,
    conventions_listed: Option<usize>,
    tenants: usize,
) -> Result<Vec<serde_json::Value>, Problem> {
    if !matches!(org.kind, OrgKind::Etablissement | OrgKind::Commune | OrgKind::Epci | OrgKind::SyndicatMixte)
        || !org.open
    {
        return Ok(Vec::new());
    }
    let this = this_org(org);
    let mut steps = Vec::new();
    let may = async |action: &Action| authz::authorize(&state.store, actor, action, org).await.is_ok();
    if conventions_listed == Some(0) && may(&CONVENTIONS_WRITE).await {
        steps
            .push(serde_json::json!({ "id": "rediger-convention", "label": format!("Rédiger la convention de {this}"),
            "href": format!("/conventions/nouvelle?organisation={}", org.id) }));
    }
    if tenants == 0 && may(&TENANTS_WRITE).await {
        steps.push(serde_json::json!({ "id": "demander-ent", "label": format!("Demander l'ENT de {this}"),
            "href": format!("/ent/nouveau?organisation={}", org.id) }));
    }
    Ok(steps)
}

/// The notices of a page shown after an action (`?apres=`).
const NOTICES: &[(&str, &str)] = &[
    ("contact", "Les coordonnées sont enregistrées."),
    ("membre-ajoute", "La commune est ajoutée aux membres."),
    ("membre-retire", "La commune est retirée des membres."),
];

/// `/organisations/{org}`: an organisation's page.
pub async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let org = readable(&state, &signed, &key).await?;
    let contact = ContactForm::of(&org);
    let notice = Notice::after(query.get("apres"), NOTICES);
    render(&state, &signed, org, StatusCode::OK, notice, contact, MemberForm::default()).await
}

#[derive(Deserialize)]
pub struct ContactInput {
    name: Option<String>,
    email: Option<String>,
    country: Option<String>,
    version: Option<String>,
}

/// The organisation `key` names if the caller may `action` on it: the API's answers
/// (403 when readable but out of the write scope, else 404).
async fn writable(state: &ConsoleState, signed: &Signed, key: &str, action: &Action) -> Result<Org, Problem> {
    let org = readable(state, signed, key).await?;
    authz::authorize(&state.store, &signed.0.actor, action, &org).await?;
    Ok(org)
}

/// Saves the contact details if the form's version is still the stored one; a stale
/// form is shown again with what was typed and says so.
pub async fn edit_contact(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(key): Path<String>,
    Form(input): Form<ContactInput>,
) -> Result<Response, PageError> {
    let org = writable(&state, &signed, &key, &ORGS_UPDATE).await?;
    let hand_made = org.kind.is_siren_identified();
    let typed = ContactForm {
        name: input.name.clone().unwrap_or_else(|| org.name.clone()),
        email: input.email.clone().unwrap_or_default(),
        country: input.country.clone().unwrap_or_else(|| org.country.clone()),
        version: org.version,
        errors: Vec::new(),
    };
    // The form's error summary is the page's one alert: no notice beside it.
    let refuse = |typed: ContactForm, errors: Vec<FieldError>| (ContactForm { errors, ..typed }, None::<Notice>);
    let Some(version) = input.version.as_deref().and_then(|v| v.trim().parse::<i64>().ok()) else {
        let (form, notice) =
            refuse(typed, vec![FieldError::new("contact", "email", "formulaire incomplet : rechargez la page")]);
        return render(&state, &signed, org, StatusCode::UNPROCESSABLE_ENTITY, notice, form, MemberForm::default())
            .await;
    };
    let patch = OrgPatch {
        name: input.name.filter(|_| hand_made),
        email: input.email.map(|e| e.trim().to_string()),
        country: input.country.filter(|_| hand_made).map(|c| c.trim().to_ascii_uppercase()),
    };
    match manage::update_org(&state.store, &signed.0.actor, &org, version, patch, state.clock.now()).await {
        Ok(saved) => Ok(page::redirect(&format!("/organisations/{}?apres=contact", saved.id))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let text = "Ces coordonnées ont été modifiées par quelqu'un d'autre depuis l'ouverture du formulaire : \
                        vérifiez les valeurs actuelles puis enregistrez à nouveau ce que vous avez saisi.";
            let (form, notice) = refuse(typed, vec![FieldError::new("contact", "email", text)]);
            render(&state, &signed, org, StatusCode::CONFLICT, notice, form, MemberForm::default()).await
        }
        Err(p) => match errors_of(&p, "contact", &["name", "email", "country"], "email") {
            Some(errors) => {
                let typed = ContactForm { version, ..typed };
                let (form, notice) = refuse(typed, errors);
                render(&state, &signed, org, StatusCode::UNPROCESSABLE_ENTITY, notice, form, MemberForm::default())
                    .await
            }
            None => Err(p.into()),
        },
    }
}

#[derive(Deserialize)]
pub struct MemberInput {
    commune: Option<String>,
    delegue: Option<String>,
}

/// The group and the commune of a membership form, both checked as the API does:
/// the role and scope on **both** organisations.
async fn membership(
    state: &ConsoleState,
    signed: &Signed,
    group: &Org,
    commune: &str,
) -> Result<Result<Org, Vec<FieldError>>, Problem> {
    let code = match parse_insee_commune(commune.trim()) {
        Ok(code) => code,
        Err(e) => return Ok(Err(vec![FieldError::new("membre", "commune", e.to_string())])),
    };
    let unknown = || {
        vec![FieldError::new("membre", "commune", format!("aucune commune de code INSEE {code} dans votre périmètre"))]
    };
    let Some(commune) = queries::get_by_code(&state.store, OrgKind::Commune, &code).await? else {
        return Ok(Err(unknown()));
    };
    match authz::authorize_all(&state.store, &signed.0.actor, &ORGS_MEMBERS_WRITE, &[group, &commune]).await {
        Ok(()) => Ok(Ok(commune)),
        Err(p) if p.kind == ProblemKind::NotFound => Ok(Err(unknown())),
        Err(p) if p.kind == ProblemKind::Forbidden => Ok(Err(vec![FieldError::new("membre", "commune", p.detail)])),
        Err(p) => Err(p),
    }
}

/// Adds (`ADD`) a commune to an EPCI or syndicat mixte, or removes it: only someone
/// acting for the commune may add it (else the commune is invited, as the API says), and
/// remove it (or the group's own collectivité).
pub async fn change_member<const ADD: bool>(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(key): Path<String>,
    Form(input): Form<MemberInput>,
) -> Result<Response, PageError> {
    let group = writable(&state, &signed, &key, &ORGS_MEMBERS_WRITE).await?;
    let typed = input.commune.clone().unwrap_or_default();
    let refuse = |errors: Vec<FieldError>| MemberForm { commune: typed.clone(), errors };
    let checked = if !group.kind.groups_communes() {
        Err(vec![FieldError::new("membre", "commune", format!("{} n'est ni un EPCI ni un syndicat mixte", group.name))])
    } else if typed.trim().is_empty() {
        Err(vec![FieldError::new("membre", "commune", "indiquez le code INSEE de la commune")])
    } else {
        membership(&state, &signed, &group, &typed).await?
    };
    let commune = match checked {
        Ok(commune) => commune,
        Err(errors) => return refused_member(&state, &signed, group, refuse(errors)).await,
    };
    let now = state.clock.now();
    let actor = &signed.0.actor;
    let done = if ADD {
        if !authz::acts_for(&state.store, actor, &ORGS_MEMBERS_WRITE, &commune).await? {
            let text = format!(
                "{} rejoint {} avec son accord : seule la commune, sa DAN ou un administrateur l'ajoute directement ; \
                 sinon, invitez-la",
                commune.name, group.name
            );
            return refused_member(&state, &signed, group, refuse(vec![FieldError::new("membre", "commune", text)]))
                .await;
        }
        let delegated = input.delegue.as_deref() == Some("oui");
        manage::set_member(&state.store, actor, &group, &commune, delegated, now).await
    } else {
        if !authz::detaches(&state.store, actor, &ORGS_MEMBERS_WRITE, &group, &commune).await? {
            let text = not_detached_by_you(&group, &commune);
            return refused_member(&state, &signed, group, refuse(vec![FieldError::new("membre", "commune", text)]))
                .await;
        }
        manage::remove_member(&state.store, actor, &group, &commune, now).await
    };
    match done {
        Ok(()) => {
            let after = if ADD { "membre-ajoute" } else { "membre-retire" };
            Ok(page::redirect(&format!("/organisations/{}?apres={after}", group.id)))
        }
        Err(p) => {
            let errors = match errors_of(&p, "membre", &["commune"], "commune") {
                Some(errors) => errors,
                None if p.kind == ProblemKind::NotFound => vec![FieldError::new("membre", "commune", p.detail.clone())],
                None => return Err(p.into()),
            };
            refused_member(&state, &signed, group, refuse(errors)).await
        }
    }
}

async fn refused_member(
    state: &ConsoleState,
    signed: &Signed,
    group: Org,
    form: MemberForm,
) -> Result<Response, PageError> {
    let contact = ContactForm::of(&group);
    render(state, signed, group, StatusCode::UNPROCESSABLE_ENTITY, None, contact, form).await
}
