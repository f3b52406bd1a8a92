//! Authorisation cases of the console's account, notification and support report screens.

use super::console::Page;
use super::support_desk::SUPPORT_READERS;
use super::*;

const REPORTERS: &[Role] = &[Admin, SupportN1, SupportN2, SupportN3];

pub(super) const PAGES: &[Page] = &[
    ("GET", "/tickets/{ticket}/pieces-jointes/{fichier}", Some(SUPPORT_READERS)),
    ("GET", "/tickets/rapports", Some(REPORTERS)),
    ("GET", "/tickets/rapports/csv", Some(REPORTERS)),
    ("GET", "/notifications", Some(EVERYONE)),
    ("GET", "/notifications/compte", Some(EVERYONE)),
    ("GET", "/compte/identite", Some(EVERYONE)),
    ("POST", "/compte/jetons", Some(EVERYONE)),
    ("POST", "/compte/jetons/{jeton_api}/revoquer", Some(EVERYONE)),
    ("POST", "/compte/courriels", Some(EVERYONE)),
];

/// The in-scope `{jeton_api}` until [`for_role`] puts there a token of the role's own.
const OWN_TOKEN: &str = "jeton-du-role";

/// The placeholders of the pages above and their values in and out of scope: a public
/// file joined by an administrator to each ticket of `console.rs` (the one escalated
/// to the vendor, in scope; the one left at N1, out of scope).
pub(super) async fn targets(world: &World) -> Vec<(&'static str, [String; 2])> {
    let piece_on = |level: &'static str| async move {
        use entcp::support::attachments::{self, Upload};
        use entcp::support::tickets::Ctx;
        let tickets: Vec<String> = sqlx::query_scalar("SELECT id FROM support_tickets WHERE level = $1")
            .bind(level)
            .fetch_all(world.store.pool())
            .await
            .unwrap();
        assert_eq!(tickets.len(), 1, "one ticket at {level}");
        let state = world.state.clone();
        let png = Upload { name: "capture.png".into(), bytes: b"\x89PNG\r\n\x1a\n..".to_vec() };
        let file = attachments::check("pieces", png).unwrap();
        // A public file, joined by whom writes to the requester: the N1 when the ticket is above it.
        let by = if level == "n1" { admin() } else { world.actor_of(SupportN1).await };
        let ctx = Ctx { state: &state.support(), actor: &by, now: t0() };
        attachments::attach(&ctx, &tickets[0], true, vec![file]).await.unwrap().remove(0).id
    };
    let jeton = [OWN_TOKEN.to_string(), token_of(world, &world.user_out).await];
    vec![("{fichier}", [piece_on("n3").await, piece_on("n1").await]), ("{jeton_api}", jeton)]
}

/// A new API token of `user` (an id or an e-mail).
async fn token_of(world: &World, user: &str) -> String {
    let user = identity::get_user(&world.store, user).await.unwrap().unwrap();
    identity::create_token(&world.store, &admin(), &user.id, "matrice", None, t0()).await.unwrap().info.id
}

/// The address `target` as `role` requests it: the in-scope token to revoke is a new one
/// of the role's own user, so that every role revokes its own.
pub(super) async fn for_role(world: &World, role: Role, target: String) -> String {
    if !target.contains(OWN_TOKEN) {
        return target;
    }
    let own = token_of(world, &format!("{}@test.fr", role.as_str())).await;
    target.replace(OWN_TOKEN, &own)
}

/// What a page above answers a role it allows; `None` for the general rule of `console.rs`.
/// The token form posted without its name is refused; the confirmation of one's identity at
/// the identity provider needs one configured; a token is revoked by its owner
/// (each role its own, in scope), anyone else's answers 404. The e-mail preferences form
/// posted without boxes changes nothing and shows the page again.
pub(super) async fn expected(_world: &World, method: &str, path: &str, _role: Role, side: Side) -> Option<u16> {
    match (method, path) {
        // No OpenID Connect provider is configured here (tests/integration/oidc.rs has one).
        ("GET", "/compte/identite") => Some(404),
        ("POST", "/compte/jetons") => Some(422),
        ("POST", "/compte/jetons/{jeton_api}/revoquer") if side == Side::In => Some(200),
        ("POST", "/compte/jetons/{jeton_api}/revoquer") => Some(404),
        ("POST", "/compte/courriels") => Some(200),
        _ => None,
    }
}
