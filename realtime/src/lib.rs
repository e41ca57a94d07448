#![doc = include_str!("../README.md")]

mod bus;
mod event;

pub use bus::{EventBus, EventStream, InProcessBus};
pub use event::{Event, EventKind};
