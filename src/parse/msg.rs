//! Message recognition: the text of one kernel message → what it says.
//!
//! Pure functions over `&str`, one per printk family, each naming the
//! kernel source it follows. They look for the fixed words of the printk
//! format and take the variable parts around them, so that a name with
//! spaces, colons or parentheses in it (`comm` is whatever the task set)
//! does not break them.

use crate::events::signal_name;

/// What one message means to the incident assembler.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// kernel/hung_task.c: `INFO: task comm:PID blocked for more than N seconds.`
    HungTask {
        comm: String,
        pid: u32,
        secs: Option<u64>,
    },
    /// kernel/hung_task.c (6.14+): `INFO: task A:1 is blocked on a mutex
    /// likely owned by task B:2.` (also semaphores, rw-semaphores).
    HungBlocker {
        pid: u32,
        owner_comm: String,
        owner_pid: u32,
        /// `mutex`, `semaphore`, `rw-semaphore`.
        lock: Option<String>,
    },
    /// mm/oom_kill.c dump_header: `comm invoked oom-killer: gfp_mask=...`
    /// (2.6.18: `oom-killer: gfp_mask=...` without the name).
    OomInvoked {
        comm: Option<String>,
    },
    /// dump_stack's `CPU: 1 PID: 1234 Comm: comm ...` (3.x+) or
    /// `Pid: 1234, comm: comm ...` (2.6).
    TaskLine {
        pid: u32,
        comm: String,
    },
    /// Lines only printed for a memory cgroup OOM.
    MemcgHint,
    /// dump_tasks header: `[ pid ]   uid  tgid total_vm ... name`.
    OomTableHeader {
        columns: Vec<String>,
    },
    /// `oom-kill:constraint=...,task=comm,pid=N,uid=U` (4.19+).
    OomConstraint {
        constraint: Option<String>,
        comm: Option<String>,
        pid: Option<u32>,
        uid: Option<u32>,
        memcg: bool,
        task_memcg: Option<String>,
        oom_memcg: Option<String>,
    },
    /// `Out of memory: Kill process N (comm) score S or sacrifice child`
    /// and its older (`kill process ... or a child`) and memcg forms.
    OomChosen {
        pid: u32,
        comm: String,
        memcg: bool,
    },
    /// `Killed process N (comm) total-vm:...` in all its forms.
    OomKilled(Killed),
    SoftLockup {
        cpu: Option<u32>,
        secs: Option<u64>,
        comm: Option<String>,
        pid: Option<u32>,
    },
    RcuStall(String),
    /// First line of an oops (`BUG: ...`, `Oops: ...`, `general protection
    /// fault`, `kernel BUG at`, `Unable to handle kernel ...`).
    Oops(String),
    /// `---[ end trace ... ]---`: the end of an oops or warning.
    EndTrace,
    Panic(String),
    Sysrq(String),
    Lost(u64),
    Signal {
        comm: String,
        pid: Option<u32>,
        signal: u8,
    },
    /// kernel/signal.c print_fatal_signal() of 5.x/6.x kernels without the
    /// task's name (`potentially unexpected fatal signal 11.`): the task is
    /// on the `CPU: N PID: P Comm: C` line that follows.
    FatalSignal(u8),
    /// `Linux version ...`: the kernel (re)booted.
    Boot,
    /// lib/bug.c, kernel/panic.c __warn: `WARNING: CPU: 1 PID: 2 at
    /// fs/x.c:12 f+0x1/0x2` (4.x+), `WARNING: at fs/x.c:12 f()` (2.6, 3.x).
    Warning(String),
    /// A `BUG: ...` that is not an oops's first line (`scheduling while
    /// atomic`, `sleeping function called from invalid context`, `Bad
    /// page state`, KASAN, …): the kernel went on.
    Bug(String),
    /// kernel/watchdog_hld.c, kernel/watchdog.c: `Watchdog detected hard
    /// LOCKUP on cpu N` (with `NMI watchdog: `, `watchdog: `, `watchdog:
    /// CPUn: ` prefixes, or inside a 3.x WARN or a panic).
    HardLockup(Option<u32>),
    /// A machine check or EDAC count.
    Mce {
        cpu: Option<u32>,
        bank: Option<u32>,
        corrected: Option<bool>,
    },
    FsError {
        fs: &'static str,
        device: Option<String>,
        read_only: bool,
    },
    IoError {
        device: String,
        sector: Option<u64>,
        op: Option<String>,
    },
    NetdevTimeout {
        interface: Option<String>,
        driver: Option<String>,
        queue: Option<u32>,
    },
    AllocFailure {
        comm: String,
        order: Option<u32>,
        mode: Option<String>,
    },
    /// mm/oom_kill.c: `Out of memory and no killable processes...`
    /// (a panic before 5.x-ish for global OOMs, a warning for memcg).
    OomNoKillable,
    /// `Call Trace:` (x86) / `Call trace:` (arm64): frames follow.
    CallTrace,
    /// x86 `RIP: 0010:f+0x1/0x2 [m]` (4.x+) or `RIP: 0010:[<..>]  [<..>]
    /// f+0x1/0x2` (3.x); arm64 `pc : f+0x1/0x2`.
    Rip(String),
    Other,
}

/// The fields of a `Killed process` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Killed {
    pub pid: u32,
    pub comm: String,
    pub memcg: bool,
    pub uid: Option<u32>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub oom_score_adj: Option<i32>,
}

