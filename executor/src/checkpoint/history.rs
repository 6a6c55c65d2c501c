//! What `SHOW CHECKPOINTS` and `weir_catalog.checkpoints` report: one
//! record per checkpoint, with a breakdown per operator instance.

use std::collections::VecDeque;
use std::time::Duration;

/// Checkpoints remembered; older records are forgotten.
const HISTORY: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointStatus {
    InProgress,
    Completed,
    Failed,
}

impl CheckpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointStatus::InProgress => "in_progress",
            CheckpointStatus::Completed => "completed",
            CheckpointStatus::Failed => "failed",
        }
    }
}

/// What started a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointTrigger {
    Interval,
    /// A `CHECKPOINT` statement.
    Manual,
    /// Found in storage at start.
    Restored,
}

impl CheckpointTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointTrigger::Interval => "interval",
            CheckpointTrigger::Manual => "manual",
            CheckpointTrigger::Restored => "restored",
        }
    }
}

/// One operator instance's part of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorRecord {
    pub view: String,
    pub operator: String,
    pub instance: u32,
    /// Bytes of state the checkpoint holds for it.
    pub state_bytes: u64,
    /// Bytes this checkpoint uploaded for it.
    pub uploaded_bytes: u64,
    pub sync: Duration,
    pub upload: Duration,
    pub alignment: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRecord {
    pub id: u64,
    pub epoch: u64,
    pub status: CheckpointStatus,
    pub trigger: CheckpointTrigger,
    /// Milliseconds since the Unix epoch.
    pub triggered_at_ms: i64,
    /// From trigger to completion or failure.
    pub duration: Option<Duration>,
    /// The longest time any view paused to freeze its state.
    pub sync: Duration,
    /// The longest upload of any view.
    pub upload: Duration,
    /// From the trigger to the first view freezing.
    pub start_delay: Duration,
    pub alignment: Duration,
    /// Bytes of state the checkpoint holds.
    pub full_bytes: u64,
    /// Bytes it uploaded (the rest was shared with earlier checkpoints).
    pub incremental_bytes: u64,
    pub failure: Option<String>,
    pub operators: Vec<OperatorRecord>,
}

/// The newest checkpoints, oldest first.
#[derive(Debug, Default)]
pub struct History {
    records: VecDeque<CheckpointRecord>,
}

impl History {
    /// Adds a record or replaces the one with its id.
    pub fn put(&mut self, record: CheckpointRecord) {
        if let Some(existing) = self.records.iter_mut().find(|r| r.id == record.id) {
            *existing = record;
            return;
        }
        self.records.push_back(record);
        self.records.make_contiguous().sort_by_key(|r| r.id);
        while self.records.len() > HISTORY {
            self.records.pop_front();
        }
    }

    pub fn records(&self) -> Vec<CheckpointRecord> {
        self.records.iter().cloned().collect()
    }
}
