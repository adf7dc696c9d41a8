//! `citygate check` against this machine: the secrets and certificate files `[northbound]`
//! points at must be readable (the binding would fail at start otherwise).

use super::config::NorthboundConfig;
use crate::config::issue::ConfigIssue;
use std::path::Path;

fn readable(path: &str, file: Option<&Path>, out: &mut Vec<ConfigIssue>) {
    if let Some(f) = file {
        if let Err(e) = std::fs::metadata(f) {
            out.push(ConfigIssue::new(
                path,
                format!("cannot read {}: {e}", f.display()),
            ));
        }
    }
}

impl NorthboundConfig {
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        if let Some(b) = &self.auth.basic {
            out.extend(b.password().check_environment("auth.basic", |_| Ok(())));
        }
        if let Some(b) = &self.auth.bearer {
            out.extend(b.token().check_environment("auth.bearer", |_| Ok(())));
        }
        readable("tls.ca_file", self.tls.ca_file.as_deref(), &mut out);
        readable(
            "tls.client_cert_file",
            self.tls.client_cert_file.as_deref(),
            &mut out,
        );
        readable(
            "tls.client_key_file",
            self.tls.client_key_file.as_deref(),
            &mut out,
        );
        if let Some(m) = &self.mqtt {
            if m.username.is_some() {
                out.extend(m.password_fields().check_environment("mqtt", |_| Ok(())));
            }
            readable("mqtt.ca_file", m.ca_file.as_deref(), &mut out);
            readable(
                "mqtt.client_cert_file",
                m.client_cert_file.as_deref(),
                &mut out,
            );
            readable(
                "mqtt.client_key_file",
                m.client_key_file.as_deref(),
                &mut out,
            );
        }
        out
    }
}