/// Recognizes one kernel message. Cheap for ordinary lines: most return
/// after a few byte comparisons.
pub fn classify(text: &str) -> Msg {
    let t = text.trim_end();
    let Some(&b0) = t.as_bytes().first() else {
        return Msg::Other;
    };
    let r = match b0 {
        b'I' => info(t)
            .or_else(|| {
                // arm64 die(): `Internal error: Oops: 96000005 [#1] SMP`.
                t.starts_with("Internal error: ")
                    .then(|| Msg::Oops(t.into()))
            })
            .or_else(|| blk_error(t))
            // 2.6/3.x x86 show_fault_oops: `IP: [<ffffffff8100>] f+0x1/0x2`.
            .or_else(|| t.strip_prefix("IP: ").and_then(rip).map(Msg::Rip)),
        b'B' => bug(t).or_else(|| btrfs(t)).or_else(|| buffer_io(t)),
        b'O' => out_of_memory(t),
        b'W' => warning(t).or_else(|| hard_lockup(t)),
        b'E' => ext_fs(t).or_else(|| edac(t)),
        b'X' => xfs(t),
        b'R' => t.strip_prefix("RIP: ").and_then(rip).map(Msg::Rip),
        b'm' => mce(t),
        b'n' => t.strip_prefix("nmi_watchdog: ").and_then(hard_lockup),
        b'K' => kernel_k(t),
        b'M' => memcg_line(t),
        b'o' => oom_lower(t),
        b'w' | b'N' => watchdog_prefixed(t).or_else(|| netdev_timeout(t)),
        b'[' if t.starts_with("[Hardware Error]: ") => mce(t),
        b'r' => t.strip_prefix("rcu: ").and_then(info),
        b'S' | b's' => sysrq(t),
        b'*' => lost(t),
        b'p' => t
            .strip_prefix("potentially unexpected fatal signal ")
            .and_then(|n| n.trim_end_matches('.').parse().ok())
            .map(Msg::FatalSignal)
            .or_else(|| blk_error(t))
            .or_else(|| t.strip_prefix("pc : ").and_then(rip).map(Msg::Rip)),
        b'-' => t.starts_with("---[ end trace").then_some(Msg::EndTrace),
        b'C' => task_line(t)
            .or_else(|| (t == "Call Trace:" || t == "Call trace:").then_some(Msg::CallTrace)),
        b'P' => task_line(t),
        b'L' => t.starts_with("Linux version ").then_some(Msg::Boot),
        b'g' => t
            .starts_with("general protection fault")
            .then(|| Msg::Oops(t.into())),
        b'U' => t
            .starts_with("Unable to handle kernel ")
            .then(|| Msg::Oops(t.into())),
        b'T' => t.starts_with("Task in /").then_some(Msg::MemcgHint),
        b't' => t.strip_prefix("traps: ").and_then(signal_line),
        b'[' => oom_table_header(t),
        b'b' => blk_error(t),
        b'e' => blk_error(t),
        b'k' => t.starts_with("kernel BUG at ").then(|| Msg::Oops(t.into())),
        b'i' => t
            .starts_with("invalid opcode: ")
            .then(|| Msg::Oops(t.into())),
        _ => None,
    };
    if let Some(m) = r {
        return m;
    }
    if let Some(m) = signal_line(t) {
        return m;
    }
    if let Some(m) = invoked(t) {
        return m;
    }
    if let Some(m) = rare(t) {
        return m;
    }
    // A console drop marker can be glued to the end of a half-printed line.
    if let Some(pos) = t.find("** ") {
        if pos > 0 {
            if let Some(m) = lost(&t[pos..]) {
                return m;
            }
        }
    }
    Msg::Other
}

fn info(t: &str) -> Option<Msg> {
    let rest = t.strip_prefix("INFO: ")?;
    if let Some(task) = rest.strip_prefix("task ") {
        // 6.17 tells I/O waits apart: `blocked in I/O wait for more than`.
        let found = [
            " blocked for more than ",
            " blocked in I/O wait for more than ",
        ]
        .iter()
        .find_map(|m| task.find(m).map(|at| (at, m.len())));
        if let Some((at, len)) = found {
            let (comm, pid) = comm_pid(&task[..at], ':')?;
            let after = &task[at + len..];
            let secs = after.split(' ').next().and_then(|n| n.parse().ok());
            return Some(Msg::HungTask { comm, pid, secs });
        }
        for marker in [" is blocked on ", " blocked on "] {
            if let Some(at) = task.find(marker) {
                // rw-semaphores (6.15+) add the role: `a:1 <reader>`.
                let (_, pid) = comm_pid(strip_role(&task[..at]), ':')?;
                let after = &task[at..];
                let by = after.find(" by task ")? + " by task ".len();
                let owner = strip_role(after[by..].trim_end().trim_end_matches('.'));
                let (owner_comm, owner_pid) = comm_pid(owner, ':')?;
                let lock = after
                    .strip_prefix(marker)
                    .map(|l| l.trim_start_matches("an ").trim_start_matches("a "))
                    .and_then(|l| l.split([' ', ',']).next())
                    .filter(|l| !l.is_empty())
                    .map(str::to_string);
                return Some(Msg::HungBlocker {
                    pid,
                    owner_comm,
                    owner_pid,
                    lock,
                });
            }
        }
        return None;
    }
    // kernel/rcu/tree_stall.h (and the 2.6/3.x tree.c): `INFO: rcu_sched
    // self-detected stall on CPU`, `INFO: rcu_preempt detected stalls on
    // CPUs/tasks:`, `INFO: rcu_bh_state detected stall on CPU 1`.
    if rest.starts_with("rcu") && rest.contains("stall") {
        return Some(Msg::RcuStall(t.to_string()));
    }
    if rest.starts_with("RCU detected CPU") {
        return Some(Msg::RcuStall(t.to_string()));
    }
    None
}

/// `comm:pid <writer>` → `comm:pid`.
fn strip_role(s: &str) -> &str {
    for role in [" <reader>", " <writer>"] {
        if let Some(t) = s.strip_suffix(role) {
            return t;
        }
    }
    s
}

/// `comm<sep>PID`, the pid after the last separator.
fn comm_pid(s: &str, sep: char) -> Option<(String, u32)> {
    let (comm, pid) = s.rsplit_once(sep)?;
    let pid = pid.parse().ok()?;
    Some((comm.to_string(), pid))
}

