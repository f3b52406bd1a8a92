//! The list component every console list shares: its query parameters (`page`,
//! `taille` capped at [`MAX_SIZE`], `tri` among the columns the list declares,
//! `-` in front for descending, `q` the search, and the typed filters the list
//! declares), the query (total count, then one page in the chosen order, through
//! the store's [`Condition`] and [`Page`]), and what the `list.html` macros render:
//! the search form, a DSFR table with caption, `scope` headers and sortable column
//! headers carrying `aria-sort`, and the `fr-pagination` pager whose links keep the
//! other parameters.
//!
//! A list declared `keyset` (one whose rows come and go while it is read, like the
//! support queue) pages by cursor instead of by number: « Suivant » carries
//! `curseur`, the sort key and tie-break of the last row shown, and the next page
//! starts after that row; « Précédent » carries `avant`, the first row's, and the
//! page ends before it. A row added or removed meanwhile then shifts no other row
//! from one page to the next: none is shown twice, none skipped.
//!
//! Scope belongs to the condition the page passes: it is applied in the query,
//! before counting and paging, so that what is out of the caller's scope is never
//! counted nor shown, exactly like what does not exist.

use base64::Engine;
use ent_kernel::error::Problem;
use ent_kernel::store::{Condition, Page, Store};
use serde::Serialize;

/// Rows per page unless `taille` says otherwise.
pub const DEFAULT_SIZE: u32 = 50;
/// The largest `taille` a page accepts (larger values are capped).
pub const MAX_SIZE: u32 = 100;
/// The longest search or filter text kept.
const MAX_TEXT: usize = 100;
/// The longest cursor kept.
const MAX_CURSOR: usize = 1000;

/// The `LIKE` pattern of the lower-case values that contain the search text `q`; the `%` and
/// `_` typed in `q` are dropped (they would match anything).
pub fn contains_pattern(q: &str) -> String {
    format!("%{}%", q.to_lowercase().replace(['%', '_'], ""))
}

/// A column of a list: its key in `tri`, its header, and the SQL it sorts by (none:
/// not sortable).
#[derive(Debug)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub order_by: Option<&'static str>,
}

/// A filter of a list: its parameter, its label, and its allowed values with their
/// labels (none: free text).
#[derive(Debug)]
pub struct Filter {
    pub key: &'static str,
    pub label: &'static str,
    pub choices: &'static [(&'static str, &'static str)],
}

/// What a list declares: its columns (the first one is each row's header), its
/// filters, the column it is sorted by by default, the SQL that breaks ties (a
/// unique column, so that pages never overlap), the label of its search field
/// (none: no search), and whether it pages by cursor (`keyset`: then its sort
/// expressions and tie-break must be text, never null).
#[derive(Debug)]
pub struct ListSpec {
    pub columns: &'static [Column],
    pub filters: &'static [Filter],
    pub default_sort: &'static str,
    pub tie_break: &'static str,
    pub search: Option<&'static str>,
    pub keyset: bool,
}

impl ListSpec {
    fn column(&self, key: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.key == key && c.order_by.is_some())
    }

    fn filter(&self, key: &str) -> Option<&'static Filter> {
        self.filters.iter().find(|f| f.key == key)
    }
}

/// Where a keyset page starts: after the row of `curseur`, or before the row of `avant`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    After(Key),
    Before(Key),
}

/// A row's place in a keyset list: its sort key and its tie-break, as text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Key(String, String);

