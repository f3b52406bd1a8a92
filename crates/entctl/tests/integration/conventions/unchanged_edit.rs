//! A PATCH whose result is the convention as it is changes nothing: 200 with the current
//! representation and `ETag`, no new version, no audit record, no notice, no signature voided.

use super::*;

/// The number of `conventions.update` records of the convention `id`.
async fn updates(c: &Cycle, id: &str) -> usize {
    by_action(&audited(c, id).await, "conventions.update").len()
}

backend_test!(a_patch_that_changes_nothing_creates_no_version_no_record_and_no_notice);
async fn a_patch_that_changes_nothing_creates_no_version_no_record_and_no_notice(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = submitted(&c).await;
    c.step_ok(&c.directeur, &id, "sign", json!({})).await;
    let read = c.dan.get(c.url(&format!("/{id}"))).send().await;
    let etag = read.header("etag").unwrap().to_string();
    let current = read.body.clone();
    let documents = current["documents"].as_array().unwrap().len();
    // Nothing, then every term given as it stands (title, dates, parameters, parties, shares).
    let parties: serde_json::Map<String, Value> = current["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap().to_string(), p["org"]["id"].clone()))
        .collect();
    assert_eq!(parties.len(), 3, "{name}: {current}");
    // The start is read back among the parameters, and given by `start_date` only.
    let mut parameters = current["parameters"].clone();
    parameters.as_object_mut().unwrap().remove("start_date");
    let same = json!({
        "title": current["title"], "start_date": current["start_date"], "end_date": current["end_date"],
        "parameters": parameters, "parties": parties,
    });
    for patch in [json!({}), same] {
        let answer = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", &etag).json(&patch).send().await;
        assert_eq!(answer.status, 200, "{name}: {patch}: {}", answer.text);
        assert_eq!(answer.header("etag"), Some(etag.as_str()), "{name}: {patch}: the same version");
        assert_eq!(answer.body["version"], current["version"], "{name}: {}", answer.text);
        assert_eq!(answer.body["document_hash"], current["document_hash"], "{name}: {}", answer.text);
    }
    assert_eq!(updates(&c, &id).await, 0, "{name}: no audit record");
    assert_eq!(live_steps(&c, &id).await, vec![("signature".to_string(), "etablissement".to_string())], "{name}");
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "signatures_voided").await, 0, "{name}: no notice");
    let (_, kept) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(kept["documents"].as_array().unwrap().len(), documents, "{name}: no text frozen anew");

    // A stale If-Match is still refused, and a real change is still a version.
    let stale = format!("\"{}\"", current["version"].as_i64().unwrap() - 1);
    let refused = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", &stale).json(&json!({})).send().await;
    assert_eq!(refused.status, 412, "{name}: {}", refused.text);
    let changed = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", &etag);
    let (s, edited) = call(changed.json(&json!({ "parameters": { "accounts": 260 } }))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {edited}");
    assert_eq!(edited["version"].as_i64(), current["version"].as_i64().map(|v| v + 1), "{name}: {edited}");
    assert_eq!(updates(&c, &id).await, 1, "{name}");
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "signatures_voided").await, 1, "{name}: the signer told");
}
