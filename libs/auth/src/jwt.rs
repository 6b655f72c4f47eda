//! HS256 JSON Web Tokens, signed and verified.
//!
//! Why not the `jsonwebtoken` crate: since v10 it requires a whole crypto backend (RSA, P-256,
//! Ed25519 or aws-lc) even for HS256, doubling the crypto stack we compile. We accept exactly one
//! algorithm, so the format is small: base64url(header).base64url(claims).base64url(HMAC). The
//! header's `alg` must be `HS256` (no `none`, no algorithm confusion) and the MAC is compared in
//! constant time by `hmac::Mac::verify_slice`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::{Error, Principal, Role};

type HmacSha256 = Hmac<Sha256>;

/// Clock skew tolerated between the minting and the verifying host.
const LEEWAY_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// For the service role: the user whose call is being served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// The shared HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Vec<u8>,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self { secret: secret.to_vec() }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// A signed token for `claims` valid for `ttl` from now.
    pub fn mint(&self, sub: &str, tenant_id: Option<Uuid>, role: Role, ttl: std::time::Duration) -> String {
        let exp = now_unix() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.sign(&Claims { sub: sub.to_string(), tenant_id, role, exp, act: None })
    }

    /// A short-lived token for one service calling another for `tenant_id`, on behalf of the
    /// user whose call it is serving, when there is one (recorded in history rows).
    pub fn mint_service(
        &self,
        service: &str,
        tenant_id: Uuid,
        on_behalf_of: Option<&str>,
        ttl: std::time::Duration,
    ) -> String {
        let exp = now_unix() + i64::try_from(ttl.as_secs()).unwrap_or(300);
        self.sign(&Claims {
            sub: service.to_string(),
            tenant_id: Some(tenant_id),
            role: Role::Service,
            exp,
            act: on_behalf_of.map(str::to_string),
        })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        self.verify_at(token, now_unix())
    }

    pub fn verify_at(&self, token: &str, now: i64) -> Result<Principal, Error> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed("expected three dot-separated parts"));
        };
        let header: Header = decode_json(header)?;
        if header.alg != "HS256" {
            return Err(Error::UnsupportedAlgorithm);
        }
        let signature =
            URL_SAFE_NO_PAD.decode(signature).map_err(|_| Error::Malformed("signature is not base64url"))?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header_and_payload_len(token)]);
        mac.verify_slice(&signature).map_err(|_| Error::BadSignature)?;

        let claims: Claims = decode_json(payload)?;
        if claims.exp + LEEWAY_SECONDS < now {
            return Err(Error::Expired);
        }
        Ok(Principal { subject: claims.sub, tenant_id: claims.tenant_id, role: claims.role, on_behalf_of: claims.act })
    }
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Error> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Error::Malformed("part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| Error::Malformed("part is not the expected JSON"))
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims { sub: "alice".into(), tenant_id: Some(Uuid::nil()), role: Role::Agent, exp: NOW + 60, act: None }
    }

    #[test]
    fn round_trip() {
        let keys = JwtKeys::new(b"secret");
        let principal = keys.verify_at(&keys.sign(&claims()), NOW).expect("valid");
        assert_eq!(principal.subject, "alice");
        assert_eq!(principal.role, Role::Agent);
        assert_eq!(principal.tenant_id, Some(Uuid::nil()));
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let token = JwtKeys::new(b"other").sign(&claims());
        assert_eq!(JwtKeys::new(b"secret").verify_at(&token, NOW), Err(Error::BadSignature));
    }

    #[test]
    fn tampered_claims_are_a_bad_signature() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims());
        let mut forged = claims();
        forged.role = Role::Admin;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(keys.verify_at(&tampered, NOW), Err(Error::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).expect("json"));
        let token = format!("{header}.{payload}.");
        assert_eq!(JwtKeys::new(b"secret").verify_at(&token, NOW), Err(Error::UnsupportedAlgorithm));
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let keys = JwtKeys::new(b"secret");
        let token = keys.sign(&claims());
        assert!(keys.verify_at(&token, NOW + 60 + LEEWAY_SECONDS).is_ok());
        assert_eq!(keys.verify_at(&token, NOW + 61 + LEEWAY_SECONDS), Err(Error::Expired));
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = JwtKeys::new(b"secret");
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(matches!(keys.verify_at(token, NOW), Err(Error::Malformed(_))), "{token}");
        }
    }
}
