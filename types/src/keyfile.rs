//! Key files: one ed25519 secret per file, as JSON, readable by its owner only.
//!
//! ```json
//! {"scheme":"ed25519","public_key":"…","address":"…","secret_key":"…"}
//! ```
//!
//! Files are created with mode 0600 and never overwritten. On reading, a file that others
//! can read is refused (as ssh does), and a public key or address that does not match the
//! secret is reported as malformed rather than silently trusted.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hash::parse_hex;
use crate::{Address, Error, KeyPair, PublicKey, Result};

#[derive(Serialize, Deserialize)]
struct KeyFile {
    scheme: String,
    public_key: PublicKey,
    address: Address,
    secret_key: String,
}

/// Writes `key` to a new file at `path` with mode 0600; fails if the file exists.
pub fn write(path: &Path, key: &KeyPair) -> Result<()> {
    let io_err = |source| Error::KeyFileIo {
        path: path.to_path_buf(),
        source,
    };
    let json = to_text(key);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => Error::KeyFileExists {
                path: path.to_path_buf(),
            },
            _ => io_err(e),
        })?;
    file.write_all(json.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// Reads a key written by [`write`].
pub fn read(path: &Path) -> Result<KeyPair> {
    let malformed = |reason: String| Error::KeyFileMalformed {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::KeyFileMissing {
            path: path.to_path_buf(),
        },
        _ => Error::KeyFileIo {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFileInsecure {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::KeyFileIo {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(&text).map_err(malformed)
}

/// The text [`write`] puts in a key file.
pub fn to_text(key: &KeyPair) -> String {
    let body = KeyFile {
        scheme: "ed25519".into(),
        public_key: key.public(),
        address: key.address(),
        secret_key: hex::encode(key.seed()),
    };
    let mut json = serde_json::to_string_pretty(&body).expect("key file serialises");
    json.push('\n');
    json
}

/// Parses a key file's text; the error says why it is malformed.
pub fn parse(text: &str) -> std::result::Result<KeyPair, String> {
    let file: KeyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if file.scheme != "ed25519" {
        return Err(format!("unknown scheme {:?}", file.scheme));
    }
    let seed = parse_hex::<32>(&file.secret_key).map_err(|e| format!("secret_key: {e}"))?;
    let key = KeyPair::from_seed(seed);
    if key.public() != file.public_key || key.address() != file.address {
        return Err("public_key or address does not belong to secret_key".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = KeyPair::generate();
        write(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).unwrap().public(), key.public());
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        write(&path, &KeyPair::generate()).unwrap();
        assert!(matches!(
            write(&path, &KeyPair::generate()),
            Err(Error::KeyFileExists { .. })
        ));
    }

    #[test]
    fn clear_errors_for_missing_insecure_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.key");
        assert!(matches!(read(&missing), Err(Error::KeyFileMissing { .. })));

        let path = dir.path().join("k.key");
        write(&path, &KeyPair::generate()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read(&path), Err(Error::KeyFileInsecure { .. })));

        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not json").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = read(&bad).unwrap_err();
        assert!(matches!(err, Error::KeyFileMalformed { .. }), "{err}");

        let tampered = dir.path().join("t.key");
        write(&tampered, &KeyPair::from_seed([1; 32])).unwrap();
        let text = std::fs::read_to_string(&tampered).unwrap();
        let other = hex::encode(KeyPair::from_seed([2; 32]).seed());
        let text = text.replace(&hex::encode([1u8; 32]), &other);
        std::fs::write(&tampered, text).unwrap();
        assert!(matches!(
            read(&tampered),
            Err(Error::KeyFileMalformed { .. })
        ));
    }
}