fn bug(t: &str) -> Option<Msg> {
    let rest = t.strip_prefix("BUG: ")?;
    if rest.starts_with("soft lockup") {
        return soft_lockup(rest);
    }
    // The first line of a fault that die() will report as an oops
    // (arch/x86/mm/fault.c show_fault_oops, 2.6 to 6.x wordings).
    const FAULTS: &[&str] = &[
        "unable to handle kernel",
        "unable to handle page fault",
        "kernel NULL pointer dereference",
        "Bad page map",
    ];
    if FAULTS.iter().any(|f| rest.starts_with(f)) {
        return Some(Msg::Oops(t.to_string()));
    }
    Some(Msg::Bug(t.to_string()))
}

/// kernel/watchdog.c: `BUG: soft lockup - CPU#1 stuck for 22s! [comm:1234]`
/// (2.6.2x+), 2.6.18's `BUG: soft lockup detected on CPU#1!`.
fn soft_lockup(rest: &str) -> Option<Msg> {
    let cpu = rest.find("CPU#").and_then(|i| {
        let d = &rest[i + 4..];
        let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
        d[..end].parse().ok()
    });
    let secs = rest.find("stuck for ").and_then(|i| {
        let d = &rest[i + "stuck for ".len()..];
        let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
        d[..end].parse().ok()
    });
    let (comm, pid) = match (rest.find("! ["), rest.rfind(']')) {
        (Some(a), Some(b)) if b > a + 3 => match comm_pid(&rest[a + 3..b], ':') {
            Some((c, p)) => (Some(c), Some(p)),
            None => (None, None),
        },
        _ => (None, None),
    };
    Some(Msg::SoftLockup {
        cpu,
        secs,
        comm,
        pid,
    })
}

/// Prefixes pr_fmt put before the watchdog's messages: `watchdog: ` (4.15+),
/// `NMI watchdog: ` (4.x).
fn watchdog_prefixed(t: &str) -> Option<Msg> {
    let rest = t
        .strip_prefix("watchdog: ")
        .or_else(|| t.strip_prefix("NMI watchdog: "))?;
    bug(rest)
}

fn kernel_k(t: &str) -> Option<Msg> {
    if t.starts_with("Kernel panic - not syncing") {
        return Some(Msg::Panic(t.to_string()));
    }
    if t.starts_with("Kernel BUG at ") {
        // RHEL 5/6 era spelling of BUG() (arch/x86/kernel/traps.c).
        return Some(Msg::Oops(t.to_string()));
    }
    let k = t.strip_prefix("Killed process ")?;
    killed(k, false).map(Msg::OomKilled)
}

fn out_of_memory(t: &str) -> Option<Msg> {
    // 2.6.1x printed `Out of Memory: Killed process N (comm).`
    if let Some(rest) = t
        .strip_prefix("Out of memory: ")
        .or_else(|| t.strip_prefix("Out of Memory: "))
    {
        return oom_kill_words(rest, false);
    }
    if t.starts_with("Oops") {
        return Some(Msg::Oops(t.to_string()));
    }
    if t.starts_with("Out of memory and no killable processes") {
        return Some(Msg::OomNoKillable);
    }
    None
}

fn memcg_line(t: &str) -> Option<Msg> {
    if let Some(rest) = t.strip_prefix("Memory cgroup out of memory: ") {
        return oom_kill_words(rest, true).or(Some(Msg::MemcgHint));
    }
    if t.starts_with("Memory cgroup stats for ") {
        return Some(Msg::MemcgHint);
    }
    None
}

/// After `Out of memory: ` / `Memory cgroup out of memory: `.
fn oom_kill_words(rest: &str, memcg: bool) -> Option<Msg> {
    if let Some(k) = rest.strip_prefix("Killed process ") {
        return killed(k, memcg).map(Msg::OomKilled);
    }
    let k = rest
        .strip_prefix("Kill process ")
        .or_else(|| rest.strip_prefix("kill process "))?;
    let (pid, after) = k.split_once(' ')?;
    let pid = pid.parse().ok()?;
    let open = after.strip_prefix('(')?;
    let close = open.rfind(") ")?;
    Some(Msg::OomChosen {
        pid,
        comm: open[..close].to_string(),
        memcg,
    })
}

fn oom_lower(t: &str) -> Option<Msg> {
    if let Some(rest) = t.strip_prefix("oom-kill:") {
        return Some(oom_constraint(rest));
    }
    if t.starts_with("oom-killer: gfp_mask=") {
        return Some(Msg::OomInvoked { comm: None });
    }
    None
}

/// `comm invoked oom-killer: gfp_mask=...`
fn invoked(t: &str) -> Option<Msg> {
    let at = t.find(" invoked oom-killer: ")?;
    Some(Msg::OomInvoked {
        comm: Some(t[..at].to_string()),
    })
}

/// `constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,
/// global_oom,task_memcg=/,task=stress,pid=1234,uid=0` (4.19+; 5.x adds
/// `oom_memcg=` for memcg kills).
fn oom_constraint(rest: &str) -> Msg {
    let constraint = rest
        .strip_prefix("constraint=")
        .map(|c| c.split(',').next().unwrap_or("").to_string());
    let memcg = rest.contains(",oom_memcg=") || rest.contains("CONSTRAINT_MEMCG");
    // task= is followed by pid= and uid=; the name may hold commas, so it
    // is cut at the last `,pid=`.
    let (comm, pid, uid) = match rest.find(",task=") {
        Some(i) => {
            let tail = &rest[i + ",task=".len()..];
            match tail.rfind(",pid=") {
                Some(p) => {
                    let comm = tail[..p].to_string();
                    let nums = &tail[p + 1..];
                    (Some(comm), kv_num(nums, "pid="), kv_num(nums, "uid="))
                }
                None => (Some(tail.to_string()), None, None),
            }
        }
        None => (None, None, None),
    };
    // Cgroup paths hold no commas (kernfs names may, but the kernel
    // prints them as they are; a comma cuts the path there).
    let path = |key: &str| {
        let i = rest.find(key)? + key.len();
        let v = rest[i..].split(',').next()?;
        (!v.is_empty()).then(|| v.to_string())
    };
    Msg::OomConstraint {
        constraint,
        comm,
        pid: pid.and_then(|v| u32::try_from(v).ok()),
        uid: uid.and_then(|v| u32::try_from(v).ok()),
        memcg,
        task_memcg: path(",task_memcg="),
        oom_memcg: path(",oom_memcg="),
    }
}

