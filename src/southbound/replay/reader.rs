//! Reads a replay file line by line in bounded chunks.
//!
//! A capture comes from another system and may be damaged: a line megabytes long, or a tail of
//! zero bytes where a power cut left the file longer than what was written. The reader never
//! holds more than `max_line_bytes` of one line: a longer line is read on to its newline and
//! discarded, leaving only its length. Zero bytes before and after a line's content are not
//! stored at all (a JSON record cannot contain a raw zero byte), so a zero-filled tail of any
//! size costs no memory; they are counted so the damage is visible.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What one line of the file held.
#[derive(Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// The line without its newline and without the zero bytes around it (possibly empty).
    Bytes(&'a [u8]),
    /// Longer than the limit: discarded. `bytes` is its length without the newline.
    TooLong { bytes: u64 },
}

/// One line of the file, numbered from 1 like an editor does.
#[derive(Debug, PartialEq, Eq)]
pub struct RawLine<'a> {
    pub number: u64,
    pub content: Content<'a>,
    /// Zero bytes removed before and after the content (0 for an undamaged line).
    pub zero_bytes: u64,
}

pub struct LineReader<R> {
    inner: R,
    max_line: usize,
    line: Vec<u8>,
    number: u64,
    /// Largest capacity the line buffer ever had (what holding one line cost at most).
    peak_capacity: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// `inner` decides the chunk size (its buffer capacity); `max_line` bounds one line.
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            max_line,
            line: Vec::new(),
            number: 0,
            peak_capacity: 0,
        }
    }

    /// The largest number of bytes the reader ever reserved for one line; never above
    /// `max_line`, whatever the file holds.
    pub fn peak_capacity(&self) -> usize {
        self.peak_capacity
    }

    /// The next line, or `None` at the end of the file. A last line without a newline counts.
    pub async fn next_line(&mut self) -> std::io::Result<Option<RawLine<'_>>> {
        self.line.clear();
        let mut seen_any = false;
        let mut too_long = false;
        let mut length: u64 = 0;
        let mut zero_bytes: u64 = 0;
        // Zero bytes after content: kept only as a count until more content follows them.
        let mut held_zeros: usize = 0;
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let newline = chunk.iter().position(|b| *b == b'\n');
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            length += part.len() as u64;
            if !too_long {
                for run in part.chunk_by(|a, b| (*a == 0) == (*b == 0)) {
                    if run[0] == 0 {
                        if self.line.is_empty() {
                            zero_bytes += run.len() as u64;
                        } else {
                            held_zeros += run.len();
                        }
                        continue;
                    }
                    let needed = self.line.len() + held_zeros + run.len();
                    if needed > self.max_line {
                        too_long = true;
                        break;
                    }
                    reserve(
                        &mut self.line,
                        &mut self.peak_capacity,
                        self.max_line,
                        needed,
                    );
                    self.line.resize(self.line.len() + held_zeros, 0);
                    held_zeros = 0;
                    self.line.extend_from_slice(run);
                }
            }
            let used = part.len() + usize::from(newline.is_some());
            self.inner.consume(used);
            if newline.is_some() {
                break;
            }
        }
        self.number += 1;
        if too_long {
            self.line.clear();
            return Ok(Some(RawLine {
                number: self.number,
                content: Content::TooLong { bytes: length },
                zero_bytes: 0,
            }));
        }
        Ok(Some(RawLine {
            number: self.number,
            content: Content::Bytes(&self.line),
            zero_bytes: zero_bytes + held_zeros as u64,
        }))
    }
}

/// Grows `line` to hold `needed` bytes (doubling, but never past `max_line`).
fn reserve(line: &mut Vec<u8>, peak: &mut usize, max_line: usize, needed: usize) {
    let cap = line.capacity();
    if needed > cap {
        let target = needed.max(cap * 2).max(256).min(max_line);
        line.reserve_exact(target - line.len());
        *peak = (*peak).max(line.capacity());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    /// Reads every line with a small chunk size, as owned values.
    async fn read_all(
        data: &[u8],
        max_line: usize,
    ) -> (Vec<(u64, Result<Vec<u8>, u64>, u64)>, usize) {
        let mut r = LineReader::new(BufReader::with_capacity(7, data), max_line);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            let content = match l.content {
                Content::Bytes(b) => Ok(b.to_vec()),
                Content::TooLong { bytes } => Err(bytes),
            };
            out.push((l.number, content, l.zero_bytes));
        }
        (out, r.peak_capacity())
    }

    #[tokio::test]
    async fn splits_lines_across_chunks() {
        let (lines, _) = read_all(b"first line\r\nsecond\n\nlast without newline", 64).await;
        assert_eq!(
            lines,
            vec![
                (1, Ok(b"first line\r".to_vec()), 0),
                (2, Ok(b"second".to_vec()), 0),
                (3, Ok(Vec::new()), 0),
                (4, Ok(b"last without newline".to_vec()), 0),
            ]
        );
    }

    #[tokio::test]
    async fn a_long_line_is_skipped_without_being_held() {
        let mut data = b"ok\n".to_vec();
        data.extend(vec![b'x'; 10_000]);
        data.extend(b"\nafter\n");
        let (lines, peak) = read_all(&data, 100).await;
        assert_eq!(
            lines,
            vec![
                (1, Ok(b"ok".to_vec()), 0),
                (2, Err(10_000), 0),
                (3, Ok(b"after".to_vec()), 0),
            ]
        );
        assert!(peak <= 100, "peak {peak}");
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_limit_is_kept() {
        let line = vec![b'y'; 100];
        let mut data = line.clone();
        data.push(b'\n');
        let (lines, peak) = read_all(&data, 100).await;
        assert_eq!(lines, vec![(1, Ok(line), 0)]);
        assert_eq!(peak, 100);
    }

    #[tokio::test]
    async fn zero_bytes_around_content_are_counted_not_stored() {
        let mut data = b"a\n".to_vec();
        data.extend([0u8; 5000]);
        data.extend(b"{\"x\":1}\0\0\0\nb\0c\n");
        data.extend([0u8; 9000]);
        let (lines, peak) = read_all(&data, 64).await;
        assert_eq!(
            lines,
            vec![
                (1, Ok(b"a".to_vec()), 0),
                (2, Ok(b"{\"x\":1}".to_vec()), 5003),
                (3, Ok(b"b\0c".to_vec()), 0),
                (4, Ok(Vec::new()), 9000),
            ]
        );
        assert!(peak <= 64);
    }

    #[tokio::test]
    async fn empty_input_has_no_lines() {
        let (lines, peak) = read_all(b"", 64).await;
        assert!(lines.is_empty());
        assert_eq!(peak, 0);
    }
}
