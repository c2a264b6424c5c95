"""Background work done once: each periodic job elected per run, its heartbeat in job_runs, a thread per job.

- election.py: who runs a job now (a PostgreSQL advisory lock per job, a file lock beside a SQLite file)
- heartbeat.py: each run's start and end in job_runs (read by /readyz)
- runner.py: Job, the thread that wins a job's election and runs it, start_jobs
- catalogue.py: the jobs themselves (early warning, roll-up, escalation, webhooks, simulator)

`python app.py worker` runs them (dashboard/commands/worker.py); the embedded server runs them in its own process.
"""