impl Key {
    /// The key as a URL-safe cursor.
    fn encode(&self) -> String {
        let raw = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// The key of a cursor; none when it is not one (the list then starts over).
    fn decode(cursor: &str) -> Option<Key> {
        let cursor = cursor.trim();
        if cursor.len() > MAX_CURSOR {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

/// The parameters of a list request, checked against its [`ListSpec`]: anything
/// unknown or malformed falls back to the default rather than failing the page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListParams {
    pub page: u32,
    pub size: u32,
    pub sort: &'static str,
    pub descending: bool,
    pub q: Option<String>,
    pub filters: Vec<(&'static str, String)>,
    /// Where a keyset list's page starts (none: at the top).
    pub cursor: Option<Cursor>,
}

/// A text parameter, trimmed, if not empty and not too long.
fn text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty() && value.chars().count() <= MAX_TEXT).then(|| value.to_string())
}

impl ListParams {
    /// The parameters of the query string's `pairs` for the list `spec`.
    pub fn parse(spec: &ListSpec, pairs: &[(String, String)]) -> ListParams {
        let mut params = ListParams {
            page: 1,
            size: DEFAULT_SIZE,
            sort: spec.default_sort,
            descending: false,
            q: None,
            filters: Vec::new(),
            cursor: None,
        };
        for (key, value) in pairs {
            match key.as_str() {
                "page" => params.page = value.trim().parse().ok().filter(|p| *p >= 1).unwrap_or(1),
                "taille" => {
                    params.size =
                        value.trim().parse().ok().filter(|s| *s >= 1).map_or(DEFAULT_SIZE, |s: u32| s.min(MAX_SIZE))
                }
                "tri" => {
                    let (descending, key) = match value.trim().strip_prefix('-') {
                        Some(key) => (true, key),
                        None => (false, value.trim()),
                    };
                    if let Some(column) = spec.column(key) {
                        params.sort = column.key;
                        params.descending = descending;
                    }
                }
                "q" if spec.search.is_some() => params.q = text(value),
                "curseur" if spec.keyset => params.cursor = Key::decode(value).map(Cursor::After),
                "avant" if spec.keyset => params.cursor = Key::decode(value).map(Cursor::Before),
                other => {
                    let Some(filter) = spec.filter(other) else { continue };
                    let Some(value) = text(value) else { continue };
                    let allowed = filter.choices.is_empty() || filter.choices.iter().any(|(v, _)| *v == value);
                    if allowed && params.filter(filter.key).is_none() {
                        params.filters.push((filter.key, value));
                    }
                }
            }
        }
        params
    }

    /// The value of filter `key`, if given.
    pub fn filter(&self, key: &str) -> Option<&str> {
        self.filters.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// The SQL the page is sorted by.
    fn sort_sql(&self, spec: &ListSpec) -> &'static str {
        spec.column(self.sort).and_then(|c| c.order_by).unwrap_or(spec.tie_break)
    }

    /// The `ORDER BY` of the page: the sorted column, then the tie-break.
    fn order_by(&self, spec: &ListSpec) -> String {
        order_by(self.sort_sql(spec), spec.tie_break, self.descending)
    }

    /// The `tri` value of these parameters.
    fn sort_value(&self) -> String {
        if self.descending {
            format!("-{}", self.sort)
        } else {
            self.sort.to_string()
        }
    }

    /// The query string of these parameters with `page` and `tri` replaced (defaults
    /// left out), starting with `?` (or empty).
    fn query_string(&self, spec: &ListSpec, page: u32, sort: &str) -> String {
        self.query_with(spec, sort, (page != 1).then(|| ("page", page.to_string())))
    }

    /// The query string of these parameters with `tri` replaced and `last` (the page:
    /// its number or its cursor) at the end.
    fn query_with(&self, spec: &ListSpec, sort: &str, last: Option<(&str, String)>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(q) = &self.q {
            pairs.push(("q", q.clone()));
        }
        pairs.extend(self.filters.iter().map(|(k, v)| (*k, v.clone())));
        if sort != spec.default_sort {
            pairs.push(("tri", sort.to_string()));
        }
        if self.size != DEFAULT_SIZE {
            pairs.push(("taille", self.size.to_string()));
        }
        pairs.extend(last);
        match serde_urlencoded::to_string(&pairs) {
            Ok(query) if !query.is_empty() => format!("?{query}"),
            _ => String::new(),
        }
    }
}

/// `ORDER BY sort, tie` in one direction.
fn order_by(sort: &str, tie: &str, descending: bool) -> String {
    let direction = if descending { "DESC" } else { "ASC" };
    format!("{sort} {direction}, {tie} {direction}")
}

/// One page of a list and how many rows match in all.
#[derive(Debug)]
pub struct Listed<T> {
    pub page: Page<T>,
    pub total: i64,
    /// The page shown (the one asked, brought back to the last page if beyond it).
    pub number: u32,
    /// A keyset list's cursor of the page before (none on the first page).
    pub previous: Option<String>,
}

/// Number of pages of `total` rows at `size` per page (at least one).
fn pages_of(total: i64, size: u32) -> u32 {
    let size = i64::from(size.max(1));
    u32::try_from(((total.max(0) + size - 1) / size).max(1)).unwrap_or(u32::MAX)
}

/// The rows `SELECT {columns} FROM {from} WHERE {cond}` of the page `params` asks, in
/// the order it asks, and the count of every matching row. `cond` carries the
/// caller's scope. A page beyond the last shows the last.
pub async fn fetch<T>(
    store: &Store,
    spec: &ListSpec,
    params: &ListParams,
    columns: &str,
    from: &str,
    cond: &Condition,
) -> Result<Listed<T>, Problem>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let count_sql = format!("SELECT COUNT(*) FROM {from} WHERE {}", cond.sql());
    let total = count(store, &count_sql, cond).await?;
    if spec.keyset {
        let query = Keyset { store, spec, params, columns, from, cond };
        return query.page(total).await;
    }
    let number = params.page.min(pages_of(total, params.size));
    let offset = i64::from(number - 1) * i64::from(params.size);
    let sql = format!(
        "SELECT {columns} FROM {from} WHERE {} ORDER BY {} LIMIT {} OFFSET {offset}",
        cond.sql(),
        params.order_by(spec),
        params.size + 1,
    );
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    let items = rows.iter().map(T::from_row).collect::<Result<Vec<T>, _>>()?;
    let page = Page::from_overfetch(items, params.size, |_| (number + 1).to_string());
    Ok(Listed { page, total, number, previous: None })
}

/// The query of a keyset list's page.
struct Keyset<'a> {
    store: &'a Store,
    spec: &'a ListSpec,
    params: &'a ListParams,
    columns: &'a str,
    from: &'a str,
    cond: &'a Condition,
}

