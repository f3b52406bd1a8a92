//! Authorisation cases at a private school (établissement privé sous contrat): another legal
//! person, its own controller (its organisme de gestion's). Only an administrator grants or
//! revokes a role there, attaches an account to it, or cuts the access of one of its people; the
//! DAN of its académie reads it but is refused (403, said on the form), in the console as through
//! the API; a private school of another académie answers the DAN as a key naming nothing
//! (attack review 42, F1).

use super::*;
use crate::console::{escaped, post_form, sign_in, with_password};

/// A write touching the people of the private school.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    /// The head's role at the school granted to an agent of the académie.
    Grant,
    /// The head's role at the school taken from its head.
    Revoke,
    /// An account attached to the school, invited with the head's role (the API: created).
    Invite,
    /// The head's sessions, password links and API tokens revoked.
    CutAccess,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Channel {
    Console,
    Api,
}

use Act::*;
use Channel::*;

/// Each write, by whom, and the status it answers: the DAN refused, an administrator served.
const CASES: &[(Channel, Act, Role, u16)] = &[
    (Console, Grant, Dan, 403),
    (Console, Grant, Admin, 303),
    (Console, Revoke, Dan, 403),
    (Console, Revoke, Admin, 303),
    (Console, Invite, Dan, 403),
    (Console, Invite, Admin, 303),
    (Console, CutAccess, Dan, 403),
    (Console, CutAccess, Admin, 303),
    (Api, Grant, Dan, 403),
    (Api, Grant, Admin, 200),
    (Api, Revoke, Dan, 403),
    (Api, Revoke, Admin, 204),
    (Api, Invite, Dan, 403),
    (Api, Invite, Admin, 201),
];

/// The first private school of académie `academie` (`not`: of any other académie).
async fn private_school(store: &Store, academie: &str, not: bool) -> Org {
    let op = if not { "<>" } else { "=" };
    let sql = format!(
        "SELECT id FROM orgs WHERE kind = 'etablissement' AND sector = 'prive' AND academie_code {op} $1 \
         ORDER BY id LIMIT 1"
    );
    let id: String = sqlx::query_scalar(&sql).bind(academie).fetch_one(store.pool()).await.unwrap();
    queries::get_org(store, &id).await.unwrap().unwrap()
}

/// Whether the user `id` holds the head's role at `school`.
async fn heads(store: &Store, id: &str, school: &Org) -> bool {
    let sql =
        "SELECT COUNT(*) AS n FROM role_bindings WHERE user_id = $1 AND role = 'chef_etablissement' AND org_id = $2";
    common::count(store, sql, &[id, school.id.as_str()]).await == 1
}

/// The people of one case: an agent of the académie's public school, and the private school's
/// head (attached to it, its role granted by an administrator, an API token).
struct People {
    agent: String,
    head: String,
    head_token: String,
    invited: String,
}

async fn people(world: &World, school: &Org, n: usize) -> People {
    let admin = admin();
    let new = |email: String, org: &Org| identity::NewUser {
        email,
        display_name: "Personne".into(),
        org: Some(org.id.clone()),
    };
    let agent = new(format!("agent.{n}@test.fr"), &world.etab_in);
    let agent = identity::create_user(&world.store, &admin, agent, t0()).await.unwrap().id;
    let head = new(format!("chef.{n}@prive.fr"), school);
    let head = identity::create_user(&world.store, &admin, head, t0()).await.unwrap().id;
    let role = identity::UserRole::new(&head, ChefEtablissement, Some(school));
    identity::grant(&world.store, &admin, role, t0()).await.unwrap();
    let head_token = identity::create_token(&world.store, &admin, &head, "jeton", None, t0()).await.unwrap().token;
    People { agent, head, head_token, invited: format!("invite.{n}@prive.fr") }
}

