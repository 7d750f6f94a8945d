//! The batch scripts worker jobs run: one worker's, or a job array's (task `i` runs
//! the worker of launch `i`). Every word is quoted; nothing else goes through a shell.

use super::SlurmLauncher;
use crate::remote::ServiceId;
use crate::types::id::NodeId;

/// Quotes `word` for a POSIX shell script.
///
/// ```
/// use hyperion::launch::shell_quote;
/// assert_eq!(shell_quote("plain"), "'plain'");
/// assert_eq!(shell_quote("it's"), "'it'\\''s'");
/// ```
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl SlurmLauncher {
    /// The worker's command line, every word quoted for the shell.
    fn command_line(&self, master: NodeId, service: &ServiceId) -> String {
        let mut words = vec![shell_quote(&self.program.display().to_string())];
        words.extend(
            self.worker
                .worker_args(master, service)
                .iter()
                .map(|word| shell_quote(&word.to_string_lossy())),
        );
        words.join(" ")
    }

    /// The script's start: the shell, and the configured preamble.
    fn script_head(&self) -> String {
        let mut script = String::from("#!/bin/sh\nset -e\n");
        for line in &self.options.preamble {
            script.push_str(line);
            script.push('\n');
        }
        script
    }

    /// The batch script for one worker.
    pub fn script(&self, master: NodeId, service: &ServiceId) -> String {
        let mut script = self.script_head();
        script.push_str("exec ");
        script.push_str(&self.command_line(master, service));
        script.push('\n');
        script
    }

    /// The batch script of a job array: task `i` runs the worker of `services[i]`; a
    /// task whose launch was given up before the submission (`None`) exits at once.
    pub fn array_script(&self, master: NodeId, services: &[Option<ServiceId>]) -> String {
        let mut script = self.script_head();
        script.push_str("case \"$SLURM_ARRAY_TASK_ID\" in\n");
        for (task, service) in services.iter().enumerate() {
            if let Some(service) = service {
                let command = self.command_line(master, service);
                script.push_str(&format!("{task}) exec {command} ;;\n"));
            }
        }
        script.push_str("esac\nexit 0\n");
        script
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::SlurmOptions;

    #[test]
    fn the_worker_script_quotes_every_word() {
        let launcher = SlurmLauncher::new(SlurmOptions {
            preamble: vec!["module load gcc".into()],
            ..SlurmOptions::default()
        })
        .unwrap()
        .program("/opt/my prog/bin")
        .cookie_file("/home/me/.cookie's");
        let master: NodeId = "10.0.0.1:7000#ab".parse().unwrap();
        let script = launcher.script(master, &ServiceId::from_text("svc-1"));
        assert!(script.contains("module load gcc\n"));
        assert!(script.contains("exec '/opt/my prog/bin' 'worker' '--master' '10.0.0.1:7000#ab' '--service' 'svc-1' '--cookie-file' '/home/me/.cookie'\\''s'"), "{script}");
    }
}