impl Keyset<'_> {
    /// The page the cursor asks: after its row, or before it; a page before that reaches
    /// the top is the first page.
    async fn page<T>(&self, total: i64) -> Result<Listed<T>, Problem>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let size = self.params.size as usize;
        let (rows, previous, next) = match &self.params.cursor {
            Some(Cursor::Before(key)) => {
                let mut rows = self.rows(Some(key), true).await?;
                if rows.len() <= size {
                    return self.forward(None, total).await;
                }
                rows.truncate(size);
                rows.reverse();
                let previous = rows.first().map(|(_, k)| k.encode());
                let next = rows.last().map(|(_, k)| k.encode());
                (rows, previous, next)
            }
            Some(Cursor::After(key)) => return self.forward(Some(key), total).await,
            None => return self.forward(None, total).await,
        };
        let items = rows.into_iter().map(|(item, _)| item).collect();
        Ok(Listed { page: Page { items, next_cursor: next }, total, number: 1, previous })
    }

    /// The page after `key` (from the top without).
    async fn forward<T>(&self, key: Option<&Key>, total: i64) -> Result<Listed<T>, Problem>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let size = self.params.size as usize;
        let mut rows = self.rows(key, false).await?;
        let next = (rows.len() > size).then(|| rows[size - 1].1.encode());
        rows.truncate(size);
        let previous = key.map(|k| rows.first().map_or_else(|| k.encode(), |(_, first)| first.encode()));
        let items = rows.into_iter().map(|(item, _)| item).collect();
        Ok(Listed { page: Page { items, next_cursor: next }, total, number: 1, previous })
    }

    /// Up to a page and one rows past `key` in the list's order (`backward`: before it,
    /// nearest first), each with its key.
    async fn rows<T>(&self, key: Option<&Key>, backward: bool) -> Result<Vec<(T, Key)>, Problem>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let (sort, tie) = (self.params.sort_sql(self.spec), self.spec.tie_break);
        let descending = self.params.descending != backward;
        let mut cond = self.cond.clone();
        if let Some(Key(k, t)) = key {
            let op = if descending { "<" } else { ">" };
            cond.push(&format!("({sort} {op} ? OR ({sort} = ? AND {tie} {op} ?))"), &[k, k, t]);
        }
        let sql = format!(
            "SELECT {}, {sort} AS list_key, {tie} AS list_tie FROM {} WHERE {} ORDER BY {} LIMIT {}",
            self.columns,
            self.from,
            cond.sql(),
            order_by(sort, tie, descending),
            self.params.size + 1,
        );
        let rows = cond.bind(sqlx::query(&sql)).fetch_all(self.store.pool()).await?;
        let keyed = rows.iter().map(|row| -> Result<(T, Key), sqlx::Error> {
            let key = Key(sqlx::Row::try_get(row, "list_key")?, sqlx::Row::try_get(row, "list_tie")?);
            Ok((T::from_row(row)?, key))
        });
        Ok(keyed.collect::<Result<Vec<_>, sqlx::Error>>()?)
    }
}

