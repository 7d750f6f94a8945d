//! The cluster's shared secret, and the owner-only file that keeps it between runs.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hmac::Mac;

use super::{HmacSha256, COOKIE_BYTES_MAX, COOKIE_RANDOM_BYTES};

/// Why a cookie could not be had.
#[derive(Debug)]
pub enum CookieError {
    /// A cookie must have at least one byte (after trimming trailing white space).
    Empty,
    /// A cookie longer than [`COOKIE_BYTES_MAX`].
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// Neither a cookie nor a cookie file was configured, and `$HOME` is not set, so there
    /// is no default place for one.
    NoHome,
    /// The cookie file is accessible to others than its owner: anyone who can read it
    /// can join the cluster. Refused; the text says which `chmod` fixes it.
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading, creating or writing the cookie file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieError::Empty => write!(f, "the cookie is empty"),
            CookieError::TooLong { bytes } => write!(
                f,
                "the cookie has {bytes} bytes, more than the limit of {COOKIE_BYTES_MAX}"
            ),
            CookieError::NoHome => write!(
                f,
                "no cookie configured and $HOME is not set: configure a cookie or a cookie file"
            ),
            CookieError::NotPrivate { path, mode } => write!(
                f,
                "cookie file {path} is accessible to group or others (mode {mode:03o}), so \
                 anyone who can read it can join the cluster; run `chmod 600 {path}`",
                path = path.display()
            ),
            CookieError::Io { path, source } => {
                write!(f, "cookie file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for CookieError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CookieError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<CookieError> for io::Error {
    fn from(err: CookieError) -> Self {
        let kind = match &err {
            CookieError::Io { source, .. } => source.kind(),
            CookieError::NotPrivate { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}

/// The shared secret of a cluster: only nodes holding the same cookie connect.
///
/// Its `Debug` output does not show the secret.
///
/// ```
/// use hyperion::wire::handshake::Cookie;
/// let cookie = Cookie::new("correct horse battery staple").unwrap();
/// assert_eq!(format!("{cookie:?}"), "Cookie(<28 bytes>)");
/// assert!(Cookie::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(Vec<u8>);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie(<{} bytes>)", self.0.len())
    }
}

impl Cookie {
    /// A cookie with these bytes (1 to [`COOKIE_BYTES_MAX`] of them).
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Cookie, CookieError> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            return Err(CookieError::Empty);
        }
        if bytes.len() > COOKIE_BYTES_MAX {
            return Err(CookieError::TooLong { bytes: bytes.len() });
        }
        Ok(Cookie(bytes.to_vec()))
    }

    /// A new random cookie: [`COOKIE_RANDOM_BYTES`] bytes from the operating system's
    /// random source, as lowercase hex digits (so it can be pasted into a file).
    pub fn generate() -> io::Result<Cookie> {
        let mut random = [0u8; COOKIE_RANDOM_BYTES];
        fill_random(&mut random)?;
        let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(Cookie(hex.into_bytes()))
    }

    /// The cookie stored in `path`: the file's bytes without trailing white space.
    ///
    /// A file that others than its owner may access (any group or other permission bit)
    /// is refused with [`CookieError::NotPrivate`], which names the `chmod` to run.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use hyperion::wire::handshake::Cookie;
    /// let path = std::env::temp_dir().join(format!("hyperion-doc-cookie-{}", std::process::id()));
    /// std::fs::write(&path, "sesame\n").unwrap();
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    /// let refused = Cookie::from_file(&path).unwrap_err().to_string();
    /// assert!(refused.contains(&format!("chmod 600 {}", path.display())), "{refused}");
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    /// assert_eq!(Cookie::from_file(&path).unwrap(), Cookie::new("sesame").unwrap());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Cookie, CookieError> {
        let path = path.as_ref();
        let io_error = |source| CookieError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_error)?;
        refuse_if_not_private(path, &file)?;
        // Room for the longest cookie plus a line ending; a file that fills it all is too
        // long, and is not read to its end.
        let read_max = COOKIE_BYTES_MAX + 2;
        let mut bytes = Vec::new();
        file.take(read_max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        if bytes.len() > read_max {
            return Err(CookieError::TooLong { bytes: bytes.len() });
        }
        Cookie::new(bytes.trim_ascii_end())
    }

