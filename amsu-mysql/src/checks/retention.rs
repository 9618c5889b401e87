//! Binary log retention: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// How long the binary logs are kept, in seconds: `binlog_expire_logs_seconds` when set,
/// else `expire_logs_days`; `None` when they are never purged by age (both 0).
pub(crate) fn binlog_retention_secs(vars: &BTreeMap<String, String>) -> Option<u64> {
    let num = |n: &str| vars.get(n).and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(s) = num("binlog_expire_logs_seconds").filter(|s| *s > 0.0) {
        return Some(s as u64);
    }
    num("expire_logs_days")
        .filter(|d| *d > 0.0)
        .map(|d| (d * 86400.0) as u64)
}

/// Estimated duration of a setup copying `bytes`: [`FIXED_OVERHEAD_SECS`] plus the bytes
/// at [`ASSUMED_BYTES_PER_SEC`].
pub(crate) fn estimate_setup_secs(bytes: u64) -> u64 {
    FIXED_OVERHEAD_SECS + bytes / ASSUMED_BYTES_PER_SEC
}

/// The retention a setup copying `bytes` needs: twice the estimate (the replica starts
/// reading the binary log only after the copy, and slower disks or networks happen), and
/// at least [`MIN_RETENTION_SECS`].
pub(crate) fn required_retention_secs(bytes: u64) -> u64 {
    (2 * estimate_setup_secs(bytes)).max(MIN_RETENTION_SECS)
}

/// How amsu raises a too-short retention for the setup and restores it afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetentionPlan {
    /// The variable set: `binlog_expire_logs_seconds`, or `expire_logs_days` where the
    /// server lacks it.
    pub variable: String,
    /// Its value before (restored afterwards), as the server showed it.
    pub original: String,
    /// The value during the setup.
    pub raised: String,
}

impl RetentionPlan {
    /// As the change the setup plans ([`amsu_core::Action::RaiseBinlogRetention`]).
    pub fn change(&self) -> amsu_core::GlobalChange {
        amsu_core::GlobalChange::new(
            self.variable.clone(),
            self.original.clone(),
            self.raised.clone(),
        )
    }

    /// `SET GLOBAL variable = raised`.
    pub(crate) fn raise_sql(&self) -> String {
        format!("SET GLOBAL {} = {}", self.variable, self.raised)
    }

    /// `SET GLOBAL variable = original`.
    pub fn restore_sql(&self) -> String {
        format!("SET GLOBAL {} = {}", self.variable, self.original)
    }
}

impl fmt::Display for RetentionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} raised from {} to {}",
            self.variable, self.original, self.raised
        )
    }
}

/// The raise a master with a binary log needs for a setup copying `bytes`, `None` when
/// its retention is long enough (or it has no binary log); pure.
pub(crate) fn retention_plan(master: &ServerFacts, bytes: u64) -> Option<RetentionPlan> {
    if !master.info.log_bin {
        return None;
    }
    let have = binlog_retention_secs(&master.variables)?;
    let need = required_retention_secs(bytes);
    if have >= need {
        return None;
    }
    if let Some(orig) = master.var("binlog_expire_logs_seconds") {
        Some(RetentionPlan {
            variable: "binlog_expire_logs_seconds".into(),
            original: orig.trim().to_string(),
            raised: need.to_string(),
        })
    } else {
        Some(RetentionPlan {
            variable: "expire_logs_days".into(),
            original: master
                .var("expire_logs_days")
                .unwrap_or("0")
                .trim()
                .to_string(),
            raised: need.div_ceil(86400).to_string(),
        })
    }
}

/// Binary log retention against the setup's estimated duration; pure. Blocking when too
/// short, unless `protect` (`--protect-binlogs`): then information on what amsu raises.
pub(crate) fn retention_findings(master: &ServerFacts, bytes: u64, protect: bool) -> Vec<Finding> {
    let Some(plan) = retention_plan(master, bytes) else {
        return vec![];
    };
    let have = binlog_retention_secs(&master.variables).unwrap_or(0);
    let estimate = estimate_setup_secs(bytes);
    let need = required_retention_secs(bytes);
    let oldest = match master.binlogs.first() {
        Some(b) => format!(
            "; the oldest binary log still present is {} ({} file(s), {} in all)",
            b.name,
            master.binlogs.len(),
            human_bytes(master.binlogs.iter().map(|b| b.size).sum())
        ),
        None => String::new(),
    };
    let problem = format!(
        "binary logs are kept for {} ({} = {}) but the setup is estimated to take {} ({} of data at an assumed {} MiB/s plus {} s), so it needs them kept for at least {}: the logs the replica must start from could be purged before it reads them{oldest}",
        human_secs(have),
        plan.variable,
        plan.original,
        human_secs(estimate),
        human_bytes(bytes),
        ASSUMED_BYTES_PER_SEC / MIB,
        FIXED_OVERHEAD_SECS,
        human_secs(need),
    );
    let option_line = if plan.variable == "binlog_expire_logs_seconds" {
        format!("binlog_expire_logs_seconds = {need}")
    } else {
        format!("expire_logs_days = {}", need.div_ceil(86400))
    };
    if protect {
        vec![Finding::warning(
                Role::Master,
                FindingCode::BinlogRetention,
                problem,
                format!(
                    "binlog protection: amsu runs `{}` on the master for the setup's duration and `{}` afterwards",
                    plan.raise_sql(),
                    plan.restore_sql()
                ),
            ).with_remedy(Remedy::setting("protect_binlogs")).with_severity(Severity::Info)]
    } else {
        vec![Finding::blocking(
            Role::Master,
            FindingCode::BinlogRetention,
            problem,
            format!(
                "let amsu raise it for the setup and restore it afterwards (binlog protection), or on the master `{}` and `{option_line}` under [mysqld] in its option file",
                plan.raise_sql()
            ),
        ).with_remedy(Remedy::setting("protect_binlogs"))]
    }
}
