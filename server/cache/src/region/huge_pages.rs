//! Whether the cache file's pages can be huge pages. A GET touches an index
//! bucket and an item at random places of the file; with 4 KiB pages each is
//! a TLB miss and a page walk (two-dimensional under a hypervisor). Measured
//! on a KVM guest, redis-benchmark GET -P 16 over 1M keys: 17% less server
//! CPU per GET with the file on a `huge=always` tmpfs. Mappings always ask
//! (`madvise(MADV_HUGEPAGE)`, `mapped.rs`), but whether the kernel gives
//! them is the filesystem's choice, which only the host's configuration can
//! make: this tells which it is, for the start-up log and INFO.

use std::path::Path;

/// What backs the cache file's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HugePages {
    /// A hugetlbfs: always huge pages, but it cannot hold the cache file
    /// (no write(), sizes in whole huge pages): opening refuses it.
    Hugetlbfs,
    /// A tmpfs mounted with `huge=` always, within_size or advise (asked for).
    Tmpfs(String),
    /// The kernel forces huge pages on every tmpfs (shmem_enabled=force).
    Forced,
    /// None: why (a tmpfs mounted without `huge=`, another filesystem).
    No(String),
}

impl HugePages {
    /// The INFO token: `hugetlbfs`, `tmpfs-huge-<mode>`, `forced` or `no`.
    pub fn token(&self) -> String {
        match self {
            HugePages::Hugetlbfs => "hugetlbfs".into(),
            HugePages::Tmpfs(mode) => format!("tmpfs-huge-{mode}"),
            HugePages::Forced => "forced".into(),
            HugePages::No(_) => "no".into(),
        }
    }

    /// Whether the file's pages can be huge.
    pub fn enabled(&self) -> bool {
        !matches!(self, HugePages::No(_))
    }

    /// Looks at the filesystem holding `path` (the cache file).
    pub fn of(path: &Path) -> HugePages {
        let Ok(path) = path.canonicalize() else {
            return HugePages::No("the cache file's path cannot be resolved".into());
        };
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let shmem = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
            .unwrap_or_default();
        HugePages::from_mounts(&path, &mounts, &shmem)
    }

    /// `of`, given /proc/self/mountinfo's and shmem_enabled's text.
    fn from_mounts(path: &Path, mountinfo: &str, shmem_enabled: &str) -> HugePages {
        // The mount holding the path: the longest mount point above it
        // (the last one listed wins a tie: it is mounted over the others).
        let mut best: Option<(usize, &str, &str)> = None;
        for line in mountinfo.lines() {
            let mut fields = line.split(' ');
            let Some(point) = fields.nth(4) else { continue };
            let Some((_, after)) = line.split_once(" - ") else {
                continue;
            };
            let mut tail = after.split(' ');
            let (Some(fstype), _, Some(options)) = (tail.next(), tail.next(), tail.next()) else {
                continue;
            };
            let point = unescape(point);
            if path.starts_with(&point) && best.is_none_or(|(len, _, _)| point.len() >= len) {
                best = Some((point.len(), fstype, options));
            }
        }
        let Some((_, fstype, options)) = best else {
            return HugePages::No("its mount was not found".into());
        };
        match fstype {
            "hugetlbfs" => HugePages::Hugetlbfs,
            "tmpfs" => {
                let mode = options
                    .split(',')
                    .find_map(|o| o.strip_prefix("huge="))
                    .unwrap_or("never");
                if shmem_enabled.contains("[force]") {
                    HugePages::Forced
                } else if mode == "never" || mode == "deny" {
                    HugePages::No(format!("tmpfs mounted with huge={mode}"))
                } else {
                    HugePages::Tmpfs(mode.to_string())
                }
            }
            other => HugePages::No(format!("on {other}, not tmpfs or hugetlbfs")),
        }
    }
}

/// Mount points escape space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
22 1 0:21 / / rw - ext4 /dev/vda rw
25 22 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24731184k
43 22 0:39 / /mnt/huge rw,relatime - tmpfs none rw,size=4194304k,huge=within_size
44 22 0:40 / /mnt/tlb rw,relatime - hugetlbfs none rw,pagesize=2M
45 22 0:41 / /mnt/with\\040space rw - tmpfs none rw,huge=always
";

    fn of(path: &str, shmem: &str) -> HugePages {
        HugePages::from_mounts(Path::new(path), MOUNTS, shmem)
    }

    #[test]
    fn the_files_mount_decides() {
        let never = "always within_size advise [never] deny force";
        assert_eq!(
            of("/dev/shm/citadel-6379.cache", never),
            HugePages::No("tmpfs mounted with huge=never".into())
        );
        assert_eq!(
            of("/mnt/huge/c.cache", never),
            HugePages::Tmpfs("within_size".into())
        );
        assert_eq!(of("/mnt/tlb/c.cache", never), HugePages::Hugetlbfs);
        assert_eq!(
            of("/mnt/with space/c", never),
            HugePages::Tmpfs("always".into())
        );
        assert!(!of("/var/lib/c.cache", never).enabled());
        assert_eq!(of("/var/lib/c.cache", never).token(), "no");
        // shmem_enabled=force gives every tmpfs huge pages.
        assert_eq!(
            of("/dev/shm/c", "always within_size advise never deny [force]"),
            HugePages::Forced
        );
    }
}
