//! Group commit: many concurrent requests, one transaction per batch.
//!
//! On this hardware one durable commit costs about 3 ms, so one commit per request caps a flow
//! near 300/s per connection and a hot row near that too. Requests queue here; each worker takes
//! whatever is waiting (up to `max_batch`) and hands it to the processor, which commits once and
//! answers each request with its own result. Nobody is answered before the commit that holds
//! their work; under light load a batch is a single request, so latency stays low.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

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
        let futures = (0..workers.max(1))
            .map(|_| {
                let receiver = receiver.clone();
                let processor = processor.clone();
                async move {
                    loop {
                        let batch = {
                            let mut receiver = receiver.lock().await;
                            let Some(first) = receiver.recv().await else { return };
                            let mut batch = vec![first];
                            while batch.len() < max_batch {
                                match receiver.try_recv() {
                                    Ok(request) => batch.push(request),
                                    Err(_) => break,
                                }
                            }
                            batch
                        };
                        let (jobs, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|r| (r.job, r.reply)).unzip();
                        let outputs = processor.process(jobs).await;
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

    async fn futures_join<F: Future<Output = u32> + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<u32> {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("join"));
        }
        out
    }
}
