//! Secret key files: created with mode 0600, written atomically (temp file, fsync, rename,
//! directory fsync), refused when another user can read them.

use crate::CryptoError;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

fn err(path: &Path, message: impl Into<String>) -> CryptoError {
    CryptoError::KeyFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Writes `bytes` to `path` atomically with mode 0600 (parent directories get 0700).
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    let dir = path
        .parent()
        .ok_or_else(|| err(path, "has no parent directory"))?;
    if !dir.as_os_str().is_empty() {
        fs::create_dir_all(dir).map_err(|e| err(path, e.to_string()))?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err(&tmp, e.to_string()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| err(&tmp, e.to_string()))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| err(path, e.to_string()))?;
    if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads the 32-byte seed stored (hex) at `path`, or generates one with `generate` and
/// stores it with mode 0600. Returns `(seed, created)`. A file readable by group or others
/// is refused: a leaked signing key cannot be un-leaked.
pub fn load_or_create_seed(
    path: &Path,
    generate: impl FnOnce() -> Result<[u8; 32], CryptoError>,
) -> Result<([u8; 32], bool), CryptoError> {
    match File::open(path) {
        Ok(mut f) => {
            let mode = f
                .metadata()
                .map_err(|e| err(path, e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(err(
                    path,
                    format!(
                        "permissions {:o} are too open; run `chmod 600 {}`",
                        mode & 0o777,
                        path.display()
                    ),
                ));
            }
            let mut s = String::new();
            f.read_to_string(&mut s)
                .map_err(|e| err(path, e.to_string()))?;
            let bytes = hex::decode(s.trim()).map_err(|_| err(path, "is not a hex-encoded key"))?;
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| err(path, "must hold exactly 32 bytes (64 hex digits)"))?;
            Ok((seed, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = generate()?;
            write_secret_file(path, hex::encode(seed).as_bytes())?;
            Ok((seed, true))
        }
        Err(e) => Err(err(path, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys/audit.key");
        let (a, created) = load_or_create_seed(&p, || Ok([5u8; 32])).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, created) = load_or_create_seed(&p, || panic!("must not regenerate")).unwrap();
        assert!(!created);
        assert_eq!(a, b);
    }

    #[test]
    fn refuses_world_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        load_or_create_seed(&p, || Ok([1u8; 32])).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_seed(&p, || Ok([1u8; 32])).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}
