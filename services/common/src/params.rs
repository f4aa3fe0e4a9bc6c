//! Query parameters, validated one by one so a 400 names the parameter at fault. serde's
//! query extractor says "invalid digit found in string" without saying where.
//!
//! Parsed in place: `Params` keeps the request (a reference count, not a copy) and decodes a
//! value only when a getter asks for it, borrowed unless it has escapes. The map of owned
//! Strings it replaced cost a few allocations and a SipHash per parameter per request.
use std::borrow::Cow;
use std::str::FromStr;

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use contract::Choice;
use futures_util::future::{Ready, ready};

use crate::error::ApiError;
use crate::query_pairs::pairs;

/// Most parameters a query may have: every route takes a handful, and the checks below
/// compare names pairwise.
pub const MAX_PARAMS: usize = 32;

/// The query string, consumed by typed getters. Unknown names are refused by
/// [`Params::finish`], so a typo (`?mss=100`) is a 400 rather than a silent default.
pub struct Params {
    req: HttpRequest,
    /// Pairs in the query (at most [`MAX_PARAMS`]).
    count: u32,
    /// Bit i: the i-th pair was taken by a getter.
    taken: u32,
}

impl FromRequest for Params {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req.query_string()).map(|count| Params {
            req: req.clone(),
            count,
            taken: 0,
        }))
    }
}

/// At most [`MAX_PARAMS`] pairs, none named twice; returns how many there are.
fn check(query: &str) -> Result<u32, ApiError> {
    // The usual query, one pair or none: nothing to count twice or compare.
    if !query.contains('&') {
        return Ok(u32::from(!query.is_empty()));
    }
    let count = pairs(query).take(MAX_PARAMS + 1).count();
    if count > MAX_PARAMS {
        return Err(ApiError::bad(
            "query",
            format!("too many parameters (at most {MAX_PARAMS})"),
        ));
    }
    // Pairwise: at most 32 × 31 / 2 comparisons, and none for the usual single parameter.
    for (i, (name, _)) in pairs(query).enumerate().skip(1) {
        if pairs(query).take(i).any(|(earlier, _)| earlier == name) {
            return Err(ApiError::bad(
                "query",
                format!("parameter `{}` is given more than once", clip(&name)),
            ));
        }
    }
    Ok(count as u32)
}

/// The value of `name`, marking its pair as taken. Fields apart so the value may borrow
/// the request while the mark is written.
fn take<'q>(query: &'q str, taken: &mut u32, name: &str) -> Option<Cow<'q, str>> {
    let (i, (_, value)) = pairs(query).enumerate().find(|(_, (k, _))| k == name)?;
    *taken |= 1 << i;
    Some(value)
}

impl Params {
    fn take(&mut self, name: &str) -> Option<Cow<'_, str>> {
        take(self.req.query_string(), &mut self.taken, name)
    }

    fn has(&self, name: &str) -> bool {
        pairs(self.req.query_string()).any(|(k, _)| k == name)
    }

    /// An integer in `range`, or `default` when absent.
    pub fn int<T>(
        &mut self,
        name: &'static str,
        default: Option<T>,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ApiError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.take(name) else {
            return default.ok_or_else(|| ApiError::bad(name, format!("`{name}` is required")));
        };
        let out_of_range = || {
            ApiError::bad(
                name,
                format!(
                    "{name} must be an integer between {} and {}, got `{}`",
                    range.start(),
                    range.end(),
                    clip(&raw)
                ),
            )
        };
        let value: T = raw.trim().parse().map_err(|_| out_of_range())?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(out_of_range())
        }
    }

    /// An optional integer in `range`.
    pub fn optional_int<T>(
        &mut self,
        name: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ApiError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        if self.has(name) {
            self.int(name, None, range).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An optional number (e.g. a rate) in `range`.
    pub fn float(
        &mut self,
        name: &'static str,
        range: std::ops::RangeInclusive<f64>,
    ) -> Result<Option<f64>, ApiError> {
        let Some(raw) = self.take(name) else {
            return Ok(None);
        };
        match raw.trim().parse::<f64>() {
            Ok(v) if range.contains(&v) => Ok(Some(v)),
            _ => Err(ApiError::bad(
                name,
                format!(
                    "{name} must be a number between {} and {}, got `{}`",
                    range.start(),
                    range.end(),
                    clip(&raw)
                ),
            )),
        }
    }

    /// One of `T`'s names, or `default` when absent.
    pub fn choice<T: Choice>(
        &mut self,
        name: &'static str,
        default: Option<T>,
    ) -> Result<T, ApiError> {
        let Some(raw) = self.take(name) else {
            return default.ok_or_else(|| {
                ApiError::bad(
                    name,
                    format!("`{name}` is required (one of {})", T::names()),
                )
            });
        };
        T::from_name(&raw).ok_or_else(|| not_one_of::<T>(name, &raw))
    }

    /// Refuses parameters no getter asked for.
    pub fn finish(self) -> Result<(), ApiError> {
        // Each taken bit is a distinct pair: all taken, nothing unknown.
        if self.taken.count_ones() == self.count {
            return Ok(());
        }
        let mut unknown: Vec<_> = pairs(self.req.query_string())
            .enumerate()
            .filter(|(i, _)| self.taken & (1 << i) == 0)
            .map(|(_, (k, _))| k)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        let more = unknown.len().saturating_sub(MAX_ECHOED_NAMES);
        let mut unknown: Vec<String> = unknown
            .iter()
            .take(MAX_ECHOED_NAMES)
            .map(|k| clip(k))
            .collect();
        if more > 0 {
            unknown.push(format!("and {more} more"));
        }
        Err(ApiError::bad(
            "query",
            format!("unknown parameter(s): {}", unknown.join(", ")),
        ))
    }
}

/// Longest piece of client input echoed in an error body or log line, in characters.
const MAX_ECHO_CHARS: usize = 64;
/// Most unknown parameter names listed in one error.
const MAX_ECHOED_NAMES: usize = 5;

/// Client input as echoed back: at most `MAX_ECHO_CHARS` (64) characters, so a 60 KB value does
/// not become a 60 KB error body and log line.
pub fn clip(raw: &str) -> String {
    match raw.char_indices().nth(MAX_ECHO_CHARS) {
        None => raw.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &raw[..cut], raw.len()),
    }
}

