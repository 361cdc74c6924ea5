//! Samples the server processes under load (Linux `/proc`): resident memory and CPU time,
//! summed over the given processes and their children (gunicorn's workers).

use std::time::Duration;

/// RSS in bytes and CPU time (user + system) of `pids` and their direct children.
pub fn sample(pids: &[u32]) -> (u64, Duration) {
    let mut all: Vec<u32> = pids.to_vec();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if stat(pid).is_some_and(|s| pids.contains(&s.ppid)) && !all.contains(&pid) {
                all.push(pid);
            }
        }
    }
    let mut rss = 0;
    let mut cpu = Duration::ZERO;
    for pid in all {
        if let Some(s) = stat(pid) {
            rss += s.rss_bytes;
            cpu += s.cpu;
        }
    }
    (rss, cpu)
}

struct Stat {
    ppid: u32,
    cpu: Duration,
    rss_bytes: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and ends with ')'.
    let rest = &raw[raw.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = 100.0; // USER_HZ on Linux
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        ppid: num(1)? as u32,
        cpu: Duration::from_secs_f64((num(11)? + num(12)?) as f64 / ticks),
        rss_bytes: num(21)? * 4096,
    })
}
