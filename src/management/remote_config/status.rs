//! The status report the gateway writes to its `configStatus` container after every remote
//! config request and every automatic rollback: one JSON contentInstance each
//! (format in docs/management.md, "Remote config").
use crate::config::report::ConfigReport;
use crate::runtime::reload::ReloadOutcome;
use serde::Serialize;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new config is in the file and running.
    Applied,
    /// Nothing changed (see `problems` and `reason`).
    Rejected,
    /// The previous config is back in the file and running.
    RolledBack,
}

/// One problem of a config, placed in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `remote:<instance rn>` for a config that came from the platform.
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem of a `check` report.
pub fn problems_of(report: &ConfigReport) -> Vec<Problem> {
    let file = report.file.display().to_string();
    report
        .issues
        .iter()
        .map(|i| Problem {
            file: file.clone(),
            line: i.line,
            col: i.col,
            message: i.message.clone(),
            hint: i.hint.clone(),
        })
        .collect()
}

/// One status contentInstance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// Resource name of the config instance this answers; `null` for an automatic rollback.
    pub instance: Option<String>,
    pub result: Outcome,
    /// The gateway rolled back on its own (an adapter kept failing after the change).
    pub automatic: bool,
    /// Why, in one sentence (a refusal that is not about a line, a rollback's cause).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What `check` found (empty unless rejected).
    pub problems: Vec<Problem>,
    /// What `check` warns about (the config was still applied).
    pub warnings: Vec<Problem>,
    /// Adapters started, restarted and stopped by the change (the others kept running).
    pub started: Vec<String>,
    pub restarted: Vec<String>,
    pub stopped: Vec<String>,
    /// Sections that changed but take effect only when citygate restarts.
    pub needs_restart: Vec<String>,
    /// When the gateway decided (RFC 3339, UTC).
    pub at: String,
}

impl StatusReport {
    pub fn new(instance: Option<&str>, result: Outcome) -> Self {
        StatusReport {
            instance: instance.map(String::from),
            result,
            automatic: false,
            reason: None,
            problems: Vec::new(),
            warnings: Vec::new(),
            started: Vec::new(),
            restarted: Vec::new(),
            stopped: Vec::new(),
            needs_restart: Vec::new(),
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        }
    }

    /// A refusal that changes nothing.
    pub fn rejected(instance: Option<&str>, reason: impl Into<String>) -> Self {
        StatusReport {
            reason: Some(reason.into()),
            ..StatusReport::new(instance, Outcome::Rejected)
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// What the reload did.
    pub fn with_outcome(mut self, o: &ReloadOutcome) -> Self {
        self.started = o.started.clone();
        self.restarted = o.restarted.clone();
        self.stopped = o.stopped.clone();
        self.needs_restart = o.needs_restart.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The `con` of the status instance.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_broken_config_becomes_a_rejection_with_its_positions() {
        let text = "[buffer]\nmax_bytes = \"lots\"\n[gatway]\n";
        let report = crate::config::load_str(text, Path::new("remote:cin-7")).unwrap_err();
        let status = StatusReport {
            problems: problems_of(&report),
            ..StatusReport::rejected(Some("cin-7"), "the config has 2 problem(s)")
        };
        let v: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(v["instance"], "cin-7");
        assert_eq!(v["result"], "rejected");
        let problems = v["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 2, "{v}");
        assert_eq!(problems[0]["file"], "remote:cin-7");
        assert_eq!(
            (&problems[0]["line"], &problems[0]["col"]),
            (&2.into(), &13.into())
        );
        assert_eq!(
            (&problems[1]["line"], &problems[1]["col"]),
            (&3.into(), &2.into())
        );
        assert!(
            problems[1]["hint"].as_str().unwrap().contains("gateway"),
            "{v}"
        );
        assert!(v["at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn an_applied_change_lists_what_restarted() {
        let outcome = ReloadOutcome {
            restarted: vec!["b".into()],
            needs_restart: vec!["telemetry"],
            ..ReloadOutcome::default()
        };
        let s = StatusReport::new(Some("x"), Outcome::Applied).with_outcome(&outcome);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["result"], "applied");
        assert_eq!(v["restarted"], serde_json::json!(["b"]));
        assert_eq!(v["needs_restart"], serde_json::json!(["telemetry"]));
        assert!(v.get("reason").is_none());
        let r = StatusReport::new(None, Outcome::RolledBack).reason("adapter a failing");
        assert_eq!(serde_json::to_value(&r).unwrap()["result"], "rolled_back");
        assert_eq!(
            serde_json::to_value(&r).unwrap()["instance"],
            serde_json::Value::Null
        );
    }
}
