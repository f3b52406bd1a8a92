//! A résiliation as the parties, their DPOs and the préfecture read it (domain review 39, G4):
//! the notifier named as a signatory is, never by an address; the avenant it closes told in a
//! tense true on the day; the console closing what would answer 409; the e-mail saying who
//! notified it and when, its motif a sentence, the réversibilité article recalled, sent to the
//! DPO who keeps the controller's register too.

use super::*;

/// The « Résiliation » block closing the complete document of `id`, as `who` downloads it.
async fn termination_block(c: &Cycle, who: &Client, id: &str) -> String {
    let html = who.get(c.url(&format!("/{id}/document"))).send().await.text.replace("&#x27;", "'");
    let after =
        html.split("<h2>Signatures</h2>").nth(1).unwrap_or_else(|| panic!("{}: no signatures: {html}", c.db.name));
    after.split("<h2>Résiliation</h2>").nth(1).unwrap_or_else(|| panic!("{}: no block: {html}", c.db.name)).to_string()
}

async fn rename(c: &Cycle, email: &str, display_name: &str) {
    sqlx::query("UPDATE users SET display_name = $1 WHERE email = $2")
        .bind(display_name)
        .bind(email)
        .execute(c.db.store.pool())
        .await
        .unwrap();
}

backend_test!(a_termination_names_its_notifier_as_a_signatory_and_masks_the_address_for_dpos);
async fn a_termination_names_its_notifier_as_a_signatory_and_masks_the_address_for_dpos(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let avenant = c.amended(&id).await;
    let dpo = user(&c, "dpo@ac-creteil.fr", Role::Dpo, Some("academie:24")).await;
    rename(&c, "ent@fresnes.fr", "Karim Benali, mairie de Fresnes").await;

    crate::console::with_password(&c.db.store, "ent@fresnes.fr").await;
    let session = crate::console::sign_in(&c.app, "ent@fresnes.fr").await;
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await.text;
    assert!(page.contains("id=\"avenant\"") && page.contains("id=\"resilier\""), "{name}: offered before: {page}");

    let body = json!({ "reason": "Adhésion de la commune à un autre dispositif ENT", "effective_date": "2027-08-31" });
    let ended = c.step_ok(&c.mairie, &id, "terminate", body).await;
    assert_eq!(ended["termination_notified"]["by"], "user:ent@fresnes.fr", "{name}: the party sees it: {ended}");
    assert_eq!(ended["termination_notified"]["name"], "Karim Benali", "{name}: {ended}");

    // (a) The person and their quality for the party, for the party and its DPO alike.
    let said = "<dt>Notifiée par</dt><dd>Karim Benali, pour la Commune de Fresnes</dd>";
    for who in [&c.mairie, &dpo] {
        let block = termination_block(&c, who, &id).await;
        assert!(block.contains(said), "{name}: « {said} » not in {block}");
        assert!(!block.contains("ent@fresnes.fr"), "{name}: an address in {block}");
    }
    let (_, read) = call(dpo.get(c.url(&format!("/{id}")))).await;
    assert_eq!(read["termination_notified"]["by"], "(masqué)", "{name}: {read}");
    assert_eq!(read["termination_notified"]["name"], "Karim Benali", "{name}: {read}");
    // The representative the document names: in the quality it gives them.
    rename(&c, "ent@fresnes.fr", "Camille Martin").await;
    let block = termination_block(&c, &dpo, &id).await;
    let said = "<dt>Notifiée par</dt><dd>Camille Martin, représentante habilitée, pour la Commune de Fresnes</dd>";
    assert!(block.contains(said), "{name}: « {said} » not in {block}");

    // (b) The avenant in preparation ends with a convention that has not ended yet.
    let (_, closed) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert_eq!(closed["status"], "terminated", "{name}: {closed}");
    let reference = ended["reference"].as_str().unwrap();
    let why = format!("la convention {reference} qu'il modifiait est résiliée à compter du 31 août 2027");
    assert_eq!(closed["termination_reason"], why, "{name}: {closed}");

    // (c) The console says why neither an avenant nor a second résiliation can be recorded.
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await.text.replace("&#x27;", "'");
    assert!(!page.contains("id=\"avenant\"") && !page.contains("id=\"resilier\""), "{name}: still offered: {page}");
    assert!(page.contains("ne peut plus être modifiée par avenant ni résiliée à nouveau"), "{name}: {page}");

    // (d) Who notified it and when, the motif closed, art. 9 recalled; the académie's DPO told.
    let mails = crate::common::queued_mails(&c.db.store, "convention").await;
    let told: Vec<_> = mails.iter().filter(|m| m.context["event"] == "terminated").collect();
    assert!(told.iter().any(|m| m.recipient() == "dpo@ac-creteil.fr"), "{name}: the controller's DPO is told");
    let mail = told.iter().find(|m| m.recipient() == "ent@fresnes.fr").expect("the commune is told");
    let text = entcp::notify::mailer::render("convention", &mail.context).unwrap().text;
    for said in [
        "à compter du 31 août 2027 ; la résiliation a été notifiée le 1er septembre 2026 par la Commune de Fresnes.",
        "Motif : Adhésion de la commune à un autre dispositif ENT. La résiliation ouvre la phase de réversibilité \
         prévue à l'article 9 de la convention",
    ] {
        assert!(text.contains(said), "{name}: « {said} » not in {text}");
    }
}