/// `COUNT(*)` of `sql` with `cond`'s values bound.
async fn count(store: &Store, sql: &str, cond: &Condition) -> Result<i64, Problem> {
    let row = cond.bind(sqlx::query(sql)).fetch_one(store.pool()).await?;
    Ok(sqlx::Row::try_get::<i64, _>(&row, 0)?)
}

/// A cell of a table: its text, if it is a link, where to, and a warning badge after it.
#[derive(Serialize, Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
    pub warning: Option<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), href: None, warning: None }
    }

    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Cell {
        Cell { text: text.into(), href: Some(href.into()), warning: None }
    }

    /// The cell with `warning` (if any) shown as a warning badge after its text.
    pub fn warning(self, warning: Option<String>) -> Cell {
        Cell { warning, ..self }
    }
}

/// A column header: sortable ones link to the list sorted by them (the other way
/// round when they already sort it).
#[derive(Serialize, Debug)]
pub struct Header {
    pub label: &'static str,
    pub href: Option<String>,
    /// `ascending`, `descending` or `none` (only on sortable headers).
    pub aria_sort: Option<&'static str>,
}

/// A filter as the search form shows it.
#[derive(Serialize, Debug)]
pub struct FilterView {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub choices: Vec<Choice>,
}

#[derive(Serialize, Debug)]
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// A link of the pager: `href` absent when disabled or current.
#[derive(Serialize, Debug)]
pub struct PagerLink {
    pub label: String,
    pub title: String,
    pub href: Option<String>,
    pub current: bool,
    /// `first`, `prev`, `next`, `last`, or empty for a page number.
    pub kind: &'static str,
}

/// What the `list.html` macros render.
#[derive(Serialize, Debug)]
pub struct ListView {
    pub id: &'static str,
    pub path: String,
    pub caption: String,
    pub search: Option<&'static str>,
    pub q: String,
    pub sort: String,
    pub size: u32,
    pub filters: Vec<FilterView>,
    pub headers: Vec<Header>,
    pub rows: Vec<Vec<Cell>>,
    pub total: i64,
    pub page: u32,
    pub pages: u32,
    pub pager: Vec<PagerLink>,
    /// Paged by cursor: no page numbers.
    pub keyset: bool,
    /// What the page's title adds to the list's name ([`title_detail`]).
    pub title_detail: String,
}

/// Page numbers shown around the current one.
const AROUND: u32 = 2;

