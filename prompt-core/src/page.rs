//! Keyset pagination: page requests, pages and opaque cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Items per page when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most items a page may hold.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Which page to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Items per page, 1–500; `None` means 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The first page with the given size.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit: Some(limit),
            cursor: None,
        }
    }

    /// The validated page size.
    pub fn limit(&self) -> Result<u32> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(0) => Err(Error::invalid("limit", "must be at least 1")),
            Some(n) if n > MAX_PAGE_SIZE => Err(Error::invalid(
                "limit",
                format!("is {n}; the maximum is {MAX_PAGE_SIZE}"),
            )),
            Some(n) => Ok(n),
        }
    }

    /// Decode the cursor into the backend's position type.
    pub fn position<P: DeserializeOwned>(&self) -> Result<Option<P>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// One page of a list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page, in list order.
    pub items: Vec<T>,
    /// Opaque cursor of the next page; `None` when this is the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Build a page from up to `limit + 1` items fetched in order: if the extra one is
    /// there, it is dropped and a cursor made from the last kept item.
    pub fn from_overfetch<P: Serialize>(
        mut items: Vec<T>,
        limit: u32,
        position: impl Fn(&T) -> P,
    ) -> Result<Self> {
        let limit = limit as usize;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| encode_cursor(&position(last)))
                .transpose()?
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Map the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Encode a keyset position as an opaque, URL-safe cursor.
pub fn encode_cursor<P: Serialize>(position: &P) -> Result<String> {
    let json = serde_json::to_vec(position)
        .map_err(|e| Error::internal(format!("cursor encoding: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Decode a cursor made by [`encode_cursor`]; anything else is `InvalidInput` on `cursor`.
pub fn decode_cursor<P: DeserializeOwned>(cursor: &str) -> Result<P> {
    let bad = || Error::invalid("cursor", "is not a cursor returned by this API");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(PageRequest::default().limit().unwrap(), 50);
        assert!(PageRequest::first(0).limit().is_err());
        assert!(PageRequest::first(501).limit().is_err());
        assert_eq!(PageRequest::first(500).limit().unwrap(), 500);
    }

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let c = encode_cursor(&("a", 3)).unwrap();
        let p: (String, i32) = decode_cursor(&c).unwrap();
        assert_eq!(p, ("a".to_string(), 3));
        assert!(decode_cursor::<(String, i32)>("%%%").is_err());
        assert!(decode_cursor::<(String, i32)>(&encode_cursor(&1).unwrap()).is_err());
    }

    #[test]
    fn overfetch() {
        let p = Page::from_overfetch(vec![1, 2, 3], 2, |x| *x).unwrap();
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(
            decode_cursor::<i32>(p.next_cursor.as_deref().unwrap()).unwrap(),
            2
        );
        let p = Page::from_overfetch(vec![1, 2], 2, |x| *x).unwrap();
        assert!(p.next_cursor.is_none());
    }
}
