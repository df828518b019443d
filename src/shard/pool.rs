//! A per-shard pool of message-body buffers, so a busy shard reuses allocations instead
//! of growing a fresh buffer for every message. Large buffers are not kept: an idle
//! shard's memory stays flat after a burst of 25 MiB messages.

use std::cell::RefCell;

pub struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
    max_buffers: usize,
    max_capacity: usize,
}

impl BufferPool {
    pub fn new(max_buffers: usize, max_capacity: usize) -> Self {
        Self {
            free: RefCell::new(Vec::new()),
            max_buffers,
            max_capacity,
        }
    }

    /// A cleared buffer, possibly with capacity from an earlier message.
    pub fn take(&self) -> Vec<u8> {
        self.free.borrow_mut().pop().unwrap_or_default()
    }

    pub fn put(&self, mut buffer: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if buffer.capacity() == 0
            || buffer.capacity() > self.max_capacity
            || free.len() >= self.max_buffers
        {
            return;
        }
        buffer.clear();
        free.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_small_buffers_and_drops_large_ones() {
        let pool = BufferPool::new(2, 1024);
        pool.put(Vec::with_capacity(100));
        pool.put(Vec::with_capacity(4096));
        let b = pool.take();
        assert!(b.capacity() >= 100 && b.capacity() < 4096);
        assert_eq!(pool.take().capacity(), 0, "the large one was not kept");
        for _ in 0..5 {
            pool.put(Vec::with_capacity(10));
        }
        assert_eq!(pool.free.borrow().len(), 2);
    }
}
