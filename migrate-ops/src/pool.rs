//! The one worker pool: queues drained in parallel, each by a bounded number of threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Run `work` on every item of every queue: each queue on at most `jobs` threads of its own, queues in parallel
/// (one queue per database server, so servers are worked on at once). Each thread keeps a state from `init(queue)`
/// between its items (a connection). `on_result` gets each item and its result on the caller's thread as it
/// finishes. Unless `keep_going`, no item is started after one fails; none once `interrupted`. Returns how many
/// items were not started.
pub(crate) fn drain<S, T: Send, E: Send>(
    queues: &[Vec<usize>],
    jobs: usize,
    keep_going: bool,
    interrupted: &(dyn Fn() -> bool + Sync),
    init: impl Fn(usize) -> S + Sync,
    work: impl Fn(&mut S, usize) -> Result<T, E> + Sync,
    mut on_result: impl FnMut(usize, Result<T, E>),
) -> usize {
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<(usize, Result<T, E>)>();
    let mut finished = 0;
    std::thread::scope(|scope| {
        for (queue_index, queue) in queues.iter().enumerate() {
            let next = std::sync::Arc::new(AtomicUsize::new(0));
            for _ in 0..jobs.max(1).min(queue.len()) {
                let (sender, next, stop, init, work) = (sender.clone(), next.clone(), &stop, &init, &work);
                scope.spawn(move || {
                    let mut state = init(queue_index);
                    while !stop.load(Ordering::SeqCst) && !interrupted() {
                        let Some(&item) = queue.get(next.fetch_add(1, Ordering::SeqCst)) else { break };
                        let result = work(&mut state, item);
                        if result.is_err() && !keep_going {
                            stop.store(true, Ordering::SeqCst);
                        }
                        if sender.send((item, result)).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        drop(sender);
        for (item, result) in receiver {
            finished += 1;
            on_result(item, result);
        }
    });
    queues.iter().map(Vec::len).sum::<usize>() - finished
}
