//! Which CPUs the shards may be pinned to: the process's affinity mask, so that
//! `taskset -c 0-3 smtpgate`, systemd's `CPUAffinity=` and container cpusets are
//! obeyed (glommio's own `CpuSet::online()` would spread shards over every online CPU,
//! onto cores the operator kept for IRQs, a load generator or another service).

/// The CPUs this process may run on, from `Cpus_allowed_list` in `/proc/self/status`
/// (`None` when it cannot be read: the caller then leaves placement to glommio).
pub fn allowed() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    parse_list(list.trim())
}

/// Parses the kernel's CPU list format (`0-3,8,10-11`) into sorted CPU numbers.
fn parse_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (lo.parse::<usize>().ok()?, hi.parse::<usize>().ok()?);
                if lo > hi {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_singles() {
        assert_eq!(parse_list("0-3,8,10-11"), Some(vec![0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(parse_list("5"), Some(vec![5]));
        assert_eq!(parse_list("2,0-1,1"), Some(vec![0, 1, 2]));
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        assert_eq!(parse_list(""), None);
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("a-b"), None);
        assert_eq!(parse_list("0-"), None);
    }

    #[test]
    fn this_process_has_a_mask_that_agrees_with_std() {
        let allowed = allowed().expect("Linux exposes Cpus_allowed_list");
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        // available_parallelism also honours cgroup quotas, so it may be lower, never higher.
        assert!(parallelism <= allowed.len(), "{parallelism} > {allowed:?}");
    }
}
