//! Kernel release strings (`uname -r`, /proc/sys/kernel/osrelease).

use std::cmp::Ordering;

/// A parsed kernel release such as `5.14.0-427.13.1.el9_4.x86_64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// Everything after the first `-`, e.g. `427.13.1.el9_4.x86_64`.
    pub local: String,
}

impl KernelVersion {
    /// Parses `MAJOR.MINOR[.PATCH][-LOCAL]`. Distribution suffixes glued to
    /// the numbers (`3.10.0+`, `6.1.0rc2`) end the number they follow.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let release = release.trim();
        let (base, local) = match release.split_once('-') {
            Some((b, l)) => (b, l.to_string()),
            None => (release, String::new()),
        };
        let mut nums = base.split('.').map(leading_number);
        let major = nums.next()??;
        let minor = nums.next()??;
        let patch = nums.next().flatten().unwrap_or(0);
        Some(KernelVersion {
            major,
            minor,
            patch,
            local,
        })
    }

    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The RHEL major release (`el6` → 6), when the release says so.
    pub fn rhel_major(&self) -> Option<u32> {
        self.local
            .split(['.', '_', '-'])
            .find_map(|part| part.strip_prefix("el").and_then(leading_number))
    }

    /// The distribution's build number part before `.elN`, e.g. `358.23.2`
    /// for `2.6.32-358.23.2.el6.x86_64`.
    pub fn rhel_build(&self) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for part in self.local.split('.') {
            if part.starts_with("el") && part.len() > 2 {
                return if out.is_empty() { None } else { Some(out) };
            }
            out.push(leading_number(part)?);
        }
        None
    }
}

/// Compares dotted numeric builds the way rpm compares release numbers.
pub fn compare_builds(a: &[u32], b: &[u32]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    Ordering::Equal
}

fn leading_number(s: &str) -> Option<u32> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rhel_releases() {
        let v = KernelVersion::parse("2.6.32-358.23.2.el6.x86_64").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (2, 6, 32));
        assert_eq!(v.rhel_major(), Some(6));
        assert_eq!(v.rhel_build(), Some(vec![358, 23, 2]));
        let v = KernelVersion::parse("5.14.0-427.13.1.el9_4.x86_64").unwrap();
        assert_eq!(v.rhel_major(), Some(9));
        assert_eq!(v.rhel_build(), Some(vec![427, 13, 1]));
        assert!(v.at_least(5, 14) && !v.at_least(5, 15));
        let v = KernelVersion::parse("3.10.0-1160.el7.x86_64").unwrap();
        assert_eq!(v.rhel_build(), Some(vec![1160]));
    }

    #[test]
    fn other_releases() {
        let v = KernelVersion::parse("6.1.0-26-amd64").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (6, 1, 0));
        assert_eq!(v.rhel_major(), None);
        assert_eq!(v.rhel_build(), None);
        let v = KernelVersion::parse("6.18.44-fc-v509").unwrap();
        assert_eq!(v.rhel_major(), None);
        assert_eq!(KernelVersion::parse("4.19").unwrap().patch, 0);
        assert_eq!(KernelVersion::parse("6.1rc2").unwrap().minor, 1);
        assert!(KernelVersion::parse("garbage").is_none());
        assert!(KernelVersion::parse("").is_none());
    }

    #[test]
    fn build_order() {
        assert_eq!(
            compare_builds(&[358, 23, 2], &[358, 23, 2]),
            Ordering::Equal
        );
        assert_eq!(compare_builds(&[358, 6, 1], &[358, 23, 2]), Ordering::Less);
        assert_eq!(compare_builds(&[358], &[358, 23, 2]), Ordering::Less);
        assert_eq!(compare_builds(&[431], &[358, 23, 2]), Ordering::Greater);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            if let Some(v) = KernelVersion::parse(&s) {
                let _ = v.rhel_major();
                let _ = v.rhel_build();
            }
        }
    }
}
