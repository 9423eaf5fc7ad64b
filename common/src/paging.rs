//! Paged lists over HTTP, the same for every list route: `?limit=` (1 to [`MAX_LIMIT`],
//! default [`DEFAULT_LIMIT`]) and `?cursor=` (opaque, from the previous page). The body
//! stays a plain JSON array, as before lists were paged, so clients that know nothing of
//! paging get the first page; the next page's cursor goes in headers: `X-Next-Cursor`
//! and `Link: <...>; rel="next"`, absent on the last page.

use serde::Serialize;

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::validate::Validation;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// The paging parameters of a list request; `C` is the route's own cursor type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging<C> {
    pub limit: usize,
    pub cursor: Option<C>,
}

impl<C> Paging<C> {
    /// Reads `limit` and `cursor` (parsed by `parse_cursor`); a bad value of either is a
    /// 400 naming it.
    pub fn from_request(request: &Request, parse_cursor: impl Fn(&str) -> Option<C>) -> Result<Self, ApiError> {
        let limit = request.query_param("limit");
        let cursor = request.query_param("cursor");
        let parsed_limit = match limit.as_deref() {
            None => Some(DEFAULT_LIMIT),
            Some(text) if text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n))
            }
            Some(_) => None,
        };
        let parsed_cursor = cursor.as_deref().map(&parse_cursor);
        let mut v = Validation::new();
        v.check(parsed_limit.is_some(), "limit", &format!("limit must be a whole number from 1 to {MAX_LIMIT}"));
        v.check(!matches!(parsed_cursor, Some(None)), "cursor", "cursor is not valid: use the one given with the previous page");
        v.finish()?;
        Ok(Paging { limit: parsed_limit.unwrap_or(DEFAULT_LIMIT), cursor: parsed_cursor.flatten() })
    }
}

/// 200 with `items` as a JSON array and, when there is a next page, its cursor
/// (URL-safe) in `X-Next-Cursor` and a `Link` to it on the request's own path.
pub fn page_response(request: &Request, limit: usize, items: &impl Serialize, next: Option<&str>) -> Response {
    let response = Response::json(200, items);
    match next {
        None => response,
        Some(cursor) => {
            let encoded: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
            let link = format!("<{}?limit={limit}&cursor={encoded}>; rel=\"next\"", request.path);
            response.with_header(NEXT_CURSOR_HEADER, cursor).with_header("link", &link)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(query: &str) -> Result<Paging<u32>, ApiError> {
        Paging::from_request(&Request::new("GET", &format!("/api/x{query}")), |c| c.parse().ok())
    }

    #[test]
    fn defaults_bounds_and_cursor() {
        assert_eq!(paging("").unwrap(), Paging { limit: DEFAULT_LIMIT, cursor: None });
        assert_eq!(paging("?limit=1&cursor=7").unwrap(), Paging { limit: 1, cursor: Some(7) });
        assert_eq!(paging("?limit=100&other=x").unwrap().limit, 100);
        assert_eq!(paging("?limit=007").unwrap().limit, 7);
    }

    #[test]
    fn bad_values_are_a_400_naming_the_parameter() {
        let limit = r#"{"errors":[{"message":"limit must be a whole number from 1 to 100","field":"limit"}]}"#;
        for bad in ["0", "101", "-1", "abc", "", "1.5", "99999999999999999999", "+5", " 5"] {
            let err = paging(&format!("?limit={}", bad.replace(' ', "%20").replace('+', "%2B"))).unwrap_err();
            assert_eq!((err.status, err.body().as_str()), (400, limit), "limit={bad}");
        }
        let err = paging("?cursor=nope").unwrap_err();
        assert_eq!((err.status, err.errors[0].field.as_deref()), (400, Some("cursor")));
        assert_eq!(paging("?cursor=").unwrap_err().errors[0].field.as_deref(), Some("cursor"));
        assert_eq!(paging("?limit=0&cursor=x").unwrap_err().errors.len(), 2, "both reported at once");
    }

    #[test]
    fn the_next_page_goes_in_headers_and_the_body_stays_an_array() {
        let request = Request::new("GET", "/api/x?limit=2");
        let last = page_response(&request, 2, &[1, 2], None);
        assert_eq!((last.status, last.body.as_slice(), last.header("link")), (200, b"[1,2]".as_slice(), None));
        let more = page_response(&request, 2, &[1, 2], Some("12.ab"));
        assert_eq!(more.body, b"[1,2]");
        assert_eq!(more.header(NEXT_CURSOR_HEADER), Some("12.ab"));
        assert_eq!(more.header("link"), Some("</api/x?limit=2&cursor=12.ab>; rel=\"next\""));
    }
}
