//! Operational logs through `tracing`: human-readable or JSON lines, one
//! line per event whatever its fields hold (`escape.rs`).

use std::{
    cell::RefCell,
    time::{SystemTime, UNIX_EPOCH},
};

use tracing_subscriber::{
    EnvFilter, fmt,
    fmt::{format::Writer, time::FormatTime},
};

use crate::config::LogConfig;

mod escape;
mod sink;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the config.
pub fn init(cfg: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&cfg.level));
    // A log that cannot be written (a full disk) must not stop the service:
    // tracing would report it with `eprintln!`, which panics when stderr
    // fails, in whichever request was logging.
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(sink::Sink::stderr())
        .with_timer(UtcMicros)
        .log_internal_errors(false);
    if cfg.format == "json" {
        let _ = builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init();
    } else {
        let _ = builder.with_ansi(false).fmt_fields(escape::EscapedFields).try_init();
    }
}

/// Each line's time, as RFC 3339 in UTC with microseconds
/// (`2026-12-05T23:49:46.993495Z`, as tracing's own timer writes it). The
/// date and time to the second are formatted once per second and thread:
/// formatting the whole of it for every line was about 3 % of a small
/// request's instructions, since every request logs its access line.
struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        thread_local! {
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = now.as_secs();
        SECOND.with_borrow_mut(|(at, text)| {
            if *at != secs {
                *at = secs;
                *text = strongroom_core::utc_to_the_second(secs as i64);
            }
            w.write_str(text)
        })?;
        let mut frac = *b".000000Z";
        let mut us = now.subsec_micros();
        for d in frac[1..7].iter_mut().rev() {
            *d = b'0' + (us % 10) as u8;
            us /= 10;
        }
        w.write_str(std::str::from_utf8(&frac).unwrap_or(".000000Z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_rfc3339_to_the_microsecond() {
        let second = strongroom_core::utc_to_the_second;
        assert_eq!(second(0), "1970-01-01T00:00:00");
        assert_eq!(second(1_764_979_786), "2025-12-06T00:09:46");
        // 29 February of a leap year, the last second of the day.
        assert_eq!(second(951_868_799), "2000-02-29T23:59:59");
        let mut line = String::new();
        UtcMicros.format_time(&mut Writer::new(&mut line)).unwrap();
        let (date, frac) = line.split_once('.').unwrap();
        assert_eq!(date.len(), 19, "{line}");
        assert!(frac.len() == 7 && frac.ends_with('Z'), "{line}");
        assert!(frac[..6].bytes().all(|b| b.is_ascii_digit()), "{line}");
    }
}
