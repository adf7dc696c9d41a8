//! Device management: the platform sees the gateway and its field devices as oneM2M `<node>`
//! resources with mgmtObjs (TS-0001 device management), kept current on change only
//! (docs/management.md).
//!
//! - [`config`]: the `[management]` table;
//! - [`system`]: version, operating system and memory of the machine;
//! - [`resources`]: the node and mgmtObj bodies built from what the gateway knows (the device
//!   roster of telemetry, the last logged problems);
//! - [`plan`]: which requests bring the CSE up to date (nothing when nothing changed);
//! - [`reboot`]: the reboot mgmtObj and what a restart request from the platform does;
//! - [`publisher`]: the task that sends them over the northbound binding, with the AE-ID of
//!   the syncer's tree.
//!
//! Wiring (`runtime::northbound`): `Management::new(cfg, nb, binding, syncer.tree(), &metrics)`
//! and spawn `run(cancel)`.
pub mod config;
pub mod plan;
pub mod publisher;
pub mod reboot;
pub mod remote_config;
pub mod resources;
pub mod system;

pub use config::ManagementConfig;
pub use publisher::Management;
