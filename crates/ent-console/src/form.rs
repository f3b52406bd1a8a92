//! What the console's forms share: the field errors of a refused form, each linked
//! from the error summary to its field (`forms.html`).

use ent_kernel::error::{Problem, ProblemKind};
use serde::Serialize;

/// A field's error as the summary and the field show it.
#[derive(Serialize, Debug, Clone)]
pub struct FieldError {
    pub field: String,
    /// The `id` of the field's input (`{form}-{field}`).
    pub id: String,
    pub message: String,
    /// The field's label, which the error summary says before the message.
    pub label: Option<String>,
    /// Where the summary links when the control is on another page (`/page#id`); `#id` when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

impl FieldError {
    pub fn new(form: &str, field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            id: format!("{form}-{field}"),
            message: message.into(),
            label: None,
            href: None,
        }
    }

    /// The error of the control `id` (not named after its form).
    pub fn at(self, id: &str) -> FieldError {
        FieldError { id: id.to_string(), ..self }
    }

    /// The error of a control of the page at `page`, not of the page showing the summary.
    pub fn on_page(self, page: &str) -> FieldError {
        FieldError { href: Some(format!("{page}#{}", self.id)), ..self }
    }

    /// The error said in the summary after the field's `label` (« Intitulé : champ
    /// obligatoire »), unless its message already starts with it.
    pub fn labelled(self, label: &str) -> FieldError {
        let said = self.message.starts_with(label);
        FieldError { label: (!said).then(|| label.to_string()), ..self }
    }
}

/// The field errors of a refusal for form `form`: its field errors (those naming a field
/// the form has not are put on `fallback`), or its detail on `fallback`. `None` when
/// the problem is not the form's to show (a refusal, a failure).
pub fn errors_of(problem: &Problem, form: &str, fields: &[&str], fallback: &str) -> Option<Vec<FieldError>> {
    if !matches!(problem.kind, ProblemKind::Validation | ProblemKind::Conflict) {
        return None;
    }
    if problem.errors.is_empty() {
        return Some(vec![FieldError::new(form, fallback, problem.detail.clone())]);
    }
    Some(
        problem
            .errors
            .iter()
            .map(|e| {
                let field = if fields.contains(&e.field.as_str()) { e.field.as_str() } else { fallback };
                FieldError::new(form, field, e.message.clone())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::error;

    #[test]
    fn field_errors_name_their_inputs_and_unknown_fields_fall_back() {
        let problem = Problem::invalid(vec![
            error::FieldError { field: "email".into(), message: "adresse invalide".into() },
            error::FieldError { field: "autre".into(), message: "non".into() },
        ]);
        let errors = errors_of(&problem, "contact", &["email"], "name").unwrap();
        assert_eq!((errors[0].id.as_str(), errors[1].field.as_str()), ("contact-email", "name"));
        assert!(errors_of(&Problem::not_found("x"), "contact", &[], "name").is_none());
    }
}
