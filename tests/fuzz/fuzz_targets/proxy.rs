//! The PROXY header parser on arbitrary bytes: never a panic; a header's length lies
//! within the input and the size caps; every prefix of a whole header is incomplete or
//! that same header, never a different verdict (the peek loop relies on it).
#![no_main]

use smtpgate::proxy::{self, Parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let verdict = proxy::parse(data);
    if let Parse::Header { length, .. } = &verdict {
        assert!(*length <= data.len());
        assert!(*length <= proxy::MAX_V2);
        for cut in 0..*length {
            assert!(
                matches!(proxy::parse(&data[..cut]), Parse::Incomplete),
                "a prefix of a header must be incomplete"
            );
        }
        assert_eq!(proxy::parse(&data[..*length]), verdict);
    }
});
