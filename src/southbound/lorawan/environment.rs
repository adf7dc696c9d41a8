//! `citygate check` against this machine: every key file and environment variable the LoRaWAN
//! config points at must exist and hold a valid key.

use super::config::{LnsMqttConfig, LorawanUdpConfig, Secret, SecretError};
use crate::config::issue::ConfigIssue;

fn check(
    path: String,
    name: &str,
    secret: Result<Secret, SecretError>,
    out: &mut Vec<ConfigIssue>,
) {
    let Ok(secret) = secret else {
        return; // a missing or ambiguous choice is reported by `validate`
    };
    let key = match &secret {
        Secret::Inline(_) => name.to_owned(),
        Secret::File(_) => format!("{name}_file"),
        Secret::Env(_) => format!("{name}_env"),
    };
    if let Err(e) = secret.resolve() {
        out.push(
            ConfigIssue::new(format!("{path}.{key}"), e.to_string())
                .hint("a key is 32 hex characters"),
        );
    }
}

impl LorawanUdpConfig {
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(abp) = &d.abp {
                check(
                    format!("devices.{i}.abp"),
                    "nwk_s_key",
                    abp.nwk_s_key(),
                    &mut out,
                );
                check(
                    format!("devices.{i}.abp"),
                    "app_s_key",
                    abp.app_s_key(),
                    &mut out,
                );
            }
            if let Some(otaa) = &d.otaa {
                check(
                    format!("devices.{i}.otaa"),
                    "app_key",
                    otaa.app_key(),
                    &mut out,
                );
            }
        }
        out
    }
}

impl LnsMqttConfig {
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        match self.password() {
            Ok(_) => Vec::new(),
            Err(SecretError::Choice(_)) => Vec::new(),
            Err(e) => vec![ConfigIssue::new("password", e.to_string())],
        }
    }
}
