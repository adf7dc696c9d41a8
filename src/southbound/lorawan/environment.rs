//! `citygate check` against this machine: every key file and environment variable the LoRaWAN
//! config points at must exist and hold a valid key.

use super::config::LorawanUdpConfig;
use super::lns_config::LnsMqttConfig;
use super::network::crypto::AesKey;
use crate::config::issue::ConfigIssue;
use crate::config::secret::SecretFields;

fn check(table: String, key: SecretFields<'_>, out: &mut Vec<ConfigIssue>) {
    let issue = key.check_environment(&table, |v| {
        AesKey::from_hex(v)
            .map(|_| ())
            .map_err(|e| format!("not a valid AES-128 key: {e}"))
    });
    out.extend(issue.map(|i| i.hint("a key is 32 hex characters")));
}

impl LorawanUdpConfig {
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(abp) = &d.abp {
                check(format!("devices.{i}.abp"), abp.nwk_s_key(), &mut out);
                check(format!("devices.{i}.abp"), abp.app_s_key(), &mut out);
            }
            if let Some(otaa) = &d.otaa {
                check(format!("devices.{i}.otaa"), otaa.app_key(), &mut out);
            }
        }
        out
    }
}

impl LnsMqttConfig {
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        self.password()
            .check_environment("", |_| Ok(()))
            .into_iter()
            .collect()
    }
}
