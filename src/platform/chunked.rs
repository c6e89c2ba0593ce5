//! The seam for platforms that pay in chunks, set up then paid (Prolific): what the engine asks
//! of such a platform. Like [`super::Platform`], errors arrive already classified by the
//! adapter; what each class allows on a set-up and on a pay is decided once, in
//! `engine::chunk_next`.

use std::future::Future;

use super::PlatformError;
use crate::ids::{BulkBonusId, StudyId, SubmissionId};
use crate::money::{Cents, ExactMinor};

pub use crate::item::SetUpAnswer;

/// One row of a set-up: a submission of the study and the amount it is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub submission: SubmissionId,
    pub amount: Cents,
}

/// A platform whose money moves as set up (free, repeatable) then pay (not idempotent).
pub trait ChunkedPlatform: Send + Sync + 'static {
    /// Sets up one chunk's bonuses in a study. Pays nothing.
    fn set_up(
        &self,
        study: &StudyId,
        rows: &[ChunkRow],
    ) -> impl Future<Output = Result<SetUpAnswer, PlatformError>> + Send;

    /// Pays a set-up id. **Not idempotent**: the engine calls this at most once per id, ever.
    fn pay(&self, id: &BulkBonusId) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// The bonuses paid on a submission so far (amounts only, minor units).
    fn submission_bonuses(
        &self,
        submission: &SubmissionId,
    ) -> impl Future<Output = Result<Vec<ExactMinor>, PlatformError>> + Send;
}
