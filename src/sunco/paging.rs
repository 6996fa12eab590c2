//! Cursor pagination and filters, in the API's deepObject query style
//! (`page[after]=…`, `page[size]=…`, `filter[userId]=…`).

use serde::{Deserialize, Serialize};

use super::ids::is_resource_id;

/// The smallest and largest `page[size]` the API accepts; 25 when not given.
pub(crate) const PAGE_SIZE_MIN: u32 = 1;
pub(crate) const PAGE_SIZE_MAX: u32 = 100;
pub(crate) const PAGE_SIZE_DEFAULT: u32 = 25;
/// ListMessages ignores `page[size]` and always pages by this many.
pub(crate) const MESSAGE_PAGE_SIZE: usize = 100;

/// Where to start a page. `after` and `before` are mutually exclusive, so they are one enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Cursor {
    After(String),
    Before(String),
}

/// `page[...]` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub cursor: Option<Cursor>,
    pub size: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("page[after] and page[before] cannot be used together")]
    BothCursors,
    #[error("page cursors are record ids of exactly 24 hex characters")]
    BadCursor,
    #[error("page[size] must be a whole number from 1 to 100")]
    BadSize,
}

impl Page {
    pub(crate) fn after(id: impl Into<String>) -> Self {
        Self {
            cursor: Some(Cursor::After(id.into())),
            size: None,
        }
    }

    pub(crate) fn before(id: impl Into<String>) -> Self {
        Self {
            cursor: Some(Cursor::Before(id.into())),
            size: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_size(mut self, size: u32) -> Self {
        self.size = Some(size);
        self
    }

    /// Parses the raw `page[after]`, `page[before]` and `page[size]` values the way the API
    /// checks them.
    pub fn parse(
        after: Option<&str>,
        before: Option<&str>,
        size: Option<&str>,
    ) -> Result<Self, PageError> {
        let cursor = match (after, before) {
            (Some(_), Some(_)) => return Err(PageError::BothCursors),
            (Some(a), None) => Some(Cursor::After(a.to_owned())),
            (None, Some(b)) => Some(Cursor::Before(b.to_owned())),
            (None, None) => None,
        };
        if let Some(Cursor::After(id) | Cursor::Before(id)) = &cursor
            && !is_resource_id(id)
        {
            return Err(PageError::BadCursor);
        }
        let size = match size {
            None => None,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&n) => Some(n),
                _ => return Err(PageError::BadSize),
            },
        };
        Ok(Self { cursor, size })
    }

    /// The query pairs, in deepObject style.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match &self.cursor {
            Some(Cursor::After(id)) => out.push(("page[after]".to_owned(), id.clone())),
            Some(Cursor::Before(id)) => out.push(("page[before]".to_owned(), id.clone())),
            None => {}
        }
        if let Some(size) = self.size {
            out.push(("page[size]".to_owned(), size.to_string()));
        }
        out
    }
}

/// Renders `filter[name]=value` pairs.
pub(crate) fn filter_pair(name: &str, value: impl Into<String>) -> (String, String) {
    (format!("filter[{name}]"), value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5e1606762556d93e9c176f69";

    #[test]
    fn parses_like_the_api() {
        assert_eq!(Page::parse(None, None, None).unwrap(), Page::default());
        assert_eq!(
            Page::parse(Some(ID), None, Some("10")).unwrap(),
            Page::after(ID).with_size(10)
        );
        assert_eq!(
            Page::parse(Some(ID), Some(ID), None),
            Err(PageError::BothCursors)
        );
        assert_eq!(
            Page::parse(Some("abc"), None, None),
            Err(PageError::BadCursor)
        );
        for bad in ["0", "101", "-1", "ten", ""] {
            assert_eq!(
                Page::parse(None, None, Some(bad)),
                Err(PageError::BadSize),
                "{bad}"
            );
        }
        assert!(Page::parse(None, None, Some("100")).is_ok());
    }

    #[test]
    fn renders_deep_object_pairs() {
        assert_eq!(
            Page::before(ID).with_size(5).query_pairs(),
            vec![
                ("page[before]".to_owned(), ID.to_owned()),
                ("page[size]".to_owned(), "5".to_owned())
            ]
        );
        assert_eq!(
            filter_pair("userExternalId", "demo-user-01"),
            (
                "filter[userExternalId]".to_owned(),
                "demo-user-01".to_owned()
            )
        );
    }
}
