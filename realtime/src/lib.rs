#![doc = include_str!("../README.md")]

mod bus;
mod cluster;
mod event;
mod presence;
mod resume;
mod stats;

pub use bus::{BUS_CONNECTED, CAPACITY as BUS_CAPACITY, EventBus, Fanout, InProcess, Subscription};
pub use cluster::{BUS_QUEUE, REDIS_DURATION, REDIS_ERRORS, RedisFanout, RedisPresence};
pub use event::{
    AttachmentSnapshot, Event, EventKind, MentionKind, MentionSnapshot, MessageSnapshot, ReactionCount, Reactor, Topic,
};
pub use presence::{InProcessPresence, PresenceStore};
pub use resume::{History, HistoryError, SeqCursor};
pub use stats::{
    HISTORY as STATS_HISTORY, InProcessSnapshots, NodeSnapshots, RedisSnapshots, SnapshotError, SnapshotStore,
};
