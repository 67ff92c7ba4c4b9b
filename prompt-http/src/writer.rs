//! The run writer: group commit with backpressure.
//!
//! Handlers hand validated runs to one writer task through a bounded queue and wait for
//! the answer. The writer takes everything queued (up to a batch limit) and stores it in
//! ONE `insert_runs` transaction, then answers every waiting request — so a request is
//! answered only after its runs are committed, and many concurrent requests share one
//! commit. When the queue is full the request is refused at once with 503 and
//! `Retry-After` rather than queued without bound. If a grouped commit fails, each
//! request's runs are retried alone so one bad request cannot fail the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prompt_core::{Error, Result, Run, RunLog};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

struct Job {
    runs: Vec<Run>,
    done: oneshot::Sender<Result<()>>,
    /// Held until the job is answered: bounds the runs waiting in memory.
    _permit: OwnedSemaphorePermit,
}

/// Handle to the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub struct RunWriter {
    tx: mpsc::Sender<Job>,
    accepted: Arc<AtomicU64>,
    /// One permit per run that may wait for a commit.
    runs_budget: Arc<Semaphore>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("runs", &self.runs.len())
            .finish()
    }
}

/// Reads how many write requests a writer accepted, without keeping it alive.
#[derive(Debug, Clone)]
pub struct WriterCounter(Arc<AtomicU64>);

impl WriterCounter {
    /// Write requests accepted so far.
    pub fn accepted(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Requests that may wait in the queue before new ones are refused.
    pub queue: usize,
    /// Most runs committed in one transaction.
    pub max_batch_runs: usize,
    /// Most runs waiting in memory for a commit (all queued requests together).
    pub max_queued_runs: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue: 4096,
            max_batch_runs: 5000,
            max_queued_runs: 100_000,
        }
    }
}

impl RunWriter {
    /// Start the writer task over `log`. The task ends when every handle is dropped and
    /// the queue is drained; await the returned handle to wait for that (shutdown).
    pub fn start(log: Arc<dyn RunLog>, config: WriterConfig) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let task = tokio::spawn(run_writer(log, rx, config.max_batch_runs.max(1)));
        (
            RunWriter {
                tx,
                accepted: Arc::default(),
                runs_budget: Arc::new(Semaphore::new(
                    config.max_queued_runs.clamp(1, Semaphore::MAX_PERMITS),
                )),
            },
            task,
        )
    }

    /// Whether the writer task has stopped (then every write fails).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// How many write requests were accepted into the queue since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// A counter handle that, unlike a clone of the writer, does not keep the writer
    /// alive (for tests and metrics).
    pub fn counter(&self) -> WriterCounter {
        WriterCounter(self.accepted.clone())
    }

    /// Store `runs` durably (one commit shared with concurrent callers). `Unavailable`
    /// with a retry hint when the queue is full.
    pub async fn write(&self, runs: Vec<Run>) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let full = || Error::Unavailable {
            message: "run writer queue is full".into(),
            retry_after: Some(Duration::from_secs(1)),
        };
        let n = u32::try_from(runs.len()).map_err(|_| full())?;
        let permit = self
            .runs_budget
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| full())?;
        let (done, wait) = oneshot::channel();
        let job = Job {
            runs,
            done,
            _permit: permit,
        };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => full(),
            mpsc::error::TrySendError::Closed(_) => {
                Error::unavailable("the server is shutting down")
            }
        })?;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("prompt_registry_run_writer_queue")
            .set((self.tx.max_capacity() - self.tx.capacity()) as f64);
        wait.await
            .map_err(|_| Error::internal("run writer stopped before answering"))?
    }
}

async fn run_writer(log: Arc<dyn RunLog>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs: Vec<Job> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut count = first.runs.len();
        jobs.push(first);
        while count < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    count += j.runs.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        commit(&log, std::mem::take(&mut jobs)).await;
    }
}

async fn commit(log: &Arc<dyn RunLog>, jobs: Vec<Job>) {
    let started = std::time::Instant::now();
    let count: usize = jobs.iter().map(|j| j.runs.len()).sum();
    metrics::histogram!("prompt_registry_run_commit_runs").record(count as f64);
    let grouped = if jobs.len() == 1 {
        Err(Error::internal("single"))
    } else {
        let all: Vec<Run> = jobs.iter().flat_map(|j| j.runs.iter().cloned()).collect();
        log.insert_runs(&all).await
    };
    match grouped {
        Ok(()) => {
            for j in jobs {
                let _ = j.done.send(Ok(()));
            }
        }
        Err(_) => {
            // One request alone, or a grouped commit that failed: commit each request
            // on its own so an error belongs to the request that caused it.
            for j in jobs {
                let r = log.insert_runs(&j.runs).await;
                if let Err(e) = &r {
                    tracing::warn!(error = %e, runs = j.runs.len(), "run insert failed");
                }
                let _ = j.done.send(r);
            }
        }
    }
    metrics::histogram!("prompt_registry_run_commit_seconds")
        .record(started.elapsed().as_secs_f64());
}
