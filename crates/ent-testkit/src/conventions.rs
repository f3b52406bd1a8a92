//! Conventions written straight into the store, already in force (`active`), for the coverage
//! bench and tests: the gate reads them as it reads signed ones, without the signing workflow.

/// A convention of `model_id` v`model_version` from `start` to `end` (AAAA-MM-JJ), its
/// parties (party key, organisation id) and the schools it lists (organisation ids).
pub struct ActiveConvention<'a> {
    pub id: &'a str,
    pub model_id: &'a str,
    pub model_version: u32,
    pub start: &'a str,
    pub end: &'a str,
    pub parties: Vec<(&'a str, String)>,
    pub schools: Vec<String>,
}

/// Writes `convention` (status `active`) with its parties and schools.
pub async fn insert_active(pool: &sqlx::AnyPool, convention: &ActiveConvention<'_>) -> sqlx::Result<()> {
    let c = convention;
    let now = "2026-09-01T00:00:00Z";
    sqlx::query(
        "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, \
         end_date, root_id, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'Convention', 'active', '{}', $5, $6, $1, 'bench', $7, $7)",
    )
    .bind(c.id)
    .bind(format!("CONV-{}", c.id.to_ascii_uppercase()))
    .bind(c.model_id)
    .bind(i64::from(c.model_version))
    .bind(c.start)
    .bind(c.end)
    .bind(now)
    .execute(pool)
    .await?;
    for (position, (key, org_id)) in c.parties.iter().enumerate() {
        sqlx::query(
            "INSERT INTO convention_parties (convention_id, party_key, org_id, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(c.id)
        .bind(*key)
        .bind(org_id)
        .bind(position as i64)
        .execute(pool)
        .await?;
    }
    for school in &c.schools {
        sqlx::query("INSERT INTO convention_schools (convention_id, org_id) VALUES ($1, $2)")
            .bind(c.id)
            .bind(school)
            .execute(pool)
            .await?;
    }
    Ok(())
}
