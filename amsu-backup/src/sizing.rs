//! How many parallel workers a copy uses when none is asked for: the replica's idle CPU.
//!
//! Each logical worker reads one chunk from the master and loads it into the replica at
//! the same time, and the load (parsing, index maintenance) is the costlier half: a
//! worker keeps about one replica core busy. So the default is the number of cores left
//! idle on the replica's host: its cores minus its one-minute load average, never fewer
//! than two (the dump and the load of different chunks then overlap) and never more than
//! its cores.
//!
//! The load average is read only when the replica runs on this host (a loopback address
//! or a unix socket); for a remote replica the cores of this host are the estimate.

use amsu_core::ServerAddr;

/// The fewest workers a sized copy uses.
pub(crate) const MIN_THREADS: usize = 2;

/// Workers for `cores` cores with a one-minute load average of `load` (if known): the
/// idle cores, rounded up, between [`MIN_THREADS`] and `cores`.
pub(crate) fn idle_threads(cores: usize, load: Option<f64>) -> usize {
    let cores = cores.max(1);
    let idle = match load {
        Some(l) if l.is_finite() && l > 0.0 => (cores as f64 - l).max(0.0).ceil() as usize,
        _ => cores,
    };
    idle.clamp(MIN_THREADS, cores.max(MIN_THREADS))
}

/// Workers for a copy into `replica`: [`idle_threads`] of this host's cores, with its
/// load average when the replica runs on this host.
pub(crate) fn threads_for(replica: &ServerAddr) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(MIN_THREADS);
    let load = if replica_is_local(replica) {
        load_average()
    } else {
        None
    };
    idle_threads(cores, load)
}

/// True when `replica` runs on this host.
fn replica_is_local(replica: &ServerAddr) -> bool {
    replica.socket.is_some() || amsu_mysql::checks::is_local_host(&replica.host)
}

/// This host's one-minute load average.
fn load_average() -> Option<f64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        nix::sys::sysinfo::sysinfo()
            .ok()
            .map(|i| i.load_average().0)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_host_gets_one_worker_per_core() {
        assert_eq!(idle_threads(8, Some(0.0)), 8);
        assert_eq!(idle_threads(8, None), 8);
        assert_eq!(idle_threads(16, Some(0.3)), 16);
    }

    #[test]
    fn a_busy_host_gets_its_idle_cores_rounded_up() {
        assert_eq!(idle_threads(8, Some(3.0)), 5);
        assert_eq!(idle_threads(8, Some(3.2)), 5);
        assert_eq!(idle_threads(16, Some(11.9)), 5);
    }

    #[test]
    fn never_fewer_than_two_nor_more_than_the_cores() {
        assert_eq!(idle_threads(8, Some(7.5)), 2);
        assert_eq!(idle_threads(8, Some(40.0)), 2);
        assert_eq!(idle_threads(2, Some(2.6)), 2);
        // A single core still gets two workers: dump and load overlap.
        assert_eq!(idle_threads(1, Some(0.0)), 2);
        assert_eq!(idle_threads(0, None), 2);
    }

    #[test]
    fn a_nonsense_load_counts_as_unknown() {
        assert_eq!(idle_threads(4, Some(f64::NAN)), 4);
        assert_eq!(idle_threads(4, Some(-1.0)), 4);
    }

    #[test]
    fn a_remote_replica_is_not_local() {
        assert!(replica_is_local(&ServerAddr::new("127.0.0.1", 3306)));
        assert!(replica_is_local(&ServerAddr::new("localhost", 3306)));
        assert!(!replica_is_local(&ServerAddr::new("db2.example", 3306)));
    }
}
