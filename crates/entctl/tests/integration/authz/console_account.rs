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
];

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
        let state =
            crate::common::app::app_state(world.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
        let png = Upload { name: "capture.png".into(), bytes: b"\x89PNG\r\n\x1a\n..".to_vec() };
        let file = attachments::check("pieces", png).unwrap();
        let ctx = Ctx { state: &state.support(), actor: &admin(), now: t0() };
        attachments::attach(&ctx, &tickets[0], true, vec![file]).await.unwrap().remove(0).id
    };
    vec![("{fichier}", [piece_on("n3").await, piece_on("n1").await])]
}

/// What a page above answers a role it allows; `None` for the general rule of `console.rs`.
pub(super) async fn expected(_world: &World, _method: &str, _path: &str, _role: Role, _side: Side) -> Option<u16> {
    None
}
