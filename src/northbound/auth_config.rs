//! `[northbound.tls]` and `[northbound.auth]`: how the gateway proves itself to the CSE and which
//! CSE it trusts. Secrets stay out of the config: a file or an environment variable names them,
//! read when the binding is built (the one secret rule, [`SecretFields`]).

use crate::config::secret::SecretFields;
use serde::Deserialize;
use std::path::PathBuf;

/// TLS towards the CSE: whom to trust, and the gateway's own certificate for mutual TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA(s) that sign the CSE's certificate; when set only these are trusted.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

/// HTTP authentication towards the CSE: at most one of `basic` or `bearer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub basic: Option<BasicAuth>,
    pub bearer: Option<BearerAuth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    /// File holding the password (surrounding whitespace ignored).
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BearerAuth {
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
}

/// Credentials read from files/env when the binding is built.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer { token: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Credentials::Bearer { .. } => write!(f, "Bearer(***)"),
        }
    }
}

impl AuthConfig {
    /// Reads the secret from its file or environment variable.
    pub fn resolve(&self) -> Result<Option<Credentials>, String> {
        if let Some(b) = &self.basic {
            let password = b.password().read_required().map_err(|e| e.to_string())?;
            return Ok(Some(Credentials::Basic {
                user: b.user.clone(),
                password,
            }));
        }
        if let Some(b) = &self.bearer {
            let token = b.token().read_required().map_err(|e| e.to_string())?;
            return Ok(Some(Credentials::Bearer { token }));
        }
        Ok(None)
    }
}

impl BasicAuth {
    /// The password's config fields (the one secret rule: [`SecretFields`]).
    pub fn password(&self) -> SecretFields<'_> {
        SecretFields::external(
            "password",
            self.password_file.as_ref(),
            self.password_env.as_deref(),
        )
    }
}

impl BearerAuth {
    /// The token's config fields (the one secret rule: [`SecretFields`]).
    pub fn token(&self) -> SecretFields<'_> {
        SecretFields::external("token", self.token_file.as_ref(), self.token_env.as_deref())
    }
}
