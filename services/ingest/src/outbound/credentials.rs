//! Sealing channel credentials at rest with ChaCha20-Poly1305 (ring, already in the build for TLS).
//! The channel id is the associated data, so a sealed blob cannot be moved to another channel.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("credentials key must be 32 bytes of base64")]
    BadKey,
    #[error("sealing failed")]
    Seal,
    #[error("credentials cannot be opened (wrong key or tampered)")]
    Open,
}

#[derive(Clone)]
pub struct CredentialSealer {
    key: std::sync::Arc<LessSafeKey>,
}

impl CredentialSealer {
    /// `key_base64`: 32 random bytes, base64 (`ORDERFLOW_CREDENTIALS_KEY`).
    pub fn from_base64(key_base64: &str) -> Result<Self, Error> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(key_base64.trim()).map_err(|_| Error::BadKey)?;
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| Error::BadKey)?;
        Ok(Self { key: std::sync::Arc::new(LessSafeKey::new(unbound)) })
    }

    /// nonce || ciphertext+tag
    pub fn seal(&self, channel_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce_bytes).map_err(|_| Error::Seal)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(channel_id.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| Error::Seal)?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    pub fn open(&self, channel_id: Uuid, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Open)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext =
            self.key.open_in_place(nonce, Aad::from(channel_id.as_bytes()), &mut in_out).map_err(|_| Error::Open)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

    #[test]
    fn round_trip_and_binding_to_the_channel() {
        let sealer = CredentialSealer::from_base64(KEY).expect("key");
        let channel = Uuid::new_v4();
        let sealed = sealer.seal(channel, b"token").expect("seal");
        assert_ne!(&sealed[NONCE_LEN..], b"token");
        assert_eq!(sealer.open(channel, &sealed).expect("open"), b"token");
        assert_eq!(sealer.open(Uuid::new_v4(), &sealed), Err(Error::Open));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(sealer.open(channel, &tampered), Err(Error::Open));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(CredentialSealer::from_base64("short").is_err());
        assert!(CredentialSealer::from_base64("!!!").is_err());
    }
}