/// The number after `key` (which includes its `=` or `:`), up to the first
/// non-digit; a leading `-` is kept.
fn kv_num(s: &str, key: &str) -> Option<i64> {
    let mut from = 0;
    while let Some(i) = s[from..].find(key) {
        let start = from + i;
        // The key must start a word: `anon-rss:` must not match `rss:`.
        let boundary = start == 0 || matches!(s.as_bytes()[start - 1], b' ' | b',' | b'(' | b'\t');
        let d = &s[start + key.len()..];
        if boundary {
            let end = d
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
                .map_or(d.len(), |(i, _)| i);
            if let Ok(v) = d[..end].parse() {
                return Some(v);
            }
        }
        from = start + key.len();
    }
    None
}

/// After `Killed process `: every form from 2.6.18 to 6.x.
/// - `1234 (comm)` (2.6.18), `1234 (comm) vsz:..kB, anon-rss:..kB, file-rss:..kB`
/// - `1234 (comm) total-vm:..kB, anon-rss:..kB, file-rss:..kB[, shmem-rss:..kB]`
/// - RHEL 6: `1234, UID 0, (comm) total-vm:...`
/// - RHEL 7: `1234 (comm), UID 0, total-vm:...`
/// - 5.x/6.x: `... shmem-rss:..kB, UID:0 pgtables:..kB oom_score_adj:0`
fn killed(k: &str, memcg: bool) -> Option<Killed> {
    let digits = k.find(|c: char| !c.is_ascii_digit()).unwrap_or(k.len());
    let pid = k[..digits].parse().ok()?;
    let mut rest = &k[digits..];
    let mut uid = None;
    if let Some(r) = rest.strip_prefix(", UID ") {
        let (u, r) = r.split_once(", ")?;
        uid = u.parse().ok();
        rest = r;
    }
    let open = rest.trim_start().strip_prefix('(')?;
    let ends = [") total-vm:", ") vsz:", "), UID ", ")."];
    let close = ends
        .iter()
        .filter_map(|e| open.find(e))
        .min()
        .or_else(|| open.rfind(')'))?;
    let comm = open[..close].to_string();
    let tail = &open[close..];
    if uid.is_none() {
        uid = kv_num(tail, "UID ")
            .or_else(|| kv_num(tail, "UID:"))
            .and_then(|v| u32::try_from(v).ok());
    }
    let kb = |key: &str| kv_num(tail, key).and_then(|v| u64::try_from(v).ok());
    Some(Killed {
        pid,
        comm,
        memcg,
        uid,
        total_vm_kb: kb("total-vm:").or_else(|| kb("vsz:")),
        anon_rss_kb: kb("anon-rss:"),
        file_rss_kb: kb("file-rss:"),
        shmem_rss_kb: kb("shmem-rss:"),
        oom_score_adj: kv_num(tail, "oom_score_adj:").and_then(|v| i32::try_from(v).ok()),
    })
}

/// `CPU: 1 PID: 1234 Comm: stress Not tainted 5.14.0 #1` (3.x+) or
/// `Pid: 1234, comm: stress Not tainted 2.6.32 #1` (2.6).
fn task_line(t: &str) -> Option<Msg> {
    let (pid, comm) = if let Some(rest) = t.strip_prefix("CPU: ") {
        let p = rest.find(" PID: ")? + " PID: ".len();
        let after = &rest[p..];
        let (pid, after) = after.split_once(" Comm: ")?;
        (pid, after)
    } else {
        let rest = t.strip_prefix("Pid: ")?;
        rest.split_once(", comm: ")?
    };
    let pid = pid.trim().parse().ok()?;
    // The name is padded to 15 characters by some kernels and followed by
    // the taint and release; " Not tainted" / " Tainted:" ends it.
    let end = [" Kdump: ", " Not tainted", " Tainted: "]
        .iter()
        .filter_map(|m| comm.find(m))
        .min()
        .unwrap_or(comm.len());
    Some(Msg::TaskLine {
        pid,
        comm: comm[..end].trim_end().to_string(),
    })
}

/// `[ pid ]   uid  tgid total_vm      rss ... name`
fn oom_table_header(t: &str) -> Option<Msg> {
    let rest = t.strip_prefix('[')?;
    let close = rest.find(']')?;
    if rest[..close].trim() != "pid" {
        return None;
    }
    let columns: Vec<String> = rest[close + 1..]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if columns.last().map(String::as_str) != Some("name") {
        return None;
    }
    Some(Msg::OomTableHeader { columns })
}

/// A row of the dump_tasks table: `pid` then one value per header column;
/// the name, last, may hold spaces.
pub fn oom_table_row(t: &str, ncols: usize) -> Option<(u32, Vec<&str>, &str)> {
    let rest = t.strip_prefix('[')?;
    let close = rest.find(']')?;
    let pid = rest[..close].trim().parse().ok()?;
    let mut s = &rest[close + 1..];
    let mut values = Vec::with_capacity(ncols);
    for _ in 0..ncols.saturating_sub(1) {
        s = s.trim_start();
        let end = s.find(' ').unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        values.push(&s[..end]);
        s = &s[end..];
    }
    let name = s.strip_prefix(' ').unwrap_or(s);
    Some((pid, values, name))
}

