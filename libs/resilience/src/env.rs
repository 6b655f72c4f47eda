//! Reads policy overrides from environment variables, so a deployment (or a test) tunes retries and
//! breakers without a rebuild.

use std::ffi::OsString;
use std::time::Duration;

/// A variable that is set but cannot be used. An unset variable is never an error: the default applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{var} is not valid UTF-8")]
    NotUnicode { var: String },
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid { var: String, value: String, expected: &'static str },
    #[error("retry base delay {base:?} exceeds max delay {max:?}")]
    BaseDelayAboveMax { base: Duration, max: Duration },
}

/// Looks variables up in the process environment; the production source for `from_env`.
pub(crate) fn process(var: &str) -> Option<OsString> {
    std::env::var_os(var)
}

/// A count of at least one (attempts, failures): zero would disable the mechanism silently.
pub(crate) fn count(lookup: &impl Fn(&str) -> Option<OsString>, var: &str) -> Result<Option<u32>, Error> {
    const EXPECTED: &str = "a whole number of at least 1";
    let Some(value) = text(lookup, var)? else {
        return Ok(None);
    };
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(invalid(var, value, EXPECTED)),
    }
}

/// A duration given in whole milliseconds.
pub(crate) fn millis(lookup: &impl Fn(&str) -> Option<OsString>, var: &str) -> Result<Option<Duration>, Error> {
    const EXPECTED: &str = "a whole number of milliseconds";
    let Some(value) = text(lookup, var)? else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(invalid(var, value, EXPECTED)),
    }
}

fn text(lookup: &impl Fn(&str) -> Option<OsString>, var: &str) -> Result<Option<String>, Error> {
    match lookup(var) {
        None => Ok(None),
        Some(raw) => raw.into_string().map(Some).map_err(|_| Error::NotUnicode { var: var.to_string() }),
    }
}

fn invalid(var: &str, value: String, expected: &'static str) -> Error {
    Error::Invalid { var: var.to_string(), value, expected }
}
