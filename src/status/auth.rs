//! The status server's token: 128 random bits from the operating system per run,
//! written to the run's directory (readable by its owner only) and compared in constant
//! time. A request carries it in the `X-Hyperion-Token` header, as `?token=` on the
//! first page load, or in the cookie the server sets then.

use std::fmt;
use std::io::Write;
use std::path::Path;

/// The header that carries the token (required for every `POST`).
pub const TOKEN_HEADER: &str = "x-hyperion-token";

/// The cookie that carries the token after the first page load.
pub const TOKEN_COOKIE: &str = "hyperion_status";

/// Bytes of randomness in a token (128 bits).
pub const TOKEN_BYTES: usize = 16;

/// A secret that every request to the status server must show.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never in a log line.
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A fresh token from the operating system's random source, as hex.
    pub fn generate() -> std::io::Result<Token> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?; // real-world only
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The token as text (for the URL and the file).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `shown` is this token, in time independent of where they differ.
    pub fn matches(&self, shown: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), shown.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Writes the token to `path`, created readable and writable by its owner only.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        #[cfg(unix)]
        {
            // An existing file keeps its mode through open: set it.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(self.0.as_bytes())?;
        file.write_all(b"\n")
    }
}

/// The token a request shows: the header first, then the cookie, then (for a page
/// load) the query parameter.
pub fn shown_token<'a>(
    header: Option<&'a str>,
    cookies: impl Iterator<Item = &'a str>,
    query: Option<&'a str>,
) -> Option<&'a str> {
    header
        .or_else(|| {
            cookies
                .flat_map(|line| line.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == TOKEN_COOKIE)
                .map(|(_, value)| value)
        })
        .or_else(|| {
            query?
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| *name == "token")
                .map(|(_, value)| value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_has_128_bits_and_two_tokens_differ() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_eq!(a.as_str().len(), 2 * TOKEN_BYTES);
        assert_ne!(a, b);
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(""));
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn the_token_file_is_private() {
        let dir = std::env::temp_dir().join(format!("hyperion-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("status-token");
        let token = Token::generate().unwrap();
        token.write_to(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            token.as_str()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_header_wins_over_the_cookie_and_the_query() {
        let cookies = ["a=1; hyperion_status=c"];
        assert_eq!(
            shown_token(Some("h"), cookies.iter().copied(), Some("token=q")),
            Some("h")
        );
        assert_eq!(
            shown_token(None, cookies.iter().copied(), Some("token=q")),
            Some("c")
        );
        assert_eq!(
            shown_token(None, std::iter::empty(), Some("x=1&token=q")),
            Some("q")
        );
        assert_eq!(shown_token(None, std::iter::empty(), None), None);
    }
}
