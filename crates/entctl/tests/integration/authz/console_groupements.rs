//! Authorisation cases of the console's groupement screens (coordinator, members, library).
//! The target is an awarded groupement coordinated by the EPCI of the side (its commune a
//! member, the other commune an applicant), a CCTP of it, and the member's application and share.

use super::console::Page;
use super::groupements::{GROUPEMENT_APPLICANTS, GROUPEMENT_MANAGERS, GROUPEMENT_READERS};
use super::*;

pub(super) const PAGES: &[Page] = &[
    ("GET", "/groupements", Some(GROUPEMENT_READERS)),
    ("GET", "/groupements/nouveau", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/nouveau", Some(GROUPEMENT_MANAGERS)),
    ("GET", "/groupements/{groupement}", Some(GROUPEMENT_READERS)),
    ("POST", "/groupements/{groupement}/decisions", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/statut", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/attribution", Some(GROUPEMENT_MANAGERS)),
    ("POST", "/groupements/{groupement}/documents", Some(GROUPEMENT_MANAGERS)),
    ("GET", "/groupements/{groupement}/documents/{piece}", Some(GROUPEMENT_READERS)),
    ("POST", "/groupements/{groupement}/documents/{piece}/partage", Some(GROUPEMENT_MANAGERS)),
    ("GET", "/groupements/{groupement}/candidature", Some(GROUPEMENT_APPLICANTS)),
    ("POST", "/groupements/{groupement}/candidature", Some(GROUPEMENT_APPLICANTS)),
    ("POST", "/groupements/{groupement}/candidatures/{candidature}/retrait", Some(GROUPEMENT_APPLICANTS)),
    ("GET", "/groupements/{groupement}/candidatures/{candidature}/modifier", Some(GROUPEMENT_APPLICANTS)),
    ("POST", "/groupements/{groupement}/candidatures/{candidature}/modifier", Some(GROUPEMENT_APPLICANTS)),
    ("GET", "/groupements/{groupement}/quotes-parts/{membre}", Some(GROUPEMENT_READERS)),
    ("GET", "/bibliotheque", Some(&[Admin, Dan, Coordinateur])),
];

/// The placeholders of the pages above and their values in and out of scope.
pub(super) async fn targets(world: &World) -> Vec<(&'static str, [String; 2])> {
    let mut values: [Vec<String>; 4] = Default::default();
    for (side, member) in [(Side::In, &world.commune_in), (Side::Out, &world.commune_out)] {
        let (g, mine, _) = world.groupement(side, "awarded").await;
        values[1].push(world.groupement_document(&g).await);
        values[0].push(g.reference);
        values[2].push(mine);
        values[3].push(member.id.clone());
    }
    let [groupement, piece, candidature, membre] = values.map(|v| <[String; 2]>::try_from(v).unwrap());
    vec![("{groupement}", groupement), ("{piece}", piece), ("{candidature}", candidature), ("{membre}", membre)]
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
        ("POST", _) => refused_unless(coordinator, 422),
        ("GET", "/groupements/{groupement}/documents/{piece}") => hidden_unless(member),
        // The groupement is read by every reader: its members' parts are refused, not hidden.
        ("GET", "/groupements/{groupement}/quotes-parts/{membre}") => refused_unless(member, 200),
        _ => return None,
    })
}
