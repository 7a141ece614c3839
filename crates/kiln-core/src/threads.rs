//! Running a whole computation on the thread pool that kiln's CPU kernels split their work over.

use crate::autograd::GradMode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `f` on a worker thread of the pool kiln's CPU kernels split their work over (rayon's
/// global pool, sized by `RAYON_NUM_THREADS` or `rayon::ThreadPoolBuilder::build_global`), under
/// the calling thread's gradient and anomaly modes, and returns what `f` returns. Called from a
/// pool worker, it simply runs `f`.
///
/// Wrap a training loop in it when the pool has more than one thread. A parallel kernel started
/// from a thread outside the pool hands all of its work to the pool and sleeps until the pool is
/// done, so every parallel op of a step costs the caller a sleep and a wake-up, which on a virtual
/// machine can take longer than the op. Started on a worker, the op keeps a share of the work on
/// the calling thread and only the other workers are woken. W5 (an MLP training step, 2 threads,
/// an AMD EPYC vCPU): 77-80k samples/s from the main thread, 91-95k inside `on_thread_pool`. It
/// changes nothing on one thread.
///
/// ```
/// use kiln_core::{on_thread_pool, Tensor};
/// let w = Tensor::from_slice(&[1.0f64, 2.0], [2])?.requires_grad(true)?;
/// let loss = on_thread_pool(|| w.square()?.sum_all())?;
/// assert_eq!(loss.to_vec::<f64>()?, vec![5.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn on_thread_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let mode = GradMode::current();
    let helpers = rayon::current_num_threads().saturating_sub(1);
    let spin = SpinState::default();
    // `scope` started outside the pool runs its body on a pool worker and blocks this thread
    // until the body returns.
    rayon::scope(|s| {
        if helpers > 0 {
            for _ in 0..helpers {
                s.spawn(|_| spin.keep_awake());
            }
            spin.wait_for_helpers(helpers);
        }
        // Set on every exit, a panic included: the scope waits for the helpers to return.
        let _done = DoneOnDrop(&spin.done);
        mode.run(f)
    })
}

/// The other workers of the pool stay awake while [`on_thread_pool`] runs its closure, taking
/// the closure's parallel work as soon as it appears, instead of sleeping between ops. rayon puts
/// an idle worker to sleep after a few tens of microseconds, and waking it on a virtual machine
/// took 50-90 us (Emerald Rapids vCPU, 2026-12-02: a `join` of two 100 us tasks after a 200 us
/// serial gap took 192 us, not 101; of two 20 us tasks, 54 us, with the sleeper joining in only
/// 77 of 200 times). A training step issues dozens of parallel ops separated by short serial
/// stretches, so each would pay that wake-up. OpenMP runtimes spin for the same reason
/// (`KMP_BLOCKTIME`, `GOMP_SPINCOUNT`).
///
/// The spinning stops for the rest of the call when it costs more than it saves: when the
/// closure has issued no parallel work for [`IDLE_LIMIT`] (a serial stretch: the helper would
/// only burn its core), or when a helper finds it was descheduled for longer than
/// [`PREEMPTED_LIMIT`] while idle, repeatedly ([`PREEMPTIONS_TO_STOP`]: another process wants
/// its core; a spinning helper would hold
/// stolen work while preempted, which is the collapse PyTorch's OpenMP threads show beside a
/// busy core). The helpers then return to rayon, whose sleeping workers give way to the other
/// process.
#[derive(Default)]
struct SpinState {
    /// Helpers that started spinning.
    started: AtomicUsize,
    /// Set once the closure starts: a helper job run after that returns at once. It may then be
    /// nested inside one of the closure's own jobs, where spinning until the closure ends would
    /// deadlock.
    closed: AtomicBool,
    /// Set when the closure has returned (or panicked).
    done: AtomicBool,
}

/// With no parallel work for this long, a helper stops spinning.
const IDLE_LIMIT: Duration = Duration::from_millis(10);
/// A helper that went this long between two idle polls was descheduled (jitter on an idle
/// virtual CPU stayed under 250 us but for one gap in 3 s; beside a busy process on the same
/// core, the gaps were 3 ms and longer).
const PREEMPTED_LIMIT: Duration = Duration::from_millis(1);
/// A helper stops after this many preemptions, each within [`PREEMPTION_WINDOW`] of the last.
/// On the noisy VM a lone gap of 4 ms now and then ended the spinning for the rest of a run
/// (W5 on two threads: 35.0k samples/s in that run against 39.3-39.9k); beside a busy process
/// on the same core the gaps come every few milliseconds.
const PREEMPTIONS_TO_STOP: u32 = 3;
/// See [`PREEMPTIONS_TO_STOP`].
const PREEMPTION_WINDOW: Duration = Duration::from_millis(100);
/// How long the closure waits for the helpers to start spinning (they are asleep; waking takes
/// well under a millisecond unless the pool is busy elsewhere).
const START_LIMIT: Duration = Duration::from_millis(5);