impl ListView {
    /// The view of list `id` at `path` (`caption` its table's), page `listed`,
    /// its rows already turned into cells.
    pub fn new<T>(
        id: &'static str,
        path: &str,
        caption: impl Into<String>,
        spec: &ListSpec,
        params: &ListParams,
        listed: &Listed<T>,
        rows: Vec<Vec<Cell>>,
    ) -> ListView {
        let pages = pages_of(listed.total, params.size);
        let filters = filter_views(spec, params);
        let page = (!spec.keyset).then_some((listed.number, pages));
        let title_detail = title_detail(params.q.as_deref().unwrap_or_default(), &filters, page);
        ListView {
            id,
            path: path.to_string(),
            caption: caption.into(),
            search: spec.search,
            q: params.q.clone().unwrap_or_default(),
            sort: params.sort_value(),
            size: params.size,
            filters,
            headers: headers(spec, params, path),
            rows,
            total: listed.total,
            page: listed.number,
            pages,
            pager: if spec.keyset {
                cursor_pager(spec, params, path, listed)
            } else {
                pager(spec, params, path, listed.number, pages)
            },
            keyset: spec.keyset,
            title_detail,
        }
    }
}

/// What a list page's title says besides the list's name (RGAA 8.6: each page its own
/// title): the search, the filters applied, and the page when there are several
/// (`page`: number and count; `None` for a list paged by cursor).
fn title_detail(q: &str, filters: &[FilterView], page: Option<(u32, u32)>) -> String {
    let mut parts = Vec::new();
    if !q.trim().is_empty() {
        parts.push(format!("recherche « {} »", q.trim()));
    }
    for f in filters {
        let chosen = f.choices.iter().find(|c| c.selected).map_or(f.value.as_str(), |c| c.label);
        if !chosen.is_empty() {
            parts.push(format!("{} : {chosen}", f.label.to_lowercase()));
        }
    }
    if let Some((number, count)) = page.filter(|(_, count)| *count > 1) {
        parts.push(format!("page {number} sur {count}"));
    }
    parts.join(", ")
}

fn filter_views(spec: &ListSpec, params: &ListParams) -> Vec<FilterView> {
    spec.filters
        .iter()
        .map(|f| {
            let value = params.filter(f.key).unwrap_or_default().to_string();
            let choices = f.choices.iter().map(|(v, l)| Choice { value: v, label: l, selected: *v == value }).collect();
            FilterView { key: f.key, label: f.label, value, choices }
        })
        .collect()
}

fn headers(spec: &ListSpec, params: &ListParams, path: &str) -> Vec<Header> {
    spec.columns
        .iter()
        .map(|c| {
            if c.order_by.is_none() {
                return Header { label: c.label, href: None, aria_sort: None };
            }
            let sorted = params.sort == c.key;
            let aria_sort = match (sorted, params.descending) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            };
            let next = if sorted && !params.descending { format!("-{}", c.key) } else { c.key.to_string() };
            Header {
                label: c.label,
                href: Some(format!("{path}{}", params.query_string(spec, 1, &next))),
                aria_sort: Some(aria_sort),
            }
        })
        .collect()
}

fn pager(spec: &ListSpec, params: &ListParams, path: &str, current: u32, pages: u32) -> Vec<PagerLink> {
    let sort = params.sort_value();
    let href = |n: u32| Some(format!("{path}{}", params.query_string(spec, n, &sort)));
    let edge = |label: &str, kind, target: u32, enabled: bool| PagerLink {
        label: label.to_string(),
        title: label.to_string(),
        href: if enabled { href(target) } else { None },
        current: false,
        kind,
    };
    let mut links = vec![
        edge("Première page", "first", 1, current > 1),
        edge("Page précédente", "prev", current.saturating_sub(1).max(1), current > 1),
    ];
    let low = current.saturating_sub(AROUND).max(1);
    let high = (current + AROUND).min(pages);
    links.extend((low..=high).map(|n| PagerLink {
        label: n.to_string(),
        title: format!("Page {n}"),
        href: if n == current { None } else { href(n) },
        current: n == current,
        kind: "",
    }));
    links.push(edge("Page suivante", "next", (current + 1).min(pages), current < pages));
    links.push(edge("Dernière page", "last", pages, current < pages));
    links
}

