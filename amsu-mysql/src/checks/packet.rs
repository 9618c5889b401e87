//! max_allowed_packet: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// The packet size to suggest for a row of `bytes`: twice it, rounded up to a MiB, at
/// most 1 GiB.
fn suggested_packet(bytes: u64) -> u64 {
    (2 * bytes)
        .div_ceil(MIB)
        .max(1)
        .saturating_mul(MIB)
        .min(1024 * MIB)
}

/// The largest row against `max_allowed_packet` on the master (the copy reads it) and on
/// the replica (`max_allowed_packet` for the load, `slave_max_allowed_packet` for
/// replication); pure. A measured row over the limit blocks; an estimate warns.
pub(crate) fn packet_findings(
    master: &ServerFacts,
    replica: Option<&ServerFacts>,
    rows: &[RowSize],
) -> Vec<Finding> {
    let Some(largest) = rows.iter().max_by_key(|r| r.bytes) else {
        return vec![];
    };
    let mut limits: Vec<(Role, &str, u64)> = Vec::new();
    for s in std::iter::once(master).chain(replica) {
        if let Some(v) = s.var_u64("max_allowed_packet") {
            limits.push((s.role, "max_allowed_packet", v));
        }
        if s.role == Role::Replica {
            for n in ["slave_max_allowed_packet", "replica_max_allowed_packet"] {
                if let Some(v) = s.var_u64(n) {
                    limits.push((s.role, n, v));
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    let how = if largest.measured {
        "measured with MAX(LENGTH()) over its BLOB/TEXT/JSON columns"
    } else {
        "estimated from AVG_ROW_LENGTH, so the largest row may be bigger"
    };
    for (role, var, limit) in limits {
        // A row needs some room for the packet's own framing and the statement around it.
        if largest.bytes + 1024 <= limit {
            continue;
        }
        let want = suggested_packet(largest.bytes);
        let problem = format!(
            "the largest row found, in {}, has about {} ({how}); the {role}'s {var} is {}: a row must fit in one packet to be copied and replicated",
            largest.table,
            human_bytes(largest.bytes),
            human_bytes(limit),
        );
        let fix = format!(
            "on the {role}: SET GLOBAL {var} = {want}; and `{var} = {want}` under [mysqld] in its option file"
        );
        out.push(if largest.measured {
            Finding::blocking(role, FindingCode::MaxAllowedPacket, problem, fix)
        } else {
            Finding::warning(role, FindingCode::MaxAllowedPacket, problem, fix)
        });
    }
    out
}
