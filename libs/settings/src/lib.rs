//! Typed configuration from environment variables, with defaults that work locally with no setup.
//!
//! Every service reads its settings through [`Env`], so the rules live in one place: a missing
//! variable falls back to its local default, a malformed one is an error naming the variable, and
//! with `ORDERFLOW_ENV=production` a secret that was not set explicitly refuses to start the service.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{key} has an invalid value: {reason}")]
    Invalid { key: String, reason: String },
    #[error("{key} must be set when ORDERFLOW_ENV=production (refusing the development default)")]
    DefaultSecretInProduction { key: String },
}

/// Where the process runs; production refuses development defaults for secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// A value that must never reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where variables come from: the process environment, or a map in tests.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads configuration from a source of variables (the process environment, or a map in tests).
pub struct Env {
    lookup: Lookup,
    environment: Environment,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Any lookup function; tests use this to avoid mutating the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Result<Self, Error> {
        let environment = match lookup("ORDERFLOW_ENV").as_deref().map(str::trim) {
            None | Some("") | Some("development") | Some("dev") | Some("test") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(Error::Invalid {
                    key: "ORDERFLOW_ENV".into(),
                    reason: format!("expected development or production, got {other:?}"),
                });
            }
        };
        Ok(Self { lookup: Box::new(lookup), environment })
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The raw value, if set and not empty.
    pub fn raw(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|value| !value.trim().is_empty())
    }

    /// A plain setting: parsed when set, the default otherwise.
    pub fn get<T>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|err: T::Err| Error::Invalid { key: key.to_string(), reason: err.to_string() }),
        }
    }

    /// A duration given in milliseconds.
    pub fn millis(&self, key: &str, default: std::time::Duration) -> Result<std::time::Duration, Error> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        Ok(std::time::Duration::from_millis(self.get(key, default_ms)?))
    }

    /// A secret: the development default is only accepted outside production.
    pub fn secret(&self, key: &str, development_default: &str) -> Result<Secret, Error> {
        match (self.raw(key), self.environment) {
            (Some(value), _) => Ok(Secret(value)),
            (None, Environment::Development) => Ok(Secret(development_default.to_string())),
            (None, Environment::Production) => Err(Error::DefaultSecretInProduction { key: key.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::from_lookup(move |key| map.get(key).cloned()).expect("valid env")
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let env = env(&[("PORT", "")]);
        assert_eq!(env.get("PORT", 8080u16).expect("default"), 8080);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let err = env(&[("PORT", "eighty")]).get("PORT", 8080u16).expect_err("not a number");
        assert!(err.to_string().contains("PORT"), "{err}");
    }

    #[test]
    fn development_accepts_default_secrets() {
        let secret = env(&[]).secret("ORDERFLOW_JWT_SECRET", "dev").expect("dev default");
        assert_eq!(secret.expose(), "dev");
    }

    #[test]
    fn production_refuses_default_secrets_but_takes_explicit_ones() {
        let prod = env(&[("ORDERFLOW_ENV", "production")]);
        assert!(matches!(prod.secret("ORDERFLOW_JWT_SECRET", "dev"), Err(Error::DefaultSecretInProduction { .. })));
        let prod = env(&[("ORDERFLOW_ENV", "production"), ("ORDERFLOW_JWT_SECRET", "s3cret")]);
        assert_eq!(prod.secret("ORDERFLOW_JWT_SECRET", "dev").expect("set").expose(), "s3cret");
    }

    #[test]
    fn unknown_environment_is_an_error() {
        assert!(Env::from_lookup(|k| (k == "ORDERFLOW_ENV").then(|| "staging".to_string())).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
