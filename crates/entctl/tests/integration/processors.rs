//! Tenants' vendor and host, organisations' country and processor contracts,
//! on both backends.

use crate::common;

use common::{admin, t0};
use entcp::contracts::{self, NewContract};
use entcp::kernel::roles::OrgKind;
use entcp::registry::manage::{update_org, OrgPatch};
use std::sync::Arc;

async fn org(store: &entcp::store::Store, kind: OrgKind, siren: &str, name: &str) -> entcp::registry::Org {
    common::fixtures::new_org(store, kind, name, siren, None).await
}

fn contract(processor: &str, client: &str, parent: Option<&str>, reference: &str, art28: bool) -> NewContract {
    NewContract {
        processor_org_id: processor.into(),
        client_org_id: client.into(),
        parent_processor_org_id: parent.map(Into::into),
        reference: reference.into(),
        title: "Marché ENT 1er degré".into(),
        art28_clauses: art28,
        starts_on: Some("2026-09-01".into()),
        ends_on: Some("2030-08-31".into()),
        source_kind: "manual".into(),
        source_id: None,
    }
}

backend_test!(tenants_carry_vendor_and_host_and_contracts_form_chains);
async fn tenants_carry_vendor_and_host_and_contracts_form_chains(db: crate::common::TestDb) {
    let store = &db.store;
    common::import_sample(store).await;
    let vendor = org(store, OrgKind::Editeur, "900000019", "Éditeur").await;
    let host = org(store, OrgKind::Hebergeur, "900000027", "Hébergeur").await;
    assert_eq!(vendor.country, "FR");
    let patch = OrgPatch { country: Some("US".into()), ..OrgPatch::default() };
    let host = update_org(store, &admin(), &host, host.version, patch, t0()).await.unwrap();
    assert_eq!(host.country, "US", "{}", db.name);
    let bad = OrgPatch { country: Some("usa".into()), ..OrgPatch::default() };
    let err = update_org(store, &admin(), &host, host.version, bad, t0()).await.unwrap_err();
    assert!(err.errors.iter().any(|e| e.field == "country"), "{}: {err:?}", db.name);

    let data_dir = tempfile::tempdir().unwrap();
    let config = entcp::config::Config { data_dir: data_dir.path().into(), ..entcp::config::Config::default() };
    let state = crate::common::app::app_state(store.clone(), config, Arc::new(entcp::clock::FixedClock::new(t0())));
    let mut doc: entcp::tenants::EntTenant =
        entcp::yaml::from_str(include_str!("../../../../tenants/examples/fresnes.yaml")).unwrap();
    doc.spec.vendor = Some("editeur:900000019".into());
    let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    assert_eq!(tenant.vendor.as_ref().map(|v| v.id.as_str()), Some(vendor.id.as_str()), "{}", db.name);
    assert!(tenant.host.is_none());

    // A spec without vendor keeps the vendor of record; set_processors adds the host.
    doc.spec.vendor = None;
    doc.spec.options = vec![];
    let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    assert_eq!(tenant.vendor.as_ref().map(|v| v.id.as_str()), Some(vendor.id.as_str()), "{}", db.name);
    let mut tx = store.begin_write().await.unwrap();
    entcp::tenants::set_processors(&mut tx, store, &admin(), &tenant, None, Some(&host), t0()).await.unwrap();
    tx.commit().await.unwrap();
    let tenant = entcp::tenants::get_tenant(store, "fresnes").await.unwrap().unwrap();
    assert_eq!(tenant.host.as_ref().map(|h| h.name.as_str()), Some("Hébergeur"), "{}", db.name);
    let events = entcp::tenants::events(store, &tenant.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "processors" && e.message.contains("Hébergeur")), "{events:?}");

    // A host given where a vendor is expected is refused with the field named.
    doc.spec.vendor = Some("hebergeur:900000027".into());
    let err = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap_err();
    assert!(format!("{err:?}").contains("spec.vendor"), "{err:?}");

    // The vendor's contract with the commune, and the host as its sub-processor.
    let commune = entcp::registry::queries::resolve_org(store, "commune:94034").await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let first =
        contracts::record(&mut tx, store, &admin(), &contract(&vendor.id, &commune.id, None, "M-2026-01", true), t0())
            .await
            .unwrap();
    let again =
        contracts::record(&mut tx, store, &admin(), &contract(&vendor.id, &commune.id, None, "M-2026-01", true), t0())
            .await
            .unwrap();
    assert_eq!(first, again, "recording the same contract twice updates it");
    contracts::record(&mut tx, store, &admin(), &contract(&host.id, &vendor.id, Some(&vendor.id), "H-7", false), t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let for_commune = contracts::list_for_client(store, &commune.id).await.unwrap();
    assert_eq!(for_commune.len(), 1, "{}", db.name);
    assert!(for_commune[0].art28_clauses);
    assert_eq!(for_commune[0].processor.id, vendor.id);
    let chain = contracts::list_for_client(store, &vendor.id).await.unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].parent_processor.as_ref().map(|p| p.id.as_str()), Some(vendor.id.as_str()));
    assert!(!chain[0].art28_clauses);
    assert_eq!(contracts::list_for_processor(store, &host.id).await.unwrap().len(), 1);

    // A commune is not a processor; dates are checked.
    let mut tx = store.begin_write().await.unwrap();
    let mut bad = contract(&commune.id, &vendor.id, None, "X", true);
    bad.ends_on = Some("2020-13-01".into());
    let err = contracts::record(&mut tx, store, &admin(), &bad, t0()).await.unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("processor_org_id") && text.contains("ends_on"), "{text}");
    drop(tx);
    // Named as processor, an organisation that is none answers as an unknown identifier does:
    // neither its name nor its existence is learnt.
    let refusal = |processor: &str| {
        let new = contract(processor, &vendor.id, None, "Y", true);
        async move {
            let mut tx = store.begin_write().await.unwrap();
            let err = contracts::record(&mut tx, store, &admin(), &new, t0()).await.unwrap_err();
            err.errors.iter().find(|e| e.field == "processor_org_id").map(|e| e.message.clone())
        }
    };
    let (named, unknown) = (refusal(&commune.id).await, refusal("inexistant-0000").await);
    assert_eq!(named, unknown, "{}", db.name);
    assert!(!named.unwrap_or_default().contains(&commune.name), "{}", db.name);
}

#[test]
fn spreadsheets_read_back_through_the_test_helper() {
    use entcp::documents::{to_ods, Cell, Sheet, Spreadsheet, ODS_MIME};
    let book = Spreadsheet {
        title: "Quantités".into(),
        sheets: vec![Sheet {
            name: "Membres".into(),
            column_widths_cm: vec![8.0],
            rows: vec![
                vec![Cell::header("Commune"), Cell::header("Élèves"), Cell::header("Part")],
                vec![Cell::text("Fresnes\n(94)"), Cell::Integer(1234), Cell::Euros(105_000)],
            ],
        }],
    };
    let ods = to_ods(&book);
    assert_eq!(ent_documents::documents::read_back::mimetype(&ods), ODS_MIME);
    let sheets = ent_documents::documents::read_back::ods_sheets(&ods);
    assert_eq!(sheets[0].0, "Membres");
    assert_eq!(sheets[0].1, vec![vec!["Commune", "Élèves", "Part"], vec!["Fresnes\n(94)", "1234", "1050.00"]]);
}