/// drivers/tty/sysrq.c: `SysRq : Show State` (before 5.x, printk of
/// "SysRq : " then the action message) and `sysrq: Show State` (pr_fmt,
/// 5.x+). `This sysrq operation is disabled.` and the help text are not
/// commands run.
fn sysrq(t: &str) -> Option<Msg> {
    let rest = t
        .strip_prefix("sysrq: ")
        .or_else(|| t.strip_prefix("SysRq : "))
        .or_else(|| t.strip_prefix("SysRq: "))?;
    let rest = rest.strip_prefix("SysRq : ").unwrap_or(rest).trim();
    if rest.is_empty()
        || rest.starts_with("This sysrq operation is disabled")
        || rest.starts_with("HELP")
        || rest.contains("(0-9)")
    {
        return None;
    }
    Some(Msg::Sysrq(rest.trim_end_matches('.').to_string()))
}

/// kernel/printk/printk.c: `** 5 printk messages dropped **`.
fn lost(t: &str) -> Option<Msg> {
    let rest = t.strip_prefix("** ")?;
    let (n, after) = rest.split_once(' ')?;
    if !after.starts_with("printk messages dropped") {
        return None;
    }
    Some(Msg::Lost(n.parse().ok()?))
}

/// A user task killed by an unhandled signal:
/// - arch/x86/mm/fault.c: `comm[PID]: segfault at ADDR ip ... error N in ...`
/// - arch/x86/kernel/traps.c: `traps: comm[PID] general protection fault ip:...`,
///   `traps: comm[PID] trap divide error ip:...` (2.6: no `traps: `)
/// - kernel/signal.c print_fatal_signal: `comm/PID: potentially unexpected
///   fatal signal N.` (6.x: `exe: comm: potentially ...`)
/// - arm64: `comm[PID]: unhandled level 2 translation fault (11) at ...`
fn signal_line(t: &str) -> Option<Msg> {
    if let Some(at) = t.find("]: segfault at ") {
        let (comm, pid) = bracket_pid(&t[..at + 1])?;
        return Some(Msg::Signal {
            comm,
            pid: Some(pid),
            signal: 11,
        });
    }
    if let Some(at) = t.find(": potentially unexpected fatal signal ") {
        let head = &t[..at];
        let n = &t[at + ": potentially unexpected fatal signal ".len()..];
        let signal = n.trim_end_matches('.').trim().parse().ok()?;
        let (comm, pid) = match comm_pid(head, '/') {
            Some((c, p)) => (c, Some(p)),
            None => (head.rsplit(": ").next().unwrap_or(head).to_string(), None),
        };
        return Some(Msg::Signal { comm, pid, signal });
    }
    if let Some(at) = t.find("]: unhandled ") {
        let (comm, pid) = bracket_pid(&t[..at + 1])?;
        let after = &t[at..];
        let o = after.find(" (")? + 2;
        let c = after[o..].find(')')?;
        let signal = after[o..o + c].parse().ok()?;
        return Some(Msg::Signal {
            comm,
            pid: Some(pid),
            signal,
        });
    }
    if !(t.contains("] trap ") || t.contains("] general protection")) {
        return None;
    }
    for (words, signal) in TRAPS {
        if let Some(at) = t.find(words) {
            if at == 0 || t.as_bytes()[at - 1] != b']' {
                continue;
            }
            if let Some((comm, pid)) = bracket_pid(&t[..at]) {
                return Some(Msg::Signal {
                    comm,
                    pid: Some(pid),
                    signal: *signal,
                });
            }
        }
    }
    None
}

/// The do_trap/do_general_protection words and the signal each sends
/// (arch/x86/kernel/traps.c).
const TRAPS: &[(&str, u8)] = &[
    (" general protection", 11),
    (" trap divide error ", 8),
    (" trap invalid opcode ", 4),
    (" trap int3 ", 5),
    (" trap overflow ", 11),
    (" trap bounds ", 11),
    (" trap coprocessor segment overrun ", 8),
    (" trap invalid TSS ", 11),
    (" trap segment not present ", 7),
    (" trap stack segment ", 7),
    (" trap alignment check ", 7),
    (" trap control protection ", 11),
];

/// `comm[PID]` at the end of `s`.
fn bracket_pid(s: &str) -> Option<(String, u32)> {
    let s = s.strip_suffix(']')?;
    let open = s.rfind('[')?;
    let pid = s[open + 1..].parse().ok()?;
    let comm = &s[..open];
    if comm.is_empty() {
        return None;
    }
    Some((comm.to_string(), pid))
}

/// Messages that do not start a line with a fixed word: a device or a
/// task name comes first.
fn rare(t: &str) -> Option<Msg> {
    if let Some(at) = t.find(": page allocation failure") {
        return Some(alloc_failure(&t[..at], &t[at..]));
    }
    if t.contains("NETDEV WATCHDOG: ") {
        return netdev_timeout(t);
    }
    if t.contains("Watchdog detected hard LOCKUP") {
        return hard_lockup(t);
    }
    if t.contains(" error, dev ") {
        return blk_error(t);
    }
    None
}

/// The first run of decimal digits in `s`.
fn first_num<T: std::str::FromStr>(s: &str) -> Option<T> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let d = &s[start..];
    let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
    d[..end].parse().ok()
}

/// The decimal number right after `key` in `s`.
fn num_after<T: std::str::FromStr>(s: &str, key: &str) -> Option<T> {
    let d = &s[s.find(key)? + key.len()..];
    let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
    d[..end].parse().ok()
}

/// What a panic line names as its cause, when it is a kind of its own
/// (`Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 3`).
pub fn classify_panic_reason(t: &str) -> Option<Msg> {
    hard_lockup(t)
}

fn warning(t: &str) -> Option<Msg> {
    t.starts_with("WARNING: ")
        .then(|| Msg::Warning(t.to_string()))
}

