//! Pagination of the list routes: `?limit=` (1 to 1000, default 100) and the opaque
//! `?cursor=` a previous page's `next_cursor` gave; `next_cursor` is `null` on the last page.
//!
//! Items are ordered by a unique key (a name or slug) and a cursor stands for "after this
//! key", so a page never repeats or skips an item that exists throughout the walk, even when
//! others are added or removed between pages (no offsets).

use crate::error::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;

/// Items per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most `limit` may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Cursors carry a version so their format can change without misreading old ones.
const CURSOR_TAG: &str = "a1:";

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// `?limit=` checked: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn page_limit(limit: Option<usize>) -> Result<usize, Error> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::BadRequest(format!(
            "limit={limit}: use 1 to {MAX_LIMIT}"
        )))
    }
}

/// One page of `items` (any order; sorted here by `key`, which must be unique) and the
/// cursor of the next page, if there is one.
pub fn paginate<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    q: &PageQuery,
) -> Result<(Vec<T>, Option<String>), Error> {
    let limit = page_limit(q.limit)?;
    items.sort_by(|a, b| key(a).cmp(key(b)));
    if let Some(c) = &q.cursor {
        let after = decode_cursor(c)?;
        items.retain(|i| key(i) > after.as_str());
    }
    let next = (items.len() > limit).then(|| encode_cursor(key(&items[limit - 1])));
    items.truncate(limit);
    Ok((items, next))
}

/// The opaque cursor for "after `key`".
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}{key}"))
}

/// The key a cursor of [`encode_cursor`] stands for; 400 for anything else.
pub fn decode_cursor(cursor: &str) -> Result<String, Error> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(CURSOR_TAG).map(str::to_owned))
        .ok_or_else(|| {
            Error::BadRequest(
                "cursor: not one this API gave out; pass a page's next_cursor unchanged".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<usize>, cursor: Option<String>) -> PageQuery {
        PageQuery { limit, cursor }
    }

    #[test]
    fn walks_every_item_once_in_key_order() {
        let items: Vec<String> = (0..25).rev().map(|i| format!("n{i:02}")).collect();
        let (mut seen, mut cursor) = (Vec::new(), None);
        loop {
            let (page, next) = paginate(items.clone(), |s| s, &q(Some(10), cursor)).unwrap();
            assert!(page.len() <= 10);
            seen.extend(page);
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let mut want = items.clone();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn exact_fit_has_no_next_page_and_bad_input_is_refused() {
        let items = vec!["a".to_string(), "b".to_string()];
        let (page, next) = paginate(items.clone(), |s| s, &q(Some(2), None)).unwrap();
        assert_eq!((page.len(), next), (2, None));
        for bad in [
            q(Some(0), None),
            q(Some(1001), None),
            q(None, Some("%%".into())),
        ] {
            let e = paginate(items.clone(), |s| s, &bad).unwrap_err();
            assert_eq!(e.status(), 400);
        }
        // Valid base64 that this API never made.
        let forged = q(None, Some(URL_SAFE_NO_PAD.encode("x")));
        assert!(paginate(items, |s| s, &forged).is_err());
    }
}
