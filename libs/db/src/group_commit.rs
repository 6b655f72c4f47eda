//! Group commit: many concurrent requests, one transaction per batch.
//!
//! On this hardware one durable commit costs about 3 ms, so one commit per request caps a flow
//! near 300/s per connection and a hot row near that too. Requests queue here; each worker takes
//! whatever is waiting (up to `max_batch`) and hands it to the processor, which commits once and
//! answers each request with its own result. Nobody is answered before the commit that holds
//! their work; under light load a batch is a single request, so latency stays low.
//!
//! Workers run batches side by side only when there is enough waiting to fill them: while a
//! batch is being committed, the next worker gathers requests until no commit is running or
//! [`PARALLEL_BATCH_MIN`] are waiting. Measured on two cores, four workers each committing the
//! one or two requests they found cost more per request than they saved in waiting (their
//! statements and row locks contend with each other), so a stage fed by a few dozen callers ran
//! slower than with a single worker; a stage with hundreds waiting still gets every worker. The
//! price: with fewer than that waiting, requests queue behind a slow batch (one waiting on a row
//! lock) instead of passing it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// The fewest waiting requests worth a batch of their own alongside one being committed.
pub const PARALLEL_BATCH_MIN: usize = 8;

/// A batch that takes this long is logged (at WARN).
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(200);

/// Processes a batch in one transaction; returns one result per job, in order.
pub trait BatchProcessor: Send + Sync + 'static {
    type Job: Send + 'static;
    type Output: Send + 'static;
    fn process(&self, jobs: Vec<Self::Job>) -> impl Future<Output = Vec<Self::Output>> + Send;
}

struct Request<P: BatchProcessor> {
    job: P::Job,
    reply: oneshot::Sender<P::Output>,
}

/// The queue in front of the workers. Dropping every clone stops them once the queue drains.
pub struct GroupCommit<P: BatchProcessor> {
    queue: mpsc::Sender<Request<P>>,
}

impl<P: BatchProcessor> Clone for GroupCommit<P> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

/// The service is stopping and takes no more work.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("shutting down")]
pub struct ShuttingDown;

impl<P: BatchProcessor> GroupCommit<P> {
    /// The queue and the worker futures to spawn (on the service's task set).
    pub fn new(
        processor: Arc<P>,
        workers: usize,
        max_batch: usize,
    ) -> (Self, Vec<impl Future<Output = ()> + Send + 'static>) {
        let max_batch = max_batch.max(1);
        let (queue, receiver) = mpsc::channel::<Request<P>>(max_batch * workers.max(1) * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        // Batches being committed, and a signal each time one ends.
        let running = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(Notify::new());
        let gather_until = PARALLEL_BATCH_MIN.min(max_batch);
        let futures = (0..workers.max(1))
            .map(|_| {
                let receiver = receiver.clone();
                let processor = processor.clone();
                let (running, ended) = (running.clone(), ended.clone());
                async move {
                    loop {
                        let (batch, running_batch) = {
                            let mut receiver = receiver.lock().await;
                            let Some(first) = receiver.recv().await else { return };
                            let mut batch = vec![first];
                            drain(&mut receiver, &mut batch, max_batch);
                            while batch.len() < gather_until {
                                // Registered before `running` is read, so an end in between is not missed.
                                let end = ended.notified();
                                tokio::pin!(end);
                                end.as_mut().enable();
                                if running.load(Ordering::Acquire) == 0 {
                                    break;
                                }
                                tokio::select! {
                                    _ = &mut end => {}
                                    more = receiver.recv() => match more {
                                        Some(request) => {
                                            batch.push(request);
                                            drain(&mut receiver, &mut batch, max_batch);
                                        }
                                        None => break,
                                    },
                                }
                            }
                            // Counted before the queue is let go: the next worker must see it.
                            (batch, Running::start(&running, &ended))
                        };
                        let (jobs, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|r| (r.job, r.reply)).unzip();
                        let (size, started) = (jobs.len(), tokio::time::Instant::now());
                        let outputs = processor.process(jobs).await;
                        drop(running_batch);
                        let took = started.elapsed();
                        if took >= SLOW_BATCH {
                            // Everything queued behind it waited too: say which stage, for whoever
                            // looks into a latency spike.
                            let stage = std::any::type_name::<P>();
                            tracing::warn!(stage, size, took_ms = took.as_millis() as u64, "slow group-commit batch");
                        }
                        for (reply, output) in replies.into_iter().zip(outputs) {
                            let _ = reply.send(output);
                        }
                    }
                }
            })
            .collect();
        (Self { queue }, futures)
    }

    /// Queues a job and waits for the commit that holds it.
    pub async fn submit(&self, job: P::Job) -> Result<P::Output, ShuttingDown> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Request { job, reply }).await.map_err(|_| ShuttingDown)?;
        answer.await.map_err(|_| ShuttingDown)
    }
}

/// A batch being committed; its end (even by a panic) lets a gathering worker go.
struct Running<'a> {
    count: &'a AtomicUsize,
    ended: &'a Notify,
}

impl<'a> Running<'a> {
    fn start(count: &'a AtomicUsize, ended: &'a Notify) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self { count, ended }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.ended.notify_waiters();
    }
}

