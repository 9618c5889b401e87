//! The optional keyed signature of an image: HMAC-SHA-256 of the manifest's exact bytes,
//! written as lower-case hex to `manifest.sig` beside it. The manifest lists every file
//! with its SHA-256, so the signature covers the whole image.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes.
pub(crate) const MIN_KEY_LEN: usize = 16;

/// A secret key for image signatures. Never printed: its `Debug` shows no byte of it.
#[derive(Clone)]
pub struct ImageKey(Vec<u8>);

impl fmt::Debug for ImageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ImageKey(***)")
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the image key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key is too short.
    #[error("the image key in {path} is {len} bytes long; use at least {MIN_KEY_LEN} (e.g. `openssl rand -hex 32 > {path}`)")]
    TooShort {
        /// The file.
        path: String,
        /// Its length (after trailing line breaks are dropped).
        len: usize,
    },
}

impl ImageKey {
    /// A key from its bytes (at least 16).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<ImageKey> {
        let b = bytes.into();
        (b.len() >= MIN_KEY_LEN).then_some(ImageKey(b))
    }

    /// Reads a key file: its bytes, without trailing line breaks.
    pub fn from_file(path: &Path) -> Result<ImageKey, KeyError> {
        let shown = path.display().to_string();
        let mut b = std::fs::read(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        while matches!(b.last(), Some(b'\n' | b'\r')) {
            b.pop();
        }
        let len = b.len();
        ImageKey::new(b).ok_or(KeyError::TooShort { path: shown, len })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// The signature of `manifest` (its exact bytes), lower-case hex.
    pub(crate) fn sign(&self, manifest: &[u8]) -> String {
        let mut m = self.mac();
        m.update(manifest);
        hex::encode(m.finalize().into_bytes())
    }

    /// True when `signature` (hex, surrounding whitespace ignored) is the signature of
    /// `manifest` with this key; compared in constant time.
    pub fn verify(&self, manifest: &[u8], signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature.trim()) else {
            return false;
        };
        let mut m = self.mac();
        m.update(manifest);
        m.verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let k = ImageKey::new(*b"0123456789abcdef0123").unwrap();
        let sig = k.sign(b"{\"m\":1}");
        assert_eq!(sig.len(), 64);
        assert!(k.verify(b"{\"m\":1}", &format!("{sig}\n")));
        assert!(!k.verify(b"{\"m\":2}", &sig), "another manifest");
        let other = ImageKey::new(*b"0123456789abcdef0124").unwrap();
        assert!(!other.verify(b"{\"m\":1}", &sig), "another key");
        assert!(!k.verify(b"{\"m\":1}", "zz"), "not hex");
        assert!(!k.verify(b"{\"m\":1}", ""), "empty");
    }

    #[test]
    fn key_files_and_debug() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, "s3cret-s3cret-s3cret\n").unwrap();
        let k = ImageKey::from_file(&p).unwrap();
        assert_eq!(format!("{k:?}"), "ImageKey(***)");
        let with_newline = k.sign(b"x");
        std::fs::write(&p, "s3cret-s3cret-s3cret").unwrap();
        assert_eq!(ImageKey::from_file(&p).unwrap().sign(b"x"), with_newline);
        std::fs::write(&p, "short\n").unwrap();
        let e = ImageKey::from_file(&p).unwrap_err();
        assert!(matches!(e, KeyError::TooShort { len: 5, .. }), "{e}");
        assert!(!e.to_string().contains("short\n"));
    }
}
