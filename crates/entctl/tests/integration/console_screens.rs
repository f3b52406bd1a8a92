//! The console's « Organisations » and « Utilisateurs et rôles » screens in process:
//! the shared list (paging, sort, search, scope in the query), an out-of-scope
//! organisation answered like a missing one, the contact form's version check, EPCI
//! membership checked on both organisations, and the role rules of a DAN.

use crate::common;
use crate::console::{self, add_person, console, console_as_dan_a, csrf_of, escaped, sign_in, with_password, PASSWORD};

use common::{admin, t0, TestApp, TestDb};
use entcp::kernel::roles::OrgKind;
use entcp::registry::Org;

/// Posts `fields` to `path` as the session `cookie`, from the page `page_path` (which must show).
async fn post_form(app: &TestApp, cookie: &str, page_path: &str, path: &str, fields: &[(&str, &str)]) -> common::Resp {
    let page = console::get(app, cookie, page_path).await;
    assert_eq!(page.status, 200, "{page_path}: {}", page.text);
    console::post_form(app, cookie, path, fields).await
}

/// The first organisation of `kind` in académie `academie` (by code).
async fn first_of(app: &TestApp, kind: OrgKind, academie: &Org) -> Org {
    let id: String =
        sqlx::query_scalar("SELECT id FROM orgs WHERE kind = $1 AND academie_code = $2 ORDER BY id LIMIT 1")
            .bind(kind.as_str())
            .bind(&academie.code)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    entcp::registry::queries::get_org(&app.store, &id).await.unwrap().unwrap()
}

/// Names of the académie's organisations in sort order (descending when `desc`).
async fn names_in(app: &TestApp, academie: &Org, desc: bool) -> Vec<String> {
    let order = if desc { "DESC" } else { "ASC" };
    let sql = format!("SELECT name FROM orgs WHERE academie_code = $1 ORDER BY sort_name {order}, id {order}");
    sqlx::query_scalar(&sql).bind(&academie.code).fetch_all(app.store.pool()).await.unwrap()
}

/// Rows of `sql` whose `$1` is `id`.
async fn count_of(app: &TestApp, sql: &str, id: &str) -> i64 {
    common::count(&app.store, sql, &[id]).await
}

