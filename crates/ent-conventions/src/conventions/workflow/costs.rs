//! Two conventions on one school over common dates that split the costs differently: two
//! contracts saying differently who pays (a bipartite of the commune and a tripartite of one of
//! its écoles, each with its own shares). The RGPD roles aside (`draft::check_no_overlap` refuses
//! other roles), a convention of another model may cover the same school; its split is compared
//! here, organisation by organisation ([`cost_split`]). A difference is told as a warning on
//! every answer of the convention (drafting, submission, signature, reading) and on its console
//! page; a signature is refused while the other one binds its parties (signed or in force),
//! unless one replaces the other: an avenant of the same lineage, or `supersedes` either way.

use super::draft::others_on;
use crate::conventions::model::ConventionModel;
use crate::conventions::{cost_split, find_model, read_convention, Convention, Status};
use ent_kernel::error::Problem;
use ent_kernel::naming;
use ent_kernel::text::capitalised;
use ent_kernel::validate::parse_any_date;
use ent_platform::identity::Actor;
use ent_platform::registry::OrgRef;
use sqlx::AnyConnection;

/// Another convention that splits the costs otherwise on schools both cover over common dates.
pub struct CostConflict {
    pub other: Convention,
    /// The schools both cover, as the convention compared lists them.
    pub schools: Vec<OrgRef>,
}

impl CostConflict {
    /// Whether the other one binds its parties already (signed or in force): the convention is
    /// then not signed over it.
    pub fn binds(&self) -> bool {
        matches!(self.other.status, Status::Signed | Status::Active)
    }

    /// The fact, in French, from a lower-case start: the other convention named to whom sees it
    /// (`actor`), else without its reference.
    pub fn text(&self, actor: &Actor) -> String {
        let schools = self.schools.iter().map(|s| format!("{} ({})", naming::display_name(&s.name), s.code));
        let schools = schools.collect::<Vec<_>>().join(", ");
        let other = match self.other.reference_for(actor) {
            Some(reference) => format!("la convention {reference} ({})", self.other.status.label()),
            None => "une autre convention, que vous ne consultez pas,".to_string(),
        };
        format!(
            "{other} couvre aussi {schools} sur des dates communes, avec une autre répartition des coûts : deux \
             conventions diraient différemment qui paie. Alignez les parts par avenant, ou indiquez que l'une remplace \
             l'autre (champ supersedes) ; tant que l'autre est signée ou en vigueur, celle-ci ne peut pas être signée"
        )
    }

    /// [`CostConflict::text`] as a warning: a sentence.
    pub fn warning(&self, actor: &Actor) -> String {
        format!("{}.", capitalised(&self.text(actor)))
    }
}

/// The live conventions of another model on `conv`'s schools over common dates whose cost split
/// differs from `conv`'s, each with the schools they share; neither of an avenant's lineage nor
/// one replacing the other (`supersedes`). Read through `conn` (a write transaction's inside one).
pub async fn cost_conflicts(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    conv: &Convention,
) -> Result<Vec<CostConflict>, Problem> {
    // A model this process no longer knows splits nothing it can compare: reading the convention
    // must not fail for it (its other steps refuse on their own).
    let Ok(model) = find_model(models, &conv.model_id, Some(conv.model_version)) else { return Ok(Vec::new()) };
    let span = (parse_any_date("start_date", &conv.start_date)?, parse_any_date("end_date", &conv.end_date)?);
    let split = cost_split(model, conv);
    let mut conflicts: Vec<CostConflict> = Vec::new();
    for school in &conv.schools {
        for other in others_on(&mut *conn, models, &school.id, span, Some(&conv.root_id)).await? {
            let replaces = conv.supersedes_id.as_deref() == Some(other.id.as_str())
                || other.supersedes_id.as_deref() == Some(conv.id.as_str());
            if other.model_id == conv.model_id || replaces || !other.overlaps_from(models, span.0)? {
                continue;
            }
            if let Some(known) = conflicts.iter_mut().find(|c| c.other.id == other.id) {
                known.schools.push(school.clone());
                continue;
            }
            let Some(other) = read_convention(conn, models, &other.id, false).await? else { continue };
            let Ok(other_model) = find_model(models, &other.model_id, Some(other.model_version)) else { continue };
            if cost_split(other_model, &other) != split {
                conflicts.push(CostConflict { other, schools: vec![school.clone()] });
            }
        }
    }
    Ok(conflicts)
}

/// `conv` with the warnings its reader `actor` should see ([`cost_conflicts`]; in signature, a
/// visa or signature nobody can give, `signing::unreachable_steps`); a convention no longer live
/// (expired, terminated, replaced) has none.
pub async fn with_warnings(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    actor: &Actor,
    mut conv: Convention,
) -> Result<Convention, Problem> {
    if !matches!(conv.status, Status::Draft | Status::InSignature | Status::Signed | Status::Active) {
        return Ok(conv);
    }
    let conflicts = cost_conflicts(conn, models, &conv).await?;
    conv.warnings = conflicts.iter().map(|c| c.warning(actor)).collect();
    conv.warnings.extend(crate::conventions::avenant::term_warning(conn, &conv).await?);
    conv.warnings.extend(crate::conventions::avenant::funding_warning(conn, models, &conv).await?);
    // A convention whose model the catalog no longer has is still read: it simply has no circuit to check.
    if let Ok(model) = crate::conventions::find_model(models, &conv.model_id, Some(conv.model_version)) {
        conv.warnings.extend(super::signing::unreachable_steps(conn, model, &conv).await?);
    }
    Ok(conv)
}
