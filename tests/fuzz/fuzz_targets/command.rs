//! The command-line parser on arbitrary lines: no panic, and what it accepts is sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::command::{self, Command};

fuzz_target!(|line: &[u8]| {
    match command::parse(line) {
        Ok(Command::Rcpt { forward_path }) => {
            assert!(forward_path.is_ascii() && forward_path.contains('@') && forward_path.len() <= 256);
        }
        Ok(Command::Mail { reverse_path, .. }) => assert!(reverse_path.is_ascii() && reverse_path.len() <= 256),
        Ok(_) | Err(_) => {}
    }
});