/// Does `act` at `school` through `channel` as `role` (its console `session`); the status.
async fn perform(
    world: &World,
    session: &str,
    (channel, act, role): (Channel, Act, Role),
    who: &People,
    school: &Org,
) -> (u16, String) {
    let head_role = [("role", "chef_etablissement"), ("org", school.id.as_str())];
    match channel {
        Console => {
            let resp = match act {
                Grant => {
                    post_form(&world.app, session, &format!("/utilisateurs/{}/roles", who.agent), &head_role).await
                }
                Revoke => {
                    let path = format!("/utilisateurs/{}/roles/retirer", who.head);
                    post_form(&world.app, session, &path, &head_role).await
                }
                Invite => {
                    let mut fields = vec![("email", who.invited.as_str()), ("display_name", "Nouveau chef")];
                    fields.extend(head_role);
                    post_form(&world.app, session, "/utilisateurs", &fields).await
                }
                CutAccess => {
                    post_form(&world.app, session, &format!("/utilisateurs/{}/acces/revoquer", who.head), &[]).await
                }
            };
            (resp.status, resp.text)
        }
        Api => {
            let call = match act {
                Grant => {
                    let body = json!({ "role": "chef_etablissement", "org": school.id });
                    world.request("POST", format!("/api/v1/users/{}/roles", who.agent), Some(body))
                }
                Revoke => {
                    let path = format!("/api/v1/users/{}/roles/chef_etablissement?org={}", who.head, school.id);
                    world.request("DELETE", path, None)
                }
                Invite => {
                    let body = json!({ "email": who.invited, "display_name": "Nouveau chef", "org": school.id });
                    world.request("POST", "/api/v1/users".into(), Some(body))
                }
                CutAccess => unreachable!("the console's only"),
            };
            world.send(role, call).await
        }
    }
}

/// Whether `act` was done: the role granted or revoked, the account created, the token revoked.
async fn done(world: &World, act: Act, who: &People, school: &Org) -> bool {
    match act {
        Grant => heads(&world.store, &who.agent, school).await,
        Revoke => !heads(&world.store, &who.head, school).await,
        Invite => identity::get_user(&world.store, &who.invited).await.unwrap().is_some(),
        CutAccess => world.app.get("/api/v1/me").bearer(&who.head_token).send().await.status == 401,
    }
}

backend_test!(only_an_administrator_grants_revokes_invites_or_cuts_access_at_a_private_school);
async fn only_an_administrator_grants_revokes_invites_or_cuts_access_at_a_private_school(db: crate::common::TestDb) {
    let world = world(&db).await;
    let academie = world.etab_in.academie_code.clone().unwrap();
    let school = private_school(&world.store, &academie, false).await;
    let mut sessions = HashMap::new();
    for role in [Dan, Admin] {
        let email = format!("{}@test.fr", role.as_str());
        with_password(&world.store, &email).await;
        sessions.insert(role, sign_in(&world.app, &email).await);
    }
    let mut failures = Vec::new();
    for (n, &(channel, act, role, want)) in CASES.iter().enumerate() {
        let who = people(&world, &school, n).await;
        let (got, body) = perform(&world, &sessions[&role], (channel, act, role), &who, &school).await;
        let did = done(&world, act, &who, &school).await;
        if got != want || did != (want < 400) {
            failures.push(format!(
                "{channel:?} {act:?} as {}: {got} (done: {did}), expected {want}: {body}",
                role.as_str()
            ));
        }
        // The console says why: the school acts for another legal person.
        let said = match act {
            CutAccess => "seul un administrateur peut couper tous ses accès",
            _ => "un établissement privé",
        };
        if channel == Console && got == 403 && !body.contains(&escaped(said)) {
            failures.push(format!("{act:?} as {}: « {said} » not said: {body}", role.as_str()));
        }
    }
    assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
}

/// The DAN's grant (or invitation) of the head's role at the organisation `org` names: the
/// status and the page's words, `org` written as [`MISSING`], the request's id left out.
async fn refused(world: &World, session: &str, who: &People, org: &str, invite: bool) -> (u16, String) {
    let (path, email) = match invite {
        true => ("/utilisateurs".to_string(), who.invited.as_str()),
        false => (format!("/utilisateurs/{}/roles", who.agent), ""),
    };
    let fields = [("email", email), ("display_name", "Nouveau chef"), ("role", "chef_etablissement"), ("org", org)];
    let resp = post_form(&world.app, session, &path, &fields).await;
    let text = resp.text.replace(org, MISSING);
    (resp.status, text.split("Identifiant de la requête").next().unwrap().to_string())
}

