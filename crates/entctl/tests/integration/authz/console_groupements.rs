//! Authorisation cases of the console's groupement screens (coordinator, members, library).
//! The target is an awarded groupement coordinated by the EPCI of the side (its commune a
//! member, the other commune an applicant), a CCTP of it — and a version of every other piece,
//! which the piece pages go through as well —, and the member's application and share.

use super::console::Page;
use super::groupements::{pieces, GROUPEMENT_APPLICANTS, GROUPEMENT_MANAGERS, GROUPEMENT_READERS};
use super::*;
use entcp::groupements::documents::Kind;

pub(super) const PAGES: &[Page] = &[
    ("GET", "/groupements", Some(GROUPEMENT_READERS)),
    ("GET", "/groupements/nouveau", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/nouveau", Some(GROUPEMENT_MANAGERS)),
    ("GET", "/groupements/{groupement}", Some(GROUPEMENT_READERS)),
    ("POST", "/groupements/{groupement}/decisions", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/statut", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/attribution", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/sans-suite", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/date-limite-offres", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/documents", Some(GROUPEMENT_MANAGERS)),
    ("GET", "/groupements/{groupement}/documents/{piece}", Some(GROUPEMENT_READERS)),
    ("GET", "/groupements/{groupement}/decp", Some(GROUPEMENT_READERS)),
    ("POST", "/groupements/{groupement}/decp/publication", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/documents/{piece}/partage", Some(GROUPEMENT_MANAGERS)),
    ("GET", "/groupements/{groupement}/candidature", Some(GROUPEMENT_APPLICANTS)),
    ("POST", "/groupements/{groupement}/candidature", Some(GROUPEMENT_APPLICANTS)),
    ("POST", "/groupements/{groupement}/candidatures/{candidature}/retrait", Some(GROUPEMENT_APPLICANTS)),
    ("GET", "/groupements/{groupement}/candidatures/{candidature}/modifier", Some(GROUPEMENT_APPLICANTS)),
    ("POST", "/groupements/{groupement}/candidatures/{candidature}/modifier", Some(GROUPEMENT_APPLICANTS)),
    ("GET", "/groupements/{groupement}/quotes-parts/{membre}", Some(GROUPEMENT_READERS)),
    ("GET", "/bibliotheque", Some(&[Admin, Dan, Coordinateur])),
];

/// The placeholders of the pages above and their values in and out of scope, and the version of
/// every piece ([`pieces`]) of the two groupements in and out of scope (the CCTP's is `{piece}`).
pub(super) async fn targets(world: &World) -> (Vec<(&'static str, [String; 2])>, Vec<(Kind, [String; 2])>) {
    let mut values: [Vec<String>; 4] = Default::default();
    let mut versions: Vec<(Kind, Vec<String>)> = pieces().map(|kind| (kind, Vec::new())).collect();
    for (side, member) in [(Side::In, &world.commune_in), (Side::Out, &world.commune_out)] {
        let (g, mine, _) = world.groupement(side, "awarded").await;
        for (kind, ids) in &mut versions {
            ids.push(world.groupement_document_of(&g, *kind).await);
        }
        values[1].push(world.groupement_document(&g).await);
        values[0].push(g.reference);
        values[2].push(mine);
        values[3].push(member.id.clone());
    }
    let [groupement, piece, candidature, membre] = values.map(|v| <[String; 2]>::try_from(v).unwrap());
    let versions = versions.into_iter().map(|(kind, ids)| (kind, <[String; 2]>::try_from(ids).unwrap())).collect();
    let placeholders =
        vec![("{groupement}", groupement), ("{piece}", piece), ("{candidature}", candidature), ("{membre}", membre)];
    (placeholders, versions)
}

/// The variants of a page the piece matrix sends, each `(piece, form field)`: a page of a
/// version (`{piece}`) once per piece, its version put in; the generation form once as the
/// matrix sends it (no `type`) and once per piece (`type=<piece>`); any other page once as it is.
pub(super) fn piece_variants(method: &str, path: &str) -> Vec<(Option<Kind>, String)> {
    if path.contains("{piece}") {
        return pieces().map(|kind| (Some(kind), String::new())).collect();
    }
    if (method, path) == ("POST", "/groupements/{groupement}/documents") {
        let typed = pieces().map(|kind| (Some(kind), format!("&type={}", kind.as_str())));
        return std::iter::once((None, String::new())).chain(typed).collect();
    }
    vec![(None, String::new())]
}

/// What the generation form answers, a piece's `type` given, a role that the form without it
/// answers `without`: its checks passed, the coordinator is sent back to the groupement (303);
/// a refusal of the role or the scope is the same.
pub(super) fn with_type_expected(without: u16) -> u16 {
    if without == 422 {
        303
    } else {
        without
    }
}

/// What a page above answers a role it allows; `None` for the general rule of `console.rs`.
/// The forms are posted without their fields: refused by the domain's checks (422), or
/// 409 where the awarded groupement's state comes first (award, application, withdrawal).
pub(super) async fn expected(_world: &World, method: &str, path: &str, role: Role, side: Side) -> Option<u16> {
    // The coordinator of the groupement (its EPCI's), a member (its commune), or an admin.
    let coordinator = role == Admin || (role == Coordinateur && side == Side::In);
    let member = coordinator || (role == Collectivite && side == Side::In);
    let refused_unless = |allowed: bool, status: u16| if allowed { status } else { 403 };
    let hidden_unless = |allowed: bool| if allowed { 200 } else { 404 };
    if !path.starts_with("/groupements") {
        return None;
    }
    Some(match (method, path) {
        ("POST", "/groupements/nouveau") => 422,
        ("POST", "/groupements/{groupement}/attribution") => refused_unless(coordinator, 409),
        ("POST", "/groupements/{groupement}/candidature") => {
            if role == Admin {
                422
            } else {
                409
            }
        }
        // Another collectivité's application is not revealed, as in the API.
        ("POST", "/groupements/{groupement}/candidatures/{candidature}/retrait") => {
            if member {
                409
            } else {
                404
            }
        }
        // The form of its own application (the version absent from the posted form: 422);
        // another collectivité's is not revealed.
        ("GET", "/groupements/{groupement}/candidatures/{candidature}/modifier") => hidden_unless(member),
        ("POST", "/groupements/{groupement}/candidatures/{candidature}/modifier") => {
            if member {
                422
            } else {
                404
            }
        }
        // Published already (by the fixture): publishing again keeps the first date.
        ("POST", "/groupements/{groupement}/decp/publication") => refused_unless(coordinator, 303),
        ("POST", _) => refused_unless(coordinator, 422),
        // The groupement is read by every reader: its members' parts and its documents are
        // refused, not hidden.
        ("GET", "/groupements/{groupement}/documents/{piece}") => refused_unless(member, 200),
        ("GET", "/groupements/{groupement}/quotes-parts/{membre}") => refused_unless(member, 200),
        _ => return None,
    })
}
