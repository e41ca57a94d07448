#![doc = include_str!("../README.md")]

mod bus;
mod event;
mod presence;
mod resume;

pub use bus::{EventBus, Fanout, InProcess, Subscription};
pub use event::{Event, EventKind, MessageSnapshot, Topic};
pub use presence::{InProcessPresence, PresenceStore};
pub use resume::{History, SeqCursor};
