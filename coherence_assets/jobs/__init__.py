"""openEO coherence jobs: which process to call, how pairs become jobs, and the job ledger."""
