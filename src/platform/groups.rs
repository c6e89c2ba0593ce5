//! The seam for participant groups (Prolific's qualifications and block lists): what the engine
//! asks of a platform whose memberships change by idempotent add and remove calls, many
//! participants a call, and are read back as the group's whole member list. Errors arrive
//! classified by the adapter; what each class allows is decided once, in `engine::members`.

use std::collections::HashSet;
use std::future::Future;

use super::PlatformError;
use crate::ids::GroupId;
use crate::item::MemberAction;

/// A platform of groups whose member changes are idempotent (an add ignores members, a remove
/// ignores non-members) and whose member list can be read whole.
pub trait GroupPlatform: Send + Sync + 'static {
    /// Adds or removes these participants. Never overwrites the membership.
    fn change_members(
        &self,
        group: &GroupId,
        action: MemberAction,
        participants: &[String],
    ) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Every member of the group (all pages).
    fn member_ids(
        &self,
        group: &GroupId,
    ) -> impl Future<Output = Result<HashSet<String>, PlatformError>> + Send;
}
