//! Authorisation cases: The support desk.

use super::*;

pub(super) const SUPPORT_READERS: &[Role] = &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2, SupportN3];
pub(super) const SUPPORT_CREATORS: &[Role] = &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/support/tickets", SUPPORT_READERS, Target::None),
    ("POST", "/api/v1/support/tickets", SUPPORT_CREATORS, Target::Ticket),
    ("GET", "/api/v1/support/tickets/{id}", SUPPORT_READERS, Target::Ticket),
    ("PATCH", "/api/v1/support/tickets/{id}", SUPPORT_READERS, Target::Ticket),
    ("GET", "/api/v1/support/tickets/{id}/history", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/comments", SUPPORT_READERS, Target::Ticket),
    ("GET", "/api/v1/support/tickets/{id}/attachments", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/attachments", SUPPORT_READERS, Target::Ticket),
    ("GET", "/api/v1/support/tickets/{id}/attachments/{file}", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/transition", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/escalate", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/return", SUPPORT_READERS, Target::Ticket),
    ("GET", "/api/v1/support/report", &[Admin, SupportN1, SupportN2, SupportN3], Target::None),
    ("GET", "/api/v1/support/policies", SUPPORT_READERS, Target::None),
    ("GET", "/api/v1/support/tenants/{slug}/contract", &[Admin, Dan, SupportN1, SupportN2], Target::Org),
    ("PUT", "/api/v1/support/contracts/{org}", &[Admin, Dan], Target::Org),
];

impl World {
    /// A tenant with a fresh slug for the school in or out of scope.
    pub(super) async fn support_tenant(&self, side: Side) -> entcp::tenants::Tenant {
        let school = if side == Side::In { &self.etab_in } else { &self.etab_out };
        // Its vendor is N3 of its tickets (the tenant's processor).
        let mut doc = self.tenant_doc(school);
        doc["spec"]["vendor"] = serde_json::json!(format!("editeur:{}", self.vendor.code));
        let apply: entcp::tenants::EntTenant = serde_json::from_value(doc).unwrap();
        let state = self.state.clone();
        entcp::tenants::apply(&state.tenants(), &admin(), &apply, None).await.unwrap().1
    }

    /// A ticket at the level of `role` (N1 otherwise), opened by the role itself when it is a requester.
    pub(super) async fn support_ticket(&self, role: Role, side: Side) -> entcp::support::Ticket {
        use entcp::support::tickets::{self, Ctx, EscalateInput, NewTicket};
        let tenant = self.support_tenant(side).await;
        let state = self.state.clone();
        let (requester, levels) = ticket_setup(role, side);
        let requester = match side {
            Side::In => self.actor_of(requester).await,
            Side::Out => self.signer_out(requester).await,
        };
        let new = NewTicket {
            tenant: tenant.slug.clone(),
            subject: "Connexion impossible".into(),
            description: "Message d'erreur à la connexion.".into(),
            category: "acces".into(),
            service: None,
            impact: "moyenne".into(),
            urgency: "moyenne".into(),
            priority: None,
        };
        let mut ticket =
            tickets::create(&Ctx { state: &state.support(), actor: &requester, now: t0() }, new).await.unwrap();
        let admin = admin();
        for _ in 0..levels {
            let ctx = Ctx { state: &state.support(), actor: &admin, now: t0() };
            let up = EscalateInput { reason: "Hors de portée de ce niveau".into(), share_requester: false };
            ticket = tickets::escalate(&ctx, &ticket.id, ticket.version, up).await.unwrap();
        }
        ticket
    }

    pub(super) async fn support_call(&self, method: &str, path: &str, role: Role, side: Side) -> Option<Call> {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let call = |path: String| Call { method: m.clone(), path, body: None, csv: None, pdf: None, if_match: None };
        match (method, path) {
            ("GET", "/api/v1/support/tickets") => Some(call("/api/v1/support/tickets?limit=5".into())),
            ("GET", "/api/v1/support/report") | ("GET", "/api/v1/support/policies") => Some(call(path.into())),
            ("POST", "/api/v1/support/tickets") => {
                let tenant = self.support_tenant(side).await;
                let body = json!({ "tenant": tenant.slug, "subject": "Panne", "description": "Rien ne marche.", "category": "autre", "impact": "basse", "urgency": "basse" });
                Some(Call { body: Some(body), ..call(path.into()) })
            }
            ("GET", "/api/v1/support/tenants/{slug}/contract") => {
                let tenant = self.support_tenant(side).await;
                Some(call(format!("/api/v1/support/tenants/{}/contract", tenant.slug)))
            }
            ("PUT", "/api/v1/support/contracts/{org}") => {
                let org = if side == Side::In { &self.etab_in } else { &self.etab_out };
                Some(Call {
                    body: Some(json!({ "policy": "standard" })),
                    ..call(format!("/api/v1/support/contracts/{}", org.id))
                })
            }
            ("POST", "/api/v1/support/tickets/{id}/attachments") => {
                let ticket = kept_ticket(self, role, side).await;
                // Above the N1, a file is for the support: only the N1 writes to the requester.
                let visibility = if matches!(role, SupportN2 | SupportN3) { "internal" } else { "public" };
                let url = format!(
                    "/api/v1/support/tickets/{}/attachments?name=releve.pdf&visibility={visibility}",
                    ticket.id
                );
                Some(Call { pdf: Some(b"%PDF-1.7 releve".to_vec()), ..call(url) })
            }
            ("GET", "/api/v1/support/tickets/{id}/attachments/{file}") => {
                use entcp::support::attachments::{self, Upload};
                let ticket = self.support_ticket(role, side).await;
                let state = self.state.clone();
                // A public file, joined by whom writes to the requester: the N1 when the
                // ticket is above it.
                let by = match ticket.level {
                    entcp::support::Level::N1 => admin(),
                    _ => self.actor_of(SupportN1).await,
                };
                let support = state.support();
                let ctx = entcp::support::tickets::Ctx { state: &support, actor: &by, now: t0() };
                let file =
                    attachments::check("file", Upload { name: "releve.pdf".into(), bytes: b"%PDF-1.7".to_vec() })
                        .unwrap();
                let added = attachments::attach(&ctx, &ticket.id, true, vec![file]).await.unwrap();
                Some(call(format!("/api/v1/support/tickets/{}/attachments/{}", ticket.id, added[0].id)))
            }
            (_, p) => {
                let ticket = kept_ticket(self, role, side).await;
                let url = p.replace("{id}", &ticket.id);
                let body = match p {
                    "/api/v1/support/tickets/{id}" if method == "PATCH" => {
                        Some(json!({ "assigned_team": "Équipe réseau" }))
                    }
                    // Above the N1, a note for the support: only the N1 writes to the requester.
                    "/api/v1/support/tickets/{id}/comments" if matches!(role, SupportN2 | SupportN3) => {
                        Some(json!({ "body": "Une note.", "visibility": "internal" }))
                    }
                    "/api/v1/support/tickets/{id}/comments" => Some(json!({ "body": "Un commentaire." })),
                    "/api/v1/support/tickets/{id}/transition" => Some(json!({ "to": "in_progress" })),
                    "/api/v1/support/tickets/{id}/escalate" => Some(json!({ "reason": "Besoin du niveau supérieur." })),
                    "/api/v1/support/tickets/{id}/return" => Some(json!({ "answer": "Voici la réponse." })),
                    _ => None,
                };
                let if_match =
                    (method == "PATCH" || body.is_some() && !p.ends_with("/comments")).then_some(ticket.version);
                Some(Call { body, if_match, ..call(url) })
            }
        }
    }
}

/// Who opens the ticket `role` is given, and how many levels it is escalated: the
/// role's own at its level when it is a requester, the usager's at N1 otherwise.
fn ticket_setup(role: Role, side: Side) -> (Role, usize) {
    match (side, role) {
        (Side::In, ChefEtablissement) => (ChefEtablissement, 0),
        (Side::In, SupportN2) => (Usager, 1),
        (Side::In, SupportN3) => (Usager, 2),
        _ => (Usager, 0),
    }
}

/// The ticket `role` is given, kept while cases leave it as it is (see [`World::kept`]).
async fn kept_ticket(world: &World, role: Role, side: Side) -> entcp::support::Ticket {
    let (requester, levels) = ticket_setup(role, side);
    let key = format!("ticket {side:?} {} {levels}", requester.as_str());
    world.kept(key, || world.support_ticket(role, side)).await
}

/// What `role` gets on a ticket route (the role is allowed by the table).
pub(super) fn ticket_expected(method: &str, path: &str, role: Role, side: Side) -> u16 {
    let requester = matches!(role, Usager | ChefEtablissement);
    match (side, method, path) {
        // A tenant the role cannot see is an unknown tenant.
        (Side::Out, "POST", "/api/v1/support/tickets") if role != Admin => 422,
        // Others' tickets are not revealed, even to a write.
        (Side::Out, _, _) if role != Admin => 404,
        (_, "POST", "/api/v1/support/tickets") => 201,
        (_, "GET", _) => 200,
        (_, "POST", "/api/v1/support/tickets/{id}/comments") => 201,
        // Anyone who sees the ticket joins a file to it, as to a comment.
        (_, "POST", "/api/v1/support/tickets/{id}/attachments") => 201,
        // A requester only comments (and closes a resolved ticket).
        _ if requester => 403,
        (_, "POST", "/api/v1/support/tickets/{id}/escalate") if role == SupportN3 => 409,
        (_, "POST", "/api/v1/support/tickets/{id}/return") if matches!(role, Admin | SupportN1) => 409,
        _ => 200,
    }
}
