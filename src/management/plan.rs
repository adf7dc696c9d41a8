//! What to send: the difference between the resources as they should be and as the CSE last
//! accepted them. Pure, so the request budget is a property of this file.
//!
//! - A resource the CSE does not hold yet is created (whatever its class).
//! - A resource whose attributes changed is updated with the changed attributes only: an
//!   [`Class::Immediate`] one on every pass, a [`Class::Counter`] one only when counters are
//!   due (at most every `update_interval`).
//! - Nothing else is sent: a pass where nothing changed sends no request.
use super::resources::{Class, Desired};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Attributes that cannot be updated (or are the resource's identity): never in an update.
const NOT_UPDATABLE: &[&str] = &["mgd", "rn"];

/// One request to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// CREATE `desired[index]` with all its attributes.
    Create { index: usize },
    /// UPDATE `desired[index]` with these attributes.
    Update {
        index: usize,
        attrs: Map<String, Value>,
    },
}

/// The attributes the CSE holds, by [`Desired::id`], as last created or updated.
#[derive(Debug, Clone, Default)]
pub struct Published {
    held: HashMap<String, Map<String, Value>>,
}

impl Published {
    /// The CSE accepted `attrs` for the resource `id` (merged into what it held).
    pub fn accepted(&mut self, id: &str, attrs: &Map<String, Value>) {
        let held = self.held.entry(id.to_owned()).or_default();
        for (k, v) in attrs {
            held.insert(k.clone(), v.clone());
        }
    }

    pub fn holds(&self, id: &str) -> bool {
        self.held.contains_key(id)
    }

    /// Forgets everything (the CSE lost our resources: they are created again).
    pub fn clear(&mut self) {
        self.held.clear();
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// The requests that bring the CSE to `desired`, parents first (`desired` is in that order).
pub fn plan(desired: &[Desired], published: &Published, counters_due: bool) -> Vec<Op> {
    let mut ops = Vec::new();
    for (index, d) in desired.iter().enumerate() {
        let Some(held) = published.held.get(&d.id()) else {
            ops.push(Op::Create { index });
            continue;
        };
        if d.class == Class::Counter && !counters_due {
            continue;
        }
        let changed: Map<String, Value> = d
            .attrs
            .iter()
            .filter(|(k, v)| !NOT_UPDATABLE.contains(&k.as_str()) && held.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !changed.is_empty() {
            ops.push(Op::Update {
                index,
                attrs: changed,
            });
        }
    }
    ops
}

/// The attributes of an update made after a create met an existing resource (4105): all of
/// them but the ones that cannot be updated.
pub fn updatable(attrs: &Map<String, Value>) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(k, _)| !NOT_UPDATABLE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