/// A path segment that must be one of `T`'s names.
pub fn path_choice<T: Choice>(name: &'static str, raw: &str) -> Result<T, ApiError> {
    T::from_name(raw).ok_or_else(|| not_one_of::<T>(name, raw))
}

fn not_one_of<T: Choice>(name: &'static str, raw: &str) -> ApiError {
    ApiError::bad(
        name,
        format!("{name} must be one of {}, got `{}`", T::names(), clip(raw)),
    )
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn params(query: &str) -> Result<Params, ApiError> {
        let req = TestRequest::with_uri(&format!("/x?{query}")).to_http_request();
        Params::from_request(&req, &mut Payload::None).into_inner()
    }

    fn message(err: ApiError) -> String {
        match err {
            ApiError::BadRequest { param, message } => format!("{param}: {message}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn typed_getters_take_their_values_and_finish_refuses_the_rest() {
        let mut p = params("ms=%2010&dist=uniform&rate=0.5&zz=1&aa=2").expect("valid query");
        assert_eq!(p.int("ms", None, 0..=100).ok(), Some(10));
        assert_eq!(
            p.choice("dist", None).ok(),
            Some(contract::Distribution::Uniform)
        );
        assert_eq!(p.float("rate", 0.0..=1.0).ok(), Some(Some(0.5)));
        assert_eq!(p.optional_int::<u32>("absent", 0..=1).ok(), Some(None));
        assert_eq!(
            message(p.finish().expect_err("two unknown")),
            "query: unknown parameter(s): aa, zz"
        );
        assert!(
            params("ms=1")
                .and_then(|mut p| p.int("ms", None, 0..=1).map(|_| p))
                .is_ok()
        );
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let mut p = params("ms=abc").expect("valid query");
        assert_eq!(
            message(p.int::<u64>("ms", None, 0..=10).expect_err("not a number")),
            "ms: ms must be an integer between 0 and 10, got `abc`"
        );
        assert!(params("").and_then(Params::finish).is_ok());
        assert_eq!(
            message(
                params("zz=1")
                    .and_then(Params::finish)
                    .expect_err("unknown")
            ),
            "query: unknown parameter(s): zz"
        );
        let mut p = params("").expect("empty query");
        assert_eq!(
            message(p.int::<u64>("ms", None, 0..=10).expect_err("missing")),
            "ms: `ms` is required"
        );
    }

    #[test]
    fn repeated_and_too_many_parameters_are_refused() {
        assert_eq!(
            message(params("a=1&ms=1&ms=2").err().expect("repeated")),
            "query: parameter `ms` is given more than once"
        );
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            message(params(&many.join("&")).err().expect("too many")),
            "query: too many parameters (at most 32)"
        );
        assert!(params(&many[..MAX_PARAMS].join("&")).is_ok());
    }
}
