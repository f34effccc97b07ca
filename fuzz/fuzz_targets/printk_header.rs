//! The printk record header (src/kernel/printk.rs), the one parser of
//! /dev/kmsg records and extended netconsole datagrams. Whatever it
//! accepts must be a header it could have printed: writing the fields
//! back and parsing them again gives the same header and the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::kernel::printk::{parse, split_body};
use watchdog::fuzzing::kernel::{Flag, MAX_HEADER};

fuzz_target!(|data: &[u8]| {
    let Some((h, body)) = parse(data) else {
        return;
    };
    // The body is what follows the header's `;`, found within the bound.
    assert!(body.len() < data.len());
    let head_len = data.len() - body.len() - 1;
    assert!(head_len <= MAX_HEADER, "a header of {head_len} bytes");
    assert_eq!(data[head_len], b';');
    assert!(!data[..head_len].contains(&b';'));
    assert!(h.level() <= 7);
    if let Some((off, total)) = h.frag {
        assert!(off < total, "fragment offset {off} of {total}");
    }
    // Rendered back as the kernel prints it (unknown `key=value` fields
    // are dropped: they carry nothing), it parses to the same header.
    let mut line = String::new();
    if let Some(r) = h.release {
        line.push_str(r);
        line.push(',');
    }
    let flag = match h.flag {
        Flag::Whole => '-',
        Flag::Begin => 'c',
        Flag::More => '+',
    };
    line.push_str(&format!("{},{},{},{flag}", h.pri, h.seq, h.ts_usec));
    if let Some(c) = h.caller {
        line.push_str(&format!(",caller={c}"));
    }
    if let Some((off, total)) = h.frag {
        line.push_str(&format!(",ncfrag={off}/{total}"));
    }
    line.push(';');
    let mut again = line.into_bytes();
    again.extend_from_slice(body);
    let (h2, body2) = parse(&again).expect("a rendered header parses");
    assert_eq!(h2, h);
    assert_eq!(body2, body);
    let (text, dict) = split_body(body);
    assert!(!text.contains(&b'\n'));
    for d in dict {
        assert!(!d.is_empty() && !d.contains(&b'\n'));
    }
});