/// `Watchdog detected hard LOCKUP on cpu 3` anywhere in the line.
fn hard_lockup(t: &str) -> Option<Msg> {
    let at = t.find("Watchdog detected hard LOCKUP on cpu")?;
    Some(Msg::HardLockup(num_after(
        &t[at..],
        "Watchdog detected hard LOCKUP on cpu ",
    )))
}

/// What a `CPU: 1 PID: 2 Comm: x Tainted: G   W  O  4.18.0 #1` line says
/// beyond its task (cpu, taint, release). 2.6's `Pid: 1, comm: x Not
/// tainted 2.6.32 #1` has no cpu.
pub fn task_detail(t: &str) -> (Option<u32>, Option<String>, Option<String>) {
    let cpu = t.strip_prefix("CPU: ").and_then(first_num);
    let (tainted, after) = if let Some(i) = t.find(" Not tainted ") {
        (Some(String::new()), &t[i + " Not tainted ".len()..])
    } else if let Some(i) = t.find(" Tainted: ") {
        let rest = &t[i + " Tainted: ".len()..];
        // Flags are letters and spaces (one column per flag, 4.x+), then
        // two spaces or one before the release, which starts with a digit.
        let end = rest
            .char_indices()
            .find(|&(j, c)| c.is_ascii_digit() && j > 0 && rest.as_bytes()[j - 1] == b' ')
            .map_or(rest.len(), |(j, _)| j);
        (Some(rest[..end].trim_end().to_string()), &rest[end..])
    } else {
        (None, "")
    };
    let release = after
        .split_whitespace()
        .next()
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string);
    (cpu, tainted, release)
}

/// The function of a RIP/pc line: `0010:f+0x1/0x2 [m]`, `0010:[<ffff>]
/// [<ffff>] f+0x1/0x2 [m]` → `f+0x1/0x2 [m]`; `f+0x1/0x2` (arm64).
fn rip(r: &str) -> Option<String> {
    let r = r.trim();
    let r = r.rsplit("] ").next().unwrap_or(r);
    let r = match r.split_once(':') {
        Some((seg, f)) if seg.len() == 4 && seg.bytes().all(|b| b.is_ascii_hexdigit()) => f,
        _ => r,
    };
    let r = r.trim();
    if r.is_empty() || r.starts_with("0x") && !r.contains('+') {
        return None;
    }
    Some(r.to_string())
}

/// A call-trace line: ` f+0x1/0x2 [m]`, ` [<ffffffff81000000>] f+0x1/0x2`
/// (3.x), ` ? f+0x1/0x2` (unreliable: `None`), `<IRQ>` markers (`None`).
pub fn frame(t: &str) -> Option<String> {
    let mut f = t.trim();
    // 3.x `[<ffffffff8100>] f+0x1/0x2`, 2.6 `[<ffffffff8100>] ? f+..`
    while let Some(rest) = f.strip_prefix("[<") {
        f = rest.split_once(">]").map_or("", |(_, r)| r).trim_start();
    }
    if f.starts_with('?') || f.starts_with('<') {
        return None;
    }
    let (sym, _) = f.split_once('+')?;
    if sym.is_empty() || sym.contains(' ') || !f.contains("/0x") {
        return None;
    }
    // arm64 prints `f+0x1/0x2` alone, x86 may add ` [module]`.
    let end = f
        .find(" [")
        .map_or(f.len(), |i| f[i..].find(']').map_or(f.len(), |j| i + j + 1));
    Some(f[..end].to_string())
}

/// arch/x86/kernel/cpu/mce/core.c print_mce: `mce: [Hardware Error]: CPU
/// 0: Machine Check Exception: 5 Bank 4: b200000000070f0f` (3.x without
/// `mce: `), and `Machine check events logged` (corrected, mce_notify_irq).
fn mce(t: &str) -> Option<Msg> {
    let rest = t.strip_prefix("mce: ").unwrap_or(t);
    let rest = rest.strip_prefix("[Hardware Error]: ").unwrap_or(rest);
    if rest.starts_with("Machine check events logged") {
        return Some(Msg::Mce {
            cpu: None,
            bank: None,
            corrected: Some(true),
        });
    }
    let cpu_part = rest.strip_prefix("CPU ")?;
    let (cpu, after) = cpu_part.split_once(": ")?;
    if !after.starts_with("Machine Check") {
        return None;
    }
    let bank = num_after(after, "Bank ");
    // MCi_STATUS bit 61 (UC): uncorrected.
    let corrected = after
        .find("Bank ")
        .and_then(|i| after[i..].split_once(": "))
        .and_then(|(_, st)| u64::from_str_radix(st.split_whitespace().next()?, 16).ok())
        .map(|st| st & (1 << 61) == 0);
    Some(Msg::Mce {
        cpu: cpu.parse().ok(),
        bank,
        corrected,
    })
}

/// drivers/edac/edac_mc.c: `EDAC MC0: 1 CE memory read error on ...`
/// (3.x+), `EDAC MC0: CE page 0x1, offset 0x0, ...` (2.6); `UE` likewise.
fn edac(t: &str) -> Option<Msg> {
    let rest = t.strip_prefix("EDAC ")?;
    let (_, after) = rest.split_once(": ")?;
    let words: Vec<&str> = after.split_whitespace().take(2).collect();
    let corrected = match words.as_slice() {
        [n, "CE", ..] | [n, "UE", ..] if n.parse::<u64>().is_ok() => words[1] == "CE",
        ["CE", ..] => true,
        ["UE", ..] => false,
        _ => return None,
    };
    Some(Msg::Mce {
        cpu: None,
        bank: None,
        corrected: Some(corrected),
    })
}

