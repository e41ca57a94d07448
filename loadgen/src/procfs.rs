//! The server's CPU time and resident memory, read from `/proc/<pid>` (Linux).

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU seconds the process has used.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3 of the man page, so utime (14) and stime (15) are at 11, 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// Resident memory in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU and memory of a process between two points in time.
pub struct Probe {
    pid: Option<u32>,
    cpu0: Option<f64>,
    rss0: Option<u64>,
}

impl Probe {
    pub fn start(pid: Option<u32>) -> Probe {
        Probe { pid, cpu0: pid.and_then(cpu_seconds), rss0: pid.and_then(rss_kib) }
    }

    /// CPU seconds used since `start`.
    pub fn cpu(&self) -> Option<f64> {
        Some(self.pid.and_then(cpu_seconds)? - self.cpu0?)
    }

    pub fn rss_before_kib(&self) -> Option<u64> {
        self.rss0
    }

    pub fn rss_now_kib(&self) -> Option<u64> {
        self.pid.and_then(rss_kib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
    }
}
