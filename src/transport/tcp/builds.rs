//! Telling the user about a peer of another build: the hello refused it (see
//! [`HandshakeError::BuildMismatch`]), and the user must rebuild or declare the builds
//! compatible, so the first refusal of each other build is an error (a master's
//! terminal shows it), not a warning among the pre-authentication ones.

use super::State;
use crate::build_id::BuildId;
use crate::wire::handshake::HandshakeError;

/// Most other builds reported as errors per transport; later ones are logged at debug
/// level. The hello comes before the proofs, so a peer without the cookie could send
/// any number of builds: the bound keeps it from filling the log.
pub const REPORTED_BUILDS_MAX: usize = 16;

impl State {
    /// Logs `err` (a build mismatch with `theirs`) as an error the first time this
    /// transport meets `theirs`.
    pub(super) fn report_build_mismatch(&mut self, theirs: &BuildId, err: &HandshakeError) {
        let first = self.reported_builds.len() < REPORTED_BUILDS_MAX
            && self.reported_builds.insert(theirs.clone());
        if first {
            tracing::error!("{err}");
        } else {
            tracing::debug!("{err}");
        }
    }
}
