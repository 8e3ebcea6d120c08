//! Reading addresses and hashes from the command line, with one-line errors.

use std::path::Path;

use ordo_types::{keyfile, Address, Hash32};

use super::errors::ClientError;

/// An address in hex, or the address of a key file at that path.
pub fn address(arg: &str, what: &str) -> Result<Address, ClientError> {
    if let Ok(address) = arg.parse::<Address>() {
        return Ok(address);
    }
    let path = Path::new(arg);
    if path.is_file() {
        return keyfile::read(path)
            .map(|k| k.address())
            .map_err(|e| ClientError::Input(format!("{what}: {e}")));
    }
    Err(ClientError::Input(format!(
        "{what} {arg:?} is neither an address (0x and 40 hex characters) nor a key file"
    )))
}

pub fn hash(arg: &str) -> Result<Hash32, ClientError> {
    arg.parse::<Hash32>()
        .map_err(|e| ClientError::Input(format!("{arg:?} is not a transaction hash: {e}")))
}

#[cfg(test)]
mod tests {
    use ordo_types::KeyPair;

    use super::*;

    #[test]
    fn addresses_from_hex_or_key_files() {
        let key = KeyPair::from_seed([3; 32]);
        let hex = key.address().to_string();
        assert_eq!(address(&hex, "ADDR").unwrap(), key.address());
        assert!(hex.starts_with("0x"));
        assert_eq!(address(&hex[2..], "ADDR").unwrap(), key.address());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        keyfile::write(&path, &key).unwrap();
        assert_eq!(
            address(path.to_str().unwrap(), "--to").unwrap(),
            key.address()
        );
        let e = address("nope", "--to").unwrap_err();
        assert!(e.to_string().contains("neither an address"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(hash("12").unwrap_err().to_string().contains("64 hex"));
    }
}
