//! Where log lines go: the process's stderr, written without taking Rust's
//! stderr lock for every line.
//!
//! Every request logs its access line, and `std::io::Stderr` serialises
//! writers with a lock held around the write(2). With a thread serving
//! connections on each core, the threads met at that lock on about a third
//! of small GETs (strace: a FUTEX_WAIT and a FUTEX_WAKE on
//! `std::io::stdio::stderr::INSTANCE` per three requests), each a sleep and
//! a wake-up. The kernel already keeps a short line whole: POSIX keeps a
//! write of up to [`WHOLE_WRITE`] bytes to a pipe from being interleaved
//! with another, Linux holds a regular file for the length of a write, and
//! the journal's stream socket takes such a write in one piece. Only a
//! longer line needs a turn of its own: it takes a lock that excludes every
//! writer, and lines within the bound share that lock (an atomic add, no
//! sleep).

use std::{
    fs::File,
    io::{self, Write},
    sync::RwLock,
};

use tracing_subscriber::fmt::MakeWriter;

/// PIPE_BUF on Linux: the largest write to a pipe that POSIX keeps whole.
const WHOLE_WRITE: usize = 4096;

pub(super) struct Sink {
    /// A duplicate of stderr's descriptor (`None` if it could not be made:
    /// then the standard handle, lock and all).
    file: Option<File>,
    long_line: RwLock<()>,
}

impl Sink {
    pub(super) fn stderr() -> Sink {
        use std::os::fd::AsFd;
        let file = io::stderr().as_fd().try_clone_to_owned().ok().map(File::from);
        Sink { file, long_line: RwLock::new(()) }
    }

    #[cfg(test)]
    fn to(file: File) -> Sink {
        Sink { file: Some(file), long_line: RwLock::new(()) }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(self)
    }
}

/// One log line (tracing formats a whole line, then writes it once).
pub(super) struct Line<'a>(&'a Sink);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let Some(mut file) = self.0.file.as_ref() else { return io::stderr().write_all(buf) };
        let lock = &self.0.long_line;
        // A poisoned lock still orders the writers: a panic cannot leave a
        // line half written in a way the next writer could repair.
        match buf.len() <= WHOLE_WRITE {
            true => {
                let _shared = lock.read().unwrap_or_else(|p| p.into_inner());
                file.write_all(buf)
            }
            false => {
                let _alone = lock.write().unwrap_or_else(|p| p.into_inner());
                file.write_all(buf)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};

    use super::*;

    #[test]
    fn lines_written_at_once_from_many_threads_stay_whole() {
        let (reader, writer) = io::pipe().unwrap();
        let sink = Sink::to(File::from(std::os::fd::OwnedFd::from(writer)));
        let collected = std::thread::spawn(move || {
            BufReader::new(reader).lines().map(Result::unwrap).collect::<Vec<_>>()
        });
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let sink = &sink;
                s.spawn(move || {
                    for i in 0..300usize {
                        // Short lines and long ones (past a pipe's whole write).
                        let len = if i % 10 == 0 { 3 * WHOLE_WRITE + i } else { 20 + i };
                        let mut line = vec![b'a' + t; len];
                        line.push(b'\n');
                        sink.make_writer().write_all(&line).unwrap();
                    }
                });
            }
        });
        drop(sink);
        let lines = collected.join().unwrap();
        assert_eq!(lines.len(), 4 * 300);
        for line in &lines {
            let first = line.as_bytes()[0];
            assert!(line.bytes().all(|b| b == first), "a line mixes writers: {}", &line[..40]);
        }
    }
}
