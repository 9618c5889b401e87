//! A transport over a local directory.

use std::io;
use std::path::{Path, PathBuf};

use amsu_core::manifest::check_relative_path;
use amsu_core::{BoxError, RemoteEntry, Transport};
use async_trait::async_trait;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::TransferError;

/// A [`Transport`] whose "remote" side is a local directory (a mounted share, or the
/// directory a backup was written to). Paths are relative to the root; absolute paths, `..`
/// and symbolic links leading out of the root are refused.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    root: PathBuf,
}

impl LocalTransport {
    /// A transport rooted at `root` (which need not exist yet; [`Transport::mkdir`] creates
    /// directories under it).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalTransport { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of `path`, refusing unsafe paths. `""` is the root itself.
    fn resolve(&self, path: &str) -> Result<PathBuf, TransferError> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        let full = self.root.join(path);
        // A symbolic link inside the root may point outside it: compare canonical forms of
        // the deepest existing ancestor.
        if let Ok(root) = self.root.canonicalize() {
            let mut probe = full.as_path();
            loop {
                if let Ok(c) = probe.canonicalize() {
                    if !c.starts_with(&root) {
                        return Err(TransferError::unsafe_path(path));
                    }
                    break;
                }
                match probe.parent() {
                    Some(p) => probe = p,
                    None => break,
                }
            }
        }
        Ok(full)
    }
}

fn io_err(path: &str, full: &Path, e: io::Error) -> TransferError {
    if e.kind() == io::ErrorKind::NotFound {
        TransferError::NotFound {
            path: path.into(),
            message: format!("{}: {e}", full.display()),
        }
    } else {
        TransferError::local(full, e)
    }
}

#[async_trait]
impl Transport for LocalTransport {
    async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, BoxError> {
        let full = self.resolve(dir)?;
        let mut rd = tokio::fs::read_dir(&full)
            .await
            .map_err(|e| io_err(dir, &full, e))?;
        let mut out = Vec::new();
        while let Some(e) = rd.next_entry().await.map_err(|e| io_err(dir, &full, e))? {
            let meta = e
                .metadata()
                .await
                .map_err(|err| io_err(dir, &e.path(), err))?;
            out.push(RemoteEntry::new(
                e.file_name().to_string_lossy(),
                meta.is_file().then_some(meta.len()),
                meta.is_dir(),
            ));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        let full = self.resolve(path)?;
        match tokio::fs::metadata(&full).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TransferError::local(full, e).into()),
        }
    }

    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        let full = self.resolve(path)?;
        let mut src = tokio::fs::File::open(&full)
            .await
            .map_err(|e| io_err(path, &full, e))?;
        let mut dst = crate::image::open_for_append(local, offset).await?;
        src.seek(io::SeekFrom::Start(offset))
            .await
            .map_err(|e| TransferError::local(&full, e))?;
        let n = crate::image::copy_to_local(
            &mut src,
            &mut dst,
            local,
            &full.display().to_string(),
            None,
        )
        .await?;
        Ok(n)
    }

    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        let full = self.resolve(path)?;
        if let Some(parent) = full.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| TransferError::local(parent, e))?;
        }
        // Copy to a temporary name and rename, so a reader never sees a partial file.
        let tmp = full.with_file_name(format!(
            "{}.amsu-part",
            full.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut src = tokio::fs::File::open(local)
            .await
            .map_err(|e| TransferError::local(local, e))?;
        let mut dst = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| TransferError::local(&tmp, e))?;
        let res = async {
            let n = tokio::io::copy(&mut src, &mut dst)
                .await
                .map_err(|e| TransferError::local(&tmp, e))?;
            dst.flush()
                .await
                .map_err(|e| TransferError::local(&tmp, e))?;
            tokio::fs::rename(&tmp, &full)
                .await
                .map_err(|e| TransferError::local(&full, e))?;
            Ok::<_, TransferError>(n)
        }
        .await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        Ok(res?)
    }

    async fn put_bytes(&self, data: bytes::Bytes, path: &str) -> Result<u64, BoxError> {
        let full = self.resolve(path)?;
        if let Some(parent) = full.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| TransferError::local(parent, e))?;
        }
        // Written under a temporary name and renamed, like `put`.
        let tmp = full.with_file_name(format!(
            "{}.amsu-part",
            full.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let res = async {
            tokio::fs::write(&tmp, &data)
                .await
                .map_err(|e| TransferError::local(&tmp, e))?;
            tokio::fs::rename(&tmp, &full)
                .await
                .map_err(|e| TransferError::local(&full, e))
        }
        .await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        res?;
        Ok(data.len() as u64)
    }

    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        let full = self.resolve(path)?;
        tokio::fs::remove_file(&full)
            .await
            .map_err(|e| io_err(path, &full, e))?;
        Ok(())
    }

    async fn mkdir(&self, path: &str) -> Result<(), BoxError> {
        let full = self.resolve(path)?;
        tokio::fs::create_dir_all(&full)
            .await
            .map_err(|e| TransferError::local(&full, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_unsafe_paths() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTransport::new(dir.path());
        let out = dir.path().join("out");
        for p in ["../x", "/etc/passwd", "a/../../b", "./a"] {
            let e = t.fetch(p, 0, &out).await.unwrap_err();
            assert!(
                matches!(
                    TransferError::from_boxed(e),
                    TransferError::UnsafePath { .. }
                ),
                "{p}"
            );
        }
        assert!(!out.exists());
    }

    #[tokio::test]
    async fn refuses_symlinks_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let t = LocalTransport::new(dir.path());
        let e = t.size("link/secret").await.unwrap_err();
        assert!(matches!(
            TransferError::from_boxed(e),
            TransferError::UnsafePath { .. }
        ));
    }

    #[tokio::test]
    async fn put_fetch_resume_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTransport::new(dir.path().join("root"));
        let src = dir.path().join("src");
        std::fs::write(&src, b"hello world").unwrap();
        t.mkdir("a/b").await.unwrap();
        assert_eq!(t.put(&src, "a/b/f").await.unwrap(), 11);
        assert_eq!(t.size("a/b/f").await.unwrap(), Some(11));
        assert_eq!(t.size("a/b/g").await.unwrap(), None);
        let list = t.list("a/b").await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "f");
        let dst = dir.path().join("dst");
        std::fs::write(&dst, b"hello").unwrap();
        assert_eq!(t.fetch("a/b/f", 5, &dst).await.unwrap(), 6);
        assert_eq!(std::fs::read(&dst).unwrap(), b"hello world");
        let e = t.fetch("a/b/missing", 0, &dst).await.unwrap_err();
        assert!(matches!(
            TransferError::from_boxed(e),
            TransferError::NotFound { .. }
        ));
        t.delete("a/b/f").await.unwrap();
        assert_eq!(t.size("a/b/f").await.unwrap(), None);
        // From memory, replacing; unsafe paths refused.
        assert_eq!(t.put_bytes("one".into(), "a/m").await.unwrap(), 3);
        assert_eq!(t.put_bytes("two!".into(), "a/m").await.unwrap(), 4);
        assert_eq!(std::fs::read(dir.path().join("root/a/m")).unwrap(), b"two!");
        assert!(t.put_bytes("x".into(), "../m").await.is_err());
    }
}
