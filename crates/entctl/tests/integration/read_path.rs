//! The organisation list's JSON written by the database (issue 13, read path):
//! the same page, item for item, as the serde serialisation of `Org`.

use crate::common::{self, TestDb};

use common::t0;
use entcp::registry::queries::{self, OrgFilter};
use entcp::store::Condition;
use entcp::store::Store;
use serde_json::Value;

/// One organisation row with every column the list shows.
struct Row {
    kind: &'static str,
    code: &'static str,
    name: &'static str,
    optional: Option<Optional>,
    open: bool,
    country: &'static str,
}

/// The columns that are absent from the JSON when NULL.
#[derive(Clone, Copy)]
struct Optional {
    etab_type: &'static str,
    sector: &'static str,
    degree: &'static str,
    pupils: i64,
    email: &'static str,
}

const KINDS: [&str; 10] = [
    "academie",
    "dsden",
    "region",
    "departement",
    "commune",
    "epci",
    "syndicat_mixte",
    "etablissement",
    "editeur",
    "hebergeur",
];

/// Names with quotes, backslashes, non-ASCII letters, an emoji and control characters.
const NAMES: [&str; 4] = [
    "Lycée « Jean-Zay » d'Orléans",
    "Collège \"Les Œillets\" \\ Saint-Maur",
    "École maternelle Ça m’amuse 🎈",
    "Syndicat\tmixte\nligne \u{1} fin",
];

