//! Query parameters, validated one by one so a 400 names the parameter at fault. serde's
//! query extractor says "invalid digit found in string" without saying where.
use std::collections::HashMap;
use std::str::FromStr;

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::future::{Ready, ready};

use crate::error::ApiError;

/// The query string as name → value, consumed by typed getters. Unknown names are refused by
/// [`Params::finish`], so a typo (`?mss=100`) is a 400 rather than a silent default.
pub struct Params {
    values: HashMap<String, String>,
}

impl FromRequest for Params {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string());
        ready(match parsed {
            Ok(pairs) => {
                let mut values = HashMap::new();
                let mut repeated = None;
                for (k, v) in pairs {
                    if values.insert(k.clone(), v).is_some() {
                        repeated = Some(k);
                    }
                }
                match repeated {
                    Some(k) => Err(ApiError::bad(
                        "query",
                        format!("parameter `{}` is given more than once", clip(&k)),
                    )),
                    None => Ok(Params { values }),
                }
            }
            Err(e) => Err(ApiError::bad(
                "query",
                format!("the query string is malformed: {e}"),
            )),
        })
    }
}

impl Params {
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
        let Some(raw) = self.values.remove(name) else {
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
        if self.values.contains_key(name) {
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
        let Some(raw) = self.values.remove(name) else {
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

    /// One of `choices`, or `default` when absent.
    pub fn choice(
        &mut self,
        name: &'static str,
        default: Option<&'static str>,
        choices: &[&'static str],
    ) -> Result<&'static str, ApiError> {
        let Some(raw) = self.values.remove(name) else {
            return default.ok_or_else(|| {
                ApiError::bad(
                    name,
                    format!("`{name}` is required (one of {})", choices.join(", ")),
                )
            });
        };
        choices.iter().copied().find(|c| *c == raw).ok_or_else(|| {
            ApiError::bad(
                name,
                format!(
                    "{name} must be one of {}, got `{}`",
                    choices.join(", "),
                    clip(&raw)
                ),
            )
        })
    }

    /// Refuses parameters no getter asked for.
    pub fn finish(self) -> Result<(), ApiError> {
        let mut unknown: Vec<_> = self.values.into_keys().collect();
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
        match unknown.first() {
            None => Ok(()),
            Some(_) => Err(ApiError::bad(
                "query",
                format!("unknown parameter(s): {}", unknown.join(", ")),
            )),
        }
    }
}

/// Longest piece of client input echoed in an error body or log line, in characters.
const MAX_ECHO_CHARS: usize = 64;
/// Most unknown parameter names listed in one error.
const MAX_ECHOED_NAMES: usize = 5;

/// Client input as echoed back: at most [`MAX_ECHO_CHARS`] characters, so a 60 KB value does
/// not become a 60 KB error body and log line.
pub fn clip(raw: &str) -> String {
    match raw.char_indices().nth(MAX_ECHO_CHARS) {
        None => raw.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &raw[..cut], raw.len()),
    }
}

/// A path segment validated against `choices`.
pub fn path_choice(
    name: &'static str,
    raw: &str,
    choices: &[&'static str],
) -> Result<&'static str, ApiError> {
    choices.iter().copied().find(|c| *c == raw).ok_or_else(|| {
        ApiError::bad(
            name,
            format!(
                "{name} must be one of {}, got `{}`",
                choices.join(", "),
                clip(raw)
            ),
        )
    })
}
