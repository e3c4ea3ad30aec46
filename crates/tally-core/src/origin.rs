//! Web pages as callers. A browser names the page a request comes from in its `Origin` header,
//! which the page's script cannot change; the server uses it to decide which pages may talk to
//! it (CORS) and to stop a page from using a handshake code, or a domain, that is not its own.
//!
//! | request | rule |
//! | --- | --- |
//! | no `Origin` header (native SDKs) | nothing is checked here |
//! | `Origin` that is not `http(s)://host[:port]` (`null` from a sandboxed frame or a file, paths, user info) | no code allows it |
//! | a code without domain patterns | allows no origin: a code opens to web pages only by naming their domains |
//! | the origin's host matches one of the code's domain patterns (`*` and `?` wildcards, case ignored, any scheme and port) | the code allows the origin |
//! | a preflight (`OPTIONS`): the code is sealed inside the request that follows, unknown yet | allowed when some code allows the origin ([`any_code_allows`]) |
//! | the request's code does not allow the origin ([`code_allows`]) | refused |
//! | a per-domain license could count the request, and the request names a domain other than the origin's host ([`speaks_for`]) | refused: a page counts as its own domain only |
//!
//! A host is compared as a browser serializes it: lowercase, IPv6 addresses in brackets
//! (`[::1]`), which is also what a page reads in `location.hostname`.

use crate::validation::wildcard_match;

/// A request's `Origin` that does not fit [`code_allows`] or [`speaks_for`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginRefusal {
    #[error("the page's origin `{0}` is not an http or https origin")]
    Malformed(String),
    #[error("the handshake code does not name the domain of the page's origin `{0}`")]
    NotAllowed(String),
    #[error("the request names domain `{requested}` but comes from a page on `{host}`")]
    OtherDomain { requested: String, host: String },
}

/// The host of a serialized origin (`scheme://host[:port]`), lowercase; `None` for anything else.
pub fn host_of(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let host = if rest.starts_with('[') {
        // An IPv6 address, with its brackets, then perhaps a port.
        let end = rest.find(']')?;
        let (host, after) = rest.split_at(end + 1);
        port_only(after)?;
        host
    } else {
        match rest.split_once(':') {
            Some((host, port)) => {
                port_only(&format!(":{port}"))?;
                host
            }
            None => rest,
        }
    };
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let bracketed = inner.len() != host.len();
    let valid = !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b) || (bracketed && b == b':'));
    valid.then(|| host.to_ascii_lowercase())
}

/// Accepts nothing or `:digits`.
fn port_only(text: &str) -> Option<()> {
    if text.is_empty() {
        return Some(());
    }
    let digits = text.strip_prefix(':')?;
    (!digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(())
}

/// Whether a code with these domain patterns allows a page on `origin`.
pub fn code_allows(domain_patterns: &[String], origin: &str) -> Result<(), OriginRefusal> {
    let host = host_of(origin).ok_or_else(|| OriginRefusal::Malformed(origin.to_owned()))?;
    let named = domain_patterns
        .iter()
        .any(|p| wildcard_match(&p.trim().to_ascii_lowercase(), &host));
    if named {
        Ok(())
    } else {
        Err(OriginRefusal::NotAllowed(origin.to_owned()))
    }
}

/// Whether any of the codes, each given by its domain patterns, allows a page on `origin`: what
/// a preflight can know before the request names its code.
pub fn any_code_allows<'a>(codes: impl IntoIterator<Item = &'a [String]>, origin: &str) -> bool {
    codes
        .into_iter()
        .any(|patterns| code_allows(patterns, origin).is_ok())
}

/// Whether a request from a page on `origin` may name `requested` as its domain when a per-domain
/// license could count it (`counts_domains`): only its own host. A page could otherwise take the
/// place of a domain already counted, or spend another domain's place.
pub fn speaks_for(
    origin: &str,
    requested: Option<&str>,
    counts_domains: bool,
) -> Result<(), OriginRefusal> {
    let host = host_of(origin).ok_or_else(|| OriginRefusal::Malformed(origin.to_owned()))?;
    match requested {
        Some(domain) if counts_domains && !domain.trim().eq_ignore_ascii_case(&host) => {
            Err(OriginRefusal::OtherDomain {
                requested: domain.to_owned(),
                host,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn origins_are_read_as_browsers_write_them() {
        assert_eq!(
            host_of("https://Shop.Example.com"),
            Some("shop.example.com".into())
        );
        assert_eq!(host_of("http://127.0.0.1:8080"), Some("127.0.0.1".into()));
        assert_eq!(host_of("http://[::1]:5173"), Some("[::1]".into()));
        assert_eq!(host_of("http://[::1]"), Some("[::1]".into()));
        for bad in [
            "null",
            "file://",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "https://example.com:",
            "https://example.com:80:80",
            "https://example.com:123456",
            "https://",
            "example.com",
            "http://[::1",
            "http://[::1]x",
            "http://a]b",
            "http://[]",
        ] {
            assert_eq!(host_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_code_allows_the_pages_its_domains_name_and_no_other() {
        let shop = patterns(&["shop.example.com", "*.shop.example.com"]);
        assert_eq!(code_allows(&shop, "https://shop.example.com"), Ok(()));
        assert_eq!(
            code_allows(&shop, "http://eu.shop.example.com:8443"),
            Ok(())
        );
        assert_eq!(code_allows(&shop, "https://SHOP.example.com"), Ok(()));
        assert_eq!(
            code_allows(&shop, "https://evil.example.com"),
            Err(OriginRefusal::NotAllowed("https://evil.example.com".into()))
        );
        assert_eq!(
            code_allows(&shop, "null"),
            Err(OriginRefusal::Malformed("null".into()))
        );
        // A code that names no domain opens to no page at all.
        assert!(code_allows(&[], "https://shop.example.com").is_err());
        // Patterns are compared as the portal shows them, case and spaces aside.
        assert_eq!(
            code_allows(
                &patterns(&[" Shop.Example.COM "]),
                "https://shop.example.com"
            ),
            Ok(())
        );
    }

    #[test]
    fn a_preflight_passes_when_some_code_allows_the_origin() {
        let codes = [
            patterns(&["127.0.0.1"]),
            patterns(&[]),
            patterns(&["*.partner.test"]),
        ];
        let codes = || codes.iter().map(Vec::as_slice);
        assert!(any_code_allows(codes(), "http://127.0.0.1:4000"));
        assert!(any_code_allows(codes(), "https://app.partner.test"));
        assert!(!any_code_allows(codes(), "http://localhost:4000"));
        assert!(!any_code_allows(codes(), "null"));
        assert!(!any_code_allows(std::iter::empty(), "http://127.0.0.1"));
    }

    #[test]
    fn a_page_counts_as_its_own_domain_only() {
        assert_eq!(
            speaks_for("https://shop.example.com", Some("Shop.Example.com"), true),
            Ok(())
        );
        assert_eq!(speaks_for("https://shop.example.com", None, true), Ok(()));
        assert_eq!(
            speaks_for("https://shop.example.com", Some("other.example.com"), true),
            Err(OriginRefusal::OtherDomain {
                requested: "other.example.com".into(),
                host: "shop.example.com".into()
            })
        );
        // Without a per-domain license to count it, the domain is only matched against patterns.
        assert_eq!(
            speaks_for("https://shop.example.com", Some("other.example.com"), false),
            Ok(())
        );
        assert!(speaks_for("null", Some("shop.example.com"), false).is_err());
    }
}
