//! One lock per group: at most one operation of a group (a worker's bonuses for one
//! assignment, a worker's score on one qualification, a worker's block) is sent or verified at
//! a time, so that verification always sees a group standing still.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::op::Group;

/// The locks of the groups in use; a group's entry lives only while someone holds or awaits it.
#[derive(Default)]
pub struct GroupLocks {
    map: Mutex<HashMap<Group, Arc<AsyncMutex<()>>>>,
}

/// Held while an operation of the group is under way or the group is being verified.
pub struct GroupGuard<'a> {
    locks: &'a GroupLocks,
    group: Group,
    mutex: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl GroupLocks {
    pub async fn lock(&self, group: Group) -> GroupGuard<'_> {
        let mutex = {
            let mut map = self.map.lock().expect("group locks");
            map.entry(group.clone()).or_default().clone()
        };
        let guard = mutex.clone().lock_owned().await;
        GroupGuard {
            locks: self,
            group,
            mutex,
            guard: Some(guard),
        }
    }

    /// Groups with an entry (held or awaited); for tests.
    pub fn len(&self) -> usize {
        self.map.lock().expect("group locks").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.locks.map.lock().expect("group locks");
        // Everyone who awaits this group cloned the Arc under the map's lock: if only the map
        // and this guard hold it now, nobody else wants the group.
        if Arc::strong_count(&self.mutex) == 2 {
            map.remove(&self.group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AssignmentId, WorkerId};

    fn group(a: &str) -> Group {
        Group::Assignment {
            worker: WorkerId::parse("A1").unwrap(),
            assignment: AssignmentId::parse(a).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_group_is_held_by_one_at_a_time_and_forgotten_when_free() {
        let locks = Arc::new(GroupLocks::default());
        let first = locks.lock(group("X1")).await;
        // Another group is free.
        drop(locks.lock(group("X2")).await);
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _g = locks.lock(group("X1")).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the second holder waits");
        drop(first);
        waiter.await.unwrap();
        assert!(locks.is_empty(), "no entry is kept for free groups");
    }
}
