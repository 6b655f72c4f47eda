//! The one gRPC interceptor: every service's API is wrapped in it.

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::{Error, JwtKeys, Principal};

/// Verifies `authorization: Bearer <JWT>` and stores the [`Principal`] in the request extensions.
#[derive(Clone)]
pub struct AuthInterceptor {
    keys: JwtKeys,
}

impl AuthInterceptor {
    pub fn new(keys: JwtKeys) -> Self {
        Self { keys }
    }

    pub fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal, Error> {
        let header = metadata
            .get("authorization")
            .ok_or(Error::MissingToken)?
            .to_str()
            .map_err(|_| Error::Malformed("authorization header is not ASCII"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(Error::Malformed("authorization is not a Bearer token"))?;
        self.keys.verify(token.trim())
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.authenticate(request.metadata())?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The caller of a request that went through [`AuthInterceptor`].
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request.extensions().get::<Principal>().ok_or_else(|| Status::unauthenticated("request was not authenticated"))
}

/// Adds a bearer token to an outgoing request (service-to-service calls).
pub fn with_bearer<T>(mut request: Request<T>, token: &str) -> Result<Request<T>, Status> {
    let value = format!("Bearer {token}").parse().map_err(|_| Status::internal("token is not a valid header value"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use std::time::Duration;
    use uuid::Uuid;

    fn request_with(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request.metadata_mut().insert("authorization", value.parse().expect("ascii"));
        }
        request
    }

    #[test]
    fn the_three_refusals_have_distinct_codes() {
        let keys = JwtKeys::new(b"k");
        let mut interceptor = AuthInterceptor::new(keys.clone());

        let missing = interceptor.call(request_with(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        let forged = JwtKeys::new(b"other").mint("x", Some(Uuid::nil()), Role::Admin, Duration::from_secs(60));
        let bad = interceptor.call(request_with(Some(&format!("Bearer {forged}")))).unwrap_err();
        assert_eq!(bad.code(), tonic::Code::Unauthenticated);

        let viewer = keys.mint("v", Some(Uuid::nil()), Role::Viewer, Duration::from_secs(60));
        let request = interceptor.call(request_with(Some(&format!("Bearer {viewer}")))).expect("valid");
        let status: Status = principal(&request).expect("principal").writer().unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
}