impl SpinState {
    fn keep_awake(&self) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.started.fetch_add(1, Ordering::AcqRel);
        let mut prev = Instant::now();
        let mut last_work = prev;
        // Preemptions seen close together: a single one is the host's jitter (a virtual CPU is
        // itself descheduled now and then), a run of them a process sharing the core.
        let (mut preempted, mut last_preempted) = (0, prev);
        while !self.done.load(Ordering::Acquire) {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => {
                    prev = Instant::now();
                    last_work = prev;
                }
                _ => {
                    let now = Instant::now();
                    if now - last_work > IDLE_LIMIT {
                        return;
                    }
                    if now - prev > PREEMPTED_LIMIT {
                        preempted = if now - last_preempted < PREEMPTION_WINDOW {
                            preempted + 1
                        } else {
                            1
                        };
                        last_preempted = now;
                        if preempted >= PREEMPTIONS_TO_STOP {
                            return;
                        }
                    }
                    prev = now;
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Waits (without running pool jobs: this thread would pick up a helper job itself) until
    /// `helpers` helpers spin or [`START_LIMIT`] passes, then closes the door on late ones.
    fn wait_for_helpers(&self, helpers: usize) {
        let t = Instant::now();
        while self.started.load(Ordering::Acquire) < helpers && t.elapsed() < START_LIMIT {
            std::hint::spin_loop();
        }
        self.closed.store(true, Ordering::Release);
    }
}

struct DoneOnDrop<'a>(&'a AtomicBool);
impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{no_grad, Tensor};

    #[test]
    fn runs_on_a_worker_with_the_callers_modes() {
        assert_eq!(rayon::current_thread_index(), None, "tests run outside the pool");
        let (inside, grad) = on_thread_pool(|| (rayon::current_thread_index(), crate::is_grad_enabled()));
        assert!(inside.is_some());
        assert!(grad);
        let w = Tensor::from_slice(&[2.0f64], [1]).unwrap().requires_grad(true).unwrap();
        let y = no_grad(|| on_thread_pool(|| (crate::is_grad_enabled(), w.mul_scalar(3.0).unwrap())));
        assert!(!y.0, "no_grad reaches the worker");
        assert!(!y.1.requires_grad_flag());
        // The worker's own mode is restored afterwards.
        assert!(on_thread_pool(crate::is_grad_enabled));
        // Nested calls run in place.
        assert_eq!(on_thread_pool(|| on_thread_pool(|| 7)), 7);
    }

    #[test]
    fn ops_go_side_by_side_from_outside_the_pool_only_when_large() {
        let pool = rayon::current_num_threads();
        if pool < 2 {
            return; // one thread: nothing ever goes side by side
        }
        // Each op sees the threads it may split over: all of the pool one after the other,
        // a share side by side.
        let seen = |flops| join_shares(flops, kernel_threads, kernel_threads);
        assert_eq!(rayon::current_thread_index(), None, "tests run outside the pool");
        assert_eq!(seen(JOIN_MIN_FLOPS), (pool, pool), "W4's products from outside the pool");
        assert_eq!(seen(JOIN_MIN_FLOPS_OUTSIDE_POOL - 1), (pool, pool));
        assert_eq!(seen(JOIN_MIN_FLOPS_OUTSIDE_POOL), (pool / 2, pool - pool / 2));
        assert_eq!(
            on_thread_pool(|| seen(JOIN_MIN_FLOPS)),
            (pool / 2, pool - pool / 2),
            "inside the pool"
        );
        assert_eq!(on_thread_pool(|| seen(JOIN_MIN_FLOPS - 1)), (pool, pool));
    }

