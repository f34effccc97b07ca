//! Configuration loading (src/config.rs): YAML text in, either settings
//! or errors that each say something. A configuration that validates
//! must survive being written out and read back unchanged (no value the
//! checks let through that YAML cannot carry, such as a NaN ratio).
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchdog::fuzzing::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_yaml(text, "fuzz.yaml") {
        Ok(config) => {
            assert!(config.validate().is_empty());
            let again = serde_yaml::to_string(&config).expect("a Config serializes");
            match Config::from_yaml(&again, "again.yaml") {
                Ok(back) => assert_eq!(back, config, "changed on the way back:\n{again}"),
                Err(e) => panic!("written back, it no longer loads: {e}\n{again}"),
            }
        }
        Err(e) => {
            assert_eq!(e.source, "fuzz.yaml");
            assert!(!e.errors.is_empty(), "an error without a problem");
            for p in &e.errors {
                assert!(
                    !p.message.trim().is_empty(),
                    "empty message at {:?}",
                    p.path
                );
            }
            let _ = e.to_string();
        }
    }
});