backend_test!(a_private_school_of_another_academie_answers_a_dan_as_a_missing_one);
async fn a_private_school_of_another_academie_answers_a_dan_as_a_missing_one(db: crate::common::TestDb) {
    let world = world(&db).await;
    let academie = world.etab_in.academie_code.clone().unwrap();
    let far = private_school(&world.store, &academie, true).await;
    with_password(&world.store, "dan@test.fr").await;
    let session = sign_in(&world.app, "dan@test.fr").await;
    let who = people(&world, &world.etab_in, 0).await;
    for invite in [false, true] {
        let theirs = refused(&world, &session, &who, &far.id, invite).await;
        let none = refused(&world, &session, &who, MISSING, invite).await;
        assert_eq!(theirs.0, 422, "{} (invitation: {invite}): {}", db.name, theirs.1);
        assert_eq!(theirs, none, "{} (invitation: {invite}): out of scope reads as missing", db.name);
    }
    assert!(!heads(&world.store, &who.agent, &far).await, "{}", db.name);
    assert!(identity::get_user(&world.store, &who.invited).await.unwrap().is_none(), "{}", db.name);
}

/// Who edits the school's record in [`edits_the_record`]: a role of the world, or the school's
/// own head (its token and console session).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Editor {
    World(Role),
    Head,
}

/// The sessions and the head's token [`edit`] sends with.
struct Editors {
    sessions: HashMap<Role, String>,
    head_session: String,
    head_token: String,
}

/// The contact address of the organisation `key` names set to `email` by `editor` through
/// `channel` (the API's `PATCH`, the console's form), at its current version; the status and
/// the answer's words, `key` written as [`MISSING`] and the request's id left out.
async fn edit(
    world: &World,
    editors: &Editors,
    (channel, editor): (Channel, Editor),
    key: &str,
    email: &str,
) -> (u16, String) {
    let version = match queries::get_org(&world.store, key).await.unwrap() {
        Some(org) => org.version,
        None => 1,
    };
    let (status, text) = match channel {
        Api => {
            let req = world.app.request(Method::PATCH, &format!("/api/v1/orgs/{key}"));
            let token = match editor {
                Editor::World(role) => &world.tokens[&role],
                Editor::Head => &editors.head_token,
            };
            let resp = req.bearer(token).json(&json!({ "email": email })).if_match(version).send().await;
            (resp.status, resp.text)
        }
        Console => {
            let session = match editor {
                Editor::World(role) => &editors.sessions[&role],
                Editor::Head => &editors.head_session,
            };
            let version = version.to_string();
            let fields = [("email", email), ("version", version.as_str())];
            let resp = post_form(&world.app, session, &format!("/organisations/{key}/contact"), &fields).await;
            (resp.status, resp.text)
        }
    };
    let text = text.replace(key, MISSING);
    (status, text.split("Identifiant de la requête").next().unwrap().to_string())
}

/// The contact address the store holds for `org`.
async fn contact_of(world: &World, org: &Org) -> Option<String> {
    queries::get_org(&world.store, &org.id).await.unwrap().unwrap().email
}