    #[test]
    fn parallel_work_inside_finishes_and_the_helpers_stop() {
        use rayon::prelude::*;
        // Many short parallel ops with serial gaps, as a training loop issues them: every one
        // completes with the right result while the helpers spin beside it.
        let total: u64 = on_thread_pool(|| {
            (0..200u64)
                .map(|i| {
                    let s: u64 = (0..1000u64).into_par_iter().map(|x| x * i).sum();
                    std::hint::black_box((0..200).sum::<u64>());
                    s
                })
                .sum()
        });
        assert_eq!(total, (0..200u64).sum::<u64>() * (999 * 1000 / 2));
        // A panic in the closure reaches the caller and releases the helpers: the next call runs.
        let r = std::panic::catch_unwind(|| on_thread_pool(|| panic!("inside")));
        assert!(r.is_err());
        assert_eq!(on_thread_pool(|| rayon::join(|| 1, || 2)), (1, 2));
        // Concurrent callers share the pool without deadlock.
        let sums: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3u64)
                .map(|t| s.spawn(move || on_thread_pool(|| (0..10_000u64).into_par_iter().map(|x| x + t).sum::<u64>())))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (t, s) in sums.iter().enumerate() {
            assert_eq!(*s, (0..10_000u64).sum::<u64>() + 10_000 * t as u64);
        }
    }
}

thread_local! {
    /// The threads the CPU kernels on this thread may split one op over, when a caller running
    /// independent ops side by side has given each a share of the pool (see [`join_shares`]).
    static SHARE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The threads a CPU kernel started on this thread may split its work over: the pool's size, or
/// the share [`join_shares`] gave the op this thread is running.
pub(crate) fn kernel_threads() -> usize {
    SHARE.with(|s| s.get()).unwrap_or_else(rayon::current_num_threads)
}

/// Independent ops smaller than this many multiply-adds each run one after the other: side by
/// side they would gain less than the fork and join cost.
const JOIN_MIN_FLOPS: usize = 1 << 22;

/// ... and this many when the caller is outside the pool (a training loop not wrapped in
/// [`on_thread_pool`]): going side by side then first wakes the sleeping workers and puts the
/// caller to sleep until they finish, which took longer than W4's two 64 x 256 x 256 gradient
/// products (about 40 us each) save.
const JOIN_MIN_FLOPS_OUTSIDE_POOL: usize = 1 << 24;

/// Whether [`join_shares`] may run ops side by side (see [`set_interop`]).
static INTEROP: AtomicBool = AtomicBool::new(true);

/// Turns inter-op parallelism on (the default) or off for the whole process: whether
/// independent ops of one backward pass, such as a Linear layer's two gradient products, may run
/// side by side on halves of the thread pool instead of one after the other on all of it (the
/// role of PyTorch's inter-op thread pool). Results are the same bits either way; the switch is
/// for measuring one against the other.
///
/// On the Emerald Rapids vCPU of 2026-12-03 (2 threads, one 128 x 512 x 512 Linear layer's
/// backward, 200 alternating calls per setting, 3 runs): side by side 450-526 µs at the first
/// quartile, one after the other 490-576.
pub fn set_interop(on: bool) {
    INTEROP.store(on, Ordering::Relaxed);
}

/// Runs `a` and `b`, two independent ops of about `flops` multiply-adds each, side by side on
/// halves of the pool when the pool (or this thread's share of it) has two threads or more and
/// the ops are large enough, one after the other otherwise. Each runs under the caller's gradient
/// and anomaly modes, its kernels splitting work over its half only.
///
/// Two products that each use both threads meet twice per product and share their packed blocks
/// across cores; side by side, each keeps one core's caches to itself. A Linear layer's two
/// backward products (W5's 128 x 512 x 512 layer) are the case this is for.
pub(crate) fn join_shares<A: Send, B: Send>(flops: usize, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let threads = kernel_threads();
    let min_flops = if rayon::current_thread_index().is_some() {
        JOIN_MIN_FLOPS
    } else {
        JOIN_MIN_FLOPS_OUTSIDE_POOL
    };
    if threads < 2 || flops < min_flops || !INTEROP.load(Ordering::Relaxed) {
        return (a(), b());
    }
    let mode = GradMode::current();
    let (ta, tb) = (threads / 2, threads - threads / 2);
    on_thread_pool(|| rayon::join(|| with_share(ta, mode, a), || with_share(tb, mode, b)))
}

/// Runs `f` under `mode` with this thread's kernels limited to `threads`, restoring the thread's
/// own limit after (also when `f` panics).
fn with_share<R>(threads: usize, mode: GradMode, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SHARE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SHARE.with(|s| s.replace(Some(threads))));
    mode.run(f)
}