    /// The cookie in `path`; if there is no such file, a new random cookie stored there
    /// (owner-only permissions, `0600`, in a directory created `0700` if missing), and
    /// the path logged, so that a node is never open by default.
    ///
    /// Nodes starting at once agree, and none reads a half-written file: each writes its
    /// cookie to a temporary file in the same directory and links it into place, which
    /// succeeds for one of them only (a link never replaces a file); the others read the
    /// winner's cookie, complete.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Cookie, CookieError> {
        let path = path.as_ref();
        match Cookie::from_file(path) {
            Err(CookieError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io_error = |source| CookieError::Io {
            path: path.to_path_buf(),
            source,
        };
        let cookie = Cookie::generate().map_err(io_error)?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            create_private_dir(parent).map_err(io_error)?;
        }
        let temporary = write_temporary(path, &cookie).map_err(io_error)?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated a new cluster cookie");
                Ok(cookie)
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Cookie::from_file(path),
            Err(err) => Err(io_error(err)),
        }
    }

    /// Where a node keeps its cookie unless told otherwise: `$HOME/.hyperion/cookie`.
    pub fn default_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
        Some(PathBuf::from(home).join(".hyperion").join("cookie"))
    }

    pub(super) fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// Writes `cookie` (and a line ending) to a new owner-only file beside `path`, synced,
/// and returns the file's path. Its name is unique to this process and call.
fn write_temporary(path: &Path, cookie: &Cookie) -> io::Result<PathBuf> {
    let mut random = [0u8; 8];
    fill_random(&mut random)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cookie".into());
    let suffix: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let temporary = path.with_file_name(format!(".{name}.{}.{suffix}.tmp", std::process::id()));
    let mut file = create_private_file(&temporary)?;
    let written = file
        .write_all(&cookie.0)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(err);
    }
    Ok(temporary)
}

#[cfg(unix)]
fn refuse_if_not_private(path: &Path, file: &std::fs::File) -> Result<(), CookieError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = file.metadata().map_err(|source| CookieError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CookieError::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_not_private(_path: &Path, _file: &std::fs::File) -> Result<(), CookieError> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Fills `bytes` from the operating system's random source. Production code only: the
/// simulator never reaches a handshake.
pub(crate) fn fill_random(bytes: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hyperion-cookie-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_missing_cookie_file_is_generated_private_and_then_reused() {
        let dir = temp_dir("generate");
        let path = dir.join("sub").join("cookie");
        let first = Cookie::load_or_generate(&path).unwrap();
        assert_eq!(first.0.len(), 2 * COOKIE_RANDOM_BYTES);
        assert_eq!(Cookie::load_or_generate(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        let other = Cookie::load_or_generate(dir.join("other")).unwrap();
        assert_ne!(other, first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes a cookie file with owner-only permissions.
    fn write_private(path: &Path, bytes: impl AsRef<[u8]>) {
        std::fs::write(path, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn empty_and_oversized_cookie_files_are_refused() {
        let dir = temp_dir("refuse");
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        write_private(&empty, " \n");
        assert!(matches!(Cookie::from_file(&empty), Err(CookieError::Empty)));
        let huge = dir.join("huge");
        write_private(&huge, vec![b'x'; COOKIE_BYTES_MAX + 1]);
        assert!(matches!(
            Cookie::from_file(&huge),
            Err(CookieError::TooLong { .. })
        ));
        let at_limit = dir.join("at-limit");
        write_private(&at_limit, vec![b'x'; COOKIE_BYTES_MAX]);
        assert!(Cookie::from_file(&at_limit).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_cookie_file_readable_by_group_or_others_is_refused_with_the_chmod_to_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("not-private");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cookie");
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::write(&path, "sesame\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            for outcome in [Cookie::from_file(&path), Cookie::load_or_generate(&path)] {
                let err = outcome.unwrap_err();
                assert!(
                    matches!(&err, CookieError::NotPrivate { mode: m, .. } if *m == mode),
                    "{err:?}"
                );
                let text = err.to_string();
                assert!(
                    text.contains(&format!("chmod 600 {}", path.display())),
                    "{text}"
                );
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Cookie::from_file(&path).unwrap(),
            Cookie::new("sesame").unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eight_threads_creating_one_cookie_at_once_all_read_the_same_secret() {
        let dir = temp_dir("race");
        for round in 0..50 {
            let path = dir.join(format!("round-{round}")).join("cookie");
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    let create = move || {
                        start.wait();
                        Cookie::load_or_generate(&path).map_err(|err| err.to_string())
                    };
                    std::thread::spawn(create) // real-world only: the cookie file on disk
                })
                .collect();
            let cookies: Vec<_> = threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect();
            let first = cookies[0]
                .clone()
                .unwrap_or_else(|err| panic!("round {round}: {err}"));
            for cookie in &cookies {
                assert_eq!(cookie.as_ref(), Ok(&first), "round {round}");
            }
            assert_eq!(Cookie::from_file(&path).unwrap(), first, "round {round}");
            // No temporary file is left beside it.
            let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert_eq!(left, [std::ffi::OsString::from("cookie")], "round {round}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
