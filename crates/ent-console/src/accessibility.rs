//! « Accessibilité » : the console's accessibility declaration (loi n° 2005-102, art. 47;
//! décret n° 2019-768), public like the sign-in page and linked from every page's footer.
//! Its text follows the structure of the RGAA's model declaration; the state it declares
//! (not compliant: no full audit made) is the template's to keep true.

use crate::auth;
use crate::page::{self, Shell};
use crate::ConsoleState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

/// Where the declaration is, as the footer links it.
pub const PATH: &str = "/accessibilite";

/// The declaration, in the shell of the person signed in if any.
pub async fn page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let session = auth::session_of(&state, &headers).await;
    let shell = Shell::new(&state, session.as_ref(), PATH).crumbs(&[("Accessibilité", PATH)]);
    let values = serde_json::json!({
        "operator": state.config.console.operator_name,
        // The console's address when configured (a guessed one would mislead).
        "address": state.config.console.notice_link("/"),
    });
    page::render("accessibility.html", shell, values)
}
