//! Class A downlink scheduling for the edge network server: which receive window a frame goes
//! in ([`window`]), the gateway's duty cycle per EU868 sub-band ([`duty_cycle`], with LoRa
//! time on air from [`airtime`]), and the per-device queue of application downlinks with
//! their outcomes ([`queue`]). Pure code: the adapter does the I/O and persists FCntDown
//! before anything is sent.

pub mod airtime;
pub mod duty_cycle;
pub mod queue;
pub mod window;

pub use duty_cycle::DutyCycle;
pub use queue::DeviceQueue;
pub use window::{choose, NoWindow, Rx, Uplink, Window, WindowSettings};