/// `EXT4-fs error (device sda1): ...`, `EXT4-fs (sda1): Remounting
/// filesystem read-only`, `EXT3-fs error (device ...)` (fs/ext4/super.c
/// __ext4_error, ext4_handle_error; fs/ext3 on RHEL 6).
fn ext_fs(t: &str) -> Option<Msg> {
    let fs = ["EXT4", "EXT3", "EXT2"]
        .into_iter()
        .find(|f| t.starts_with(f) && t[f.len()..].starts_with("-fs "))?;
    let rest = &t[fs.len() + 4..];
    let fs = match fs {
        "EXT4" => "ext4",
        "EXT3" => "ext3",
        _ => "ext2",
    };
    if let Some(r) = rest.strip_prefix("error (device ") {
        let dev = r.split([')', ':']).next().map(str::to_string);
        return Some(Msg::FsError {
            fs,
            device: dev,
            read_only: false,
        });
    }
    if let Some(r) = rest.strip_prefix('(') {
        let (dev, msg) = r.split_once("): ")?;
        if msg.starts_with("Remounting filesystem read-only") {
            return Some(Msg::FsError {
                fs,
                device: Some(dev.to_string()),
                read_only: true,
            });
        }
    }
    None
}

/// fs/xfs/xfs_message.c: `XFS (dm-0): <message>`; errors, corruption and
/// shutdown only (`Corruption detected`, `metadata I/O error`, `Log I/O
/// Error Detected. Shutting down filesystem`, `xfs_do_force_shutdown(0x2)
/// called from line ...`, 6.x `Filesystem has been shut down due to ...`).
fn xfs(t: &str) -> Option<Msg> {
    let r = t.strip_prefix("XFS (")?;
    let (dev, msg) = r.split_once("): ")?;
    let read_only = msg.contains("Shutting down filesystem")
        || msg.contains("shut down")
        || msg.starts_with("xfs_do_force_shutdown");
    let error = read_only
        || msg.contains("Corruption")
        || msg.contains("error")
        || msg.contains("Error")
        || msg.starts_with("Internal error");
    error.then(|| Msg::FsError {
        fs: "xfs",
        device: Some(dev.to_string()),
        read_only,
    })
}

/// fs/btrfs/messages.c: `BTRFS error (device sda1): ...`, 5.x+ `BTRFS
/// error (device sda1: state EA): ...`, 3.x/4.x `BTRFS: error (device
/// sda1) in ...`, `BTRFS critical (device ...)`, `BTRFS info (device
/// sda1): forced readonly`.
fn btrfs(t: &str) -> Option<Msg> {
    let r = t.strip_prefix("BTRFS")?;
    let r = r.strip_prefix(':').unwrap_or(r).trim_start();
    let (level, after) = r.split_once(" (device ")?;
    let dev_end = after.find([')', ':']).unwrap_or(after.len());
    let device = Some(after[..dev_end].to_string());
    let read_only = after.contains("forced readonly");
    if !(read_only || matches!(level, "error" | "critical" | "crit" | "emerg" | "alert")) {
        return None;
    }
    Some(Msg::FsError {
        fs: "btrfs",
        device,
        read_only,
    })
}

/// block/blk-core.c (blk_update_request, print_req_error,
/// blk_print_req_error) and 3.x end_request: `[prefix: ]I/O error, dev
/// sda, sector 2048[ op 0x0:(READ) flags ...]` (also `critical medium
/// error`, `timeout error`, …).
fn blk_error(t: &str) -> Option<Msg> {
    let rest = ["blk_update_request: ", "print_req_error: ", "end_request: "]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    let at = rest.find(" error, dev ")?;
    // `I/O`, `critical medium`, `timeout`: words, no punctuation.
    if rest[..at].contains(':') || rest[..at].contains(',') {
        return None;
    }
    let after = &rest[at + " error, dev ".len()..];
    let (device, tail) = after.split_once(',').unwrap_or((after, ""));
    let sector = num_after(tail, "sector ");
    let op = tail
        .find(":(")
        .and_then(|i| tail[i + 2..].split_once(')').map(|(o, _)| o.to_string()));
    Some(Msg::IoError {
        device: device.trim().to_string(),
        sector,
        op,
    })
}

/// fs/buffer.c: `Buffer I/O error on dev sda1, logical block 12, async
/// page read` (4.x+), `Buffer I/O error on device sda1, logical block 12`
/// (2.6/3.x), `..., lost async page write`.
fn buffer_io(t: &str) -> Option<Msg> {
    let r = t
        .strip_prefix("Buffer I/O error on dev ")
        .or_else(|| t.strip_prefix("Buffer I/O error on device "))?;
    let (device, tail) = r.split_once(',').unwrap_or((r, ""));
    let op = if tail.contains("write") {
        Some("WRITE".to_string())
    } else if tail.contains("read") {
        Some("READ".to_string())
    } else {
        None
    };
    Some(Msg::IoError {
        device: device.trim().to_string(),
        sector: None,
        op,
    })
}

/// net/sched/sch_generic.c dev_watchdog: `NETDEV WATCHDOG: eth0 (e1000e):
/// transmit queue 0 timed out` (2.6 to 6.1, in a WARN), and 6.2+'s
/// netdev_crit form `e1000e 0000:00:19.0 eno1: NETDEV WATCHDOG: CPU: 1:
/// transmit queue 0 timed out 5120 ms`.
fn netdev_timeout(t: &str) -> Option<Msg> {
    let at = t.find("NETDEV WATCHDOG: ")?;
    let head = t[..at].trim_end().trim_end_matches(':');
    let rest = &t[at + "NETDEV WATCHDOG: ".len()..];
    let queue = num_after(rest, "transmit queue ");
    if !rest.contains("transmit queue") {
        return None;
    }
    let (interface, driver) = if head.is_empty() {
        let (iface, after) = rest.split_once(' ')?;
        let driver = after
            .strip_prefix('(')
            .and_then(|d| d.split_once("):"))
            .map(|(d, _)| d.to_string());
        (Some(iface.to_string()), driver)
    } else {
        let words: Vec<&str> = head.split_whitespace().collect();
        let iface = words.last().map(|w| (*w).to_string());
        let driver = (words.len() > 1).then(|| words[0].to_string());
        (iface, driver)
    };
    Some(Msg::NetdevTimeout {
        interface,
        driver,
        queue,
    })
}

