//! The image manifest (`manifest.json`): written last, it marks an image complete and
//! lists every file with its size and checksum.

use serde::{Deserialize, Serialize};

use crate::{Coordinates, Flavor};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The file name of the manifest inside an image directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The file name of the manifest's keyed signature (HMAC-SHA-256 of the manifest's bytes,
/// lower-case hex) inside an image directory, when the image is signed. Written before
/// the manifest; not listed in it.
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// The source server of an image (built with [`SourceServer::new`] and
/// [`SourceServer::with_uuid`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SourceServer {
    /// Flavor.
    pub flavor: Flavor,
    /// `@@version`.
    pub version: String,
    /// `@@server_id` when the snapshot was taken.
    pub server_id: u32,
    /// `@@server_uuid` (MySQL) when known.
    pub uuid: Option<String>,
}

/// One file of an image (built with [`FileEntry::new`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileEntry {
    /// Path relative to the image directory, `/` separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

/// The manifest of an image (built with [`Manifest::new`] and its `with_*` setters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// `logical`, `outfile` or `physical`.
    pub method: String,
    /// The server the image was taken from.
    pub source: SourceServer,
    /// The snapshot's binary log coordinates.
    pub coordinates: Coordinates,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Every file of the image except the manifest.
    pub files: Vec<FileEntry>,
}

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not valid JSON of the expected shape.
    #[error("the manifest is not valid: {0}")]
    Malformed(String),
    /// Written by a newer (or unknown) format.
    #[error("the image has format version {found}; this amsu reads version {FORMAT_VERSION} — use the amsu version that wrote it")]
    UnknownVersion {
        /// The version found.
        found: u32,
    },
    /// A path that is absolute, has `..` or otherwise escapes the image directory.
    #[error("the image names an unsafe path {path:?} (absolute, `..` or empty parts); refusing to use it")]
    UnsafePath {
        /// The path.
        path: String,
    },
}

impl SourceServer {
    /// A source server of `flavor` with `@@version` `version` and `@@server_id`
    /// `server_id`; no UUID.
    pub fn new(flavor: Flavor, version: impl Into<String>, server_id: u32) -> SourceServer {
        SourceServer {
            flavor,
            version: version.into(),
            server_id,
            uuid: None,
        }
    }

    /// Sets `@@server_uuid` (MySQL).
    pub fn with_uuid(mut self, uuid: Option<String>) -> SourceServer {
        self.uuid = uuid;
        self
    }
}

impl FileEntry {
    /// The file at `path` (relative, `/` separated) of `size` bytes with SHA-256 `sha256`
    /// (lower-case hex).
    pub fn new(path: impl Into<String>, size: u64, sha256: impl Into<String>) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            sha256: sha256.into(),
        }
    }
}

impl Manifest {
    /// The manifest of an image taken by `method` from `source` at `coordinates`, listing
    /// `files`: this build's [`FORMAT_VERSION`], created now.
    pub fn new(
        method: impl Into<String>,
        source: SourceServer,
        coordinates: Coordinates,
        files: Vec<FileEntry>,
    ) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            method: method.into(),
            source,
            coordinates,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            files,
        }
    }

    /// Sets the creation time (seconds since the Unix epoch).
    pub fn with_created_unix(mut self, created_unix: u64) -> Manifest {
        self.created_unix = created_unix;
        self
    }

    /// Parses and validates a manifest: version known, every path safe.
    pub fn from_json(text: &str) -> Result<Manifest, ManifestError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let v: VersionOnly =
            serde_json::from_str(text).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if v.format_version != FORMAT_VERSION {
            return Err(ManifestError::UnknownVersion {
                found: v.format_version,
            });
        }
        let m: Manifest =
            serde_json::from_str(text).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        for f in &m.files {
            check_relative_path(&f.path)?;
        }
        Ok(m)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serializes")
    }
}

/// Accepts only relative `/`-separated paths whose parts are non-empty and neither `.` nor
/// `..`, with no backslash or NUL.
pub fn check_relative_path(path: &str) -> Result<(), ManifestError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        || (path.len() >= 2 && path.as_bytes()[1] == b':');
    if bad {
        Err(ManifestError::UnsafePath { path: path.into() })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            method: "logical".into(),
            source: SourceServer {
                flavor: Flavor::MariaDb,
                version: "10.11.19-MariaDB".into(),
                server_id: 7,
                uuid: None,
            },
            coordinates: Coordinates {
                file: "mysql-bin.000003".into(),
                position: 1234,
                gtid: Some("0-7-55".into()),
            },
            created_unix: 1_790_000_000,
            files: vec![FileEntry {
                path: "db/t.00001.tsv".into(),
                size: 10,
                sha256: "00".repeat(32),
            }],
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn rejects_unknown_version() {
        let mut m = sample();
        m.format_version = 99;
        assert_eq!(
            Manifest::from_json(&m.to_json()),
            Err(ManifestError::UnknownVersion { found: 99 })
        );
    }

    #[test]
    fn rejects_escaping_paths() {
        for p in [
            "../etc/passwd",
            "/abs",
            "a/../../b",
            "a//b",
            "",
            "./a",
            "C:x",
            "a\\b",
        ] {
            let mut m = sample();
            m.files[0].path = p.into();
            assert!(
                matches!(
                    Manifest::from_json(&m.to_json()),
                    Err(ManifestError::UnsafePath { .. })
                ),
                "{p}"
            );
        }
    }
}
