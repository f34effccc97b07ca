//! `watchdog check` through the real binary.

use crate::util::Dir;

#[test]
fn list_names_every_check() {
    let r = Dir::new().run(&["check", "--list"]).expect_code(0);
    assert!(r.stdout.contains("kdump-reserved"), "{}", r.dump());
}
