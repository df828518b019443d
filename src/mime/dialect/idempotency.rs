//! The client's idempotency key: `Idempotency-Key` or `Resend-Idempotency-Key`, the same
//! key under either name. Surrounding whitespace trimmed, 1 to 256 characters from
//! 0x20-0x7E; the first such header wins.

use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "Idempotency key",
    headers: &["idempotency-key", "resend-idempotency-key"],
    read,
};

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    let Some(first) = fields.first() else {
        return Ok(());
    };
    let key = first.unfolded(cx.scratch);
    let valid = (1..=256).contains(&key.len()) && key.iter().all(|&b| (0x20..=0x7e).contains(&b));
    if !valid {
        let header = if first.name.eq_ignore_ascii_case("idempotency-key") {
            "Idempotency-Key"
        } else {
            "Resend-Idempotency-Key"
        };
        return Err(DialectError::IdempotencyKey { header });
    }
    options.idempotency_key = Some(String::from_utf8_lossy(key).into_owned());
    Ok(())
}
