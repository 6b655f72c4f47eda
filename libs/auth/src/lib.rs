//! Who is calling and what they may do: JWT principals, tenant roles, one gRPC interceptor.
//!
//! Every gRPC call carries `authorization: Bearer <JWT>` (HS256). The interceptor turns it into a
//! [`Principal`] in the request extensions; handlers then ask the principal for the tenant they may
//! act on and the role they need. The three refusals are distinct on purpose: no or bad token is
//! UNAUTHENTICATED, a role too weak is PERMISSION_DENIED, and another tenant's object is NOT_FOUND
//! (handlers filter every query by the principal's tenant, so it simply is not found).

pub mod grpc;
mod jwt;
mod principal;

pub use jwt::{Claims, JwtKeys};
pub use principal::{Principal, Role};

/// The development signing secret; `ORDERFLOW_ENV=production` refuses to start with it.
pub const DEV_JWT_SECRET: &str = "orderflow-dev-jwt-secret-not-for-production";

/// The environment variable holding the signing secret.
pub const JWT_SECRET_VAR: &str = "ORDERFLOW_JWT_SECRET";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("missing bearer token")]
    MissingToken,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("role {actual} may not do this (needs {needed})")]
    RoleTooWeak { actual: Role, needed: &'static str },
    #[error("this call needs a tenant; the token has none")]
    NoTenant,
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::MissingToken
            | Error::Malformed(_)
            | Error::UnsupportedAlgorithm
            | Error::BadSignature
            | Error::Expired => tonic::Status::unauthenticated(message),
            Error::RoleTooWeak { .. } | Error::NoTenant => tonic::Status::permission_denied(message),
        }
    }
}
