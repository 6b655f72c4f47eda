//! Webhook signatures, checked over the exact raw bytes before anything is parsed.
//!
//! Meta: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`. Meta signs the bytes it
//! sent (with `\u00e4`-style escapes), so re-serialised JSON would not match.
//! TikTok Shop: `Authorization: <hex HMAC-SHA256(key = app secret, message = app key + body)>`, no
//! timestamp in the MAC; replays are stopped by de-duplication on `tts_notification_id`.
//! Both compare in constant time (`Mac::verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is malformed")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

fn verify(mac: HmacSha256, hex_signature: &str) -> Result<(), SignatureError> {
    let expected = hex::decode(hex_signature.trim()).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// Which of the app secrets a webhook was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedWith {
    Current,
    /// The secret being rotated out: worth counting, to know when nothing uses it any more.
    Previous,
}

/// A platform's app secret and, during a rotation, the one it replaces. Meta and TikTok sign with
/// the new secret from the moment it is reset, while deliveries already made and their retries
/// carry the old one; accepting both for the length of the rotation loses neither.
#[derive(Clone)]
pub struct AppSecrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl AppSecrets {
    /// `previous`: empty when no rotation is under way.
    pub fn new(current: &str, previous: &str) -> Self {
        let previous = (!previous.is_empty() && previous != current).then(|| previous.as_bytes().to_vec());
        Self { current: current.as_bytes().to_vec(), previous }
    }

    /// The current secret, for what we sign ourselves.
    pub fn current(&self) -> &[u8] {
        &self.current
    }

    /// Runs `check` with the current secret, then, only on a mismatch, with the previous one. A
    /// missing or malformed signature is refused whatever the secrets.
    pub fn verify(&self, check: impl Fn(&[u8]) -> Result<(), SignatureError>) -> Result<SignedWith, SignatureError> {
        match (check(&self.current), &self.previous) {
            (Ok(()), _) => Ok(SignedWith::Current),
            (Err(SignatureError::Mismatch), Some(previous)) => check(previous).map(|()| SignedWith::Previous),
            (Err(err), _) => Err(err),
        }
    }
}

/// Checks Meta's `X-Hub-Signature-256` header.
pub fn verify_meta(app_secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_signature = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let mut mac = mac(app_secret);
    mac.update(body);
    verify(mac, hex_signature)
}

/// Checks TikTok Shop's `Authorization` header.
pub fn verify_tiktok(
    app_key: &str,
    app_secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut mac = mac(app_secret);
    mac.update(app_key.as_bytes());
    mac.update(body);
    verify(mac, header)
}

/// Meta's header value for `body` (tests, the benchmark and the README's curl example).
pub fn sign_meta(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(app_secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// TikTok Shop's header value for `body`.
pub fn sign_tiktok(app_key: &str, app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(app_secret);
    mac.update(app_key.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_signature_round_trip_and_refusals() {
        let body = br#"{"object":"whatsapp_business_account","text":"gr\u00fc\u00df"}"#;
        let header = sign_meta(b"secret", body);
        assert_eq!(verify_meta(b"secret", Some(&header), body), Ok(()));
        assert_eq!(verify_meta(b"secret", None, body), Err(SignatureError::Missing));
        assert_eq!(verify_meta(b"other", Some(&header), body), Err(SignatureError::Mismatch));
        assert_eq!(verify_meta(b"secret", Some(&header[7..]), body), Err(SignatureError::Malformed));
        assert_eq!(verify_meta(b"secret", Some("sha256=zz"), body), Err(SignatureError::Malformed));
        // The same JSON with the escapes decoded is different bytes: it must not verify.
        let reserialised = "{\"object\":\"whatsapp_business_account\",\"text\":\"grüß\"}";
        assert_eq!(verify_meta(b"secret", Some(&header), reserialised.as_bytes()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn during_a_rotation_either_secret_verifies_and_the_old_one_is_reported() {
        let body = br#"{"a":1}"#;
        let rotating = AppSecrets::new("new", "old");
        let check = |header: String| move |secret: &[u8]| verify_meta(secret, Some(&header), body);
        assert_eq!(rotating.verify(check(sign_meta(b"new", body))), Ok(SignedWith::Current));
        assert_eq!(rotating.verify(check(sign_meta(b"old", body))), Ok(SignedWith::Previous));
        assert_eq!(rotating.verify(check(sign_meta(b"other", body))), Err(SignatureError::Mismatch));
        assert_eq!(
            rotating.verify(|secret| verify_meta(secret, None, body)),
            Err(SignatureError::Missing),
            "no signature is not a mismatch to try the old secret on"
        );
        // Outside a rotation the old secret is refused; a "previous" equal to the current is none.
        for settled in [AppSecrets::new("new", ""), AppSecrets::new("new", "new")] {
            assert_eq!(settled.verify(check(sign_meta(b"old", body))), Err(SignatureError::Mismatch));
            assert_eq!(settled.verify(check(sign_meta(b"new", body))), Ok(SignedWith::Current));
        }
    }

    #[test]
    fn signatures_match_openssl() {
        // printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign_meta(b"secret", br#"{"a":1}"#),
            "sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
        // printf '%s' 'appkey{"a":1}' | openssl dgst -sha256 -hmac appsecret
        assert_eq!(
            sign_tiktok("appkey", b"appsecret", br#"{"a":1}"#),
            "5de88d94dd32d29983372708e3d4999689c2a9e321ac2f2af3a93a4d5fbd27d8"
        );
    }

    #[test]
    fn tiktok_signature_covers_app_key_and_body() {
        let body = br#"{"type":1,"tts_notification_id":"7327112393057371910"}"#;
        let header = sign_tiktok("appkey", b"appsecret", body);
        assert_eq!(verify_tiktok("appkey", b"appsecret", Some(&header), body), Ok(()));
        assert_eq!(verify_tiktok("otherkey", b"appsecret", Some(&header), body), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_tiktok("appkey", b"appsecret", Some(&format!("Bearer {header}")), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(verify_tiktok("appkey", b"appsecret", None, body), Err(SignatureError::Missing));
    }
}
