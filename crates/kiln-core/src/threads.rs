//! Running a whole computation on the thread pool that kiln's CPU kernels split their work over.

use crate::autograd::GradMode;

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
    // `scope` started outside the pool runs its body on a pool worker and blocks this thread
    // until the body returns.
    rayon::scope(move |_| mode.run(f))
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
}
