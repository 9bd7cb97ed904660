use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The name of the pinned checksum algorithm, stored nowhere but documented: changing it would make every deployed
/// database refuse its own history, so it never changes.
pub const CHECKSUM_ALGORITHM: &str = "sha256 over the text with a leading BOM removed and CRLF folded to LF";

/// The SHA-256 checksum of a migration script's normalised text.
///
/// The text is normalised before hashing (a leading UTF-8 byte-order mark is removed, `\r\n` becomes `\n`) so a
/// checkout with Windows line endings produces the same checksum as the one the database recorded.
///
/// ```
/// use migrate_core::Checksum;
///
/// let unix = Checksum::of("CREATE TABLE t (id int);\n");
/// let windows = Checksum::of("\u{feff}CREATE TABLE t (id int);\r\n");
/// assert_eq!(unix, windows);
/// assert_eq!(unix.to_string().len(), 64);
/// assert_eq!(unix.to_string().parse::<Checksum>().unwrap(), unix);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// Hash `text` after normalising it.
    pub fn of(text: &str) -> Checksum {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut hasher = Sha256::new();
        let mut rest = text;
        while let Some(at) = rest.find("\r\n") {
            hasher.update(&rest.as_bytes()[..at]);
            hasher.update(b"\n");
            rest = &rest[at + 2..];
        }
        hasher.update(rest.as_bytes());
        Checksum(hasher.finalize().into())
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

/// A stored checksum that is not 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checksum {text:?} is not 64 hexadecimal digits")]
pub struct ChecksumParseError {
    /// The text that failed to parse.
    pub text: String,
}

impl FromStr for Checksum {
    type Err = ChecksumParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ChecksumParseError { text: text.to_owned() };
        if text.len() != 64 || !text.is_ascii() {
            return Err(error());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| error())?;
        }
        Ok(Checksum(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_sha256_of_known_text() {
        // sha256("abc"), from FIPS 180-2: pins the algorithm so it can never silently change.
        assert_eq!(Checksum::of("abc").to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn crlf_and_bom_do_not_change_the_checksum() {
        assert_eq!(Checksum::of("a\r\nb\r\n"), Checksum::of("a\nb\n"));
        assert_eq!(Checksum::of("\u{feff}a"), Checksum::of("a"));
        // A lone CR is content, not a line ending.
        assert_ne!(Checksum::of("a\rb"), Checksum::of("a\nb"));
    }

    #[test]
    fn rejects_malformed_hex() {
        assert!("zz".parse::<Checksum>().is_err());
        assert!("g".repeat(64).parse::<Checksum>().is_err());
        assert!("é".repeat(32).parse::<Checksum>().is_err());
    }
}
