//! The kernel command line (/proc/cmdline).

/// Parameters of a kernel command line, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    pub params: Vec<(String, Option<String>)>,
}

impl Cmdline {
    /// Splits the way the kernel's `next_arg()` does: on spaces, with double
    /// quotes protecting spaces (`foo="a b"`), stopping at `--` (the rest is
    /// for init).
    pub fn parse(text: &str) -> Cmdline {
        let mut params = Vec::new();
        let mut cur = String::new();
        let mut in_quote = false;
        let mut have = false;
        let mut push = |cur: &mut String, have: &mut bool| -> bool {
            if !*have {
                return true;
            }
            *have = false;
            let word = std::mem::take(cur);
            if word == "--" {
                return false;
            }
            let (k, v) = match word.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (word, None),
            };
            params.push((k, v));
            true
        };
        for c in text.chars() {
            match c {
                '"' => {
                    in_quote = !in_quote;
                    have = true;
                }
                c if c.is_whitespace() && !in_quote => {
                    if !push(&mut cur, &mut have) {
                        return Cmdline { params };
                    }
                }
                c => {
                    cur.push(c);
                    have = true;
                }
            }
        }
        push(&mut cur, &mut have);
        Cmdline { params }
    }

    pub fn has(&self, key: &str) -> bool {
        self.params.iter().any(|(k, _)| k == key)
    }

    /// The last value given for `key` (the kernel lets the last one win).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for `key` (e.g. several `console=`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rhel9_cmdline() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.14.0-427.el9.x86_64 root=/dev/mapper/rhel-root ro \
             crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap \
             rd.lvm.lv=rhel/root rhgb quiet\n",
        );
        assert!(c.has("quiet") && c.has("rhgb") && c.has("ro"));
        assert_eq!(
            c.get("crashkernel"),
            Some("1G-4G:192M,4G-64G:256M,64G-:512M")
        );
        assert_eq!(c.get("quiet"), None);
    }

    #[test]
    fn quotes_and_init_args() {
        let c = Cmdline::parse("a=\"x y\" console=tty0 console=ttyS0,115200n8 -- quiet");
        assert_eq!(c.get("a"), Some("x y"));
        assert_eq!(c.all("console"), vec!["tty0", "ttyS0,115200n8"]);
        assert!(!c.has("quiet"), "arguments after -- belong to init");
        assert_eq!(Cmdline::parse("").params.len(), 0);
        assert_eq!(Cmdline::parse("x=1 x=2").get("x"), Some("2"));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let c = Cmdline::parse(&s);
            let _ = c.get("quiet");
        }
    }
}
