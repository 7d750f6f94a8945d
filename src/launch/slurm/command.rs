//! Running `sbatch`, `scancel`, `squeue`: a program, its arguments, and maybe a script
//! on standard input; a failure is a value naming the command and what it printed.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A failed `sbatch`, `scancel` or `squeue` run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmError {
    /// The command line.
    pub command: String,
    /// Exit status, or why it could not run.
    pub status: String,
    /// Its standard error.
    pub stderr: String,
}

impl fmt::Display for SlurmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({}): {}",
            self.command,
            self.status,
            self.stderr.trim()
        )
    }
}

/// Runs `program` with `args` (and `stdin` on its standard input): its standard output,
/// or why it failed.
// real-world only: an operating-system process.
pub(super) fn run(
    program: &Path,
    args: &[String],
    stdin: Option<&str>,
) -> Result<String, SlurmError> {
    let command = format!("{} {}", program.display(), args.join(" "));
    let failed = |status: String, stderr: String| SlurmError {
        command: command.clone(),
        status,
        stderr,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| failed(format!("cannot run: {err}"), String::new()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that exits without reading (a refused submission) closes the pipe:
        // what it printed says why, so keep going and report that.
        if let Err(err) = pipe.write_all(text.as_bytes()) {
            tracing::debug!(%err, command, "the command did not read its standard input");
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|err| failed(format!("cannot wait: {err}"), String::new()))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(failed(output.status.to_string(), stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_sbatch_is_an_error_naming_the_command_and_its_stderr() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let fake = dir.join("sbatch");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = run(&fake, &["--parsable".into()], Some("#!/bin/sh\n")).unwrap_err();
        assert!(error.command.contains("sbatch --parsable"), "{error}");
        assert!(error.stderr.contains("invalid partition"), "{error}");
        let missing = run(&dir.join("no-such-sbatch"), &[], None).unwrap_err();
        assert!(missing.status.contains("cannot run"), "{missing}");
    }
}