backend_test!(the_organisation_search_pages_sorts_and_stays_in_the_callers_scope);
async fn the_organisation_search_pages_sorts_and_stays_in_the_callers_scope(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let ascending = names_in(&app, &a, false).await;
    let total = ascending.len();
    assert!(total > 9, "enough rows for four pages: {total}");
    let pages = total.div_ceil(3);
    let first = app.get("/organisations?taille=3").header("cookie", &session).send().await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.text.contains(&format!("Organisations — {total} résultats</caption>")), "{}", first.text);
    assert!(first.text.contains(&format!("Page 1 sur {pages}")));
    assert!(first.text.contains(r#"<th scope="col" aria-sort="ascending">"#), "sorted by name");
    let on_first = |name: &str| first.text.contains(&format!(">{}</a></th>", escaped(name)));
    assert!(on_first(&ascending[0]) && on_first(&ascending[2]) && !on_first(&ascending[3]), "three rows, by name");
    assert!(!first.text.contains(&format!(">{}</a></th>", b.name)), "another académie is not listed");
    // Descending, second page: the 4th to 6th names from the end, links keeping the order.
    let descending = names_in(&app, &a, true).await;
    let second = app.get("/organisations?tri=-nom&taille=3&page=2").header("cookie", &session).send().await;
    assert_eq!(second.status, 200);
    assert!(second.text.contains(r#"aria-sort="descending""#));
    let shown = |name: &str| second.text.find(&format!(">{}</a></th>", escaped(name)));
    let (fourth, sixth) = (shown(&descending[3]), shown(&descending[5]));
    assert!(fourth.is_some() && sixth.is_some() && fourth < sixth, "{}", second.text);
    assert!(shown(&descending[2]).is_none() && shown(&descending[6]).is_none(), "only the second page");
    assert!(second.text.contains("?tri=-nom&amp;taille=3&amp;page=3"), "the pager keeps the order and size");
    // The search finds nothing outside the scope, even by exact code.
    let other = app.get(&format!("/organisations?q={}", b.code)).header("cookie", &session).send().await;
    assert!(other.text.contains("Organisations — 0 résultat</caption>"), "{}", other.text);
    let own = app.get(&format!("/organisations?q={}&type=academie", a.code)).header("cookie", &session).send().await;
    assert!(own.text.contains("Organisations — 1 résultat</caption>"), "{}", own.text);
}

backend_test!(an_organisation_out_of_scope_answers_404_like_a_missing_one);
async fn an_organisation_out_of_scope_answers_404_like_a_missing_one(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let own = app.get(&format!("/organisations/{}", school.id)).header("cookie", &session).send().await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert!(own.text.contains(&school.code) && own.text.contains("Organisations qui couvrent cet"), "{}", own.text);
    let other = app.get(&format!("/organisations/{}", b.id)).header("cookie", &session).send().await;
    let missing = app.get("/organisations/inexistant-0000").header("cookie", &session).send().await;
    assert_eq!((other.status, missing.status), (404, 404));
    assert!(!other.text.contains(&b.name), "nothing revealed");
    let body = |text: &str| text.split("Identifiant de la requête").next().unwrap().to_string();
    assert_eq!(body(&other.text), body(&missing.text), "the same page as a missing organisation");
    // A write through a forged form is answered alike.
    let page = app.get("/compte").header("cookie", &session).send().await;
    let forged = format!("_csrf={}&email=x%40y.fr&version=1", csrf_of(&page.text));
    let write = console::post_body(&app, &session, &format!("/organisations/{}/contact", b.id), forged).await;
    assert_eq!(write.status, 404);
}

backend_test!(a_stale_contact_form_is_refused_and_keeps_what_was_typed);
async fn a_stale_contact_form_is_refused_and_keeps_what_was_typed(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    let commune = first_of(&app, OrgKind::Commune, &a).await;
    let path = format!("/organisations/{}", commune.id);
    let opened = commune.version;
    // Someone else saves first.
    let patch = entcp::registry::manage::OrgPatch { email: Some("ent@mairie.fr".into()), ..Default::default() };
    entcp::registry::manage::update_org(&app.store, &admin(), &commune, opened, patch, t0()).await.unwrap();
    let version = opened.to_string();
    let contact = format!("{path}/contact");
    let stale =
        post_form(&app, &session, &path, &contact, &[("email", "secretariat@mairie.fr"), ("version", &version)]).await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(stale.text.contains("modifiées par quelqu"), "said in French: {}", stale.text);
    assert!(stale.text.contains(r#"value="secretariat@mairie.fr""#), "what was typed is kept");
    assert!(stale.text.contains(r##"href="#contact-email""##), "the summary links the field");
    let stored = entcp::registry::queries::get_org(&app.store, &commune.id).await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("ent@mairie.fr"), "nothing overwritten");
    // With the current version the same form is saved, and audited.
    let current = stored.version.to_string();
    let saved =
        post_form(&app, &session, &path, &contact, &[("email", "secretariat@mairie.fr"), ("version", &current)]).await;
    assert_eq!((saved.status, saved.header("location")), (303, Some(format!("{path}?apres=contact").as_str())));
    let after = app.get(&format!("{path}?apres=contact")).header("cookie", &session).send().await;
    assert!(after.text.contains("Les coordonnées sont enregistrées."));
    let stored = entcp::registry::queries::get_org(&app.store, &commune.id).await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("secretariat@mairie.fr"));
    assert_eq!(common::audited_on(&app.store, "orgs.update", &commune.id).await, 2);
}

backend_test!(epci_membership_is_checked_on_both_organisations);
async fn epci_membership_is_checked_on_both_organisations(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let own = first_of(&app, OrgKind::Commune, &a).await;
    let foreign = first_of(&app, OrgKind::Commune, &b).await;
    let siren = common::fixtures::luhn(&format!("{:08}", 20_000_077));
    let epci = common::fixtures::epci(&app.store, "CA des Écoles", &siren, &[]).await;
    // An EPCI of no département is in no DAN's scope; this one is in académie a's.
    let departement = own.departement_code.clone().unwrap();
    let siren = common::fixtures::luhn(&format!("{:08}", 20_000_078));
    let group = common::fixtures::new_org(&app.store, OrgKind::Epci, "CA du Val", &siren, Some(&departement)).await;
    let path = format!("/organisations/{}", group.id);
    const MEMBERS: &str = "SELECT COUNT(*) AS n FROM org_members WHERE group_id = $1";
    let across =
        post_form(&app, &session, &path, &format!("{path}/membres/ajouter"), &[("commune", &foreign.code)]).await;
    assert_eq!(across.status, 422, "{}", across.text);
    assert!(across.text.contains("dans votre périmètre"), "{}", across.text);
    assert!(across.text.contains(&format!(r#"value="{}""#, foreign.code)), "what was typed is kept");
    assert_eq!(count_of(&app, MEMBERS, &group.id).await, 0);
    // The other EPCI is out of scope itself: its page and forms answer 404.
    let outside = app.get(&format!("/organisations/{}", epci.id)).header("cookie", &session).send().await;
    assert_eq!(outside.status, 404);
    let added = post_form(&app, &session, &path, &format!("{path}/membres/ajouter"), &[("commune", &own.code)]).await;
    assert_eq!(added.status, 303, "{}", added.text);
    assert_eq!(count_of(&app, MEMBERS, &group.id).await, 1);
    let page = app.get(&format!("{path}?apres=membre-ajoute")).header("cookie", &session).send().await;
    assert!(page.text.contains("La commune est ajoutée aux membres.") && page.text.contains(&escaped(&own.name)));
    let removed = post_form(&app, &session, &path, &format!("{path}/membres/retirer"), &[("commune", &own.code)]).await;
    assert_eq!(removed.status, 303, "{}", removed.text);
    assert_eq!(count_of(&app, MEMBERS, &group.id).await, 0);
    let set = common::audited_on(&app.store, "orgs.members.set", &group.id).await;
    assert_eq!(set + common::audited_on(&app.store, "orgs.members.remove", &group.id).await, 2);
}

backend_test!(a_dan_grants_roles_within_its_academie_only_and_never_admin);
async fn a_dan_grants_roles_within_its_academie_only_and_never_admin(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let new = |email: &str, org: &Org| entcp::identity::NewUser {
        email: email.into(),
        display_name: "Agent".into(),
        org: Some(org.id.clone()),
    };
    let agent = entcp::identity::create_user(&app.store, &admin(), new("agent@test.fr", &school), t0()).await.unwrap();
    let far = first_of(&app, OrgKind::Etablissement, &b).await;
    let stranger = entcp::identity::create_user(&app.store, &admin(), new("loin@test.fr", &far), t0()).await.unwrap();
    let path = format!("/utilisateurs/{}", agent.id);
    let (roles, retirer) = (format!("{path}/roles"), format!("{path}/roles/retirer"));
    const ROLES: &str = "SELECT COUNT(*) AS n FROM role_bindings WHERE user_id = $1";
    let admin_role = post_form(&app, &session, &path, &roles, &[("role", "admin")]).await;
    assert_eq!(admin_role.status, 403, "{}", admin_role.text);
    assert!(admin_role.text.contains("seul un administrateur"), "{}", admin_role.text);
    let academie_b = format!("academie:{}", b.code);
    let outside = post_form(&app, &session, &path, &roles, &[("role", "dan"), ("org", &academie_b)]).await;
    assert_eq!(outside.status, 422, "{}", outside.text);
    assert!(outside.text.contains("dans votre périmètre"));
    assert_eq!(count_of(&app, ROLES, &agent.id).await, 0, "nothing granted");
    // The admin role is not even offered.
    assert!(!outside.text.contains(r#"<option value="admin""#));
    let granted =
        post_form(&app, &session, &path, &roles, &[("role", "chef_etablissement"), ("org", &school.code)]).await;
    assert_eq!(granted.status, 303, "{}", granted.text);
    assert_eq!(count_of(&app, ROLES, &agent.id).await, 1);
    let revoked =
        post_form(&app, &session, &path, &retirer, &[("role", "chef_etablissement"), ("org", &school.id)]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    assert_eq!(count_of(&app, ROLES, &agent.id).await, 0);
    let audited = common::audited(&app.store, "roles.grant").await + common::audited(&app.store, "roles.revoke").await;
    assert!(audited >= 2);
    // A user of another académie is not revealed, nor listed.
    let hidden = app.get(&format!("/utilisateurs/{}", stranger.id)).header("cookie", &session).send().await;
    assert_eq!(hidden.status, 404);
    let list = app.get("/utilisateurs?q=test.fr").header("cookie", &session).send().await;
    assert!(list.text.contains("agent@test.fr") && !list.text.contains("loin@test.fr"), "{}", list.text);
}

// A DAN may not change its own roles (it would grant itself a commune's `collectivite` and sign
// for it), neither in the console nor through the API; an administrator changes anyone's roles,
// its own included.
// A DAN grants the roles of the State's side (académie, DSDEN, établissements); a role at a
// collectivité acts for another legal person (signs its conventions, reads its breach log), and
// only an administrator grants or revokes it, in a grant as in an invitation.
backend_test!(a_dan_grants_no_role_that_acts_for_a_collectivite);
async fn a_dan_grants_no_role_that_acts_for_a_collectivite(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    let commune = first_of(&app, OrgKind::Commune, &a).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let new = entcp::identity::NewUser {
        email: "agent@mairie.fr".into(),
        display_name: "Agent".into(),
        org: Some(commune.id.clone()),
    };
    let agent = entcp::identity::create_user(&app.store, &admin(), new, t0()).await.unwrap();
    const ROLES: &str = "SELECT COUNT(*) AS n FROM role_bindings WHERE user_id = $1";
    let path = format!("/utilisateurs/{}", agent.id);
    for role in ["collectivite", "dpo", "usager"] {
        let fields = [("role", role), ("org", commune.id.as_str())];
        let refused = post_form(&app, &session, &path, &format!("{path}/roles"), &fields).await;
        assert_eq!(refused.status, 403, "{role}: {}", refused.text);
        assert!(refused.text.contains("seul un administrateur accorde ou retire un rôle dans une commune"), "{role}");
    }
    assert_eq!(count_of(&app, ROLES, &agent.id).await, 0, "nothing granted");
    // Granted by an administrator, it is not the DAN's to revoke either.
    let mayor = entcp::identity::UserRole::new(&agent.id, entcp::kernel::roles::Role::Collectivite, Some(&commune));
    entcp::identity::grant(&app.store, &admin(), mayor, t0()).await.unwrap();
    let collectivite = [("role", "collectivite"), ("org", commune.id.as_str())];
    let kept = post_form(&app, &session, &path, &format!("{path}/roles/retirer"), &collectivite).await;
    assert_eq!(kept.status, 403, "{}", kept.text);
    assert_eq!(count_of(&app, ROLES, &agent.id).await, 1, "still held");
    // Nor does the DAN cut the access of the person holding it.
    with_password(&app.store, "agent@mairie.fr").await;
    let theirs = sign_in(&app, "agent@mairie.fr").await;
    let cut = post_form(&app, &session, &path, &format!("{path}/acces/revoquer"), &[]).await;
    assert_eq!(cut.status, 403, "{}", cut.text);
    assert!(cut.text.contains("seul un administrateur peut couper tous ses accès"), "{}", cut.text);
    assert_eq!(app.get("/compte").header("cookie", &theirs).send().await.status, 200, "still signed in");
    // The State's side: a school's head.
    let head = [("role", "chef_etablissement"), ("org", school.id.as_str())];
    let granted = post_form(&app, &session, &path, &format!("{path}/roles"), &head).await;
    assert_eq!(granted.status, 303, "{}", granted.text);
    assert_eq!(count_of(&app, ROLES, &agent.id).await, 2);
    // An invitation asking for such a role creates no account.
    let invite =
        [("email", "elu@mairie.fr"), ("display_name", "Élu"), ("org", commune.id.as_str()), ("role", "collectivite")];
    let refused = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &invite).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(entcp::identity::get_user(&app.store, "elu@mairie.fr").await.unwrap().is_none());
}

// A DAN attaches an account only where it could grant a role (the State's side of its
// académie): the élu of a commune invited without any role would still hold an account of the
// commune, made by the DAN. Refused on the form and by the identity capability, with no account
// and no mail; a commune of another académie answers as a key naming nothing; an administrator
// invites the élu.
backend_test!(a_dan_invites_no_one_attached_to_a_collectivite_even_without_a_role);
async fn a_dan_invites_no_one_attached_to_a_collectivite_even_without_a_role(db: TestDb) {
    let (mut app, a, b) = console(db).await;
    add_person(&mut app, "root@test.fr", entcp::kernel::roles::Role::Admin, None).await;
    let session = sign_in(&app, "dan.a@test.fr").await;
    let commune = first_of(&app, OrgKind::Commune, &a).await;
    let far = first_of(&app, OrgKind::Commune, &b).await;
    const ELU: &str = "elu@mairie.fr";
    fn fields(org: &str) -> Vec<(&str, &str)> {
        vec![("email", ELU), ("display_name", "Élu ENT"), ("org", org)]
    }
    const MAILS: &str = "SELECT COUNT(*) AS n FROM outbox WHERE recipients LIKE $1";
    let refused = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields(&commune.id)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains(&escaped("seul un administrateur invite une personne rattachée à une commune")),
        "{}",
        refused.text
    );
    assert!(refused.text.contains(r#"aria-describedby="invitation-org-erreur""#), "{}", refused.text);
    assert!(refused.text.contains(r#"value="elu@mairie.fr""#), "what was typed is kept");
    assert!(entcp::identity::get_user(&app.store, ELU).await.unwrap().is_none(), "no account");
    assert_eq!(count_of(&app, MAILS, "%elu@mairie.fr%").await, 0, "no mail");
    // Out of scope, as a key naming nothing.
    for key in [far.id.as_str(), "commune:99999"] {
        let unknown = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields(key)).await;
        assert_eq!(unknown.status, 422, "{key}: {}", unknown.text);
        let said = escaped(&format!("aucune organisation « {key} » dans votre périmètre"));
        assert!(unknown.text.contains(&said), "{key}: {}", unknown.text);
    }
    // The identity capability refuses it too, whoever calls it.
    let dan = entcp::identity::get_user(&app.store, "dan.a@test.fr").await.unwrap().unwrap();
    let bindings = entcp::identity::bindings_of(&app.store, &dan.id).await.unwrap();
    let actor = entcp::identity::Actor { user_id: Some(dan.id.clone()), name: format!("user:{}", dan.id), bindings };
    let new =
        entcp::identity::NewUser { email: ELU.into(), display_name: "Élu".into(), org: Some(commune.id.clone()) };
    let problem = entcp::identity::invite_user(&app.store, &actor, new, t0()).await.unwrap_err();
    assert_eq!(problem.kind.status().as_u16(), 403, "{}", problem.detail);
    assert!(entcp::identity::get_user(&app.store, ELU).await.unwrap().is_none(), "no account");
    // An administrator invites them.
    let root = sign_in(&app, "root@test.fr").await;
    let invited = post_form(&app, &root, "/utilisateurs", "/utilisateurs", &fields(&commune.id)).await;
    assert_eq!(invited.status, 303, "{}", invited.text);
    let elu = entcp::identity::get_user(&app.store, ELU).await.unwrap().unwrap();
    assert_eq!(elu.org.map(|o| o.id), Some(commune.id.clone()));
    assert_eq!(count_of(&app, MAILS, "%elu@mairie.fr%").await, 1, "their link");
}

// A private school is another legal person, its own controller (its organisme de gestion's):
// the DAN of its académie reads it and its people, but is offered neither the « Retirer » of a
// role held there nor the cut of its head's access, and refused both if it sends them anyway;
// the identity capability refuses the grant whoever calls it. An administrator is offered both.
backend_test!(a_dan_is_not_offered_the_roles_nor_the_access_of_a_private_school_s_people);
async fn a_dan_is_not_offered_the_roles_nor_the_access_of_a_private_school_s_people(db: TestDb) {
    use entcp::identity::{self, UserRole};
    use entcp::kernel::roles::Role;
    let (mut app, a, _) = console(db).await;
    add_person(&mut app, "root@test.fr", Role::Admin, None).await;
    let session = sign_in(&app, "dan.a@test.fr").await;
    // Two schools of the académie: one public, the other made private.
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM orgs WHERE kind = 'etablissement' AND academie_code = $1 \
         AND (sector IS NULL OR sector <> 'prive') ORDER BY id LIMIT 2",
    )
    .bind(&a.code)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let (public, private_id) =
        (entcp::registry::queries::get_org(&app.store, &ids[0]).await.unwrap().unwrap(), &ids[1]);
    sqlx::query("UPDATE orgs SET sector = 'prive' WHERE id = $1")
        .bind(private_id)
        .execute(app.store.pool())
        .await
        .unwrap();
    let private = entcp::registry::queries::get_org(&app.store, private_id).await.unwrap().unwrap();
    // The school's head, also usager at a public school of the académie.
    let new =
        identity::NewUser { email: "chef@prive.fr".into(), display_name: "Chef".into(), org: Some(private.id.clone()) };
    let head = identity::create_user(&app.store, &admin(), new, t0()).await.unwrap();
    for (role, org) in [(Role::ChefEtablissement, &private), (Role::Usager, &public)] {
        identity::grant(&app.store, &admin(), UserRole::new(&head.id, role, Some(org)), t0()).await.unwrap();
    }
    let path = format!("/utilisateurs/{}", head.id);
    let retirer = |org: &Org| format!(r#"<input type="hidden" name="org" value="{}">"#, org.id);
    const CUT: &str = "/acces/revoquer\"";
    let page = console::page_showing(&app, &session, &path, &format!("({})", private.code)).await;
    assert!(!page.text.contains(&retirer(&private)), "no « Retirer » at the private school: {}", page.text);
    assert!(page.text.contains(&retirer(&public)), "« Retirer » at the public school: {}", page.text);
    assert!(!page.text.contains(CUT), "no access cut offered: {}", page.text);
    assert!(page.text.contains("Seul un administrateur peut couper tous les accès"), "{}", page.text);
    // Sent anyway, refused: nothing revoked, granted nor cut.
    const ROLES: &str = "SELECT COUNT(*) AS n FROM role_bindings WHERE user_id = $1";
    let head_role = [("role", "chef_etablissement"), ("org", private.id.as_str())];
    let revoked = console::post_form(&app, &session, &format!("{path}/roles/retirer"), &head_role).await;
    assert_eq!(revoked.status, 403, "{}", revoked.text);
    assert!(revoked.text.contains(&escaped("un rôle dans un établissement privé")), "{}", revoked.text);
    let cut = console::post_form(&app, &session, &format!("{path}/acces/revoquer"), &[]).await;
    assert_eq!(cut.status, 403, "{}", cut.text);
    assert_eq!(count_of(&app, ROLES, &head.id).await, 2, "both roles still held");
    // The public school's role is the DAN's to revoke; the head stays attached to the private
    // school, whose people's access only an administrator cuts.
    let usager = [("role", "usager"), ("org", public.id.as_str())];
    let revoked = console::post_form(&app, &session, &format!("{path}/roles/retirer"), &usager).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    identity::revoke(&app.store, &admin(), UserRole::new(&head.id, Role::ChefEtablissement, Some(&private)), t0())
        .await
        .unwrap();
    let page = console::get(&app, &session, &path).await;
    assert!(!page.text.contains(CUT), "a person of the private school, even role-less: {}", page.text);
    let cut = console::post_form(&app, &session, &format!("{path}/acces/revoquer"), &[]).await;
    assert_eq!(cut.status, 403, "{}", cut.text);
    assert!(cut.text.contains(&escaped("est rattaché à")), "{}", cut.text);
    // The identity capability refuses the DAN's grant there, whoever calls it.
    let dan = identity::get_user(&app.store, "dan.a@test.fr").await.unwrap().unwrap();
    let bindings = identity::bindings_of(&app.store, &dan.id).await.unwrap();
    let actor = identity::Actor { user_id: Some(dan.id.clone()), name: format!("user:{}", dan.id), bindings };
    let wanted = UserRole::new(&head.id, Role::ChefEtablissement, Some(&private));
    let problem = identity::grant(&app.store, &actor, wanted, t0()).await.unwrap_err();
    assert_eq!(problem.kind.status().as_u16(), 403, "{}", problem.detail);
    assert_eq!(count_of(&app, ROLES, &head.id).await, 0, "nothing granted");
    // An administrator is offered both, and does both.
    identity::grant(&app.store, &admin(), wanted, t0()).await.unwrap();
    let root = sign_in(&app, "root@test.fr").await;
    let page = console::page_showing(&app, &root, &path, &format!("({})", private.code)).await;
    assert!(page.text.contains(&retirer(&private)) && page.text.contains(CUT), "{}", page.text);
    let revoked = console::post_form(&app, &root, &format!("{path}/roles/retirer"), &head_role).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    assert_eq!(count_of(&app, ROLES, &head.id).await, 0);
}

backend_test!(no_one_but_an_administrator_changes_their_own_roles);
async fn no_one_but_an_administrator_changes_their_own_roles(db: TestDb) {
    let (mut app, a, _) = console(db).await;
    let session = sign_in(&app, "dan.a@test.fr").await;
    let dan = entcp::identity::get_user(&app.store, "dan.a@test.fr").await.unwrap().unwrap();
    let commune = first_of(&app, OrgKind::Commune, &a).await;
    const ROLES: &str = "SELECT COUNT(*) AS n FROM role_bindings WHERE user_id = $1";
    const OWN: &str = "vous ne pouvez pas modifier vos propres rôles";
    let path = format!("/utilisateurs/{}", dan.id);
    let collectivite = [("role", "collectivite"), ("org", commune.id.as_str())];
    let auditeur_a = [("role", "auditeur"), ("org", a.id.as_str())];
    let granted = post_form(&app, &session, &path, &format!("{path}/roles"), &auditeur_a).await;
    assert_eq!(granted.status, 403, "{}", granted.text);
    assert!(granted.text.contains(OWN), "{}", granted.text);
    let own_dan = [("role", "dan"), ("org", a.id.as_str())];
    let revoked = post_form(&app, &session, &path, &format!("{path}/roles/retirer"), &own_dan).await;
    assert_eq!(revoked.status, 403, "{}", revoked.text);
    assert_eq!(count_of(&app, ROLES, &dan.id).await, 1, "nothing changed");
    // Nor through the API, nor by the identity capability both call.
    let api = app.client(app.token("dan.a@test.fr"));
    let body = serde_json::json!({ "role": "collectivite", "org": commune.id });
    let resp = api.post(format!("/api/v1/users/{}/roles", dan.id)).json(&body).send().await;
    assert_eq!(resp.status, 403, "{}", resp.body);
    let bindings = entcp::identity::bindings_of(&app.store, &dan.id).await.unwrap();
    let actor = entcp::identity::Actor { user_id: Some(dan.id.clone()), name: format!("user:{}", dan.id), bindings };
    let role = entcp::kernel::roles::Role::Collectivite;
    let wanted = entcp::identity::UserRole::new(&dan.id, role, Some(&commune));
    let refused = entcp::identity::grant(&app.store, &actor, wanted, t0()).await.unwrap_err();
    assert_eq!((refused.kind.status().as_u16(), refused.detail.as_str()), (403, OWN));
    assert_eq!(count_of(&app, ROLES, &dan.id).await, 1, "nothing changed");
    // An administrator grants itself a role, and the DAN one, in the console and the API.
    add_person(&mut app, "root@test.fr", entcp::kernel::roles::Role::Admin, None).await;
    let root = entcp::identity::get_user(&app.store, "root@test.fr").await.unwrap().unwrap();
    let root_session = sign_in(&app, "root@test.fr").await;
    let root_path = format!("/utilisateurs/{}", root.id);
    let auditeur = [("role", "auditeur"), ("org", a.id.as_str())];
    let own = post_form(&app, &root_session, &root_path, &format!("{root_path}/roles"), &auditeur).await;
    assert_eq!(own.status, 303, "{}", own.text);
    let theirs = post_form(&app, &root_session, &path, &format!("{path}/roles"), &collectivite).await;
    assert_eq!(theirs.status, 303, "{}", theirs.text);
    let root_api = app.client(app.token("root@test.fr"));
    let body = serde_json::json!({ "role": "dpo", "org": a.id });
    let resp = root_api.post(format!("/api/v1/users/{}/roles", root.id)).json(&body).send().await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(count_of(&app, ROLES, &root.id).await, 3);
    assert_eq!(count_of(&app, ROLES, &dan.id).await, 2);
}

// Inviting an address whose account the DAN may not see (another académie's DAN) answers as an
// invitation to a new address: the console does not tell who has an account elsewhere. An
// address the DAN sees still gets a useful message.
backend_test!(inviting_an_address_with_an_account_out_of_sight_answers_as_a_new_one);
async fn inviting_an_address_with_an_account_out_of_sight_answers_as_a_new_one(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let seen = entcp::identity::NewUser {
        email: "voisin@test.fr".into(),
        display_name: "Voisin".into(),
        org: Some(school.id.clone()),
    };
    entcp::identity::create_user(&app.store, &admin(), seen, t0()).await.unwrap();
    let before = entcp::identity::get_user(&app.store, "dan.b@test.fr").await.unwrap().unwrap();
    let fields =
        |email: &'static str| vec![("email", email), ("display_name", "Agent ENT"), ("org", school.id.as_str())];
    let new = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields("nouveau@ecole.fr")).await;
    let hidden = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields("dan.b@test.fr")).await;
    assert_eq!(new.status, 303, "{}", new.text);
    assert_eq!((hidden.status, hidden.header("location")), (new.status, new.header("location")), "{}", hidden.text);
    assert_eq!(hidden.text, new.text);
    let page = console::follow(&app, &session, &hidden).await;
    assert!(page.text.contains(&escaped("L'invitation est envoyée")), "{}", page.text);
    assert!(!page.text.contains("dan.b@test.fr"), "{}", page.text);
    // The other académie's account is untouched, and no mail went to it.
    let other = entcp::identity::get_user(&app.store, "dan.b@test.fr").await.unwrap().unwrap();
    assert_eq!((other.version, other.org.map(|o| o.id)), (before.version, before.org.map(|o| o.id)));
    let mails = count_of(&app, "SELECT COUNT(*) AS n FROM outbox WHERE recipients LIKE $1", "%dan.b@test.fr%").await;
    assert_eq!(mails, 0);
    let seen = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields("voisin@test.fr")).await;
    assert_eq!(seen.status, 422, "{}", seen.text);
    assert!(seen.text.contains(&escaped("un utilisateur a déjà l'adresse voisin@test.fr")), "{}", seen.text);
}

/// `page` with the request id an error page shows (one per request) written `REQUÊTE`.
fn without_request_id(page: &str) -> String {
    const BEFORE: &str = "à indiquer au support : <code>";
    match page.split_once(BEFORE) {
        Some((head, tail)) => format!("{head}{BEFORE}REQUÊTE{}", &tail[tail.find("</code>").unwrap_or(0)..]),
        None => page.to_string(),
    }
}

/// What the DAN of `session` (and of the API client `api`) sees of an invitation of `email` at
/// `org`: its answer, the page that leads to, a second invitation's answer, the list searched
/// for the address, the page of the address's account by id, the API's list of users and its
/// lookup by address; the address and the account's id written `ADRESSE` and `ID`.
async fn seen_of_invitation(
    app: &TestApp,
    session: &str,
    api: &common::app::Client,
    org: &str,
    email: &str,
) -> Vec<(u16, Option<String>, String)> {
    let fields = [("email", email), ("display_name", "Agent ENT"), ("org", org)];
    let first = post_form(app, session, "/utilisateurs", "/utilisateurs", &fields).await;
    let id = entcp::identity::get_user(&app.store, email).await.unwrap().expect("an account").id;
    let page = console::follow(app, session, &first).await;
    let again = post_form(app, session, "/utilisateurs", "/utilisateurs", &fields).await;
    let search = console::get(app, session, &format!("/utilisateurs?q={email}")).await;
    let by_id = console::get(app, session, &format!("/utilisateurs/{id}")).await;
    let listed = api.get("/api/v1/users?limit=500").send().await;
    let looked_up = api.get(format!("/api/v1/users/{email}")).send().await;
    [first, page, again, search, by_id, listed, looked_up]
        .into_iter()
        .map(|r| {
            let location = r.header("location").map(str::to_string);
            let text = r.text.replace(email, "ADRESSE").replace(&email.replace('@', "%40"), "ADRESSE");
            (r.status, location, without_request_id(&text.replace(&id, "ID")))
        })
        .collect()
}

// Whether the address of an invitation already had an account elsewhere is nothing the
// inviting DAN may learn: a new address and that of an account in another académie give it
// byte-identical answers (address and id aside), in the console and the API, until the invitee
// acts: the account is pending, shown to administrators only, until its link is used. Then the
// DAN sees it, and the other académie's account stays out of its sight.
backend_test!(an_invitation_answers_the_dan_alike_whether_the_address_was_new_or_had_an_account_elsewhere);
async fn an_invitation_answers_the_dan_alike_whether_the_address_was_new_or_had_an_account_elsewhere(db: TestDb) {
    let (mut app, a, b) = console(db).await;
    add_person(&mut app, "root@test.fr", entcp::kernel::roles::Role::Admin, None).await;
    let session = sign_in(&app, "dan.a@test.fr").await;
    let api = app.client(app.token("dan.a@test.fr"));
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    const NEW: &str = "nouveau@ecole.fr";
    const ELSEWHERE: &str = "dan.b@test.fr";
    let elsewhere = entcp::identity::get_user(&app.store, ELSEWHERE).await.unwrap().unwrap();
    let new_seen = seen_of_invitation(&app, &session, &api, &school.id, NEW).await;
    let elsewhere_seen = seen_of_invitation(&app, &session, &api, &school.id, ELSEWHERE).await;
    let labels = ["invitation", "page after it", "second invitation", "search", "user page", "API list", "API lookup"];
    for ((label, new), other) in labels.iter().zip(&new_seen).zip(&elsewhere_seen) {
        assert_eq!(new, other, "{label}");
    }
    assert_eq!((new_seen[0].0, new_seen[0].1.as_deref()), (303, Some("/utilisateurs?apres=invitation")));
    assert!(new_seen[1].2.contains(&escaped("L'invitation est envoyée")), "{}", new_seen[1].2);
    assert_eq!((new_seen[4].0, new_seen[6].0), (404, 404), "no page, no lookup: {}", new_seen[6].2);
    assert!(new_seen[3].2.contains("Utilisateurs — 0 résultat</caption>"), "found by no search: {}", new_seen[3].2);
    assert!(!new_seen[5].2.contains("ADRESSE"), "not listed: {}", new_seen[5].2);
    let new_user = entcp::identity::get_user(&app.store, NEW).await.unwrap().unwrap();
    assert!(new_user.roles.is_empty() && entcp::identity::is_pending(&app.store, &new_user.id).await.unwrap());
    // The new address got its link, and a new one at the second invitation; the other none.
    let mails = common::queued_mails(&app.store, "console").await;
    let to = |email: &str| mails.iter().filter(|m| m.recipients.contains(email)).count();
    assert_eq!((to(NEW), to(ELSEWHERE)), (2, 0));
    // The DAN of another académie inviting the address pending in A gets the answer of any
    // invitation, and no link goes out in its name.
    let dan_b = sign_in(&app, "dan.b@test.fr").await;
    let far = first_of(&app, OrgKind::Etablissement, &b).await;
    let fields = [("email", NEW), ("display_name", "Agent ENT"), ("org", far.id.as_str())];
    let from_b = post_form(&app, &dan_b, "/utilisateurs", "/utilisateurs", &fields).await;
    assert_eq!((from_b.status, from_b.header("location")), (303, Some("/utilisateurs?apres=invitation")));
    let after_b = common::queued_mails(&app.store, "console").await;
    assert_eq!(after_b.iter().filter(|m| m.recipients.contains(NEW)).count(), 2, "no link sent by the DAN of B");
    let other = entcp::identity::get_user(&app.store, ELSEWHERE).await.unwrap().unwrap();
    assert_eq!((other.version, other.org.map(|o| o.id)), (elsewhere.version, elsewhere.org.map(|o| o.id)));
    // An administrator sees the pending account, as before.
    let root = sign_in(&app, "root@test.fr").await;
    let listed = console::get(&app, &root, &format!("/utilisateurs?q={NEW}")).await;
    assert!(listed.text.contains(&escaped(&format!("/utilisateurs/{}", new_user.id))), "{}", listed.text);
    let page = console::get(&app, &root, &format!("/utilisateurs/{}", new_user.id)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    // The invitee chooses a password through the last link: the DAN now sees the account.
    let mail = mails.iter().rev().find(|m| m.recipients.contains(NEW)).unwrap();
    let link = mail.context["link"].as_str().unwrap();
    let path = &link[link.find("/mot-de-passe/").unwrap()..];
    let chosen = [("password", PASSWORD), ("confirmation", PASSWORD)];
    let set = console::post_anonymous(&app, path, &chosen).await;
    assert_eq!(set.status, 303, "{}", set.text);
    assert!(!entcp::identity::is_pending(&app.store, &new_user.id).await.unwrap());
    let page = console::get(&app, &session, &format!("/utilisateurs/{}", new_user.id)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let search = console::get(&app, &session, &format!("/utilisateurs?q={NEW}")).await;
    assert!(search.text.contains(&escaped(&format!("/utilisateurs/{}", new_user.id))), "{}", search.text);
    assert_eq!(api.get(format!("/api/v1/users/{NEW}")).send().await.status, 200);
    assert_eq!(api.get(format!("/api/v1/users/{ELSEWHERE}")).send().await.status, 404);
}

// The audit log follows the users list: an auditeur or a DPO of the invitee's académie reads
// nothing about a pending invitee (their creation with address and name, a role granted them,
// a token made for them), as the list hides them, until the invitee acts; then the auditeur
// reads it (the token's record stays its owner's), the DPO, who reads no account, still not,
// and an auditeur of another académie never does. An administrator reads it all along.
backend_test!(the_audit_log_hides_a_pending_invitee_from_scoped_readers_until_they_act);
async fn the_audit_log_hides_a_pending_invitee_from_scoped_readers_until_they_act(db: TestDb) {
    use entcp::kernel::roles::Role;
    let (mut app, a, b) = console(db).await;
    app.add_user("root@test.fr", Role::Admin, None).await;
    app.add_user("auditeur.a@test.fr", Role::Auditeur, Some(&a.id)).await;
    app.add_user("dpo.a@test.fr", Role::Dpo, Some(&a.id)).await;
    app.add_user("auditeur.b@test.fr", Role::Auditeur, Some(&b.id)).await;
    let session = sign_in(&app, "dan.a@test.fr").await;
    let commune = first_of(&app, OrgKind::Commune, &a).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    const NEW: &str = "invite@ecole.fr";
    let fields = [("email", NEW), ("display_name", "Agent invité"), ("org", school.id.as_str())];
    let invited = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields).await;
    assert_eq!(invited.status, 303, "{}", invited.text);
    let user = entcp::identity::get_user(&app.store, NEW).await.unwrap().unwrap();
    let role = entcp::identity::UserRole::new(&user.id, Role::Collectivite, Some(&commune));
    entcp::identity::grant(&app.store, &admin(), role, t0()).await.unwrap();
    // A token an administrator made them: its record names their address.
    entcp::identity::create_token(&app.store, &admin(), &user.id, "script", None, t0()).await.unwrap();
    // What each reader finds about the invitee: the actions of the records naming them, and
    // whether the address shows anywhere in the log.
    let read = async |who: &str| {
        let api = app.client(app.token(who));
        let about = api.get(format!("/api/v1/audit?target_id={}&limit=500", user.id)).send().await;
        assert_eq!(about.status, 200, "{who}: {}", about.text);
        let body: serde_json::Value = serde_json::from_str(&about.text).unwrap();
        let mut actions: Vec<String> =
            body["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap().to_string()).collect();
        actions.sort();
        let all = api.get("/api/v1/audit?limit=500").send().await;
        assert_eq!(all.status, 200, "{who}: {}", all.text);
        (actions, all.text.contains(NEW))
    };
    let created = || vec!["roles.grant".to_string(), "users.create".to_string()];
    let (actions, address) = read("root@test.fr").await;
    assert!(created().iter().all(|a| actions.contains(a)) && address, "an administrator reads it: {actions:?}");
    for who in ["auditeur.a@test.fr", "dpo.a@test.fr", "auditeur.b@test.fr"] {
        assert_eq!(read(who).await, (vec![], false), "{who}: nothing about a pending invitee");
    }
    // The invitee signs in: they have acted, and the readers of their académie see them.
    console::with_password(&app.store, NEW).await;
    sign_in(&app, NEW).await;
    assert!(!entcp::identity::is_pending(&app.store, &user.id).await.unwrap());
    let (actions, address) = read("auditeur.a@test.fr").await;
    assert!(created().iter().all(|a| actions.contains(a)) && address, "auditeur.a: {actions:?}");
    // A DPO reads no account (`users.read`), nor then their records (`identity::readers`).
    assert_eq!(read("dpo.a@test.fr").await, (vec![], false), "a DPO reads no account");
    assert_eq!(read("auditeur.b@test.fr").await, (vec![], false), "out of the other académie's scope");
}

backend_test!(a_dan_invites_a_user_by_mail_and_cuts_their_access);
async fn a_dan_invites_a_user_by_mail_and_cuts_their_access(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let far = first_of(&app, OrgKind::Etablissement, &b).await;
    fn fields(org: &str) -> Vec<(&str, &str)> {
        vec![("email", "agent@ecole.fr"), ("display_name", "Agent ENT"), ("org", org)]
    }
    let refused = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields(&far.id)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains(r#"value="agent@ecole.fr""#), "what was typed is kept");
    assert!(entcp::identity::get_user(&app.store, "agent@ecole.fr").await.unwrap().is_none());
    let invited = post_form(&app, &session, "/utilisateurs", "/utilisateurs", &fields(&school.id)).await;
    assert_eq!(invited.status, 303, "{}", invited.text);
    let user = entcp::identity::get_user(&app.store, "agent@ecole.fr").await.unwrap().unwrap();
    assert!(user.roles.is_empty(), "invited without any role");
    let mails = common::count(
        &app.store,
        "SELECT COUNT(*) AS n FROM outbox WHERE template = 'console' AND recipients LIKE $1 AND context LIKE $2",
        &["%agent@ecole.fr%", "%invitation%"],
    )
    .await;
    assert_eq!(mails, 1, "the set-up link goes through the outbox");
    let context: String = sqlx::query_scalar("SELECT context FROM outbox WHERE template = 'console'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let mail = entcp::notify::mailer::render("console", &serde_json::from_str(&context).unwrap()).unwrap();
    assert_eq!(mail.subject.trim(), "Votre compte sur la console ENT");
    assert!(mail.text.contains("vous a créé un compte") && mail.text.contains("/mot-de-passe/"), "{}", mail.text);
    // Cutting access ends the user's sessions and API tokens, and spends their password links
    // (a link left in a mailbox would let them choose a password and sign in again).
    with_password(&app.store, "agent@ecole.fr").await;
    let theirs = sign_in(&app, "agent@ecole.fr").await;
    let token = entcp::identity::create_token(&app.store, &admin(), &user.id, "script", None, t0()).await.unwrap();
    let mut tx = app.store.begin_write().await.unwrap();
    let purpose = entcp::identity::password::LinkPurpose::Reset;
    let link = entcp::identity::password::issue_link(&mut tx, &user.id, purpose, chrono::Duration::minutes(30), t0());
    let link = link.await.unwrap();
    tx.commit().await.unwrap();
    assert!(entcp::identity::password::link_user(&app.store, &link, t0()).await.unwrap().is_some());
    let path = format!("/utilisateurs/{}", user.id);
    let cut = post_form(&app, &session, &path, &format!("{path}/acces/revoquer"), &[]).await;
    assert_eq!(cut.status, 303, "{}", cut.text);
    assert_eq!(app.get("/compte").header("cookie", &theirs).send().await.status, 303, "signed out");
    let info = entcp::identity::get_token(&app.store, &token.info.id).await.unwrap().unwrap();
    assert!(info.revoked_at.is_some());
    assert_eq!(common::audited(&app.store, "tokens.revoke").await, 1);
    assert!(entcp::identity::password::link_user(&app.store, &link, t0()).await.unwrap().is_none(), "link spent");
    assert_eq!(common::audited(&app.store, "users.links_spent").await, 1);
}

// A DAN cuts the access of users of its académie only when every role they hold lies
// within its scope: an agent who also works for another académie keeps their sessions.
backend_test!(a_dan_cannot_cut_the_access_of_a_user_holding_a_role_beyond_its_scope);
async fn a_dan_cannot_cut_the_access_of_a_user_holding_a_role_beyond_its_scope(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let far = first_of(&app, OrgKind::Etablissement, &b).await;
    let new = entcp::identity::NewUser {
        email: "double@test.fr".into(),
        display_name: "Agent double".into(),
        org: Some(school.id.clone()),
    };
    let agent = entcp::identity::create_user(&app.store, &admin(), new, t0()).await.unwrap();
    fn role<'a>(user: &'a str, org: &'a Org) -> entcp::identity::UserRole<'a> {
        entcp::identity::UserRole::new(user, entcp::kernel::roles::Role::ChefEtablissement, Some(org))
    }
    entcp::identity::grant(&app.store, &admin(), role(&agent.id, &school), t0()).await.unwrap();
    entcp::identity::grant(&app.store, &admin(), role(&agent.id, &far), t0()).await.unwrap();
    with_password(&app.store, "double@test.fr").await;
    let theirs = sign_in(&app, "double@test.fr").await;
    let path = format!("/utilisateurs/{}", agent.id);
    let cut = post_form(&app, &session, &path, &format!("{path}/acces/revoquer"), &[]).await;
    assert_eq!(cut.status, 403, "{}", cut.text);
    assert!(cut.text.contains("seul un administrateur peut couper tous ses accès"), "{}", cut.text);
    assert_eq!(app.get("/compte").header("cookie", &theirs).send().await.status, 200, "still signed in");
    // Once the role elsewhere is gone, the DAN may.
    entcp::identity::revoke(&app.store, &admin(), role(&agent.id, &far), t0()).await.unwrap();
    let cut = post_form(&app, &session, &path, &format!("{path}/acces/revoquer"), &[]).await;
    assert_eq!(cut.status, 303, "{}", cut.text);
    assert_eq!(app.get("/compte").header("cookie", &theirs).send().await.status, 303, "signed out");
}

/// Names the organisation `id` `name` (and its folded sort name), as an import would.
async fn rename(app: &TestApp, id: &str, name: &str) {
    sqlx::query("UPDATE orgs SET name = $1, sort_name = $2 WHERE id = $3")
        .bind(name)
        .bind(entcp::text::fold(name))
        .bind(id)
        .execute(app.store.pool())
        .await
        .unwrap();
}

// A DAN types a school's name as addresses abbreviate it, « St » for « Saint », or the
// other way round, in any case and without accents: the school is found, in scope only.
backend_test!(the_organisation_search_reads_st_as_saint_and_saint_as_st);
async fn the_organisation_search_reads_st_as_saint_and_saint_as_st(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let college = first_of(&app, OrgKind::Etablissement, &b).await;
    rename(&app, &school.id, "École élémentaire Saint-Exupéry").await;
    rename(&app, &college.id, "Collège Saint-Exupéry").await;
    for q in ["st+exupery", "ST-EXUP%C3%89RY", "saint+exupery"] {
        let found = app.get(&format!("/organisations?q={q}")).header("cookie", &session).send().await;
        assert!(found.text.contains("Organisations — 1 résultat</caption>"), "{q}: {}", found.text);
        assert!(found.text.contains(&escaped("École élémentaire Saint-Exupéry")), "{q}");
    }
    rename(&app, &school.id, "Ecole privée Ste Marie").await;
    let found = app.get("/organisations?q=sainte-marie").header("cookie", &session).send().await;
    assert!(found.text.contains("Organisations — 1 résultat</caption>"), "{}", found.text);
    assert!(found.text.contains("Ecole privée Ste Marie"), "{}", found.text);
}

// A DAN looks a colleague up by name as it comes to the keyboard: without accents, in capitals,
// a hyphen typed as a space; the address shares nothing with the name. In scope only.
backend_test!(the_user_search_finds_a_name_whatever_its_accents_case_and_hyphens);
async fn the_user_search_finds_a_name_whatever_its_accents_case_and_hyphens(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    for (email, name, academie) in [("hl@test.fr", "Hélène Lefèvre-Dupré", &a), ("loin@test.fr", "Hélène Éloïse", &b)]
    {
        let school = first_of(&app, OrgKind::Etablissement, academie).await;
        let new = entcp::identity::NewUser { email: email.into(), display_name: name.into(), org: Some(school.id) };
        entcp::identity::create_user(&app.store, &admin(), new, t0()).await.unwrap();
    }
    for q in ["helene", "H%C3%89L%C3%88NE+LEFEVRE", "lefevre+dupre", "Lef%C3%A8vre-Dupr%C3%A9"] {
        let list = app.get(&format!("/utilisateurs?q={q}")).header("cookie", &session).send().await;
        assert_eq!(list.status, 200, "{q}: {}", list.text);
        assert!(list.text.contains("hl@test.fr"), "{q}: {}", list.text);
        assert!(!list.text.contains("loin@test.fr"), "{q}: another académie's user is not listed");
    }
    let nobody = app.get("/utilisateurs?q=eloise").header("cookie", &session).send().await;
    assert!(!nobody.text.contains("hl@test.fr") && !nobody.text.contains("loin@test.fr"), "{}", nobody.text);
}

// The invitee stays out of the DAN's sight until they act, so the role is chosen with the
// invitation (checked as a grant is: no administrator role from a DAN); an invitee given none
// reads on the welcome page who invited them, the person to ask.
backend_test!(a_dan_invites_a_school_head_with_their_role_and_an_invitee_without_one_is_told_whom_to_ask);
async fn a_dan_invites_a_school_head_with_their_role_and_an_invitee_without_one_is_told_whom_to_ask(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    let school = first_of(&app, OrgKind::Etablissement, &a).await;
    let form = console::get(&app, &session, "/utilisateurs").await;
    assert!(form.text.contains(r#"<select class="fr-select" id="invitation-role" name="role">"#), "{}", form.text);
    assert!(!form.text.contains("Accordez-lui ensuite ses rôles depuis sa page"), "{}", form.text);
    let invite = |email: &'static str, role: &'static str| {
        let fields =
            [("email", email), ("display_name", "Mme Directrice"), ("org", school.id.as_str()), ("role", role)];
        let session = session.clone();
        let app = &app;
        async move { post_form(app, &session, "/utilisateurs", "/utilisateurs", &fields).await }
    };
    let refused = invite("autre@ecole.fr", "admin").await;
    assert_eq!(refused.status, 403, "{}: {}", app.backend, refused.text);
    assert!(refused.text.contains("seul un administrateur accorde"), "{}", refused.text);
    assert!(refused.text.contains(r#"aria-describedby="invitation-role-erreur""#), "{}", refused.text);
    assert!(entcp::identity::get_user(&app.store, "autre@ecole.fr").await.unwrap().is_none(), "nothing created");
    // A role that is not exercised at a school is refused on its field, the form kept, before
    // any account is created.
    let misplaced = invite("dan@ecole.fr", "dan").await;
    assert_eq!(misplaced.status, 422, "{}: {}", app.backend, misplaced.text);
    assert!(misplaced.text.contains(r#"aria-describedby="invitation-role-erreur""#), "{}", misplaced.text);
    assert!(misplaced.text.contains("value=\"dan@ecole.fr\""), "the input is kept: {}", misplaced.text);
    assert!(entcp::identity::get_user(&app.store, "dan@ecole.fr").await.unwrap().is_none(), "nothing created");

    let invited = invite("directrice@ecole.fr", "chef_etablissement").await;
    assert_eq!(invited.status, 303, "{}: {}", app.backend, invited.text);
    let head = entcp::identity::get_user(&app.store, "directrice@ecole.fr").await.unwrap().unwrap();
    let roles: Vec<_> = head.roles.iter().map(|r| (r.role, r.org.as_ref().map(|o| o.id.clone()))).collect();
    assert_eq!(roles, [(entcp::kernel::roles::Role::ChefEtablissement, Some(school.id.clone()))], "{}", app.backend);
    assert!(entcp::identity::is_pending(&app.store, &head.id).await.unwrap(), "still pending until they act");

    let bare = invite("sans.role@ecole.fr", "").await;
    assert_eq!(bare.status, 303, "{}: {}", app.backend, bare.text);
    console::with_password(&app.store, "sans.role@ecole.fr").await;
    let theirs = sign_in(&app, "sans.role@ecole.fr").await;
    let home = console::get(&app, &theirs, "/").await;
    assert_eq!(home.status, 200, "{}: their own home page, role or not: {}", app.backend, home.text);
    assert!(home.text.contains("(dan.a@test.fr), qui vous a invité(e)."), "{}: {}", app.backend, home.text);
    // Their account, not the others' pages.
    assert_eq!(console::get(&app, &theirs, "/compte").await.status, 200, "{}", app.backend);
    assert_eq!(console::get(&app, &theirs, "/utilisateurs").await.status, 403, "{}", app.backend);
}

backend_test!(an_organisation_page_says_de_before_its_name_with_the_elision);
/// The captions of an académie's page read « Codes et rattachements de l'académie de … » (its
/// designation, the article elided), never « de Académie », and the synthetic annuaire names no
/// school « … de » a vowel.
async fn an_organisation_page_says_de_before_its_name_with_the_elision(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    assert!(a.name.starts_with("Académie"), "{}", a.name);
    let page = console::get(&app, &session, &format!("/organisations/{}", a.id)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let of = entcp::naming::of_org(OrgKind::Academie, &a.name).of;
    assert!(of.starts_with("de l'académie de "), "{of}");
    let caption = format!("<caption>Codes et rattachements {}</caption>", escaped(&of));
    assert!(page.text.contains(&caption), "{caption} in {}", page.text);
    assert!(!page.text.contains("rattachements de Acad"), "{}", page.text);
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM orgs WHERE kind = 'etablissement'")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let unelided = names.iter().find(|n| n.split(" de ").skip(1).any(entcp::naming::elides));
    assert_eq!(unelided, None, "a school « de » a vowel");
}
