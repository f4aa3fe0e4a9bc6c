//! A query string's `name=value` pairs, as `form_urlencoded::parse` yields them.
//!
//! Almost every query loopscope gets (`?ms=10`) has nothing to decode: no `%` escape, no
//! `+` for a space. Those are split on `&` and `=` and borrowed as they are, which is what
//! decoding would give; `form_urlencoded` decodes the rest. Its decoder went through
//! percent-decoding and a lossy UTF-8 check for every name and value, ~800 instructions of
//! the cheapest route (callgrind, `make test-cost`).
use std::borrow::Cow;

pub(crate) enum Pairs<'q> {
    /// What is left of a query with nothing to decode.
    Plain(&'q str),
    Encoded(form_urlencoded::Parse<'q>),
}

pub(crate) fn pairs(query: &str) -> Pairs<'_> {
    if query.bytes().any(|b| b == b'%' || b == b'+') {
        Pairs::Encoded(form_urlencoded::parse(query.as_bytes()))
    } else {
        Pairs::Plain(query)
    }
}

impl<'q> Iterator for Pairs<'q> {
    type Item = (Cow<'q, str>, Cow<'q, str>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            // Like form_urlencoded: empty pieces (`a=1&&b=2`) are skipped, a pair splits at
            // its first `=`, and a name without one has an empty value.
            Self::Plain(rest) => loop {
                if rest.is_empty() {
                    return None;
                }
                let (piece, tail) = split_at_byte(rest, b'&');
                *rest = tail;
                if !piece.is_empty() {
                    let (name, value) = split_at_byte(piece, b'=');
                    return Some((Cow::Borrowed(name), Cow::Borrowed(value)));
                }
            },
            Self::Encoded(parse) => parse.next(),
        }
    }
}

/// `s` before and after the first `sep` (an ASCII byte, so both are `str`s), or all of `s`
/// and nothing. A byte scan: `str::split_once` runs a searcher built for longer haystacks.
fn split_at_byte(s: &str, sep: u8) -> (&str, &str) {
    match s.bytes().position(|b| b == sep) {
        Some(at) => (&s[..at], &s[at + 1..]),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_what_form_urlencoded_yields() {
        let queries = [
            "",
            "ms=10",
            "ms=10&kind=io",
            "a=1&&b=2&",
            "&",
            "=x",
            "a",
            "a=",
            "a=b=c",
            "é=ü",
            "%41=1",
            "a+b=c+d",
            "a=%zz",
            "a=%ff",
            "x=1&y=%E2%82%AC&z",
        ];
        for query in queries {
            let ours: Vec<_> = pairs(query).collect();
            let theirs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
            assert_eq!(ours, theirs, "{query:?}");
        }
        assert!(matches!(pairs("ms=10&kind=io"), Pairs::Plain(_)));
        assert!(matches!(pairs("a+b=c"), Pairs::Encoded(_)));
    }
}
