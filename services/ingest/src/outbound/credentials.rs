//! Sealing channel credentials at rest with ChaCha20-Poly1305 (ring, already in the build for TLS).
//! The channel id is the associated data, so a sealed blob cannot be moved to another channel.
//!
//! Key rotation: blobs are always sealed with the current key; earlier keys
//! (`ORDERFLOW_CREDENTIALS_KEY_PREVIOUS`) still open them, and [`CredentialSealer::reseal`] moves a
//! blob onto the current key (ingest does it for every channel at start-up).

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
    /// The current key, then the earlier ones still accepted for opening.
    keys: std::sync::Arc<Vec<LessSafeKey>>,
}

fn key_from_base64(key_base64: &str) -> Result<LessSafeKey, Error> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(key_base64.trim()).map_err(|_| Error::BadKey)?;
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| Error::BadKey)?;
    Ok(LessSafeKey::new(unbound))
}

impl CredentialSealer {
    /// `key_base64`: 32 random bytes, base64 (`ORDERFLOW_CREDENTIALS_KEY`).
    pub fn from_base64(key_base64: &str) -> Result<Self, Error> {
        Self::with_previous(key_base64, "")
    }

    /// The current key and, comma-separated, the earlier ones (`ORDERFLOW_CREDENTIALS_KEY_PREVIOUS`;
    /// empty: none).
    pub fn with_previous(current_base64: &str, previous_base64: &str) -> Result<Self, Error> {
        let mut keys = vec![key_from_base64(current_base64)?];
        for previous in previous_base64.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            keys.push(key_from_base64(previous)?);
        }
        Ok(Self { keys: std::sync::Arc::new(keys) })
    }

    /// Whether earlier keys are configured (a rotation is under way).
    pub fn has_previous(&self) -> bool {
        self.keys.len() > 1
    }

    /// nonce || ciphertext+tag
    pub fn seal(&self, channel_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce_bytes).map_err(|_| Error::Seal)?;
        let mut in_out = plaintext.to_vec();
        self.keys[0]
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
        self.open_with_index(channel_id, sealed).map(|(plaintext, _)| plaintext)
    }

    /// The blob sealed again with the current key, when an earlier key sealed it; `None` when
    /// the current key already did.
    pub fn reseal(&self, channel_id: Uuid, sealed: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match self.open_with_index(channel_id, sealed)? {
            (_, 0) => Ok(None),
            (plaintext, _) => self.seal(channel_id, &plaintext).map(Some),
        }
    }

    /// The plaintext and which key opened it (0: the current one).
    fn open_with_index(&self, channel_id: Uuid, sealed: &[u8]) -> Result<(Vec<u8>, usize), Error> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Open);
        }
        let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
        for (index, key) in self.keys.iter().enumerate() {
            let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| Error::Open)?;
            let mut in_out = ciphertext.to_vec();
            if let Ok(plaintext) = key.open_in_place(nonce, Aad::from(channel_id.as_bytes()), &mut in_out) {
                return Ok((plaintext.to_vec(), index));
            }
        }
        Err(Error::Open)
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

    const NEW_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="; // 32 bytes

    #[test]
    fn a_rotated_key_still_opens_old_blobs_and_reseals_them_onto_the_new_one() {
        let channel = Uuid::new_v4();
        let old = CredentialSealer::from_base64(KEY).expect("old key");
        let sealed_before = old.seal(channel, b"token").expect("seal");
        let rotated = CredentialSealer::with_previous(NEW_KEY, &format!(" {KEY} ,")).expect("keys");
        let new_only = CredentialSealer::from_base64(NEW_KEY).expect("new key");

        assert_eq!(new_only.open(channel, &sealed_before), Err(Error::Open), "the keys differ");
        assert_eq!(rotated.open(channel, &sealed_before).expect("open with the previous key"), b"token");
        let resealed = rotated.reseal(channel, &sealed_before).expect("reseal").expect("moved");
        assert_eq!(new_only.open(channel, &resealed).expect("open with the new key alone"), b"token");
        assert_eq!(rotated.reseal(channel, &resealed).expect("reseal"), None, "already on the current key");
        assert_eq!(rotated.reseal(Uuid::new_v4(), &sealed_before), Err(Error::Open));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(CredentialSealer::with_previous(KEY, "short").is_err());
        assert!(CredentialSealer::from_base64("short").is_err());
        assert!(CredentialSealer::from_base64("!!!").is_err());
    }
}
