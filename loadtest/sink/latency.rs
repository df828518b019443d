//! Added latency for the sink: fixed, uniform or exponential, drawn per request from a
//! small per-shard generator (reproducible, no shared state).

use std::time::Duration;

pub use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    None,
    Fixed(Duration),
    Uniform(Duration, Duration),
    /// Exponential with this mean (a long tail, like a real API).
    Exponential(Duration),
}

impl std::str::FromStr for Latency {
    type Err = String;

    /// `2ms`, `uniform:1ms-5ms`, `exp:2ms`; `0` for none.
    fn from_str(text: &str) -> Result<Self, String> {
        let duration =
            |t: &str| humantime::parse_duration(t.trim()).map_err(|e| format!("{t:?}: {e}"));
        if let Some(range) = text.strip_prefix("uniform:") {
            let (low, high) = range
                .split_once('-')
                .ok_or("uniform needs LOW-HIGH, e.g. uniform:1ms-5ms")?;
            let (low, high) = (duration(low)?, duration(high)?);
            if low > high {
                return Err("uniform: LOW must not exceed HIGH".into());
            }
            return Ok(Self::Uniform(low, high));
        }
        if let Some(mean) = text.strip_prefix("exp:") {
            return Ok(Self::Exponential(duration(mean)?));
        }
        if text.trim() == "0" {
            return Ok(Self::None);
        }
        let fixed = duration(text)?;
        Ok(if fixed.is_zero() {
            Self::None
        } else {
            Self::Fixed(fixed)
        })
    }
}

impl Latency {
    pub fn sample(&self, rng: &mut Rng) -> Option<Duration> {
        match *self {
            Self::None => None,
            Self::Fixed(d) => Some(d),
            Self::Uniform(low, high) => Some(low + (high - low).mul_f64(rng.unit())),
            Self::Exponential(mean) => Some(mean.mul_f64(-(1.0 - rng.unit()).ln())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!("2ms".parse(), Ok(Latency::Fixed(Duration::from_millis(2))));
        assert_eq!("0".parse(), Ok(Latency::None));
        assert_eq!(
            "uniform:1ms-5ms".parse(),
            Ok(Latency::Uniform(
                Duration::from_millis(1),
                Duration::from_millis(5)
            ))
        );
        assert_eq!(
            "exp:3ms".parse(),
            Ok(Latency::Exponential(Duration::from_millis(3)))
        );
        assert!("uniform:5ms-1ms".parse::<Latency>().is_err());
        assert!("soon".parse::<Latency>().is_err());
    }

    #[test]
    fn samples_stay_in_range_and_the_mean_holds() {
        let mut rng = Rng::new(7);
        let uniform = Latency::Uniform(Duration::from_millis(1), Duration::from_millis(5));
        for _ in 0..1000 {
            let d = uniform.sample(&mut rng).expect("some");
            assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(5));
        }
        let exp = Latency::Exponential(Duration::from_millis(2));
        let n = 20_000;
        let total: Duration = (0..n).map(|_| exp.sample(&mut rng).expect("some")).sum();
        let mean = total.as_secs_f64() / f64::from(n);
        assert!((mean - 0.002).abs() < 0.0002, "mean {mean}");
    }
}
