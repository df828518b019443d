//! The command-line parser on arbitrary lines: no panic, and what it accepts is sane:
//! addresses within the length limit, with an `@`, and no control characters (UTF-8
//! beyond ASCII is allowed since SMTPUTF8; the session decides whether it may be used).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::command::{self, Command};

fuzz_target!(|line: &[u8]| {
    match command::parse(line) {
        Ok(Command::Rcpt { forward_path }) => {
            assert!(forward_path.contains('@') && forward_path.len() <= 256);
            assert!(!forward_path.chars().any(char::is_control));
        }
        Ok(Command::Mail { reverse_path, .. }) => {
            assert!(reverse_path.len() <= 256 && !reverse_path.chars().any(char::is_control));
        }
        Ok(_) | Err(_) => {}
    }
});