/// Every kind, with and without the optional fields, with tricky names and
/// edge values (zero pupils, an empty e-mail, a quote in an e-mail).
fn rows() -> Vec<Row> {
    let variants = [
        Optional {
            etab_type: "lycee",
            sector: "prive",
            degree: "2D",
            pupils: 0,
            email: "ce.0450001a@ac-orleans-tours.fr",
        },
        Optional { etab_type: "ecole_maternelle", sector: "public", degree: "1D", pupils: 87, email: "" },
        Optional { etab_type: "college", sector: "public", degree: "2D", pupils: 1200, email: "x\"y@exemple.fr" },
    ];
    let mut rows = Vec::new();
    let mut codes = (0..40).map(|i| Box::leak(format!("C{i:03}").into_boxed_str()) as &'static str);
    for (i, kind) in KINDS.iter().enumerate() {
        for with_optional in [false, true] {
            rows.push(Row {
                kind,
                code: codes.next().unwrap(),
                name: NAMES[(i + usize::from(with_optional)) % NAMES.len()],
                optional: with_optional.then(|| variants[i % variants.len()]),
                open: i % 3 != 0,
                country: if i == 9 { "DE" } else { "FR" },
            });
        }
    }
    rows
}

async fn insert(store: &Store, n: usize, row: &Row) {
    let opt = row.optional.as_ref();
    let text = |f: fn(&Optional) -> &'static str| opt.map(f);
    sqlx::query(
        "INSERT INTO orgs (id, kind, code, name, sort_name, siren, siret, etab_type, nature_code, nature_label, \
         sector, degree, commune_code, departement_code, academie_code, region_code, pupils, is_open, email, \
         content_hash, version, created_at, updated_at, country) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 'h', $20, $21, $22, $23)",
    )
    .bind(format!("0190{n:04}-0000-7000-8000-000000000000"))
    .bind(row.kind)
    .bind(row.code)
    .bind(row.name)
    .bind(entcp::text::fold(row.name))
    .bind(opt.map(|_| "130005481"))
    .bind(opt.map(|_| "13000548100010"))
    .bind(text(|o| o.etab_type))
    .bind(opt.map(|_| "300"))
    .bind(opt.map(|_| "LYCEE D'ENSEIGNEMENT GENERAL « LEGT »"))
    .bind(text(|o| o.sector))
    .bind(text(|o| o.degree))
    .bind(opt.map(|_| "45234"))
    .bind(opt.map(|_| "045"))
    .bind(opt.map(|_| "18"))
    .bind(opt.map(|_| "24"))
    .bind(opt.map(|o| o.pupils))
    .bind(i64::from(row.open))
    .bind(text(|o| o.email))
    .bind(n as i64 + 1)
    .bind(t0().to_rfc3339())
    .bind(format!("2026-09-0{}T08:00:00.000000Z", 1 + n % 9))
    .bind(row.country)
    .execute(store.pool())
    .await
    .unwrap();
}

/// The database's page and the serialised one, as JSON values (key order aside).
async fn both_pages(store: &Store, filter: &OrgFilter, scope: Option<Condition>) -> (Value, Value) {
    let by_database = queries::list_orgs_json(store, filter, scope.clone()).await.unwrap();
    let by_serde = queries::list_orgs(store, filter, scope).await.unwrap();
    (
        serde_json::from_str(&by_database).expect("the database writes valid JSON"),
        serde_json::to_value(by_serde).unwrap(),
    )
}

/// Every page of `filter` by `limit`, checked equal, following the cursors.
async fn walk(store: &Store, filter: OrgFilter, scope: Option<Condition>) -> usize {
    let mut filter = OrgFilter { limit: Some(3), ..filter };
    let mut seen = 0;
    loop {
        let (database, serde) = both_pages(store, &filter, scope.clone()).await;
        assert_eq!(database, serde, "filter {filter:?}");
        seen += serde["items"].as_array().unwrap().len();
        match serde.get("next_cursor") {
            Some(next) => filter.cursor = Some(next.as_str().unwrap().to_string()),
            None => return seen,
        }
    }
}

backend_test!(the_database_writes_the_page_serde_writes);
async fn the_database_writes_the_page_serde_writes(db: TestDb) {
    let rows = rows();
    for (n, row) in rows.iter().enumerate() {
        insert(&db.store, n, row).await;
    }
    assert_eq!(walk(&db.store, OrgFilter::default(), None).await, rows.len(), "{}", db.name);
    // One page holding everything: no cursor on either side.
    let all = OrgFilter { limit: Some(500), ..Default::default() };
    let (database, serde) = both_pages(&db.store, &all, None).await;
    assert_eq!(database, serde, "{}", db.name);
    assert!(serde.get("next_cursor").is_none());
    let items = serde["items"].as_array().unwrap();
    // The rows cover what the comparison is about: absent fields, booleans, names.
    assert!(items.iter().any(|o| o.get("email").is_none()) && items.iter().any(|o| o["email"] == ""));
    assert!(items.iter().any(|o| o["open"] == false) && items.iter().any(|o| o["pupils"] == 0));
    assert!(items.iter().any(|o| o["name"] == NAMES[3]) && items.iter().any(|o| o["country"] == "DE"));
    // Filters, an empty page and a scope condition.
    let kind = OrgFilter { kind: Some("etablissement".into()), ..Default::default() };
    assert_eq!(walk(&db.store, kind, None).await, 2, "{}", db.name);
    let nothing = OrgFilter { q: Some("aucune organisation de ce nom".into()), ..Default::default() };
    let (database, serde) = both_pages(&db.store, &nothing, None).await;
    assert_eq!((&database, database["items"].as_array().map(Vec::len)), (&serde, Some(0)), "{}", db.name);
    let mut scope = Condition::default();
    scope.push("academie_code = ?", &["18"]);
    assert_eq!(walk(&db.store, OrgFilter::default(), Some(scope)).await, KINDS.len(), "{}", db.name);
    // An unknown value in the database fails both ways, never a silent default.
    for (column, value) in [("etab_type", "type_inconnu"), ("sector", "autre"), ("degree", "3D")] {
        let sql = format!("UPDATE orgs SET {column} = $1 WHERE code = 'C001'");
        sqlx::query(&sql).bind(value).execute(db.store.pool()).await.unwrap();
        let database = queries::list_orgs_json(&db.store, &all, None).await;
        let serde = queries::list_orgs(&db.store, &all, None).await;
        assert!(database.is_err() && serde.is_err(), "{}: {column} = {value}: {database:?}", db.name);
        sqlx::query(&format!("UPDATE orgs SET {column} = NULL WHERE code = 'C001'"))
            .execute(db.store.pool())
            .await
            .unwrap();
    }
    assert!(queries::list_orgs_json(&db.store, &all, None).await.is_ok(), "{}", db.name);
}