backend_test!(only_its_head_and_an_administrator_edit_a_private_school_s_record);
/// A private school's record (its contact address, where its RGPD and support notices go) is
/// kept by the school: the DAN of its académie reads it but is refused (403, nothing written,
/// no form on its page), through the API as in the console; a private school of another
/// académie answers the DAN as a key naming nothing; its head and an administrator edit it.
async fn only_its_head_and_an_administrator_edit_a_private_school_s_record(db: crate::common::TestDb) {
    let world = world(&db).await;
    let academie = world.etab_in.academie_code.clone().unwrap();
    let school = private_school(&world.store, &academie, false).await;
    let far = private_school(&world.store, &academie, true).await;
    let head = people(&world, &school, 0).await;
    let head_email = identity::get_user(&world.store, &head.head).await.unwrap().unwrap().email;
    with_password(&world.store, &head_email).await;
    let mut sessions = HashMap::new();
    for role in [Dan, Admin] {
        let email = format!("{}@test.fr", role.as_str());
        with_password(&world.store, &email).await;
        sessions.insert(role, sign_in(&world.app, &email).await);
    }
    let editors =
        Editors { head_session: sign_in(&world.app, &head_email).await, head_token: head.head_token, sessions };
    let mut failures = Vec::new();
    for channel in [Api, Console] {
        // The DAN of the school's académie: refused, in words that say why, nothing written.
        let before = contact_of(&world, &school).await;
        let (got, body) = edit(&world, &editors, (channel, Editor::World(Dan)), &school.id, "dan@pirate.fr").await;
        let said = "modifient la fiche d'un établissement privé";
        let said_here = if channel == Console { escaped(said) } else { said.to_string() };
        if got != 403 || !body.contains(&said_here) {
            failures.push(format!("{channel:?} DAN on its académie's private school: {got}, expected 403: {body}"));
        }
        if contact_of(&world, &school).await != before {
            failures.push(format!("{channel:?} DAN on its académie's private school: the address was written"));
        }
        // The DAN on a private school of another académie: a key naming nothing.
        let before = contact_of(&world, &far).await;
        let theirs = edit(&world, &editors, (channel, Editor::World(Dan)), &far.id, "dan@pirate.fr").await;
        let none = edit(&world, &editors, (channel, Editor::World(Dan)), MISSING, "dan@pirate.fr").await;
        if theirs.0 != 404 || theirs != none {
            failures.push(format!(
                "{channel:?} DAN on another académie's private school: {theirs:?}, as missing: {none:?}"
            ));
        }
        if contact_of(&world, &far).await != before {
            failures.push(format!("{channel:?} DAN on another académie's private school: the address was written"));
        }
        // Its head and an administrator: saved.
        for editor in [Editor::Head, Editor::World(Admin)] {
            let email = format!("contact.{channel:?}.{editor:?}@prive.fr").to_lowercase().replace(['(', ')'], "");
            let (got, body) = edit(&world, &editors, (channel, editor), &school.id, &email).await;
            let want = if channel == Api { 200 } else { 303 };
            if got != want || contact_of(&world, &school).await.as_deref() != Some(email.as_str()) {
                failures.push(format!("{channel:?} {editor:?}: {got}, expected {want} and {email} saved: {body}"));
            }
        }
    }
    // The console offers the form to the head, not to the DAN, who reads the school's page.
    let form = format!("action=\"/organisations/{}/contact\"", school.id);
    let page = crate::console::get(&world.app, &editors.sessions[&Dan], &format!("/organisations/{}", school.id)).await;
    if page.status != 200 || page.text.contains(&form) {
        failures.push(format!(
            "the DAN's page of the school: {} (form shown: {})",
            page.status,
            page.text.contains(&form)
        ));
    }
    let page = crate::console::get(&world.app, &editors.head_session, &format!("/organisations/{}", school.id)).await;
    if page.status != 200 || !page.text.contains(&form) {
        failures.push(format!(
            "the head's page of the school: {} (form shown: {})",
            page.status,
            page.text.contains(&form)
        ));
    }
    assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
}

backend_test!(a_refused_access_cut_names_no_organisation_outside_the_dan_s_scope);
/// The DAN may not cut the access of a person of its académie who also holds a role it does not
/// grant: the refusal says so without naming that role's organisation when the DAN does not
/// read it (here an EPCI of another académie), and nothing is cut.
async fn a_refused_access_cut_names_no_organisation_outside_the_dan_s_scope(db: crate::common::TestDb) {
    let world = world(&db).await;
    let user = world.user_in.clone();
    let far = world.group_out.clone();
    let role = identity::UserRole::new(&user, Collectivite, Some(&far));
    identity::grant(&world.store, &admin(), role, t0()).await.unwrap();
    let token = identity::create_token(&world.store, &admin(), &user, "jeton", None, t0()).await.unwrap().token;
    with_password(&world.store, "dan@test.fr").await;
    let session = sign_in(&world.app, "dan@test.fr").await;
    let resp = post_form(&world.app, &session, &format!("/utilisateurs/{user}/acces/revoquer"), &[]).await;
    assert_eq!(resp.status, 403, "{}: {}", db.name, resp.text);
    assert!(resp.text.contains(&escaped("a aussi un rôle hors de votre périmètre")), "{}: {}", db.name, resp.text);
    for named in [&far.name, &far.id, &far.code] {
        assert!(!resp.text.contains(&escaped(named)), "{}: {named} named: {}", db.name, resp.text);
    }
    assert_eq!(world.app.get("/api/v1/me").bearer(&token).send().await.status, 200, "{}: nothing cut", db.name);
}
