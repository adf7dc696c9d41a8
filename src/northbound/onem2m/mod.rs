//! oneM2M data model the gateway needs: primitives, resource bodies and the resource tree
//! (AE + one container per device) it maintains at the CSE.
pub mod attributes;
pub mod name;
pub mod primitive;
pub mod resource;
pub mod series;
pub mod tree;