/// mm/page_alloc.c warn_alloc: `comm: page allocation failure: order:2,
/// mode:0x4020(GFP_ATOMIC|__GFP_COMP), nodemask=(null)` (4.x+), `comm:
/// page allocation failure: order:2, mode:0x4020` (3.x), `comm: page
/// allocation failure. order:1, mode:0x20` (2.6).
fn alloc_failure(comm: &str, tail: &str) -> Msg {
    let order = num_after(tail, "order:");
    let mode = tail.find("mode:").map(|i| {
        let m = &tail[i + 5..];
        let end = m.find(", ").unwrap_or(m.len());
        m[..end].trim_end_matches(',').to_string()
    });
    Msg::AllocFailure {
        comm: comm.to_string(),
        order,
        mode,
    }
}

/// Signal name for events.
pub fn name_of(sig: u8) -> String {
    signal_name(sig).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hung_task_comm_with_spaces_and_colons() {
        assert_eq!(
            classify("INFO: task kworker/u8:2 x:1234 blocked for more than 120 seconds."),
            Msg::HungTask {
                comm: "kworker/u8:2 x".into(),
                pid: 1234,
                secs: Some(120)
            }
        );
        assert_eq!(
            classify("INFO: task (udev-worker):374 is blocked on a mutex likely owned by task virtme-ng-init:1."),
            Msg::HungBlocker {
                pid: 374,
                owner_comm: "virtme-ng-init".into(),
                owner_pid: 1,
                lock: Some("mutex".into())
            }
        );
    }

    #[test]
    fn killed_forms() {
        let k = |s: &str| match classify(s) {
            Msg::OomKilled(k) => k,
            m => panic!("{s}: {m:?}"),
        };
        let a = k("Killed process 2592 (oom) total-vm:514340kB, anon-rss:499904kB, file-rss:0kB");
        assert_eq!(
            (
                a.pid,
                a.comm.as_str(),
                a.total_vm_kb,
                a.anon_rss_kb,
                a.file_rss_kb,
                a.shmem_rss_kb,
                a.uid
            ),
            (2592, "oom", Some(514340), Some(499904), Some(0), None, None)
        );
        let b = k("Killed process 1234, UID 27, (mysqld) total-vm:1kB, anon-rss:2kB, file-rss:3kB");
        assert_eq!((b.pid, b.uid, b.comm.as_str()), (1234, Some(27), "mysqld"));
        let c = k("Killed process 1234 (java (x)), UID 1000, total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB");
        assert_eq!(
            (c.comm.as_str(), c.uid, c.shmem_rss_kb),
            ("java (x)", Some(1000), Some(4))
        );
        let d = k("Out of memory: Killed process 9 (a) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:0 pgtables:44kB oom_score_adj:-17");
        assert_eq!((d.uid, d.oom_score_adj), (Some(0), Some(-17)));
        let e = k("Out of Memory: Killed process 1235 (child).");
        assert_eq!(
            (e.pid, e.comm.as_str(), e.total_vm_kb),
            (1235, "child", None)
        );
    }

    #[test]
    fn blocker_forms() {
        let b = |s: &str| match classify(s) {
            Msg::HungBlocker {
                pid,
                owner_comm,
                owner_pid,
                ..
            } => (pid, owner_comm, owner_pid),
            m => panic!("{s}: {m:?}"),
        };
        assert_eq!(
            b("INFO: task NvmlTaskRunner:11290 <reader> blocked on an rw-semaphore likely owned by task VLLM::EngineCor:46249 <writer>"),
            (11290, "VLLM::EngineCor".to_string(), 46249)
        );
        assert_eq!(
            b("INFO: task a:5 blocked on a semaphore likely last held by task kworker/1:2:317"),
            (5, "kworker/1:2".to_string(), 317)
        );
        assert_eq!(
            classify("INFO: task modprobe:2342 is blocked on an rw-semaphore, but the owner is not found."),
            Msg::Other
        );
    }

    #[test]
    fn hung_task_io_wait_form() {
        assert_eq!(
            classify("INFO: task dd:456 blocked in I/O wait for more than 122 seconds."),
            Msg::HungTask {
                comm: "dd".into(),
                pid: 456,
                secs: Some(122)
            }
        );
    }

    #[test]
    fn signals() {
        assert_eq!(
            classify("a.out[1234]: segfault at 0 ip 000000000040052d sp 00007ffd error 6 in a.out[400000+1000]"),
            Msg::Signal { comm: "a.out".into(), pid: Some(1234), signal: 11 }
        );
        assert_eq!(
            classify(
                "traps: my prog[77] trap divide error ip:4004f4 sp:7ffc error:0 in x[400000+1000]"
            ),
            Msg::Signal {
                comm: "my prog".into(),
                pid: Some(77),
                signal: 8
            }
        );
        assert_eq!(
            classify("consoled/2993: potentially unexpected fatal signal 11."),
            Msg::Signal {
                comm: "consoled".into(),
                pid: Some(2993),
                signal: 11
            }
        );
        assert_eq!(classify("ordinary [1]: line"), Msg::Other);
    }

    #[test]
    fn soft_lockups() {
        assert_eq!(
            classify("watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:150]"),
            Msg::SoftLockup {
                cpu: Some(3),
                secs: Some(23),
                comm: Some("kworker/3:1".into()),
                pid: Some(150)
            }
        );
        assert_eq!(
            classify("BUG: soft lockup detected on CPU#1!"),
            Msg::SoftLockup {
                cpu: Some(1),
                secs: None,
                comm: None,
                pid: None
            }
        );
    }

    #[test]
    fn table_rows() {
        let (pid, v, name) = oom_table_row(
            "[  1234]     0  1234    12345     6789      12        0             0 my name",
            8,
        )
        .unwrap();
        assert_eq!((pid, v.len(), v[0], name), (1234, 7, "0", "my name"));
    }
}
