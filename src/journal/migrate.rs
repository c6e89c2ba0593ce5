//! The parts of schema migrations SQL cannot do alone (hashes that need Rust).

use rusqlite::{Transaction, params};

use super::JournalError;
use super::records::{ITEM_COLUMNS, item_from_row};

/// Runs after migration `version`'s SQL, inside its transaction.
pub(super) fn after(tx: &Transaction<'_>, version: i64) -> Result<(), JournalError> {
    if version == 2 {
        fill_hashes(tx)?;
    }
    Ok(())
}

/// Version 2 indexes operations by group and identity hashes, which come from `op`; the rows
/// copied from version 1 get theirs here.
fn fill_hashes(tx: &Transaction<'_>) -> Result<(), JournalError> {
    let mut select = tx.prepare(&format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE group_hash = 0"
    ))?;
    let mut update = tx.prepare(
        "UPDATE items SET group_hash = ?3, op_hash = ?4 WHERE batch_id = ?1 AND seq = ?2",
    )?;
    let items = select
        .query_map([], |r| item_from_row(r, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    for item in items {
        update.execute(params![
            item.batch,
            item.seq,
            item.op.group().hash64(),
            item.op.identity_hash()
        ])?;
    }
    Ok(())
}