/// Moves what is waiting into the batch, up to `max_batch`, without waiting.
fn drain<R>(receiver: &mut mpsc::Receiver<R>, batch: &mut Vec<R>, max_batch: usize) {
    while batch.len() < max_batch {
        match receiver.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Doubler {
        batches: std::sync::Mutex<Vec<usize>>,
    }

    impl BatchProcessor for Doubler {
        type Job = u32;
        type Output = u32;
        async fn process(&self, jobs: Vec<u32>) -> Vec<u32> {
            self.batches.lock().expect("lock").push(jobs.len());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            jobs.into_iter().map(|j| j * 2).collect()
        }
    }

    #[tokio::test]
    async fn every_job_gets_its_own_answer_and_concurrent_jobs_share_batches() {
        let processor = Arc::new(Doubler { batches: Default::default() });
        let (queue, workers) = GroupCommit::new(processor.clone(), 1, 64);
        let handles: Vec<_> = workers.into_iter().map(tokio::spawn).collect();
        let answers = futures_join((0..100).map(|i| {
            let queue = queue.clone();
            async move { queue.submit(i).await.expect("answer") }
        }))
        .await;
        assert_eq!(answers, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        let batches = processor.batches.lock().expect("lock").clone();
        assert!(batches.len() < 100, "requests were grouped: {batches:?}");
        assert!(batches.iter().all(|b| *b <= 64));
        drop(queue);
        for handle in handles {
            handle.await.expect("workers stop when the queue is dropped");
        }
    }

    /// Takes as long as its job says, in milliseconds.
    struct Sleeper;

    impl BatchProcessor for Sleeper {
        type Job = u64;
        type Output = ();
        async fn process(&self, jobs: Vec<u64>) -> Vec<()> {
            tokio::time::sleep(std::time::Duration::from_millis(jobs.iter().sum())).await;
            jobs.iter().map(|_| ()).collect()
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_batch_is_logged_with_its_stage_and_a_quick_one_is_not() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let (queue, workers) = GroupCommit::new(Arc::new(Sleeper), 1, 1);
        for worker in workers {
            tokio::spawn(worker);
        }
        queue.submit(5).await.expect("quick");
        assert!(captured.0.lock().expect("lock").is_empty(), "a 5 ms batch is not worth a line");
        queue.submit(250).await.expect("slow");
        let logged = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(logged.contains("slow group-commit batch"), "{logged}");
        assert!(logged.contains("Sleeper") && logged.contains("took_ms=250"), "{logged}");
    }

    /// Records batch sizes and how many batches ran at once.
    struct Slow {
        batches: std::sync::Mutex<Vec<usize>>,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
    }

    impl BatchProcessor for Slow {
        type Job = u32;
        type Output = u32;
        async fn process(&self, jobs: Vec<u32>) -> Vec<u32> {
            self.batches.lock().expect("lock").push(jobs.len());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            jobs
        }
    }

    /// Four workers over a [`Slow`] processor, and job 0 already being committed.
    async fn one_batch_running() -> (Arc<Slow>, GroupCommit<Slow>, tokio::task::JoinHandle<u32>) {
        let processor = Arc::new(Slow {
            batches: Default::default(),
            running: AtomicUsize::new(0),
            most_at_once: AtomicUsize::new(0),
        });
        let (queue, workers) = GroupCommit::new(processor.clone(), 4, 64);
        for worker in workers {
            tokio::spawn(worker);
        }
        let first = submit(&queue, 0);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        assert_eq!(processor.running.load(Ordering::SeqCst), 1, "job 0 is being committed");
        (processor, queue, first)
    }

    fn submit(queue: &GroupCommit<Slow>, job: u32) -> tokio::task::JoinHandle<u32> {
        let queue = queue.clone();
        tokio::spawn(async move { queue.submit(job).await.expect("answer") })
    }

    #[tokio::test(start_paused = true)]
    async fn a_few_requests_wait_for_the_running_batch_instead_of_committing_alongside_it() {
        let (processor, queue, first) = one_batch_running().await;
        let mut later = Vec::new();
        for i in 1..=3 {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            later.push(submit(&queue, i));
        }
        assert_eq!(first.await.expect("join"), 0);
        for (i, handle) in later.into_iter().enumerate() {
            assert_eq!(handle.await.expect("join"), i as u32 + 1);
        }
        // Idle workers did not each take one: the three waited and shared the next commit.
        assert_eq!(*processor.batches.lock().expect("lock"), vec![1, 3]);
        assert_eq!(processor.most_at_once.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn enough_waiting_requests_get_a_batch_alongside_the_running_one() {
        let (processor, queue, first) = one_batch_running().await;
        let waiting: Vec<_> = (1..=20).map(|i| submit(&queue, i)).collect();
        for (i, handle) in waiting.into_iter().enumerate() {
            assert_eq!(handle.await.expect("join"), i as u32 + 1);
        }
        assert_eq!(first.await.expect("join"), 0);
        assert_eq!(processor.most_at_once.load(Ordering::SeqCst), 2, "{:?}", processor.batches.lock().expect("lock"));
    }

    async fn futures_join<F: Future<Output = u32> + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<u32> {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("join"));
        }
        out
    }
}
