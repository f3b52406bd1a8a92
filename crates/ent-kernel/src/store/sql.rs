//! Generic SQL conditions and keyset paging, shared by every capability's queries.

use crate::error::Problem;

/// A SQL condition with its bound values, composed into larger queries.
/// Clauses hold `?` markers, numbered `$1, $2, ...` only when rendered, so that
/// conditions can be combined with AND and OR freely.
#[derive(Debug, Default, Clone)]
pub struct Condition {
    clauses: Vec<String>,
    values: Vec<SqlValue>,
}

/// A value bound to a `?` of a [`Condition`].
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
}

/// A query over the `Any` driver, ready for more `bind`s.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Condition {
    /// Adds `template` (ANDed), where each `?` stands for the next value.
    pub fn push(&mut self, template: &str, values: &[&str]) {
        debug_assert_eq!(template.matches('?').count(), values.len());
        self.clauses.push(template.to_string());
        self.values.extend(values.iter().map(|v| SqlValue::Text(v.to_string())));
    }

    /// Adds `template` (ANDed) with one integer value.
    pub fn push_int(&mut self, template: &str, value: i64) {
        debug_assert_eq!(template.matches('?').count(), 1);
        self.clauses.push(template.to_string());
        self.values.push(SqlValue::Int(value));
    }

    /// `column IN (...)` over `values`, deduplicated, in conditions of at most 500
    /// values each (well under both backends' limits on bound parameters); none when
    /// there are no values.
    pub fn in_chunks(column: &str, mut values: Vec<String>) -> Vec<Condition> {
        values.sort_unstable();
        values.dedup();
        let chunks = values.chunks(500).map(|chunk| Condition {
            clauses: vec![format!("{column} IN ({})", vec!["?"; chunk.len()].join(", "))],
            values: chunk.iter().cloned().map(SqlValue::Text).collect(),
        });
        chunks.collect()
    }

    /// ANDs `prefix (inner) suffix`, e.g. a sub-select filtered by `inner`.
    pub fn and_wrapped(&mut self, prefix: &str, inner: Condition, suffix: &str) {
        self.clauses.push(format!("{prefix}{}{suffix}", inner.template()));
        self.values.extend(inner.values);
    }

    /// A condition that matches nothing.
    pub fn never() -> Condition {
        Condition { clauses: vec!["1 = 0".into()], values: vec![] }
    }

    /// Matches what any of `conditions` matches (nothing if there are none).
    pub fn any(conditions: Vec<Condition>) -> Condition {
        if conditions.is_empty() {
            return Condition::never();
        }
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        for c in conditions {
            clauses.push(format!("({})", c.template()));
            values.extend(c.values);
        }
        Condition { clauses: vec![format!("({})", clauses.join(" OR "))], values }
    }

    /// ANDs another condition into this one.
    pub fn and(&mut self, other: Condition) {
        self.clauses.push(format!("({})", other.template()));
        self.values.extend(other.values);
    }

    fn template(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }

    /// The SQL with `$n` placeholders from `$1`.
    pub fn sql(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for part in self.template().split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(head) => {
                    n += 1;
                    out.push_str(head);
                    out.push_str(&format!("${n}"));
                }
                None => out.push_str(part),
            }
        }
        out
    }

    /// What identifies `sql` run with this condition's values, for [`super::Store::cached`].
    pub fn cache_key(&self, sql: &str) -> String {
        format!("{sql}\u{0}{:?}", self.values)
    }

    pub fn values(&self) -> &[SqlValue] {
        &self.values
    }

    /// Binds the values in order onto a query built from [`Condition::sql`].
    pub fn bind<'q>(&'q self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for value in &self.values {
            query = match value {
                SqlValue::Text(s) => query.bind(s.as_str()),
                SqlValue::Int(i) => query.bind(*i),
            };
        }
        query
    }
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from rows fetched with `LIMIT size + 1`: the extra row, if any,
    /// only says that another page exists, whose cursor is the last kept row's.
    pub fn from_overfetch(mut items: Vec<T>, size: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if items.len() > size as usize {
            items.truncate(size as usize);
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// The paging parameters of a list route's query (`?cursor=…&limit=…`).
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
pub struct PageQuery {
    pub cursor: Option<String>,
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

pub fn page_size(limit: Option<u32>) -> Result<u32, Problem> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(Problem::invalid_field("limit", format!("entre 1 et {MAX_PAGE}"))),
    }
}
