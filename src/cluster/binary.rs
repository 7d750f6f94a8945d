//! The run's own binary: the master links (or copies) its executable into the run
//! directory, and launchers start workers from there, so that a worker started hours
//! later (a retry, a batch job that waited in the queue) runs the master's build even
//! if the program was recompiled meanwhile.

use std::path::{Path, PathBuf};

/// Where a run keeps its copy of the program: `bin/<program>` in the run directory.
pub fn run_binary_path(run_dir: &Path, program: &Path) -> PathBuf {
    let name = program
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_else(|| "program".into());
    run_dir.join("bin").join(name)
}

/// Puts `program` into `run_dir` (see [`run_binary_path`]): a hard link when the run
/// directory is on the same file system (no space used; a rebuild by cargo or a linker
/// writes a new file and leaves the link alone), else a copy. Returns the copy's path.
// real-world only: the file system.
pub fn copy_program(program: &Path, run_dir: &Path) -> std::io::Result<PathBuf> {
    let target = run_binary_path(run_dir, program);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::hard_link(program, &target).is_err() {
        // Another file system, or links not allowed: copy (permissions included).
        std::fs::copy(program, &target)?;
    }
    Ok(target)
}

/// Removes the run's copy of the program (the `bin` directory [`copy_program`] made),
/// once no worker of the run can start any more. A run without a copy is fine.
// real-world only: the file system.
pub fn remove_program_copy(run_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(run_dir.join("bin")) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_lands_in_the_run_directory_with_its_content() {
        let dir = std::env::temp_dir().join(format!("hyperion-binary-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run-0001")).unwrap();
        let program = dir.join("prog");
        std::fs::write(&program, b"build one").unwrap();
        let copy = copy_program(&program, &dir.join("run-0001")).unwrap();
        assert_eq!(copy, dir.join("run-0001").join("bin").join("prog"));
        // A rebuild replaces the file at the original path; the run's copy keeps the
        // old build.
        std::fs::remove_file(&program).unwrap();
        std::fs::write(&program, b"build two").unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"build one");
        remove_program_copy(&dir.join("run-0001")).unwrap();
        assert!(!copy.exists(), "the copy is removed at the run's end");
        assert_eq!(std::fs::read(&program).unwrap(), b"build two");
        remove_program_copy(&dir.join("run-0001")).expect("removing twice is fine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