/// A keyset list's pager: « Précédent » and « Suivant », each disabled at its end.
fn cursor_pager<T>(spec: &ListSpec, params: &ListParams, path: &str, listed: &Listed<T>) -> Vec<PagerLink> {
    let sort = params.sort_value();
    let link = |label: &str, title: &str, kind, cursor: Option<(&'static str, &String)>| PagerLink {
        label: label.to_string(),
        title: title.to_string(),
        href: cursor.map(|(name, c)| format!("{path}{}", params.query_with(spec, &sort, Some((name, c.clone()))))),
        current: false,
        kind,
    };
    vec![
        link("Précédent", "Page précédente", "prev", listed.previous.as_ref().map(|c| ("avant", c))),
        link("Suivant", "Page suivante", "next", listed.page.next_cursor.as_ref().map(|c| ("curseur", c))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ListSpec = ListSpec {
        columns: &[
            Column { key: "nom", label: "Nom", order_by: Some("sort_name") },
            Column { key: "code", label: "Code", order_by: Some("code") },
            Column { key: "commune", label: "Commune", order_by: None },
        ],
        filters: &[
            Filter { key: "type", label: "Type", choices: &[("commune", "Commune"), ("epci", "EPCI")] },
            Filter { key: "commune", label: "Commune", choices: &[] },
        ],
        default_sort: "nom",
        tie_break: "id",
        search: Some("Nom ou code"),
        keyset: false,
    };

    fn parse(query: &str) -> ListParams {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        ListParams::parse(&SPEC, &pairs)
    }

    #[test]
    fn parameters_are_checked_against_the_list() {
        let p = parse("page=3&taille=500&tri=-code&q=+Fres+&type=epci&commune=94034&autre=1");
        assert_eq!((p.page, p.size, p.sort, p.descending), (3, MAX_SIZE, "code", true));
        assert_eq!(p.q.as_deref(), Some("Fres"));
        assert_eq!(p.filters, vec![("type", "epci".to_string()), ("commune", "94034".to_string())]);
        assert_eq!(p.order_by(&SPEC), "code DESC, id DESC");
        let bad = parse("page=0&taille=x&tri=commune&type=lycee&q=");
        assert_eq!((bad.page, bad.size, bad.sort, bad.descending), (1, DEFAULT_SIZE, "nom", false));
        assert!(
            bad.filters.is_empty() && bad.q.is_none(),
            "unknown choices, unsortable columns and blanks are dropped"
        );
        assert_eq!(bad.order_by(&SPEC), "sort_name ASC, id ASC");
    }

    #[test]
    fn links_keep_the_other_parameters_and_headers_toggle_the_order() {
        let p = parse("q=é&type=epci&tri=code&taille=20&page=2");
        assert_eq!(p.query_string(&SPEC, 3, "code"), "?q=%C3%A9&type=epci&tri=code&taille=20&page=3");
        let h = headers(&SPEC, &p, "/organisations");
        assert_eq!(h[0].aria_sort, Some("none"));
        assert_eq!(h[0].href.as_deref(), Some("/organisations?q=%C3%A9&type=epci&taille=20"));
        assert_eq!(h[1].aria_sort, Some("ascending"));
        assert_eq!(h[1].href.as_deref(), Some("/organisations?q=%C3%A9&type=epci&tri=-code&taille=20"));
        assert!(h[2].href.is_none() && h[2].aria_sort.is_none());
    }

    #[test]
    fn the_pager_shows_pages_around_the_current_one() {
        assert_eq!((pages_of(0, 50), pages_of(50, 50), pages_of(51, 50)), (1, 1, 2));
        let p = parse("tri=-nom");
        let links = pager(&SPEC, &p, "/x", 2, 7);
        let labels: Vec<&str> = links.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["Première page", "Page précédente", "1", "2", "3", "4", "Page suivante", "Dernière page"]);
        assert_eq!(links[0].href.as_deref(), Some("/x?tri=-nom"));
        assert_eq!(links[1].href.as_deref(), Some("/x?tri=-nom"));
        assert!(links[3].current && links[3].href.is_none());
        assert_eq!(links[7].href.as_deref(), Some("/x?tri=-nom&page=7"));
        let last = pager(&SPEC, &p, "/x", 7, 7);
        assert!(last[last.len() - 1].href.is_none() && last[last.len() - 2].href.is_none());
    }

    #[test]
    fn the_macros_render_a_table_with_headers_and_a_pager() {
        let p = parse("tri=code&q=fres");
        let listed = Listed { page: Page { items: vec![1], next_cursor: None }, total: 120, number: 2, previous: None };
        let rows = vec![vec![Cell::link("Fresnes", "/organisations/1"), Cell::text("94034"), Cell::text("Fresnes")]];
        let view = ListView::new("orgs", "/organisations", "Organisations", &SPEC, &p, &listed, rows);
        let mut tera = tera::Tera::default();
        tera.add_raw_templates([
            ("list.html", include_str!("../../../templates/console/list.html")),
            ("page.html", "{% import \"list.html\" as list %}{{ list::all(list=view) }}"),
        ])
        .unwrap();
        let mut context = tera::Context::new();
        context.insert("view", &view);
        let html = tera.render("page.html", &context).unwrap();
        assert!(html.contains("<caption>Organisations — 120 résultats</caption>"), "{html}");
        assert!(html.contains(r#"<th scope="col" aria-sort="ascending">"#), "{html}");
        assert!(html.contains(r#"<th scope="row"><a href="&#x2F;organisations&#x2F;1">Fresnes</a></th>"#), "{html}");
        assert!(html.contains("Page 2 sur 3"), "{html}");
        assert!(html.contains(r#"href="&#x2F;organisations?q=fres&amp;tri=code&amp;page=3""#), "{html}");
        assert!(html.contains(r#"name="q" value="fres""#), "{html}");
    }

    #[test]
    fn a_keyset_list_reads_its_cursors_and_links_them_with_its_filters() {
        const KEYSET: ListSpec = ListSpec { keyset: true, ..SPEC };
        let key = Key("Fresnes".into(), "id-7".into());
        let pairs = |q: &str| -> Vec<(String, String)> { serde_urlencoded::from_str(q).unwrap() };
        let p = ListParams::parse(&KEYSET, &pairs(&format!("type=epci&tri=-code&curseur={}", key.encode())));
        assert_eq!(p.cursor, Some(Cursor::After(key.clone())));
        let before = ListParams::parse(&KEYSET, &pairs(&format!("avant={}", key.encode())));
        assert_eq!(before.cursor, Some(Cursor::Before(key.clone())));
        assert_eq!(ListParams::parse(&KEYSET, &pairs("curseur=pas%20un%20curseur")).cursor, None, "starts over");
        assert_eq!(ListParams::parse(&SPEC, &pairs(&format!("curseur={}", key.encode()))).cursor, None);
        let listed = Listed {
            page: Page { items: vec![1], next_cursor: Some("B".into()) },
            total: 3,
            number: 1,
            previous: Some("A".into()),
        };
        let links = cursor_pager(&KEYSET, &p, "/tickets", &listed);
        assert_eq!((links[0].label.as_str(), links[1].label.as_str()), ("Précédent", "Suivant"));
        assert_eq!(links[0].href.as_deref(), Some("/tickets?type=epci&tri=-code&avant=A"));
        assert_eq!(links[1].href.as_deref(), Some("/tickets?type=epci&tri=-code&curseur=B"));
        let first = Listed { previous: None, ..listed };
        assert!(cursor_pager(&KEYSET, &p, "/tickets", &first)[0].href.is_none());
    }
}
