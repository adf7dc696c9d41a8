//! Commands from the city platform to field devices: the downlink half.
//!
//! A command arrives as a contentInstance in a device's command container at the CSE
//! (`<device container>/commands`, see `docs/commands.md`). The flow, one way for every
//! adapter:
//!
//! 1. the northbound side parses the instance into a [`Command`] ([`command`]): a JSON `con`
//!    with an `id`, the points to `set` (or a LoRaWAN `downlink`) and an optional `not_after`;
//! 2. it is checked against the allow-list the adapter declared in the config
//!    ([`WriteRule`] per writable point, [`CommandTarget::check`]); anything not allowed is
//!    `rejected` without touching the device;
//! 3. the journal in the buffer DB remembers it (received → executing → finished), so it is
//!    never executed twice by accident, even across a crash ([`journal`]); the
//!    [`dispatcher`] runs steps 2–5;
//! 4. the adapter that owns the device executes it ([`CommandRegistry`] finds it by device id,
//!    the job travels on the adapter's own queue, so writes share the bus with polling and go
//!    first);
//! 5. the [`Outcome`] becomes a result record ([`outcome::result_record`]) that goes through
//!    the buffer and is delivered to `<device container>/results` exactly once, like any
//!    reading.
//!
//! Everything that writes to the field is deny-by-default: an adapter accepts commands only
//! when its config enables them, only for points marked writable, within their limits, and
//! not after the command's expiry.
pub mod command;
pub mod dispatcher;
pub mod journal;
pub mod outcome;
pub mod recording;
pub mod registry;
pub mod rule;

pub use command::{Action, Command, CommandParseError, Downlink};
pub use dispatcher::{DispatchConfig, Dispatcher, Offered};
pub use journal::{Instance, Journal};
pub use outcome::Outcome;
pub use registry::{CommandJob, CommandRegistry, CommandTarget, QueuedTarget, Safety};
pub use rule::{ValueKind, WriteRule};
